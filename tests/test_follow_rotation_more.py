"""`upload --follow` of logs rotated the way apps and logrotate rotate them: Python's
RotatingFileHandler (`app.jsonl` renamed `app.jsonl.1`, a name no input matches), a file
gone for a moment between the rename and the new file. Against `tracecli serve` behind the
fault proxy, which counts what it forwarded per call id; every call read back."""

from __future__ import annotations

import gzip
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.faultproxy import FaultProxy, Faults
from tests.support.follow_kit import line, received, start_follower, stop, wait_for
from tests.support.uploadkit import diff_calls, gen_calls, read_back, run_cli, tracecli_serve
from tracecli.inputs.rotated import RotatedAway
from tracecli.inputs.watch import FileStamp
from tracecli.upload.api import upload
from tracecli.upload.report import UploadOptions
from tracecli.upload.run_inputs import InputState

Calls = list[tuple[dict[str, Any], dict[str, Any]]]


def whole(calls: Calls) -> bytes:
    return b"".join(line("call", {**s, **e}) for s, e in calls)


def _err(tmp_path: Path) -> str:
    return (tmp_path / "follow0.err").read_text()[-3000:]


def _rotations(
    tmp_path: Path, calls: Calls, given: str, steps: list[Callable[[Path], int]]
) -> None:
    """Follow `logs/app.jsonl` (the file, or its folder) written with the first 20 calls,
    looking every 1.5 s without events (so that each step's writes and rotation land
    between two looks); each step writes and rotates, and says how many calls are then
    written. Every call must be shipped once, and stored as written."""
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.jsonl"
    app.write_bytes(whole(calls[:20]))
    followed = app if given == "file" else logs
    extra = ("--poll", "--flush-interval", "1.5")
    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url) as proxy:
        proc = start_follower(tmp_path, proxy.url, followed, extra=extra)
        try:
            wait_for(lambda: len(received(proxy)) == 20, 60, proc)
            for step in steps:
                n = step(app)
                wait_for(lambda n=n: len(received(proxy)) >= n, 30, proc)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}: {len(received(proxy))} shipped\n{_err(tmp_path)}"
            ) from exc
        finally:
            code = stop(proc)
        assert code == 0, _err(tmp_path)
        assert proxy.duplicates() == 0
        assert diff_calls(calls, read_back(serve.url)) == []


@pytest.mark.parametrize("given", ["file", "folder"])
def test_records_written_just_before_a_rename_to_app_jsonl_1_are_shipped(
    tmp_path: Path, given: str
) -> None:
    """RotatingFileHandler: the last records go to `app.jsonl`, which is then renamed
    `app.jsonl.1` (then `.2`) before the follow looked again. Neither name is an input
    (not the named file; not a trace file's suffix in a folder): the old file is found in
    its folder by its device and inode, and finished."""
    calls = gen_calls(80, seed=81)

    def first(app: Path) -> int:
        with app.open("ab") as f:
            f.write(whole(calls[20:30]))
        app.rename(app.with_name("app.jsonl.1"))
        app.write_bytes(whole(calls[30:50]))
        return 50

    def second(app: Path) -> int:  # .1 -> .2, the file -> .1
        with app.open("ab") as f:
            f.write(whole(calls[50:60]))
        app.with_name("app.jsonl.1").rename(app.with_name("app.jsonl.2"))
        app.rename(app.with_name("app.jsonl.1"))
        app.write_bytes(whole(calls[60:80]))
        return 80

    _rotations(tmp_path, calls, given, [first, second])


@pytest.mark.parametrize("given", ["file", "folder"])
def test_records_written_just_before_a_copytruncate_to_app_jsonl_1_are_shipped(
    tmp_path: Path, given: str
) -> None:
    """logrotate's copytruncate: `app.jsonl` copied to `app.jsonl.1` (no input matches the
    name), then emptied in place. The records appended since the last look are only in the
    copy: it is found in the folder by its first bytes and finished, each record once."""
    calls = gen_calls(50, seed=82)

    def rotate(app: Path) -> int:
        with app.open("ab") as f:
            f.write(whole(calls[20:30]))
        shutil.copyfile(app, app.with_name("app.jsonl.1"))
        with app.open("r+b") as f:
            f.truncate(0)
        with app.open("ab") as f:
            f.write(whole(calls[30:50]))
        return 50

    _rotations(tmp_path, calls, given, [rotate])


