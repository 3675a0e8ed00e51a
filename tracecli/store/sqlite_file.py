"""One SQLite file as the store uses it: opened or created, migrated, one writer, pooled readers.

Why it is shaped this way: one writer connection behind a lock serialises writers in this
process and makes a batch one transaction; readers use connections of their own, so a query
never waits for a write; WAL plus a busy timeout lets other processes (a `serve` and an
`upload` on the same file) read and write meanwhile; `PRAGMA user_version` numbers the
schema, so a later release can migrate old files. What is stored, and how, is `Store`'s
(store/db.py) and the object and feedback modules'.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from tracecli.sqlite_wal import use_wal
from tracecli.store import id_indexes
from tracecli.store.rows import StoreError
from tracecli.store.tables import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SQL_MARK,
    SQL_NEW_STORE_ID,
    SQL_SET_MARK,
    SQL_STORE_ID,
    STORE_META_TABLE,
)

BUSY_TIMEOUT_S = 30.0
_READER_POOL = 4

# Python's sqlite3 binds str, int and float directly but sends None through its adapter
# protocol, which (when no adapter is registered) looks up `__adapt__` and `__conform__` and
# fails both: ~3k instructions a NULL, and a call row has nine or more of them (a sixth of the
# store's work per call). An adapter for None that answers None (a C callable: `{}.get(None)`)
# finds it in one dictionary look-up; the value bound is still NULL. Left alone if the
# process has registered one of its own.
_NOTHING: dict[None, None] = {}
_NULL_AS_NULL: Callable[[None], None] = _NOTHING.get
if (type(None), sqlite3.PrepareProtocol) not in sqlite3.adapters:
    sqlite3.register_adapter(type(None), _NULL_AS_NULL)

_WAL_BACKSTOP_PAGES = 16384  # 64 MiB: the writer checkpoints itself only if the thread lags
# The writer's page cache, in KiB (SQLite's default is 2 MiB). A batch of calls with random
# ids touches a leaf of each index per call; with the indexes of a 50k-call upload (~14 MB)
# in 2 MiB nearly every one was read again from the file, a system call each: 8 MiB cut
# ~2.5 us/call of system time from an upload to the store for ~6 MiB more memory.
_WRITER_CACHE_KIB = 8192
# The page size of a store this process creates (SQLite's default is 4 KiB; a file keeps the
# size it was created with, so older stores are read and written as they are). A call row
# is ~1 KB of text and every commit writes each page it touched to the WAL, frame by frame:
# with 8 KiB pages an upload's commits write fewer frames and split fewer pages, ~1 us a
# call less CPU replaying a 50k-call upload into a fresh store (16 and 2 KiB: no gain).
_PAGE_BYTES = 8192


class _Checkpointer:
    """Runs WAL checkpoints (and their fsyncs) in a thread of their own, off the write path.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 WAL pages, so
    every few batches one write paid for copying the WAL into the database and syncing it:
    on the 2-core reference box that tripled the average cost of a 500-call batch. Here a
    daemon thread checkpoints (PASSIVE: never blocks readers or the writer) shortly after
    writes; durability is unchanged (synchronous=NORMAL syncs at checkpoints either way).
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], pause: float = 0.2) -> None:
        self._conn = connect()
        self._pause = pause
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="tracecli-store-checkpoint", daemon=True
        )
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                break
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self._stop.wait(self._pause)  # coalesce a burst of writes into one checkpoint

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self._conn.close()


