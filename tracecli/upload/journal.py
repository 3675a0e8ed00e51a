"""Resume state: which lines of each input file the server has acknowledged.

A long upload must survive Ctrl-C, a crash or `kill -9` without re-sending everything (and
without losing anything). After each acknowledged request the caller records the input
lines it carried; the next run with the same files, server and project skips them.

Design choices:
- One SQLite database in the user state directory, WAL mode, one transaction per `ack`:
  a write is atomic and durable once `ack` returns, so `kill -9` at any moment loses at most
  the acknowledgements of the requests in flight (whose calls are then sent again: harmless,
  the server upserts by call id).
- Acks are line numbers kept as a bitmap in blocks of 8,192 lines (1 KiB each), so a file of
  millions of lines costs a few hundred KiB, and an ack rewrites only the blocks it touches.
- A file is known by its identity (real path, size, mtime, SHA-256 of its first 64 KiB)
  *and* the target (server URL without credentials, hashed, plus the project override). If
  the identity changed, old acks are void (line numbers may mean other records now): the
  file starts over and `FileState.changed` tells the caller to say so.
- Only lines the server stored are acked; rejected records are not, so every run finds the
  rejects again and the rejected-records file is always complete for the files it read.
- Nothing secret is stored: the URL is hashed after its userinfo is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tracecli.config.paths import state_dir
from tracecli.config.private_db import open_private_db
from tracecli.diagnostics import UsageError
from tracecli.targets.redact import strip_userinfo

BLOCK_LINES = 1 << 13  # lines per stored bitmap block (1 KiB: an ack rewrites little)
HEAD_BYTES = 64 * 1024
KEEP_DAYS = 90  # entries untouched for this long are pruned on open
SCHEMA_VERSION = 1
DB_NAME = "journal.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id        INTEGER PRIMARY KEY,
    target    TEXT NOT NULL,
    path      TEXT NOT NULL,
    size      INTEGER NOT NULL,
    mtime_ns  INTEGER NOT NULL,
    head      TEXT NOT NULL,
    acked     INTEGER NOT NULL DEFAULT 0,
    done      INTEGER NOT NULL DEFAULT 0,
    updated   REAL NOT NULL,
    UNIQUE (target, path)
);
CREATE TABLE IF NOT EXISTS acks (
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    block   INTEGER NOT NULL,
    bits    BLOB NOT NULL,
    PRIMARY KEY (file_id, block)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notes (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL,
    updated REAL NOT NULL
);
"""


