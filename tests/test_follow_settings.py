"""The settings of `upload --follow` (flush_interval, pair_wait, follow_status_every, poll,
follow_max_outage) resolve like every other: flag > environment > tracecli.yaml > user config >
default, with bad values named by where they came from."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

from tests.support.faultproxy import FaultProxy
from tests.support.follow_kit import line, received, stop, wait_for
from tests.support.uploadkit import cli_env, gen_calls, tracecli, tracecli_serve
from tracecli.cli.follow_view import follow_options
from tracecli.config.settings import load_settings
from tracecli.diagnostics import UsageError
from tracecli.upload.follow import FollowOptions


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.chdir(root)
    names = ("FLUSH_INTERVAL", "PAIR_WAIT", "FOLLOW_STATUS_EVERY", "POLL", "MAX_OUTAGE")
    for var in (*names, "FOLLOW_MAX_OUTAGE"):
        monkeypatch.delenv(f"TRACECLI_{var}", raising=False)
    return root


def test_defaults(project: Path) -> None:
    s = load_settings({})
    assert (s.flush_interval, s.pair_wait, s.follow_status_every, s.poll) == (1, 30, 30, False)
    # no give-up by default: a follow outlives an outage
    assert follow_options(s) == FollowOptions(1.0, 30.0, None, False)


def test_a_config_file_sets_them_and_flags_and_the_environment_win(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "tracecli.yaml").write_text(
        "flush_interval: 250ms\npair_wait: 0\nfollow_status_every: 5\npoll: true\n"
        "follow_max_outage: 10m\nmax_outage: 5\n"
    )
    s = load_settings({})
    assert follow_options(s) == FollowOptions(0.25, 0.0, 600.0, True)
    assert s.max_outage == 5.0  # a pass's outage stop, not the follow's give-up
    assert follow_options(load_settings({"max_outage": "2m"})).max_outage == 120.0
    assert s.follow_status_every == 5.0
    assert str(s.origin("flush_interval")) == "tracecli.yaml:1"
    s = load_settings({"flush_interval": "2", "pair_wait": "1m"})
    assert (s.flush_interval, s.pair_wait) == (2.0, 60.0)
    assert str(s.origin("pair_wait")) == "--pair-wait"
    monkeypatch.setenv("TRACECLI_POLL", "false")
    monkeypatch.setenv("TRACECLI_FLUSH_INTERVAL", "3s")
    s = load_settings({})
    assert (s.poll, s.flush_interval) == (False, 3.0)
    assert load_settings({"flush_interval": "0.5"}).flush_interval == 0.5  # flag > env


def test_max_outage_on_the_command_line_sets_both_stops(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One flag, two keys: `--max-outage` is a pass's stop and the follow's give-up, and
    says so as their origin; in the environment each key is its own."""
    monkeypatch.setenv("TRACECLI_FOLLOW_MAX_OUTAGE", "10m")
    s = load_settings({"max_outage": "90s"})
    assert (s.max_outage, s.follow_max_outage) == (90.0, 90.0)  # the flag beats the variable
    assert str(s.origin("follow_max_outage")) == str(s.origin("max_outage")) == "--max-outage"
    monkeypatch.setenv("TRACECLI_MAX_OUTAGE", "5")
    s = load_settings({})
    assert (s.max_outage, s.follow_max_outage) == (5.0, 600.0)
    assert str(s.origin("follow_max_outage")) == "env TRACECLI_FOLLOW_MAX_OUTAGE"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("flush_interval: 0\n", "tracecli.yaml:1: flush_interval: must be a positive duration"),
        ("pair_wait: -1\n", "tracecli.yaml:1: pair_wait: must be a duration of 0 or more"),
        ("poll: sometimes\n", "tracecli.yaml:1: poll: must be true or false"),
    ],
)
def test_a_bad_value_names_its_line(project: Path, text: str, message: str) -> None:
    (project / "tracecli.yaml").write_text(text)
    with pytest.raises(UsageError) as e:
        load_settings({})
    assert message in str(e.value)


@pytest.mark.slow
def test_a_follow_uses_the_config_file(tmp_path: Path) -> None:
    """`poll: true` in the project's file: the follow polls (its status says so) and ships."""
    (tmp_path / "tracecli.yaml").write_text("poll: true\nflush_interval: 0.3\n")
    calls = gen_calls(10, seed=81)
    app = tmp_path / "app.jsonl"
    app.write_bytes(b"".join(line("call", {**s, **e}) for s, e in calls[:5]))
    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url) as proxy:
        proc = subprocess.Popen(
            tracecli("upload", "--follow", str(app), "--server", proxy.url, "--format", "json"),
            stdout=(tmp_path / "out").open("wb"),
            stderr=(tmp_path / "err").open("wb"),
            stdin=subprocess.DEVNULL,
            env=cli_env(TRACECLI_FOLLOW_STATUS_EVERY="0.2"),
            cwd=tmp_path,
        )
        try:
            wait_for(lambda: len(received(proxy)) == 5, 60, proc)
            with app.open("ab") as f:
                f.write(b"".join(line("call", {**s, **e}) for s, e in calls[5:]))
            wait_for(lambda: len(received(proxy)) == 10, 30, proc)
        finally:
            assert stop(proc) == 0, (tmp_path / "err").read_text()
    status = [orjson.loads(x) for x in (tmp_path / "out").read_bytes().splitlines()]
    assert {x["watching"] for x in status} == {"polling"}


@pytest.mark.slow
def test_pair_wait_with_a_mode_that_sends_starts_at_once_is_ignored_with_a_note(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app.jsonl"
    app.write_bytes(b"")
    args = ["upload", "--follow", str(app), "--db", str(tmp_path / "s.db"), "--mode", "batch"]
    proc = subprocess.Popen(
        tracecli(*args, "--pair-wait", "5"),
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "err").open("wb"),
        stdin=subprocess.DEVNULL,
        env=cli_env(TRACECLI_FOLLOW_STATUS_EVERY="0.2"),
        cwd=tmp_path,
    )

    def looping() -> bool:  # the note, then a status line: the loop (and its SIGTERM) is on
        said = (tmp_path / "err").read_bytes()
        return b"pair_wait" in said and said.count(b"tracecli: ") >= 2

    try:
        wait_for(looping, 30, proc)
    finally:
        assert stop(proc) == 0
    err = (tmp_path / "err").read_text()
    assert err.count("warning: --pair-wait: pair_wait applies to --mode auto") == 1, err
    assert "ignored" in err and "Traceback" not in err
