"""Switching a SQLite file to WAL when other processes may be opening it at the same moment.

`PRAGMA journal_mode=WAL` on a file that another connection is creating or switching can
answer "database is locked" at once: SQLite does not always call the busy handler for that
lock, so the connection's busy timeout does not help. Two uploads started together with a
fresh state directory (two CI jobs, a script that runs them in parallel) then failed one of
them to open the resume journal (about one start in twenty with four processes), and the
store had the same race with `serve`. The switch is retried here for as long as the busy
timeout would have waited: the other opener finishes its switch in milliseconds.
"""

from __future__ import annotations

import sqlite3
import time

__all__ = ["use_wal"]


def use_wal(conn: sqlite3.Connection, wait_s: float) -> None:
    """Put `conn`'s database in WAL mode, retrying a busy or locked answer for up to
    `wait_s` seconds; any other error, or the last busy one, is raised."""
    deadline = time.monotonic() + wait_s
    pause = 0.002
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if ("locked" not in text and "busy" not in text) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
