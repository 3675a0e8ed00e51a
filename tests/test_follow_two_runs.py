"""Two tracecli processes over the same growing file at once (two followers; a cron run
overlapping the next one): each record goes once. Freeplay records every request (its
reference server counted 88 completions for 60); weave's server upserts by call id, and
the fault proxy in front of `tracecli serve` counts what was sent twice."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from tests.support import freeplay_fixtures
from tests.support.faultproxy import FaultProxy, Faults
from tests.support.follow_kit import line, received, start_follower, stop, wait_for
from tests.support.freeplay_fixtures import API_KEY, PROJECT, RefServer, completions_file
from tests.support.uploadkit import (
    cli_env,
    diff_calls,
    gen_calls,
    read_back,
    start_cli,
    tracecli,
    tracecli_serve,
)
from tracecli.journal.file_lock import SLOTS, lock_files, release

refserver_module = freeplay_fixtures.refserver_module
refserver = freeplay_fixtures.refserver


def _append_slowly(path: Path, rows: list[bytes]) -> None:
    for row in rows:
        with path.open("ab") as f:
            f.write(row)
        time.sleep(0.02)


def test_two_followers_of_one_file_record_each_completion_once_in_freeplay(
    refserver: RefServer, tmp_path: Path
) -> None:
    rows = completions_file(tmp_path, 60, "all.jsonl").read_bytes().splitlines(keepends=True)
    app = tmp_path / "app.jsonl"
    app.write_bytes(b"")
    args = ["upload", "--follow", str(app), "--target", "freeplay"]
    args += ["--server", refserver.api_base, "--project", PROJECT]
    procs = [
        subprocess.Popen(
            tracecli(*args),
            stdout=(tmp_path / f"out{n}").open("wb"),
            stderr=(tmp_path / f"err{n}").open("wb"),
            stdin=subprocess.DEVNULL,
            env=cli_env(FREEPLAY_API_KEY=API_KEY),
            cwd=tmp_path,
        )
        for n in range(2)
    ]
    try:
        time.sleep(1.0)
        _append_slowly(app, rows)
        wait_for(lambda: refserver.records()["counts"]["completions"] >= 60, 60)
        time.sleep(2.0)  # both have looked again since
    finally:
        codes = [stop(p) for p in procs]
    assert codes == [0, 0], (tmp_path / "err0").read_text() + (tmp_path / "err1").read_text()
    assert refserver.records()["counts"]["completions"] == 60


def test_two_followers_of_one_file_send_each_call_once_to_weave(tmp_path: Path) -> None:
    calls = gen_calls(120, seed=87)
    app = tmp_path / "app.jsonl"
    app.write_bytes(b"")
    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url) as proxy:
        procs = [start_follower(tmp_path, proxy.url, app, n=n) for n in range(2)]
        try:
            time.sleep(1.0)
            _append_slowly(app, [line("call", {**s, **e}) for s, e in calls])
            wait_for(lambda: len(received(proxy)) == 120, 60)
            time.sleep(2.0)
        finally:
            codes = [stop(p) for p in procs]
        assert codes == [0, 0]
        assert proxy.duplicates() == 0
        assert diff_calls(calls, read_back(serve.url)) == []


def test_a_run_waiting_for_its_turn_stops_on_sigterm_without_sending(tmp_path: Path) -> None:
    """A cron run that overlaps a slow one waits for it; SIGTERM (or Ctrl-C) ends the wait
    at once, nothing read or sent, instead of leaving a process that will not stop."""
    calls = gen_calls(10, seed=88)
    app = tmp_path / "app.jsonl"
    app.write_bytes(b"".join(line("call", {**s, **e}) for s, e in calls))
    with (
        tracecli_serve(tmp_path / "serve") as serve,
        FaultProxy(serve.url, Faults(latency=20.0)) as proxy,
    ):
        args = ("upload", str(app), "--server", proxy.url)
        first = start_cli(list(args), tmp_path, 0)
        try:
            time.sleep(3.0)  # the first holds the file: its request waits in the proxy
            second = start_cli(list(args), tmp_path, 1)
            time.sleep(2.0)
            second.send_signal(signal.SIGTERM)
            code = second.wait(15)  # well before the first's request is answered
        finally:
            first.kill()
            first.wait()
        assert code == 143, code
        assert proxy.duplicates() == 0


def test_thousands_of_files_hold_few_descriptors(tmp_path: Path) -> None:
    """A folder of thousands of trace files: the run's locks are a few dozen descriptors
    (one per lock slot), far from the usual limit of 1,024 open files."""
    paths = []
    for n in range(2000):
        p = tmp_path / f"{n}.jsonl"
        p.write_bytes(b"")
        paths.append(str(p))
    fds = lock_files(tmp_path / "state", "target", paths)
    try:
        assert 0 < len(fds) <= SLOTS
        other = lock_files(tmp_path / "state", "other", paths[:1])  # its own slots
        assert len(other) == 1
        release(other)
    finally:
        release(fds)
