"""Set-up of the forked worker processes that parse and check blocks for validate and upload.

A worker must not outlive the run that forked it. A pool's workers wait on a pipe that their
siblings also hold open, so when the reading process is killed (`kill -9`, the OOM killer,
a CI job cancelled) they never see end-of-file and would sleep forever, each holding its
share of memory. On Linux the kernel can kill them with their parent (PR_SET_PDEATHSIG).
Ctrl-C is the reading process's to handle: it stops the run and then the workers.
"""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1


def init_worker(parent: int) -> None:
    """The pool's initializer; `parent` is the reading process's pid, taken before the fork."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux's libc: the pipe's end still stops them
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
