"""Join each call's start with its end, across all input files, in bounded memory.

A start waits here until its end is read (or the end waits for its start, when files come
in the other order). Most calls close within a few records, but a writer that buffers ends
(or `gen_traces.py --lag 100000`) can hold a hundred thousand calls open at once; past a
byte budget the oldest open halves move to a temporary SQLite file and are looked up there
when their other half arrives.

An open half is kept as one bytes object (`pack`, a `RecordCodec`): its fields and its
encoded call body. As Python objects (a Half, its strings, its bodies) a hundred thousand
of them would cost several times their size and, living long among the reading loop's
short-lived objects, pin memory pools that the loop then cannot give back.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from tracecli.packing import RecordCodec

DEFAULT_MEMORY_BUDGET = 48 * 1024 * 1024
_SLOT = 120  # what a dict entry and its key string cost beyond the packed half, roughly


@dataclass(slots=True)
class Half:
    """One record's contribution to a call, encoded once.

    kind: "start", "end" or "complete" (a record that is a whole call).
    body: the call body as sent (for an end: its fields other than END_FIELDS).
    tail: an end's END_FIELDS as an encoded object (what it adds to a start); b"" otherwise.
    clash: a start that holds an end field (the slow merge path in encode); for an end,
        fields that a completed call drops (kept for the rejected file).
    src/line: which input file (index) and line it came from, for acks and rejections.
    done: acknowledged by the server in an earlier run (resume): paired, never re-sent.
    orig: the project_id as read when --project replaced it, else None (rejected file).
    """

    kind: str
    call_id: str
    project: str
    body: bytes
    tail: bytes
    clash: bool
    src: int
    line: int
    shape: str
    done: bool = False
    orig: str | None = None

    def size(self) -> int:
        return len(self.body) + len(self.tail) + _SLOT


_KINDS = ("start", "end", "complete")
_SHAPES = ("flat", "batch", "request", "complete")
_KIND_CODE = {k: i for i, k in enumerate(_KINDS)}
_SHAPE_CODE = {s: i for i, s in enumerate(_SHAPES)}
# kind (first: `blob[0]`), shape, flags (1 clash, 2 done, 4 has orig), src, line; then
# project, call id, body, tail, orig
_HALF = RecordCodec("BBBIQ", 5)
_pack_half = _HALF.pack
_unpack_half = _HALF.unpack


def pack(h: Half) -> bytes:
    flags = int(h.clash) | (2 if h.done else 0) | (4 if h.orig is not None else 0)
    return _pack_half(
        _KIND_CODE[h.kind], _SHAPE_CODE[h.shape], flags, h.src, h.line,
        h.project.encode(), h.call_id.encode(), h.body, h.tail,
        h.orig.encode() if h.orig is not None else b"",
    )  # fmt: skip


def unpack(blob: bytes) -> Half:
    kind, shape, flags, src, line, project, cid, body, tail, orig = _unpack_half(blob)
    # positional, in Half's field order: keywords would double the cost (once per call)
    return Half(
        _KINDS[kind], cid.decode(), project.decode(), body, tail, bool(flags & 1), src, line,
        _SHAPES[shape], bool(flags & 2), orig.decode() if flags & 4 else None,
    )  # fmt: skip


DUPLICATE: Final = object()  # `Pairer.match` result: an open half of the same kind and id


class Pairer:
    """Open halves by (project, call id): in a dict up to a byte budget, then on disk."""

    def __init__(
        self, memory_budget: int = DEFAULT_MEMORY_BUDGET, spill_dir: str | None = None
    ) -> None:
        self.memory_budget = memory_budget
        self._spill_dir = spill_dir
        self._mem: dict[str, bytes] = {}
        self._mem_bytes = 0
        self._db: sqlite3.Connection | None = None
        self._db_path: str | None = None
        self._on_disk = 0
        self._disk_hashes: dict[int, int] = {}  # hash(key) → halves on disk: skips most lookups
        self.spilled = 0  # halves ever moved to disk
        self.peak_open = 0

    @property
    def open_count(self) -> int:
        return len(self._mem) + self._on_disk

    def match(self, half: Half) -> Half | object | None:
        """The other half of `half`'s call, removed from the open set; or None, and `half`
        is kept open until its other half comes; or DUPLICATE when the same kind is open
        already (the first one stays; the caller reports the second)."""
        key = half.project + "\x00" + half.call_id
        blob = self._mem.pop(key, None)
        if blob is not None:
            self._mem_bytes -= len(blob) + _SLOT
        elif self._on_disk and hash(key) in self._disk_hashes:
            blob = self._take_from_disk(key)
        if blob is not None:
            if _KINDS[blob[0]] == half.kind:
                self._put(key, blob)
                return DUPLICATE
            return unpack(blob)
        self._put(key, pack(half))
        n = len(self._mem) + self._on_disk
        if n > self.peak_open:
            self.peak_open = n
        return None

    def _put(self, key: str, blob: bytes) -> None:
        self._mem[key] = blob
        self._mem_bytes += len(blob) + _SLOT
        if self._mem_bytes > self.memory_budget:
            self._spill()

    def _spill(self) -> None:
        """Move the oldest open halves (dicts keep insertion order) to disk, down to half
        the budget: the calls open longest are the likeliest to stay open longer still."""
        db = self._open_db()
        target = self.memory_budget // 2
        rows = []
        mem = self._mem
        hashes = self._disk_hashes
        it = iter(list(mem))
        while self._mem_bytes > target:
            key = next(it)
            blob = mem.pop(key)
            self._mem_bytes -= len(blob) + _SLOT
            hk = hash(key)
            hashes[hk] = hashes.get(hk, 0) + 1
            rows.append((key, blob))
        with db:
            db.executemany("INSERT OR REPLACE INTO open VALUES (?, ?)", rows)
        self._on_disk += len(rows)
        self.spilled += len(rows)

    def _open_db(self) -> sqlite3.Connection:
        if self._db is None:
            fd, path = tempfile.mkstemp(
                prefix="tracecli-pairing-", suffix=".db", dir=self._spill_dir
            )
            os.close(fd)
            self._db_path = path
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
            db.execute("PRAGMA cache_size=-8000")  # 8 MB: the point is not to hold it all
            db.execute("CREATE TABLE open (key TEXT PRIMARY KEY, blob BLOB)")
            db.isolation_level = "DEFERRED"
            self._db = db
        return self._db

    def _take_from_disk(self, key: str) -> bytes | None:
        assert self._db is not None
        # No commit per delete: the open transaction is this connection's own (reads see
        # it), and a commit per matched call would cost more than the lookup itself.
        row = self._db.execute("DELETE FROM open WHERE key = ? RETURNING blob", (key,)).fetchone()
        if row is None:
            return None
        self._on_disk -= 1
        hk = hash(key)
        left = self._disk_hashes.pop(hk, 1) - 1
        if left > 0:  # another key with the same hash is still on disk
            self._disk_hashes[hk] = left
        return bytes(row[0])

    def leftovers(self) -> Iterator[Half]:
        """Every half still open (no other half was read), emptying the set: memory first,
        then disk in the order they were spilled."""
        mem, self._mem, self._mem_bytes = self._mem, {}, 0
        for blob in mem.values():
            yield unpack(blob)
        if self._db is not None and self._on_disk:
            cur = self._db.execute("SELECT blob FROM open ORDER BY rowid")
            while True:
                rows = cur.fetchmany(1000)
                if not rows:
                    break
                for (blob,) in rows:
                    yield unpack(bytes(blob))
            self._on_disk = 0
            self._disk_hashes.clear()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._db_path is not None:
            for suffix in ("", "-journal", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._db_path + suffix)
            self._db_path = None

    def __enter__(self) -> Pairer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
