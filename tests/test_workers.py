"""Worker processes end with the run that forked them, even when it is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork pools only on Linux")
def test_kill_9_of_an_upload_takes_its_workers_with_it(tmp_path: Path) -> None:
    # stdin counts as a big input, so the pool is forked at once; the run then waits on it
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
    try:
        deadline = time.monotonic() + 30
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
        assert proc.stdin is not None
        proc.stdin.close()