def _shipped(out: Path) -> int:
    """calls_shipped of the last whole status line a follower wrote (0 before the first)."""
    lines = out.read_bytes().split(b"\n")[:-1]  # the last piece may be half-written
    shipped = [orjson.loads(x).get("calls_shipped", 0) for x in lines if x.startswith(b"{")]
    return shipped[-1] if shipped else 0


@pytest.mark.parametrize("how", ["cron", "follow-killed"])
def test_records_written_before_a_rename_between_two_runs_are_shipped(
    tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app appends, then renames `app.jsonl` to `app.jsonl.1` while no tracecli runs
    (between two cron runs; a follow killed with -9 and started again). The next run
    finds the old file by its inode and sends what it had not stored, each record once."""
    calls = gen_calls(50, seed=84)
    monkeypatch.setenv("TRACECLI_FOLLOW_STATUS_EVERY", "0.2")  # see _shipped
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.jsonl"
    app.write_bytes(whole(calls[:20]))
    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url) as proxy:

        def run(n: int) -> None:
            if how == "cron":
                r = run_cli("upload", str(app), "--server", proxy.url, cwd=tmp_path)
                assert r.returncode == 0, r.stderr
                return
            proc = start_follower(tmp_path, proxy.url, app, n=n)
            out = tmp_path / f"follow{n}.out"
            try:
                wait_for(lambda: len(received(proxy)) >= 20 * (n + 1) + 10 * n, 60, proc)
                # killed once its journal holds what was stored (a kill between the
                # server's answer and the journal's save sends those calls again: Weave
                # keeps one of each, but the test counts sends)
                if n == 0:
                    wait_for(lambda: _shipped(out) >= 20, 60, proc)
            finally:
                proc.kill()
                proc.wait()

        run(0)
        with app.open("ab") as f:
            f.write(whole(calls[20:30]))
        app.rename(logs / "app.jsonl.1")
        app.write_bytes(whole(calls[30:50]))
        run(1)
        assert len(received(proxy)) == 50
        assert proxy.duplicates() == 0
        assert diff_calls(calls, read_back(serve.url)) == []


def test_a_rotated_file_compressed_afterwards_is_not_sent_again(tmp_path: Path) -> None:
    """Cron runs over a folder: `app-1.jsonl` (a rotated file, uploaded) is then gzipped
    (`app-1.jsonl.gz`, the plain file deleted), with a few records more than the last run
    saw. The next run sends only those: the gzip file is known by its content."""
    calls = gen_calls(40, seed=83)
    logs = tmp_path / "logs"
    logs.mkdir()
    rotated = logs / "app-1.jsonl"
    rotated.write_bytes(whole(calls[:20]))
    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url) as proxy:

        def run() -> None:
            r = run_cli("upload", str(logs), "--server", proxy.url, cwd=tmp_path)
            assert r.returncode == 0, r.stderr

        run()
        with rotated.open("ab") as f:
            f.write(whole(calls[20:25]))
        with rotated.open("rb") as f, gzip.open(logs / "app-1.jsonl.gz", "wb") as g:
            g.write(f.read())
        rotated.unlink()
        (logs / "app.jsonl").write_bytes(whole(calls[25:]))
        run()
        assert len(received(proxy)) == 40
        assert proxy.duplicates() == 0
        run()  # and nothing again
        assert proxy.duplicates() == 0
        assert diff_calls(calls, read_back(serve.url)) == []


def test_a_file_gone_between_the_look_and_the_pass_is_no_crash(tmp_path: Path) -> None:
    """Between a rotation's rename and the new file's creation the followed name is not
    there: a pass over it reads nothing (the next look knows), where it stopped the follow
    with a traceback (FileNotFoundError) or "no such file" (exit 2)."""
    gone = str(tmp_path / "app.jsonl")
    opts = UploadOptions(
        db=tmp_path / "store.db",
        follow=True,
        rejected=tmp_path / "rejected.jsonl",
        journal_path=tmp_path / "journal.sqlite3",
    )
    report = upload([gone], opts)
    assert (report.records, report.uploaded, report.errors) == (0, 0, 0)
    state = InputState.empty(1)
    assert state.look([gone], None, follow=True) == [False]
    assert state.sizes == [0]


def _stamps(*paths: Path) -> list[FileStamp]:
    out = []
    for p in paths:
        st = p.stat()
        out.append(FileStamp(str(p), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return out


def test_a_file_renamed_away_is_followed_where_it_goes_until_shipped_and_quiet(
    tmp_path: Path,
) -> None:
    app, one, two = tmp_path / "app.jsonl", tmp_path / "app.jsonl.1", tmp_path / "app.jsonl.2"
    app.write_bytes(b'{"a": 1}\n')
    (tmp_path / "other.log").write_bytes(b'{"a": 1}\n')  # same bytes, never an input
    rotated = RotatedAway(keep=0.0)
    assert rotated.look(_stamps(app)) == []
    app.rename(one)
    app.write_bytes(b'{"b": 2}\n')
    assert [s.path for s in rotated.look(_stamps(app))] == [str(one)]
    one.rename(two)  # renamed on: found again by its inode
    away = rotated.look(_stamps(app))
    assert [s.path for s in away] == [str(two)]
    rotated.shipped(away)  # shipped, and quiet for keep (0 s): finished
    assert rotated.look(_stamps(app)) == []
    two.unlink()
    assert rotated.look(_stamps(app)) == []


def _statuses(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "follow0.out").read_bytes().split(b"\n")[:-1]
    return [orjson.loads(x) for x in lines]


def test_records_given_up_are_said_in_the_status_and_sent_again_without_a_new_write(
    tmp_path: Path,
) -> None:
    """A request the server failed until --max-retry-time ran out (too few to stop the pass):
    the follow status says why (`last_error`), and a later pass sends its records once the
    server answers again, though the app writes nothing more (they waited for an append)."""
    calls = gen_calls(5, seed=85)
    app = tmp_path / "app.jsonl"
    app.write_bytes(whole(calls))
    extra = ("--max-retry-time", "1", "--concurrency", "1")
    with (
        tracecli_serve(tmp_path / "serve") as serve,
        FaultProxy(serve.url, Faults(p_5xx=1.0)) as proxy,
    ):
        proc = start_follower(tmp_path, proxy.url, app, extra=extra)
        try:

            def said() -> bool:
                return any(
                    "failed a request" in (s.get("last_error") or "") for s in _statuses(tmp_path)
                )

            wait_for(said, 60, proc)
            proxy.configure(p_5xx=0.0)
            wait_for(lambda: len(received(proxy)) == 5, 60, proc)
        finally:
            code = stop(proc)
        assert code == 0, _err(tmp_path)
        assert proxy.duplicates() == 0
        assert diff_calls(calls, read_back(serve.url)) == []


def test_an_end_read_again_after_an_open_start_is_not_said_to_lack_its_start(
    tmp_path: Path,
) -> None:
    """An interleaved log (two starts, the first one's end, later the second's): the
    second start keeps the resume point before it, so the next pass reads the first one's
    end again, stored whole with its start by an earlier pass. No "the start of this call
    is not in the inputs" for it: that call is stored, whole and right."""
    calls = gen_calls(2, seed=89)
    app = tmp_path / "app.jsonl"
    app.write_bytes(line("start", calls[0][0]) + line("start", calls[1][0]))
    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url) as proxy:
        proc = start_follower(tmp_path, proxy.url, app, extra=("--pair-wait", "20"))
        try:
            time.sleep(1.5)
            with app.open("ab") as f:
                f.write(line("end", calls[0][1]))
            wait_for(lambda: len(received(proxy)) == 1, 30, proc)
            time.sleep(1.0)
            with app.open("ab") as f:
                f.write(line("end", calls[1][1]))
            wait_for(lambda: len(received(proxy)) == 2, 30, proc)
        finally:
            code = stop(proc)
        assert code == 0, _err(tmp_path)
        assert proxy.duplicates() == 0
        assert diff_calls(calls, read_back(serve.url)) == []
    assert "start of this call is not in the inputs" not in _err(tmp_path)
