"""Helpers of the `upload --follow` tests: a record line, a follower process started and
stopped, a bounded wait, and what the fault proxy forwarded per call id."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson

from tests.support.faultproxy import FaultProxy
from tests.support.uploadkit import cli_env, tracecli

CHUNK = 200
CONCURRENCY = 4


def line(kind: str, body: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": kind, **body}) + b"\n"


def start_follower(
    tmp_path: Path, url: str, *paths: str | Path, n: int = 0, extra: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    args = ["upload", "--follow", *map(str, paths), "--server", url, "--format", "json"]
    args += ["--chunk-size", str(CHUNK), "--concurrency", str(CONCURRENCY), *extra]
    return subprocess.Popen(
        tracecli(*args),
        stdout=(tmp_path / f"follow{n}.out").open("wb"),
        stderr=(tmp_path / f"follow{n}.err").open("wb"),
        stdin=subprocess.DEVNULL,
        env=cli_env(),
        cwd=tmp_path,
    )


def wait_for(predicate: Any, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None:
            assert proc.poll() is None, f"the follower ended (exit {proc.returncode})"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()


def received(proxy: FaultProxy) -> set[str]:
    with proxy._lock:
        return {cid for (_, cid) in proxy.forwarded_ids}
