"""Files that `upload --follow` keeps following after a rotation took them out of its inputs.

A log rotated by rename gets a name that the inputs may not match (Python's
RotatingFileHandler's `app.jsonl.1`, TimedRotatingFileHandler's `app.jsonl.2026-12-07`,
logrotate's `app.jsonl-20261207`, none a trace file's suffix), and logrotate's copytruncate
copies the file to such a name before emptying it. The records written since the follow's
last look are then only in that file: without it they would never be shipped.

`RotatedAway.look` is given the inputs of each look and returns those files, where they
are now: a file that left the inputs is found in its folder by its device and inode (and
again when renamed on: `app.jsonl.1` -> `app.jsonl.2`); a file emptied in place, or whose
first bytes changed, is looked for in its folder as a copy (its first bytes as seen before,
at least its size). They are followed until a pass shipped them with no change for
`keep` seconds (`shipped`); the journal recognises each (by inode, or by content for a copy)
and finishes it where it was, so nothing is sent twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import time
from collections.abc import Iterable
from typing import NamedTuple

HEAD_BYTES = 4096  # the first bytes a copy must share with the file it was made of


class Stamp(NamedTuple):
    """What a look knows of one file: enough to tell growth, replacement and truncation
    (`watch.FileStamp`)."""

    path: str
    dev: int
    ino: int
    size: int
    mtime_ns: int


Key = tuple[int, int]  # (device, inode)


class Head(NamedTuple):
    """The first `length` bytes of a file, hashed; with the stamp they were read at."""

    length: int
    digest: str
    size: int
    mtime_ns: int


def _head(path: str, length: int) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read(length)).hexdigest()
    except OSError:
        return None


class RotatedAway:
    """The files rotated out of the inputs, followed for a while where they went."""

    def __init__(self, keep: float) -> None:
        self.keep = keep
        self._seen: dict[Key, Stamp] = {}  # the inputs of the last look
        self._heads: dict[Key, Head] = {}  # their first bytes, as last read
        self._away: dict[Key, str] = {}  # rotated away: where each was found last
        self._away_heads: dict[Key, Head] = {}  # ...and its first bytes when it left

    def look(self, inputs: Iterable[Stamp]) -> list[Stamp]:
        """The files rotated away, where they are now, oldest first."""
        now = {(s.dev, s.ino): s for s in inputs}
        for key, old in self._seen.items():
            head = self._heads.get(key)
            if key not in now and head is not None:  # renamed (or deleted): found by inode
                self._away.setdefault(key, old.path)
                self._away_heads.setdefault(key, head)
        heads: dict[Key, Head] = {}
        for key, s in now.items():
            head = self._heads.get(key)
            if head is not None and (s.size, s.mtime_ns) == (head.size, head.mtime_ns):
                heads[key] = head
                continue
            new = self._read_head(s)
            if head is not None and _rewritten(s, head, new):
                # emptied in place (copytruncate), or rewritten: its copy, if one was made
                copy = _find_copy(s.path, head, set(now) | set(self._away))
                if copy is not None:
                    self._away[(copy.dev, copy.ino)] = copy.path
                    self._away_heads[(copy.dev, copy.ino)] = head
            if new is not None:
                heads[key] = new
        self._seen, self._heads = now, heads
        out: list[Stamp] = []
        for key, path in list(self._away.items()):
            found = None if key in now else locate(key, path)
            head = self._away_heads[key]
            if found is None or _head(found.path, head.length) != head.digest:
                # an input again, or gone (deleted, compressed; its inode reused since)
                self._forget(key)
                continue
            self._away[key] = found.path
            out.append(found)
        out.sort(key=lambda s: s.mtime_ns)
        return out

    def _read_head(self, s: Stamp) -> Head | None:
        length = min(s.size, HEAD_BYTES)
        digest = _head(s.path, length)
        return None if digest is None else Head(length, digest, s.size, s.mtime_ns)

    def shipped(self, stamps: Iterable[Stamp]) -> None:
        """A pass shipped the files of `stamps`: those rotated away that had not changed
        for `keep` seconds then are finished, and no longer followed."""
        old = time.time_ns() - int(self.keep * 1e9)
        for s in stamps:
            key = (s.dev, s.ino)
            if self._away.get(key) == s.path and s.mtime_ns < old:
                self._forget(key)

    def _forget(self, key: Key) -> None:
        del self._away[key]
        del self._away_heads[key]


def _rewritten(s: Stamp, head: Head, new: Head | None) -> bool:
    """Whether the file is no longer what it was (`head`): shorter, or other first bytes."""
    if s.size < head.size:
        return True
    if new is not None and new.length == head.length:
        return new.digest != head.digest
    digest = _head(s.path, head.length)
    return digest is not None and digest != head.digest


def _stamp(path: str) -> Stamp | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return Stamp(path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _folder(path: str) -> list[str]:
    with contextlib.suppress(OSError), os.scandir(os.path.dirname(path) or ".") as entries:
        return [e.path for e in entries]
    return []


def locate(key: Key, path: str) -> Stamp | None:
    """The regular file of device and inode `key`: at `path`, or under another name in
    the same folder (renamed again); None when gone."""
    s = _stamp(path)
    if s is not None and (s.dev, s.ino) == key:
        return s
    for p in _folder(path):
        s = _stamp(p) if p != path else None
        if s is not None and (s.dev, s.ino) == key:
            return s
    return None


def _find_copy(path: str, head: Head, known: set[Key]) -> Stamp | None:
    """The copy of the file at `path` as it was (`head`) in its folder: another file, at
    least as long as it was then, with the same first bytes (the newest if several)."""
    best: Stamp | None = None
    for p in _folder(path):
        s = _stamp(p)
        if s is None or (s.dev, s.ino) in known or s.size < head.size:
            continue
        if best is not None and s.mtime_ns <= best.mtime_ns:
            continue
        if _head(p, head.length) == head.digest:
            best = s
    return best
