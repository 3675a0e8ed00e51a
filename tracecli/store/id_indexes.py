"""The two id indexes of `calls` a bulk load into an empty store builds once, at its end.

Why: `calls_project_trace` and `calls_project_parent` are keyed by ids that land anywhere in
the index, so each call an upload stores dirties a leaf of each, read back into the writer's
cache and written to the WAL at every commit; once the indexes outgrow that cache, they are
the dearest part of storing a call (in-process, 50k calls: ~5.5 of ~19.5 us a call; 200k
calls: ~11 of ~31), while `CREATE INDEX` over the same calls, one sort, costs ~2-2.5 us a
call. So an upload into an empty store drops them first (`defer`, which does nothing to a
store that holds a call) and creates them again when it ends (`restore`).

What the store holds does not change: an index holds nothing of its own, and every query
gives the same answers without one (more slowly). A store left without them (an upload
killed, or its `restore` failed) gets them back the next time any tracecli opens it
(`restore_missing`, from `SqliteFile`'s open), before that process reads or writes a call.
Every statement here is idempotent (`IF EXISTS`, `IF NOT EXISTS`) and runs in a write
transaction, so processes opening the same file at once cannot leave it half done; SQLite
stores `CREATE INDEX IF NOT EXISTS` as the plain statement, so a rebuilt store's schema
reads as a new one's.
"""

from __future__ import annotations

import sqlite3

from tracecli.store.tables import MIGRATIONS

__all__ = ["DEFERRED", "defer", "missing", "restore"]

DEFERRED = ("calls_project_trace", "calls_project_parent")
# Each one's statement as the first migration writes it, made idempotent.
_CREATE = {
    name: sql.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1)
    for name in DEFERRED
    for sql in MIGRATIONS[0]
    if sql.startswith(f"CREATE INDEX {name} ")
}
assert len(_CREATE) == len(DEFERRED)
_PRESENT = (
    "SELECT name FROM sqlite_master WHERE type = 'index' AND name IN "
    f"({', '.join(repr(n) for n in DEFERRED)})"
)


def missing(conn: sqlite3.Connection) -> bool:
    """Whether the store on `conn` lacks one of the deferred indexes."""
    return len(conn.execute(_PRESENT).fetchall()) < len(DEFERRED)


def defer(conn: sqlite3.Connection) -> bool:
    """Drop the deferred indexes if `calls` is empty (inside the caller's write
    transaction); True when it did (the caller must `restore` them)."""
    if conn.execute("SELECT 1 FROM calls LIMIT 1").fetchone() is not None:
        return False
    for name in DEFERRED:
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    return True


def restore(conn: sqlite3.Connection) -> None:
    """Create whichever deferred index is missing (inside the caller's write transaction)."""
    for name in DEFERRED:
        conn.execute(_CREATE[name])
