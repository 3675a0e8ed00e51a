"""`upload --follow` of a log an app rotates many times a second (RotatingFileHandler's
rename chain `app.jsonl` -> `app.jsonl.1` -> `app.jsonl.2` ...): renames land in the middle
of passes, between the look that takes a file's identity and the reads of it. What a pass
read must be credited to the file it was read from: every call shipped once, none lost.
Against `tracecli serve` behind the fault proxy, which counts each call id it forwarded."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from tests.support.faultproxy import FaultProxy
from tests.support.follow_kit import line, received, start_follower, stop, wait_for
from tests.support.uploadkit import diff_calls, gen_calls, read_back, tracecli_serve

ROTATIONS = 40
PER_FILE = 6  # calls written to a file before it is rotated
WRITE_GAP = 0.01  # seconds between two records
ROTATE_GAP = 0.02  # ...and after a rotation: ~10 rotations a second


def _rotate(app: Path, backups: int) -> None:
    """RotatingFileHandler.doRollover: each backup renamed one up, the file to `.1`."""
    for i in range(backups, 0, -1):
        src = app.with_name(f"app.jsonl.{i}")
        if src.exists():
            os.replace(src, app.with_name(f"app.jsonl.{i + 1}"))
    os.replace(app, app.with_name("app.jsonl.1"))


def test_a_log_rotated_many_times_a_second_ships_every_call_once(tmp_path: Path) -> None:
    calls = gen_calls(ROTATIONS * PER_FILE + 20, seed=91)
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.jsonl"
    app.write_bytes(b"".join(line("call", {**s, **e}) for s, e in calls[:20]))
    stop_writing = threading.Event()

    def writer() -> None:
        k = 20
        for n in range(ROTATIONS):
            for s, e in calls[k : k + PER_FILE]:
                with app.open("ab") as f:  # one record per write, as a logging handler
                    f.write(line("call", {**s, **e}))
                stop_writing.wait(WRITE_GAP)
            k += PER_FILE
            _rotate(app, n + 1)
            if stop_writing.wait(ROTATE_GAP):
                return

    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url) as proxy:
        proc = start_follower(tmp_path, proxy.url, logs, extra=("--flush-interval", "0.2"))
        try:
            wait_for(lambda: len(received(proxy)) == 20, 60, proc)
            t = threading.Thread(target=writer, daemon=True)
            t.start()
            t.join(120)
            with contextlib.suppress(AssertionError):  # what was shipped is looked at below
                wait_for(lambda: len(received(proxy)) >= len(calls), 20, proc)
        finally:
            stop_writing.set()
            code = stop(proc)
        missing = [s["id"] for s, _ in calls if proxy.sends(s["id"]) == 0]
        assert (code, proxy.duplicates(), len(missing)) == (0, 0, 0)
        assert diff_calls(calls, read_back(serve.url)) == []
