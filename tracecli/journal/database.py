"""The resume journal's SQLite file: its schema (and the columns a newer schema added),
opening it private and pruned, and the key a target is known by (no credentials, ever)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from pathlib import Path

from tracecli.config.fields import strip_userinfo
from tracecli.config.private_db import open_private_db
from tracecli.diagnostics import UsageError

KEEP_DAYS = 90  # entries untouched for this long are pruned on open
SCHEMA_VERSION = 2
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
    tail      TEXT NOT NULL DEFAULT '',
    dev       INTEGER NOT NULL DEFAULT 0,
    ino       INTEGER NOT NULL DEFAULT 0,
    resume_off  INTEGER NOT NULL DEFAULT 0,
    resume_line INTEGER NOT NULL DEFAULT 0,
    compacted INTEGER NOT NULL DEFAULT 0,
    UNIQUE (target, path)
);
CREATE TABLE IF NOT EXISTS acks (
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    block   INTEGER NOT NULL,
    bits    BLOB NOT NULL,
    PRIMARY KEY (file_id, block)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS passed (
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


# What SQLite says of a file that is not (or no longer) a database: SQLITE_CORRUPT, SQLITE_NOTADB
_DAMAGED = (11, 26)


def open_journal_db(path: Path, *, restart: bool = False) -> sqlite3.Connection:
    """Open (creating) the journal's database at `path`: the schema made current, entries
    untouched for KEEP_DAYS pruned. UsageError (one line) when it cannot be opened or a
    newer tracecli wrote it. A damaged file (a disk fault, a file written over) fails the
    same way, naming the way out: `restart` (which ignores the journal anyway) sets it
    aside as `<name>.corrupt` and starts a new one, rather than fail on it forever."""
    try:
        return _open(path)
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", None) not in _DAMAGED:
            raise UsageError(f"cannot open the resume journal {path}: {exc}") from None
        aside = path.with_name(path.name + ".corrupt")
        if not restart:
            raise UsageError(
                f"cannot open the resume journal {path}: {exc}; pass --restart to set it "
                f"aside (as {aside.name}) and start a new one (everything is sent again)"
            ) from None
    try:
        for suffix in ("-wal", "-shm"):  # a damaged file's log must not replay into the new
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        path.replace(aside)
        return _open(path)
    except (OSError, sqlite3.DatabaseError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise UsageError(f"cannot set the damaged resume journal {path} aside: {why}") from None


def _open(path: Path) -> sqlite3.Connection:
    """`open_journal_db` without the handling of a damaged file (sqlite3.DatabaseError)."""
    conn: sqlite3.Connection | None = None
    try:
        conn = open_private_db(path)
        conn.execute("PRAGMA foreign_keys=ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise UsageError(
                f"the resume journal {path} was written by a newer tracecli; "
                "upgrade, or pass --restart after deleting it"
            )
        with conn:
            conn.executescript(_SCHEMA)
            _add_columns(conn)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            old = time.time() - KEEP_DAYS * 86400
            conn.execute("DELETE FROM files WHERE updated < ?", (old,))
            conn.execute("DELETE FROM notes WHERE updated < ?", (old,))
    except BaseException as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, OSError):
            raise UsageError(
                f"cannot open the resume journal {path}: {exc.strerror or exc}"
            ) from None
        raise
    return conn


def _add_columns(conn: sqlite3.Connection) -> None:
    """Columns added by schema 2 (append detection) to a journal written by schema 1."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(files)")}
    for name, decl in (
        ("tail", "TEXT NOT NULL DEFAULT ''"),
        ("dev", "INTEGER NOT NULL DEFAULT 0"),
        ("ino", "INTEGER NOT NULL DEFAULT 0"),
        ("resume_off", "INTEGER NOT NULL DEFAULT 0"),
        ("resume_line", "INTEGER NOT NULL DEFAULT 0"),
        ("compacted", "INTEGER NOT NULL DEFAULT 0"),
    ):
        if name not in have:
            conn.execute(f"ALTER TABLE files ADD COLUMN {name} {decl}")


def target_key(server: str, project: str | None) -> str:
    """The target's fingerprint: no URL credentials, no key, ever."""
    url = strip_userinfo(server.strip()).rstrip("/")
    scheme, sep, rest = url.partition("://")
    if sep:
        host, slash, tail = rest.partition("/")
        url = f"{scheme.lower()}://{host.lower()}{slash}{tail}"
    # surrogateescape: a store's path that is not UTF-8 (`--db caf\xe9.db`) hashes as its bytes
    text = f"{url}\n{project or ''}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def store_key(db: str | os.PathLike[str], store_id: str | None) -> str:
    """The server an embedded store is journaled as: its resolved path and its id (see
    `SqliteFile.store_id`), so a store deleted, replaced by another store's file, or made
    anew at the same path is a new target and an upload sends everything to it again.
    `store_id` None: no store was opened (`--dry-run`, which keeps no journal)."""
    url = f"sqlite://{Path(db).resolve()}"
    return f"{url}#store={store_id}" if store_id else url
