"""Worker processes end with the run that forked them, even when it is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie (a killed orphan nobody reaped yet is over)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork pools only on Linux")
def test_kill_9_of_an_upload_takes_its_workers_with_it(tmp_path: Path) -> None:
    # a big backlog on a pipe left open is read by a pass with workers (upload/stdin_live.py);
    # the run is killed while they work
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRACECLI_JOBS": "2"}
    env.pop("WF_TRACE_SERVER_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracecli", "upload", "-", "--db", str(tmp_path / "s.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
        env=env,
    )
    assert proc.stdin is not None
    t = "2026-01-01T00:00:0{}Z"
    proc.stdin.write(
        b"".join(
            b'{"type": "call", "id": "%s", "trace_id": "%s", "project_id": "acme/x", '
            b'"op_name": "op", "started_at": "%s", "ended_at": "%s", "inputs": {"q": %d}, '
            b'"output": "a"}\n'
            % (
                str(uuid.uuid4()).encode(),
                str(uuid.uuid4()).encode(),
                t.format(0).encode(),
                t.format(1).encode(),
                i,
            )
            for i in range(120_000)
        )
    )
    proc.stdin.flush()
    try:
        deadline = time.monotonic() + 60
        while len(kids := children(proc.pid)) < 2:
            assert time.monotonic() < deadline, "the worker pool never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while any(running(k) for k in kids):
            assert time.monotonic() < deadline, f"workers outlived the killed run: {kids}"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdin.close()


def test_tracecli_jobs_is_read_one_way_by_every_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variable means worker processes for validate and upload alike: 0 none, N that
    many, whatever each command's default; anything else is refused, never ignored."""
    from tracecli.diagnostics import UsageError
    from tracecli.inputs.workers import MAX_JOBS, worker_count
    from tracecli.upload import pool, validate

    for value, want in (("0", 0), ("1", 1), (" 3 ", 3), (str(MAX_JOBS), MAX_JOBS)):
        monkeypatch.setenv("TRACECLI_JOBS", value)
        assert worker_count(5) == want
        assert pool.default_jobs() == validate.default_jobs() == want
    monkeypatch.setenv("TRACECLI_JOBS", "")
    assert worker_count(5) == 5
    for bad in ("two", "-1", "1.5", str(MAX_JOBS + 1)):
        monkeypatch.setenv("TRACECLI_JOBS", bad)
        for default_jobs in (pool.default_jobs, validate.default_jobs):
            with pytest.raises(UsageError, match="TRACECLI_JOBS must be a whole number"):
                default_jobs()


@pytest.mark.parametrize("command", ["validate", "upload"])
def test_a_bad_tracecli_jobs_is_a_one_line_usage_error(tmp_path: Path, command: str) -> None:
    (tmp_path / "t.jsonl").write_text("")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRACECLI_JOBS": "lots"}
    env.pop("WF_TRACE_SERVER_URL", None)
    args = [sys.executable, "-m", "tracecli", command, "t.jsonl"]
    if command == "upload":
        args += ["--db", str(tmp_path / "s.db")]
    out = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "TRACECLI_JOBS" in lines[0] and "'lots'" in lines[0], out.stderr


def _half_an_answer() -> None:
    """In a worker: write the header of a long answer and never the rest, as a worker
    killed amid its answer leaves it."""
    import struct

    result_queue = sys._getframe(1).f_locals["result_queue"]  # (the executor's worker loop)
    result_queue._writer._send(struct.pack("!i", 1 << 19))
    time.sleep(60)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork pools only on Linux")
def test_a_pool_stopped_after_a_failure_is_over_even_amid_an_answer() -> None:
    """Ctrl-C of a big validate hung now and then at exit: a worker killed while writing
    its answer left the pool's thread reading the rest for ever."""
    from tracecli.inputs.workers import fork_pool, stop_pool

    pool = fork_pool(1)
    assert pool is not None
    pool.submit(_half_an_answer)
    time.sleep(0.5)  # the header read, the thread waits for the rest
    manager = pool._executor_manager_thread
    assert manager is not None and manager.is_alive()
    started = time.monotonic()
    stop_pool(pool, failed=True)
    assert not manager.is_alive()
    assert time.monotonic() - started < 4  # (not the 5 s join's timeout)