class AckSet:
    """A compact set of line numbers (a growable bitmap): `line in acks`, `len(acks)`."""

    __slots__ = ("_bits", "_count")

    def __init__(self) -> None:
        self._bits = bytearray()
        self._count = 0

    def __contains__(self, line: object) -> bool:
        if not isinstance(line, int) or line < 0:
            return False
        i = line >> 3
        return i < len(self._bits) and bool(self._bits[i] & (1 << (line & 7)))

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[int]:
        for i, byte in enumerate(self._bits):
            if byte:
                for bit in range(8):
                    if byte & (1 << bit):
                        yield (i << 3) | bit

    def __repr__(self) -> str:
        return f"AckSet({self._count} lines)"

    def add(self, lines: Iterable[int]) -> set[int]:
        """Add lines; return the blocks whose bits changed."""
        touched: set[int] = set()
        bits = self._bits
        for line in lines:
            if line < 0:
                raise ValueError(f"line numbers are non-negative, got {line}")
            i, mask = line >> 3, 1 << (line & 7)
            if i >= len(bits):
                bits.extend(bytes(max(i + 1 - len(bits), len(bits) // 2)))
            if not bits[i] & mask:
                bits[i] |= mask
                self._count += 1
                touched.add(line // BLOCK_LINES)
        return touched

    def block(self, n: int) -> bytes:
        size = BLOCK_LINES // 8
        return bytes(self._bits[n * size : (n + 1) * size]).rstrip(b"\0")

    def load_block(self, n: int, data: bytes) -> None:
        size = BLOCK_LINES // 8
        start = n * size
        if len(self._bits) < start + len(data):
            self._bits.extend(bytes(start + len(data) - len(self._bits)))
        old = int.from_bytes(self._bits[start : start + len(data)], "little").bit_count()
        self._bits[start : start + len(data)] = data
        self._count += int.from_bytes(data, "little").bit_count() - old


@dataclass(frozen=True, slots=True)
class FileState:
    """What the journal knew about one input file when the run started."""

    path: str  # as given by the user
    journaled: bool  # False for stdin and other non-regular files: nothing is remembered
    changed: bool  # a previous run saw different content under this path: starting over
    acked: int  # lines already acknowledged (skipped by this run)
    done: bool  # a previous run finished this file


@dataclass(slots=True)
class _Entry:
    id: int
    acks: AckSet
    state: FileState | None = None


@dataclass(frozen=True, slots=True)
class Identity:
    path: str
    size: int
    mtime_ns: int
    head: str


def identity(path: str | os.PathLike[str]) -> Identity | None:
    """The file's identity, or None when it is not a regular file (stdin, a pipe)."""
    if str(path) == "-":
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            h.update(f.read(HEAD_BYTES))
    except OSError as exc:  # unreadable (permissions, an I/O error): one line, not a traceback
        raise UsageError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    return Identity(os.path.realpath(path), st.st_size, st.st_mtime_ns, h.hexdigest())


def target_key(server: str, project: str | None) -> str:
    """The target's fingerprint: no URL credentials, no key, ever."""
    url = strip_userinfo(server.strip()).rstrip("/")
    scheme, sep, rest = url.partition("://")
    if sep:
        host, slash, tail = rest.partition("/")
        url = f"{scheme.lower()}://{host.lower()}{slash}{tail}"
    return hashlib.sha256(f"{url}\n{project or ''}".encode()).hexdigest()


class Journal:
    """Acknowledged lines per input file for one target. Thread-safe."""

    def __init__(self, conn: sqlite3.Connection, path: Path, target: str, restart: bool) -> None:
        self._conn = conn
        self.path = path
        self._target = target
        self._restart = restart
        self._lock = threading.RLock()
        self._files: dict[str, _Entry | None] = {}

    @classmethod
    def open(
        cls,
        *,
        server: str,
        project: str | None,
        restart: bool = False,
        db_path: str | os.PathLike[str] | None = None,
    ) -> Journal:
        """Open (creating) the journal; `restart` forgets what was acked for the files used."""
        path = Path(db_path) if db_path is not None else state_dir() / DB_NAME
        try:
            conn = open_private_db(path)
            conn.execute("PRAGMA foreign_keys=ON")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                conn.close()
                raise UsageError(
                    f"the resume journal {path} was written by a newer tracecli; "
                    "upgrade, or pass --restart after deleting it"
                )
            with conn:
                conn.executescript(_SCHEMA)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                old = time.time() - KEEP_DAYS * 86400
                conn.execute("DELETE FROM files WHERE updated < ?", (old,))
                conn.execute("DELETE FROM notes WHERE updated < ?", (old,))
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"cannot open the resume journal {path}: {exc}") from None
        except OSError as exc:
            raise UsageError(
                f"cannot open the resume journal {path}: {exc.strerror or exc}"
            ) from None
        return cls(conn, path, target_key(server, project), restart)

    def file(self, path: str | os.PathLike[str]) -> FileState:
        """Register an input file for this run and say what earlier runs left for it."""
        key = str(path)
        with self._lock:  # asked again in the same run: the answer of the first time
            known = self._files.get(key, False)
            if known is None:
                return FileState(key, journaled=False, changed=False, acked=0, done=False)
            if isinstance(known, _Entry) and known.state is not None:
                return known.state
        ident = identity(path)  # outside the lock: hashing reads the file
        if ident is None:
            with self._lock:
                self._files[key] = None
            return FileState(key, journaled=False, changed=False, acked=0, done=False)
        with self._lock, self._conn:
            again = self._files.get(key)
            if again is not None and again.state is not None:  # another thread was first
                return again.state
            row = self._conn.execute(
                "SELECT id, size, mtime_ns, head, done FROM files WHERE target=? AND path=?",
                (self._target, ident.path),
            ).fetchone()
            now = time.time()
            changed = False
            done = False
            if row is None:
                cur = self._conn.execute(
                    "INSERT INTO files (target, path, size, mtime_ns, head, updated) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (self._target, ident.path, ident.size, ident.mtime_ns, ident.head, now),
                )
                entry = _Entry(int(cur.lastrowid or 0), AckSet())
            else:
                file_id = int(row[0])
                same = (row[1], row[2], row[3]) == (ident.size, ident.mtime_ns, ident.head)
                entry = _Entry(file_id, AckSet())
                if same and not self._restart:
                    for block, bits in self._conn.execute(
                        "SELECT block, bits FROM acks WHERE file_id=?", (file_id,)
                    ):
                        entry.acks.load_block(int(block), bytes(bits))
                    done = bool(row[4])
                else:
                    changed = not same
                    self._conn.execute("DELETE FROM acks WHERE file_id=?", (file_id,))
                self._conn.execute(
                    "UPDATE files SET size=?, mtime_ns=?, head=?, acked=?, done=?, updated=? "
                    "WHERE id=?",
                    (
                        ident.size,
                        ident.mtime_ns,
                        ident.head,
                        len(entry.acks),
                        int(done),
                        now,
                        file_id,
                    ),
                )
            entry.state = FileState(
                key, journaled=True, changed=changed, acked=len(entry.acks), done=done
            )
            self._files[key] = entry
        return entry.state

    def _entry(self, path: str | os.PathLike[str]) -> _Entry | None:
        key = str(path)
        with self._lock:  # two threads acking a new file must register it once
            if key not in self._files:
                self.file(path)
            return self._files[key]

    def acked(self, path: str | os.PathLike[str]) -> AckSet:
        """The lines acknowledged so far (a live view; empty for stdin)."""
        entry = self._entry(path)
        return entry.acks if entry is not None else AckSet()

    def ack(self, path: str | os.PathLike[str], lines: Iterable[int]) -> None:
        """Record that the server stored the records on these lines; durable on return."""
        entry = self._entry(path)
        if entry is None:
            return
        with self._lock:
            touched = entry.acks.add(lines)
            if not touched:
                return
            # One small write per ack (the blocks it touched): this runs once per request.
            # files.acked/updated are refreshed by file() and done(), not here.
            with self._conn:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO acks (file_id, block, bits) VALUES (?, ?, ?)",
                    [(entry.id, b, entry.acks.block(b)) for b in sorted(touched)],
                )

    def done(self, path: str | os.PathLike[str]) -> None:
        """Mark the file finished (all its records stored or rejected)."""
        entry = self._entry(path)
        if entry is None:
            return
        with self._lock, self._conn:
            self._conn.execute(
                "UPDATE files SET done=1, acked=?, updated=? WHERE id=?",
                (len(entry.acks), time.time(), entry.id),
            )

    def forget(self, path: str | os.PathLike[str]) -> None:
        """Drop what is known about the file (e.g. after the user chose to start over)."""
        entry = self._entry(path)
        if entry is None:
            return
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM acks WHERE file_id=?", (entry.id,))
            self._conn.execute("UPDATE files SET acked=0, done=0 WHERE id=?", (entry.id,))
            entry.acks = AckSet()

    def first_note(self, key: str, value: str) -> bool:
        """True the first time `key` has this `value` (then remembered): a note the user
        was given once (e.g. about an old rejected-records file) is not repeated every run
        while nothing about it changed."""
        with self._lock, self._conn:
            row = self._conn.execute("SELECT value FROM notes WHERE key=?", (key,)).fetchone()
            if row is not None and row[0] == value:
                return False
            self._conn.execute(
                "INSERT OR REPLACE INTO notes (key, value, updated) VALUES (?, ?, ?)",
                (key, value, time.time()),
            )
            return True

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
