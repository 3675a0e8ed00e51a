"""One upload at a time per input file and target: two tracecli processes over the same
file (two followers, a cron run that overlaps the next one) would both read what the
journal says is not stored yet and both send it. Weave's server stores a call once
whatever, but Freeplay records each request: calls were recorded twice.

A run holds an exclusive `flock` on its files' lock files (one of SLOTS per target that
each file falls in) from before it asks the journal what is stored until the journal is
settled and closed; another run over the same
file waits for it, then reads the journal as the first left it and sends only the rest.
A follow holds them for one pass at a time, so two followers take turns. Where `fcntl`
does not exist (Windows) nothing is locked."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_DIR = "locks"
SLOTS = 64  # lock files per target (see `_slot`)
WAIT_STEP = 0.05  # seconds between two tries of a lock another run holds


def lock_files(
    folder: Path, target: str, paths: Iterable[str], stop: Callable[[], bool] = lambda: False
) -> list[int]:
    """Take the locks of `paths` for `target` (waiting for another run that holds one),
    in a fixed order so that two runs over the same files cannot deadlock; their file
    descriptors, for `release`. Files that are not regular files are not locked. Stops
    waiting when `stop()` is true (Ctrl-C, SIGTERM: the run then reads nothing)."""
    if fcntl is None:
        return []
    keys = sorted({_slot(target, p) for p in paths if p != "-" and os.path.isfile(p)})
    if not keys:
        return []
    where = folder / LOCK_DIR
    where.mkdir(mode=0o700, parents=True, exist_ok=True)
    fds: list[int] = []
    try:
        for key in keys:
            fd = os.open(where / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            fds.append(fd)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:  # another run holds it: wait for its turn to end
                    if stop():
                        return fds
                    time.sleep(WAIT_STEP)
    except BaseException:
        release(fds)
        raise
    return fds


def _slot(target: str, path: str) -> str:
    """The lock file of a file for a target: one of SLOTS per target, so that a run over
    thousands of files holds at most SLOTS descriptors (two runs over different files of
    one slot take turns too, which costs time, never a record)."""
    digest = hashlib.sha256(
        target.encode() + b"\0" + os.fsencode(os.path.realpath(path))  # any name
    ).digest()
    bucket = int.from_bytes(digest[:4], "big") % SLOTS
    return f"{hashlib.sha256(target.encode()).hexdigest()[:24]}-{bucket:02d}"


def release(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)  # (closing the descriptor releases its flock)
    fds.clear()
