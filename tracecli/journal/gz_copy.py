"""A gzip file that holds a plain file the journal knows (logrotate's `compress`, a cleanup
job's `gzip app-1.jsonl`): its lines are those of the plain file as far as it was seen, so
the records stored from it are not sent again (they were, whole, as a new file).

The check decompresses the gzip file's start (to compare it with the plain file's head)
and, only when that matches, up to where the plain file was seen (to compare the bytes
before its end): a gzip file is looked at so once, when the journal first meets it."""

from __future__ import annotations

import gzip
import hashlib
import sqlite3
import zlib
from collections.abc import Iterable

from tracecli.journal.acks import AckSet
from tracecli.journal.file_identity import HEAD_BYTES, TAIL_BYTES, FileRow, still_there
from tracecli.journal.file_state import FileEntry

READ_BYTES = 1 << 20
# the `files` rows a new gzip file may hold (`Journal._row`'s WHERE): plain files, recent first
GZ_CANDIDATES = "tail<>'' AND path<>? AND path NOT LIKE '%.gz' ORDER BY updated DESC LIMIT ?"


def _read(f: gzip.GzipFile, n: int) -> bytes:
    parts: list[bytes] = []
    while n > 0:
        got = f.read(min(n, READ_BYTES))
        if not got:
            break
        parts.append(got)
        n -= len(got)
    return b"".join(parts)


def gz_head(path: str) -> bytes | None:
    """The first HEAD_BYTES bytes of the gzip file, decompressed (None: not readable)."""
    try:
        with gzip.open(path, "rb") as f:
            return _read(f, HEAD_BYTES)
    except (OSError, EOFError, zlib.error):
        return None


def head_matches(head: bytes, row: FileRow) -> bool:
    """Whether decompressed bytes starting with `head` may hold the row's file (its head)."""
    n = min(row.size, HEAD_BYTES)
    return len(head) >= n and hashlib.sha256(head[:n]).hexdigest() == row.head


def gz_holds(path: str, row: FileRow) -> bool:
    """Whether the gzip file decompresses to bytes that begin with the row's file as it
    was seen: its head, and the TAIL_BYTES before the size it had."""
    start = max(0, row.size - TAIL_BYTES)
    try:
        with gzip.open(path, "rb") as f:
            head = _read(f, min(row.size, HEAD_BYTES))
            if not head_matches(head, row):
                return False
            f.seek(start)
            tail = _read(f, row.size - start)
    except (OSError, EOFError, zlib.error):
        return False
    return len(tail) == row.size - start and hashlib.sha256(tail).hexdigest() == row.tail


def gz_origin(path: str, rows: Iterable[FileRow]) -> FileRow | None:
    """The entry (among `rows`) of the plain file the gzip file at `path` holds, when that
    file no longer holds what was seen (gone, or another file: as for a moved file)."""
    head = gz_head(path)
    if not head:
        return None
    for row in rows:
        if head_matches(head, row) and not still_there(row) and gz_holds(path, row):
            return row
    return None


def copy_acks(conn: sqlite3.Connection, origin: FileRow, entry: FileEntry) -> None:
    """Give the new `entry` of a gzip file what was stored of `origin`'s file: its lines
    before the resume point (no longer listed) and those acknowledged after, and its
    refused lines passed over, so none is sent or reported again."""
    tables: tuple[tuple[str, AckSet], ...] = (("acks", entry.acks), ("passed", entry.passed))
    for table, lines in tables:
        blocks: set[int] = set()
        sql = f"SELECT block, bits FROM {table} WHERE file_id=?"
        for block, bits in conn.execute(sql, (origin.id,)):
            lines.load_block(int(block), bytes(bits))
            blocks.add(int(block))
        if table == "acks":
            blocks |= lines.add(range(1, origin.resume_line + 1))
        conn.executemany(
            f"INSERT OR REPLACE INTO {table} (file_id, block, bits) VALUES (?, ?, ?)",
            [(entry.id, b, lines.block(b)) for b in sorted(blocks)],
        )
