"""`upload --follow --target freeplay` against Freeplay's reference server (a real HTTP server
on 127.0.0.1): records appended are recorded once each, a half-written line waits, and a
Weave call whose end is appended later waits for it (`--pair-wait`) and goes as one record.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import orjson
import pytest

from tests.support import freeplay_fixtures
from tests.support.follow_kit import stop, wait_for
from tests.support.freeplay_fixtures import API_KEY, PROJECT, RefServer, completions_file, fp_upload
from tests.support.freeplay_golden import GOLDEN
from tests.support.uploadkit import cli_env, tracecli

pytestmark = pytest.mark.slow  # each waits out passes of the follower: out of the fast loop

refserver_module = freeplay_fixtures.refserver_module
refserver = freeplay_fixtures.refserver

WEAVE_CALLS = GOLDEN / "weave_sdk_examples.jsonl"  # starts at lines 4 and 5 end at 9 and 6


def stored(server: RefServer) -> int:
    counts = server.records()["counts"]
    return int(counts["completions"] + counts["traces"])


def follower(tmp: Path, server: RefServer, app: Path, *extra: str) -> subprocess.Popen[bytes]:
    args = ["upload", "--follow", str(app), "--target", "freeplay", "--server", server.api_base]
    args += ["--project", PROJECT, "--format", "json", *extra]
    return subprocess.Popen(
        tracecli(*args),
        stdout=(tmp / "out").open("wb"),
        stderr=(tmp / "err").open("wb"),
        stdin=subprocess.DEVNULL,
        env=cli_env(FREEPLAY_API_KEY=API_KEY),
        cwd=tmp,
    )


def test_follow_ships_appended_records_and_waits_for_a_half_written_line(
    refserver: RefServer, tmp_path: Path
) -> None:
    rows = completions_file(tmp_path, 30, "all.jsonl").read_bytes().splitlines(keepends=True)
    app = tmp_path / "c.jsonl"
    app.write_bytes(b"".join(rows[:10]))
    proc = follower(tmp_path, refserver, app)
    try:
        wait_for(lambda: stored(refserver) == 10, 60, proc)
        with app.open("ab") as f:
            f.write(b"".join(rows[10:20]) + rows[20][:25])  # the writer is mid-line
        wait_for(lambda: stored(refserver) == 20, 30, proc)
        time.sleep(1.5)  # more looks: the half line is neither read nor said
        with app.open("ab") as f:
            f.write(rows[20][25:] + b"".join(rows[21:]))
        wait_for(lambda: stored(refserver) == 30, 30, proc)
    finally:
        assert stop(proc) == 0
    assert refserver.records()["counts"]["completions"] == 30  # each once
    err = (tmp_path / "err").read_text()
    assert "error" not in err, err
    status = [orjson.loads(x) for x in (tmp_path / "out").read_bytes().splitlines()]
    assert status[-1]["calls_shipped"] == 30 and status[-1]["rejected"] == 0


def test_a_weave_call_whose_end_comes_later_goes_as_one_record(
    refserver: RefServer, tmp_path: Path
) -> None:
    lines = WEAVE_CALLS.read_bytes().splitlines(keepends=True)
    whole = fp_upload([WEAVE_CALLS], tmp_path / "oneshot", refserver)
    expected = stored(refserver)
    assert whole.uploaded == expected > 0
    refserver.clear()
    app = tmp_path / "app.jsonl"
    app.write_bytes(b"".join(lines[:5]))  # two starts whose ends are not written yet
    proc = follower(tmp_path, refserver, app, "--pair-wait", "60")
    try:
        wait_for(lambda: stored(refserver) == 2, 60, proc)  # the two whole calls
        time.sleep(2.0)
        assert stored(refserver) == 2  # the starts wait
        with app.open("ab") as f:
            f.write(b"".join(lines[5:]))
        wait_for(lambda: stored(refserver) == expected, 30, proc)
    finally:
        assert stop(proc) == 0
    err = (tmp_path / "err").read_text()
    assert "no end in the inputs" not in err and "no start in the inputs" not in err, err
    assert not (tmp_path / "tracecli-rejected.jsonl").exists()


def test_a_start_alone_after_pair_wait_is_reported_once_and_still_goes_with_its_end(
    refserver: RefServer, tmp_path: Path
) -> None:
    """Freeplay records finished calls only: once --pair-wait is over, a start still alone
    is said to have no end (once) and kept in the rejected file, yet later passes read it
    again, so when its end is written the call is recorded all the same."""
    lines = WEAVE_CALLS.read_bytes().splitlines(keepends=True)
    fp_upload([WEAVE_CALLS], tmp_path / "oneshot", refserver)
    expected = stored(refserver)
    refserver.clear()
    app = tmp_path / "app.jsonl"
    app.write_bytes(b"".join(lines[:5]))
    proc = follower(tmp_path, refserver, app, "--pair-wait", "1")
    try:
        wait_for(lambda: (tmp_path / "err").read_text().count("no end in the inputs") == 2, 30)
        time.sleep(3.0)  # more passes: said once all the same
        with app.open("ab") as f:
            f.write(b"".join(lines[5:]))
        wait_for(lambda: stored(refserver) == expected, 30, proc)
    finally:
        assert stop(proc) == 0
    err = (tmp_path / "err").read_text()
    assert err.count("no end in the inputs") == 2, err  # lines 4 and 5, once each
    kept = (tmp_path / "tracecli-rejected.jsonl").read_bytes().splitlines()
    assert sorted(orjson.loads(x)["_tracecli"]["line"] for x in kept) == [4, 5]
