"""The ids Freeplay acknowledged, per API base: so no completion or trace is sent twice.

The resume journal knows acknowledged *lines* of a file whose identity did not change. That
is not enough for Freeplay, whose behaviour on a repeated `completion_id` is unknown (it may
record the completion twice): a trace file that grew since the last upload (a still-running
call has ended, new calls were appended) starts over in the journal, and the same records
may come again through another file or stdin. The ledger remembers every acknowledged
record by its id (project, kind and completion/trace id), so those are skipped whatever
file brings them. Only a `kill -9` between Freeplay's answer and the ledger write can make
a record go twice, which bounds re-sends to the requests in flight.

One SQLite database beside the journal, WAL mode, one transaction per acknowledgement
(durable on return, like the journal's). Ids are stored as 16-byte hashes; the server URL
as the journal's credential-free fingerprint. Entries untouched for `KEEP_DAYS` are pruned.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
import time
from pathlib import Path

from tracecli.diagnostics import UsageError
from tracecli.journal import KEEP_DAYS, target_key

LEDGER_NAME = "freeplay-sent.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sent (
    target BLOB NOT NULL,
    rid    BLOB NOT NULL,
    at     REAL NOT NULL,
    PRIMARY KEY (target, rid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sent_at ON sent (at);
"""


def record_key(project: str, kind: str, record_id: str) -> bytes:
    """A record's identity at Freeplay: the same id in another project is another record."""
    text = f"{project.lower()}\n{kind}\n{record_id.lower()}"
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


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
            p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not p.exists():
                os.close(os.open(p, os.O_CREAT | os.O_RDWR, 0o600))
            conn = sqlite3.connect(p, timeout=30.0, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            with conn:
                conn.executescript(_SCHEMA)
                conn.execute("DELETE FROM sent WHERE at < ?", (time.time() - KEEP_DAYS * 86400,))
        except (sqlite3.DatabaseError, OSError) as exc:
            what = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise UsageError(f"cannot open the Freeplay sent-records ledger {p}: {what}") from None
        return cls(conn, p, server)

    def seen(self, key: bytes, since: float | None = None) -> bool:
        """Whether Freeplay acknowledged the record (at or after `since`, when given:
        `--restart` counts only the current run's acknowledgements)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT at FROM sent WHERE target=? AND rid=?", (self._target, key)
            ).fetchone()
        return row is not None and (since is None or row[0] >= since)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and self.seen(key)

    def add(self, key: bytes) -> None:
        """Record that Freeplay acknowledged the record; durable on return."""
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO sent (target, rid, at) VALUES (?, ?, ?)",
                (self._target, key, time.time()),
            )

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()