class SqliteFile:
    """One SQLite file, migrated to SCHEMA_VERSION on open.

    Thread-safe: writes go through one connection under a lock (`_transaction`), reads use
    pooled connections of their own (`_reader`). `path` may be ":memory:" (tests, throwaway).
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = str(path)
        self._memory = self.path == ":memory:"
        if self._memory:
            self._uri = f"file:tracecli-{uuid.uuid4().hex}?mode=memory&cache=shared"
        else:
            p = Path(self.path)
            if not p.exists():
                if not create:
                    raise StoreError(f"no trace store at {p} (nothing has been stored there yet)")
                try:
                    p.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(
                        f"cannot create the trace store {p}: {exc.strerror or exc}"
                    ) from None
            elif p.is_dir():
                raise StoreError(f"{p} is a directory, not a trace store file")
            self._uri = p.resolve().as_uri()
        self._wlock = threading.RLock()
        self._plock = threading.Lock()
        self._pool: list[sqlite3.Connection] = []
        self._closed = False
        self._writer = self._connect()
        try:
            self._migrate()
        except BaseException:
            self._writer.close()
            raise
        self._store_id: str | None = None
        self._checkpointer: _Checkpointer | None = None
        if not self._memory:
            self._writer.execute(f"PRAGMA wal_autocheckpoint = {_WAL_BACKSTOP_PAGES}")
            self._writer.execute(f"PRAGMA cache_size = -{_WRITER_CACHE_KIB}")
            self._checkpointer = _Checkpointer(self._connect)
            # A Store dropped without close() must not leave its thread behind.
            self._stop_checkpointer = weakref.finalize(self, self._checkpointer.close)
        self._restore_missing_id_indexes()

    # -- connections and schema

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self._uri,
                uri=True,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
            )
            if self._memory:
                # Shared-cache readers take table locks that busy_timeout does not wait on.
                conn.execute("PRAGMA read_uncommitted = true")
            else:
                # Before the switch to WAL: only a file not yet written takes a page size.
                conn.execute(f"PRAGMA page_size = {_PAGE_BYTES}")
                use_wal(conn, BUSY_TIMEOUT_S)  # serve and an upload may create it at once
                conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open trace store {self.path}: {exc}") from None
        return conn

    def _migrate(self) -> None:
        with self._wlock:
            conn = self._writer
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{self.path} is not a tracecli store: {exc}") from None
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer tracecli (store schema {version}; "
                    f"this version reads up to {SCHEMA_VERSION}): upgrade tracecli"
                )
            if version == SCHEMA_VERSION:
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]  # raced?
                if version == 0:
                    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
                    if names:
                        raise StoreError(
                            f"{self.path} is an SQLite file but not a tracecli store "
                            f"(it has tables: {', '.join(sorted(names)[:5])})"
                        )
                for step in MIGRATIONS[version:]:
                    for statement in step:
                        conn.execute(statement)
                conn.execute(STORE_META_TABLE)  # a new store is born with its id
                conn.execute(SQL_NEW_STORE_ID)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _restore_missing_id_indexes(self) -> None:
        """The id indexes a bulk load left out (`store.id_indexes`: an upload killed before
        its end built them), built before this process reads or writes a call. Best effort:
        a file this process cannot write still answers every query, more slowly."""
        try:
            with self._wlock:
                if not id_indexes.missing(self._writer):
                    return
            with self._transaction() as conn:
                id_indexes.restore(conn)
        except sqlite3.Error:
            pass

    def defer_id_indexes(self) -> bool:
        """Drop the id indexes of an empty store for a bulk load (`store.id_indexes`); True
        when they were dropped: `restore_id_indexes` when the load ends. False when they
        could not be (the store busy): the load then keeps them up to date as it goes."""
        try:
            with self._transaction() as conn:
                return id_indexes.defer(conn)
        except sqlite3.Error:
            return False

    def restore_id_indexes(self) -> None:
        """Build the id indexes `defer_id_indexes` dropped (one sort each)."""
        try:
            with self._transaction() as conn:
                id_indexes.restore(conn)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write the trace store {self.path}: {exc}") from None

    def store_id(self) -> str:
        """This store's identity: 32 random hex digits made with the file (or on the first
        ask of a file from before them), kept in the file's `store_meta` table, so every
        process that opens the file (an upload, a `serve`) reads the same one. Not a secret
        and not a key: it tells one store file from another at the same path, so an upload's
        resume journal does not take a new, replaced or other store for the one it sent to."""
        with self._wlock:
            if self._store_id is not None:
                return self._store_id
            if self._closed:
                raise StoreError("the trace store is closed")
            try:
                found = self._read_store_id()
                if found is None:  # a store from before the id: it gets one now
                    with self._transaction() as conn:
                        conn.execute(STORE_META_TABLE)
                        conn.execute(SQL_NEW_STORE_ID)
                    found = self._read_store_id()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the trace store {self.path}'s id: {exc}") from None
            if found is None:
                raise StoreError(f"cannot read the trace store {self.path}'s id")
            self._store_id = found
            return found

    def mark(self, name: str) -> str | None:
        """The value an uploader's journal left here as mark `name` (None: none yet); see
        tracecli.journal.store_marks: a copy of the file keeps the marks of its time."""
        try:
            with self._wlock:
                if self._closed:
                    raise StoreError("the trace store is closed")
                rows = self._writer.execute(SQL_MARK, (f"mark:{name}",)).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise StoreError(f"cannot read the trace store {self.path}: {exc}") from None
        return str(rows[0][0]) if rows else None

    def set_mark(self, name: str, value: str) -> None:
        """Leave `value` as mark `name` (one row per name, replaced)."""
        try:
            with self._transaction() as conn:
                conn.execute(STORE_META_TABLE)
                conn.execute(SQL_SET_MARK, (f"mark:{name}", value))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write the trace store {self.path}: {exc}") from None

    def _read_store_id(self) -> str | None:
        try:
            rows = self._writer.execute(SQL_STORE_ID).fetchall()  # (no statement left open)
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise
        return str(rows[0][0]) if rows else None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._wlock:
            if self._closed:
                raise StoreError("the trace store is closed")
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            if self._checkpointer is not None:
                self._checkpointer.poke()

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        with self._plock:
            if self._closed:
                raise StoreError("the trace store is closed")
            conn = self._pool.pop() if self._pool else None
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        finally:
            with self._plock:
                if self._closed or len(self._pool) >= _READER_POOL:
                    conn.close()
                else:
                    self._pool.append(conn)

    def close(self) -> None:
        with self._wlock, self._plock:
            if self._closed:
                return
            self._closed = True
            for conn in self._pool:
                conn.close()
            self._pool.clear()
            if self._checkpointer is not None:
                self._stop_checkpointer()
                with contextlib.suppress(sqlite3.Error):  # leave a small file behind
                    self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._writer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
