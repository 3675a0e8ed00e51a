"""What `upload --follow` watches: files, directories and glob patterns, looked at again on
every poll so that new matching files (a rotated log, tomorrow's file) are picked up.

Polling (a `stat` per file per poll) rather than inotify: it works the same on network
filesystems and in containers, costs microseconds per file at a one-second interval, and
needs no dependency. A snapshot is the set of (path, device, inode, size, mtime) of the
matching files; the follow loop uploads again when it differs from the last one.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from typing import NamedTuple

from tracecli.inputs.reader import expand_paths

_GLOB_CHARS = frozenset("*?[")


class FileStamp(NamedTuple):
    """What a poll knows of one file: enough to tell growth, replacement and truncation."""

    path: str
    dev: int
    ino: int
    size: int
    mtime_ns: int


class Snapshot(NamedTuple):
    files: tuple[str, ...]  # the inputs, in the order given (patterns sorted)
    stamps: frozenset[FileStamp]

    @property
    def total_size(self) -> int:
        return sum(s.size for s in self.stamps)


def is_pattern(path: str) -> bool:
    return any(c in _GLOB_CHARS for c in path)


class Watcher:
    """The inputs named by `paths` (files, directories, quoted glob patterns), expanded on
    every `scan`. A named file that does not exist yet is not an error: it may appear."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = list(paths)

    def expand(self) -> list[str]:
        out: list[str] = []
        seen: set[str] = set()

        def add(items: Iterable[str]) -> None:
            for p in items:
                if p not in seen:
                    seen.add(p)
                    out.append(p)

        for p in self.paths:
            if is_pattern(p):
                matches = sorted(glob.glob(p, recursive=True))
                add(m for m in matches if os.path.isfile(m))
                add(expand_paths([m for m in matches if os.path.isdir(m)]))
            elif os.path.isdir(p):
                add(expand_paths([p]))
            elif os.path.isfile(p):
                add([p])
        return out

    def scan(self) -> Snapshot:
        files = self.expand()
        stamps: list[FileStamp] = []
        for f in files:
            try:
                st = os.stat(f)
            except OSError:  # gone between the listing and the stat: the next poll knows
                continue
            stamps.append(FileStamp(f, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        return Snapshot(tuple(s.path for s in stamps), frozenset(stamps))


def whole_lines_end(path: str, size: int, window: int = 1 << 20) -> int:
    """Where the file's last whole line ends, at or before `size`: a last line without its
    newline is still being written and waits for the next look. Reads at most `window`
    bytes from the end; a longer unfinished line is taken as it is (0 when none ends)."""
    if size <= 0:
        return size
    try:
        with open(path, "rb") as f:
            start = max(0, size - window)
            f.seek(start)
            tail = f.read(size - start)
    except OSError:
        return size
    if tail.endswith(b"\n"):
        return size
    cut = tail.rfind(b"\n")
    if cut >= 0:
        return start + cut + 1
    return 0 if start == 0 else size
