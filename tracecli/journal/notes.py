"""The journal's notes: small values kept per key beside the acks (the last rejected-file
note a user was given, the store's marks), read and replaced under the journal's lock in
one write transaction, so two processes never interleave."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from threading import RLock


def swap_note(
    conn: sqlite3.Connection, lock: RLock, key: str, swap: Callable[[str | None], str]
) -> None:
    """Replace the note `key` (None: none yet) by what `swap` makes of it, the journal's
    write lock held throughout: another process's swap waits, so what `swap` does beside
    (the same value written in the store: journal.store_marks) pairs with the note and
    never interleaves. Notes untouched for KEEP_DAYS are pruned."""
    with lock, conn:
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute("SELECT value FROM notes WHERE key=?", (key,)).fetchone()
        value = swap(None if row is None else str(row[0]))
        conn.execute(
            "INSERT OR REPLACE INTO notes (key, value, updated) VALUES (?, ?, ?)",
            (key, value, time.time()),
        )


def first_note(conn: sqlite3.Connection, lock: RLock, key: str, value: str) -> bool:
    """True the first time `key` has this `value` (then remembered): a note the user
    was given once (e.g. about an old rejected-records file) is not repeated every run
    while nothing about it changed."""
    with lock, conn:
        row = conn.execute("SELECT value FROM notes WHERE key=?", (key,)).fetchone()
        if row is not None and row[0] == value:
            return False
        conn.execute(
            "INSERT OR REPLACE INTO notes (key, value, updated) VALUES (?, ?, ?)",
            (key, value, time.time()),
        )
        return True
