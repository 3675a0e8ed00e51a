"""SQLite files that only their owner may read: the resume journal and the Freeplay ledger.

They name input files and servers, so they are created 0600 (in a 0700 folder) before
SQLite ever opens them, and opened for several threads (the sender's acknowledge from
theirs) in WAL mode: a kill -9 loses at most the transaction being written.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from tracecli.sqlite_wal import use_wal


def open_private_db(path: Path) -> sqlite3.Connection:
    """Create (mode 0600) and open `path`; raises OSError or sqlite3.DatabaseError."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
    use_wal(conn, 30.0)  # another process may be creating it this very moment
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn
