"""`tracecli tail --follow --format json` as a child process whose lines a test reads with
a timeout: a follow never ends on its own, so its stdout is drained by a thread into a
queue."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading

from tests.support.servers import ROOT

FOLLOW_JSON = ("--follow", "--interval", "0.2", "--format", "json")


def follow_json(
    args: list[str], *, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], queue.Queue[bytes]]:
    """Start `tracecli tail ARGS --follow --interval 0.2 --format json`; the process and
    the queue its stdout lines arrive in."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracecli", "tail", *args, *FOLLOW_JSON],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
    )
    out: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: [out.put(x) for x in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    return proc, out
