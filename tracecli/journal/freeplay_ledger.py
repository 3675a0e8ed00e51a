"""The ids Freeplay acknowledged, per API base and input file: so a file that changed is
not sent twice.

The resume journal knows acknowledged *lines* of a file whose identity did not change. That
is not enough for Freeplay, whose behaviour on a repeated `completion_id` is unknown (it may
record the completion twice): a trace file that grew since the last upload (a still-running
call has ended, new calls were appended: the usual way to upload a live file) starts over
in the journal. The ledger remembers every acknowledged record by its id (project, kind and
completion/trace id) and the file(s) it came from, so a later run over the same path skips
it, and within one run the same record is sent once whatever file brings it. Records
read from another path are another upload, as for Weave (a copy uploaded on purpose, or
after the server was emptied, goes again with the same ids). Only a `kill -9` between
Freeplay's answer and the ledger write can make a record go twice, which bounds re-sends
to the requests in flight.

One SQLite database beside the journal, WAL mode, one transaction per acknowledgement
(durable on return, like the journal's). Ids and paths are stored as hashes; the server URL
as the journal's credential-free fingerprint. Entries older than `KEEP_DAYS` are pruned.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
import time
from pathlib import Path

from tracecli.config.private_db import open_private_db
from tracecli.diagnostics import UsageError, cannot_write
from tracecli.journal.database import KEEP_DAYS, target_key

LEDGER_NAME = "freeplay-sent.sqlite3"
STDIN_KEY = b"-"  # the source of records read from stdin: never matched by a later run

_SCHEMA = """
CREATE TABLE IF NOT EXISTS acked (
    target BLOB NOT NULL,
    rid    BLOB NOT NULL,
    src    BLOB NOT NULL,
    at     REAL NOT NULL,
    PRIMARY KEY (target, rid, src)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS acked_at ON acked (at);
"""


def record_key(project: str, kind: str, record_id: str) -> bytes:
    """A record's identity at Freeplay: the same id in another project is another record."""
    text = f"{project.lower()}\n{kind}\n{record_id.lower()}"
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def source_key(paths: list[str]) -> bytes:
    """The input file(s) a record came from (a call's start and end may be in two files).
    Records from stdin are filed under `STDIN_KEY` and never looked up for an earlier run,
    as the journal does not resume stdin either."""
    real = sorted({os.path.realpath(p) for p in paths})
    joined = "\n".join(real).encode("utf-8", "surrogateescape")  # a name not UTF-8: its bytes
    return hashlib.blake2b(joined, digest_size=8).digest()


class SentLedger:
    """Acknowledged Freeplay records of one API base. Thread-safe."""

    def __init__(self, conn: sqlite3.Connection, path: Path, server: str) -> None:
        self._conn = conn
        self.path = path
        self._target = bytes.fromhex(target_key(server, None))[:16]
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | os.PathLike[str], server: str) -> SentLedger:
        """Open (creating, mode 0600) the ledger at `path` for the API base `server`."""
        p = Path(path)
        try:
            conn = open_private_db(p)
            with conn:
                conn.executescript(_SCHEMA)
                conn.execute("DELETE FROM acked WHERE at < ?", (time.time() - KEEP_DAYS * 86400,))
        except (sqlite3.DatabaseError, OSError) as exc:
            what = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise UsageError(f"cannot open the Freeplay sent-records ledger {p}: {what}") from None
        return cls(conn, p, server)

    def seen_from(self, key: bytes, src: bytes) -> bool:
        """Whether Freeplay acknowledged the record read from these input file(s)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM acked WHERE target=? AND rid=? AND src=?", (self._target, key, src)
            ).fetchone()
        return row is not None

    def seen_since(self, key: bytes, since: float) -> bool:
        """Whether Freeplay acknowledged the record, from any file, at or after `since`
        (the start of the current run)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM acked WHERE target=? AND rid=? AND at>=? LIMIT 1",
                (self._target, key, since),
            ).fetchone()
        return row is not None

    def add(self, key: bytes, src: bytes) -> None:
        """Record that Freeplay acknowledged the record; durable on return."""
        try:
            with self._lock, self._conn:
                self._conn.execute(
                    "INSERT OR REPLACE INTO acked (target, rid, src, at) VALUES (?, ?, ?, ?)",
                    (self._target, key, src, time.time()),
                )
        except sqlite3.Error as exc:  # a disk full since it was opened: all stops
            raise UsageError(cannot_write("Freeplay sent-records ledger", self.path, exc)) from None

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()
