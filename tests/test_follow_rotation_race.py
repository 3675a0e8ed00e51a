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

import pytest

from tests.support.faultproxy import FaultProxy
from tests.support.follow_kit import line, received, start_follower, stop, wait_for
from tests.support.uploadkit import diff_calls, gen_calls, read_back, tracecli_serve
from tracecli.inputs.blocks import plan_ranges, read_range
from tracecli.inputs.same_file import FileKey, Replaced
from tracecli.journal.resume import Journal
from tracecli.upload.blocks import prepare_range

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
        # a pattern that matches the rotated files too: each is an input, under whatever name
        pattern = str(logs / "app.jsonl*")
        proc = start_follower(tmp_path, proxy.url, pattern, extra=("--flush-interval", "0.2"))
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


def test_a_read_of_a_name_that_now_holds_another_file_reads_nothing(tmp_path: Path) -> None:
    """The reads of a pass are of the file whose identity it took: after a rename, the
    name's new file is `Replaced` (nothing read, nothing to credit), not read instead."""
    app = tmp_path / "app.jsonl"
    app.write_bytes(b'{"a": 1}\n')
    st = os.stat(app)
    key = FileKey(st.st_dev, st.st_ino)
    assert read_range(str(app), 0, 9, key) == b'{"a": 1}\n'
    os.replace(app, tmp_path / "app.jsonl.1")
    app.write_bytes(b'{"b": 2}\n{"c": 3}\n')
    with pytest.raises(Replaced):
        read_range(str(app), 0, 9, key)
    with pytest.raises(Replaced):
        plan_ranges(str(app), 18, 4, 0, key)
    assert prepare_range(str(app), 0, 18, None, key).lines == 0
    assert prepare_range(str(app), 0, 18, None).lines == 2  # no identity: by name


def test_a_file_renamed_during_a_run_is_not_marked_finished(tmp_path: Path) -> None:
    """`done` after a run whose file was renamed meanwhile (maybe not read to its end):
    not finished; the next run, meeting it under its new name, reads it again from where
    it was stored."""
    app = tmp_path / "app.jsonl"
    app.write_bytes(b'{"a": 1}\n')
    journal = Journal.open(server="http://x", project=None, db_path=tmp_path / "j.db")
    try:
        assert journal.file(str(app)).ino == os.stat(app).st_ino
        os.replace(app, tmp_path / "app.jsonl.1")
        app.write_bytes(b'{"b": 2}\n')
        journal.done(str(app))
    finally:
        journal.close()
    again = Journal.open(server="http://x", project=None, db_path=tmp_path / "j.db")
    try:
        assert again.file(str(tmp_path / "app.jsonl.1")).done is False
    finally:
        again.close()
