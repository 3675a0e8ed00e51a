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
- A file is known by its identity (real path, size, mtime, device and inode, SHA-256 of its
  first 64 KiB and of the 4 KiB before its end) *and* the target (server URL without
  credentials, hashed, plus the project override). A file that grew with the part seen
  last time unchanged (same head, same bytes before the old end: an append) keeps its acks,
  and `FileState.resume_offset` says where the acknowledged prefix ends (a whole line, all
  its records stored: see `settle`), so a plain JSON-lines file is read from there, not
  from the start. A file whose seen part changed, or that got shorter (rewritten,
  truncated, copytruncate), starts over and `FileState.changed` tells the caller to say so
  (line numbers may mean other records now). A different file at the same path (rotation
  by rename) is a new file; the old one, met under its new name (same device and inode,
  same content), resumes where it was.
- Only lines the server stored are acked; rejected records are not, so every run finds the
  rejects again and the rejected-records file is always complete for the files it read.
- Nothing secret is stored: the URL is hashed after its userinfo is removed.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tracecli.config.paths import state_dir
from tracecli.diagnostics import UsageError, cannot_write
from tracecli.journal import notes
from tracecli.journal.acks import BLOCK_LINES, AckSet
from tracecli.journal.database import DB_NAME, open_journal_db, target_key
from tracecli.journal.file_identity import (
    ROW_COLUMNS,
    FileRow,
    Identity,
    file_row,
    identity_of,
    identity_values,
    open_regular,
    same_prefix,
    stored_path,
    unchanged,
)
from tracecli.journal.file_lock import lock_files, release
from tracecli.journal.file_state import FileEntry, FileState
from tracecli.journal.gz_copy import GZ_CANDIDATES, copy_acks, gz_origin
from tracecli.journal.prefix import settled_prefix
from tracecli.journal.rotated_files import moved_row, rotated_away

# AckSet, BLOCK_LINES and identity are the journal's words too (imported from here)
__all__ = ["Journal"]

# A start still waiting for its end holds the resume point before it (so the next run
# reads the start again, skips it as stored, and pairs it with its end as one call), unless
# that holds it back more than this: a call that never ends must not pin the file forever.
HOLD_MAX_BYTES = 64 << 20
MOVED_CANDIDATES = 32  # recent entries compared with a new file that may be a rotated copy
RECENT = "size<=? AND tail<>'' AND path<>? ORDER BY updated DESC LIMIT ?"  # ...those entries


@dataclass(eq=False, slots=True)
class Journal:
    """Acknowledged lines per input file for one target. Thread-safe.

    `Journal.open` opens one; `target` is the server and project's key, `restart` forgets
    what was acked for the files used, `pass_invalid` see `open`."""

    conn: sqlite3.Connection
    path: Path
    target: str
    restart: bool
    pass_invalid: bool = False
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    _files: dict[str, FileEntry | None] = field(default_factory=dict, init=False, repr=False)
    _locks: list[int] = field(default_factory=list, init=False, repr=False)

    @classmethod
    def open(
        cls,
        *,
        server: str,
        project: str | None,
        restart: bool = False,
        db_path: str | os.PathLike[str] | None = None,
        pass_invalid: bool = False,
    ) -> Journal:
        """Open (creating) the journal; `restart` forgets what was acked for the files used.
        `pass_invalid` (upload --follow): lines refused by validation are remembered as
        settled (see `pass_over`), so a bad line is not read again by every pass."""
        path = Path(db_path) if db_path is not None else state_dir() / DB_NAME
        conn = open_journal_db(path, restart=restart)
        key = target_key(server, project)
        return cls(conn=conn, path=path, target=key, restart=restart, pass_invalid=pass_invalid)

    def file(self, path: str | os.PathLike[str]) -> FileState:
        """Register an input file for this run and say what earlier runs left for it."""
        key = str(path)
        with self._lock:  # asked again in the same run: the answer of the first time
            known = self._files.get(key, False)
            if known is None:
                return FileState(key, journaled=False, changed=False, acked=0, done=False)
            if isinstance(known, FileEntry) and known.state is not None:
                return known.state
        # One descriptor for all this file's identity and comparisons (see `identity_of`)
        f = open_regular(path)
        if f is None:
            with self._lock:
                self._files[key] = None
            return FileState(key, journaled=False, changed=False, acked=0, done=False)
        with f:
            return self._file(key, f, identity_of(f, path))  # hashing outside the lock

    def _file(self, key: str, f: IO[bytes], ident: Identity) -> FileState:
        with self._lock, self.conn:
            again = self._files.get(key)
            if again is not None and again.state is not None:  # another thread was first
                return again.state
            entry, changed, appended, done = self._register(ident, f)
            entry.state = FileState(
                key,
                journaled=True,
                changed=changed,
                acked=len(entry.acks) + entry.compacted,
                done=done,
                resume_offset=entry.resume_off,
                resume_line=entry.resume_line,
                compacted=entry.compacted,
                appended=appended,
                dev=ident.dev,
                ino=ident.ino,
            )
            self._files[key] = entry
        return entry.state

    def _row(self, where: str, *args: object) -> list[FileRow]:
        sql = f"SELECT {ROW_COLUMNS} FROM files WHERE target=? AND {where}"
        params = (self.target, *(stored_path(a) if isinstance(a, str) else a for a in args))
        return [file_row(r) for r in self.conn.execute(sql, params)]

    def _register(self, ident: Identity, f: IO[bytes]) -> tuple[FileEntry, bool, bool, bool]:
        """Find or create the file's row (under the lock, in a transaction); returns the
        entry and whether the file changed, grew, or was finished by an earlier run. `f`:
        the file open, its content compared rather than what its name holds by now."""
        rows = self._row("path=?", ident.path)
        row = rows[0] if rows else None
        if (
            row is not None
            and row.ino
            and (row.dev, row.ino) != (ident.dev, ident.ino)
            and not same_prefix(f, row, ident.size)
        ):
            # Another file under this path (rotation by rename): the old entry stays, under
            # a name no path has, for the old file to be found by its device and inode.
            self._detach(row)
            row = None
        gz_of: FileRow | None = None  # the plain file a new gzip file holds (compressed)
        if row is None:
            row = self._moved(ident, f)
            if row is not None:
                self.conn.execute(
                    "UPDATE files SET path=? WHERE id=?", (stored_path(ident.path), row.id)
                )
            elif ident.path.lower().endswith(".gz"):
                recent = self._row(GZ_CANDIDATES, ident.path, MOVED_CANDIDATES)
                gz_of = gz_origin(ident.path, recent)
        now = time.time()
        changed = False
        kept = row is not None and (unchanged(row, ident) or same_prefix(f, row, ident.size))
        if row is not None and not self.restart and not kept:
            # The part seen before changed, or the file got shorter (rewritten; truncated by
            # copytruncate, whose copy may be among the inputs and is then found by its
            # content, see `_moved`): this path starts over, the old entry is kept aside.
            self._detach(row)
            row = None
            changed = True
        if row is None:
            cur = self.conn.execute(
                "INSERT INTO files (target, path, size, mtime_ns, head, tail, dev, ino, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.target, stored_path(ident.path), *identity_values(ident), now),
            )
            new = FileEntry(int(cur.lastrowid or 0), AckSet(), ident=ident)
            if gz_of is not None:  # what was stored of it is stored of this one
                copy_acks(self.conn, gz_of, new)
            return new, changed, False, False
        entry = FileEntry(row.id, AckSet(), ident=ident)
        same = unchanged(row, ident)
        grown = not same and same_prefix(f, row, ident.size)
        appended = done = False
        if (same or grown) and not self.restart:
            for table, lines in (("acks", entry.acks), ("passed", entry.passed)):
                sql = f"SELECT block, bits FROM {table} WHERE file_id=?"
                for block, bits in self.conn.execute(sql, (row.id,)):
                    lines.load_block(int(block), bytes(bits))
            done = same and bool(row.done)
            appended = grown
            if row.resume_off <= row.size:
                entry.resume_off, entry.resume_line = row.resume_off, row.resume_line
                entry.compacted = row.compacted
        else:
            changed = not (same or grown)
            self.conn.execute("DELETE FROM acks WHERE file_id=?", (row.id,))
            self.conn.execute("DELETE FROM passed WHERE file_id=?", (row.id,))
        self.conn.execute(
            "UPDATE files SET size=?, mtime_ns=?, head=?, tail=?, dev=?, ino=?, acked=?, "
            "done=?, resume_off=?, resume_line=?, compacted=?, updated=? WHERE id=?",
            (
                *identity_values(ident),
                len(entry.acks),
                int(done),
                entry.resume_off,
                entry.resume_line,
                entry.compacted,
                now,
                row.id,
            ),
        )
        return entry, changed, appended, done

    def _detach(self, row: FileRow) -> None:
        """Keep an entry whose path now holds another file, under a name no path has."""
        self.conn.execute(
            "UPDATE files SET path=? WHERE id=?",
            (stored_path(f"\0moved\0{row.id}\0{row.path}"), row.id),
        )

    def _moved(self, ident: Identity, f: IO[bytes]) -> FileRow | None:
        """The entry of this very file read earlier under another path (`moved_row`)."""
        same_inode = self._row("dev=? AND ino=? AND path<>?", ident.dev, ident.ino, ident.path)
        recent = self._row(RECENT, ident.size, ident.path, MOVED_CANDIDATES)
        return moved_row(ident, f, same_inode, recent)

    def take(self, files: list[str], stop: Callable[[], bool] = lambda: False) -> None:
        """Ready the run's `files`: those rotated away from them put first (`rotated_files`;
        not when starting over), then all held until `close` (`file_lock`; `stop`: no wait)."""
        if not self.restart:
            files[:0] = rotated_away(files, lambda p: next(iter(self._row("path=?", p)), None))
        self._locks += lock_files(self.path.parent, self.target, files, stop)

    def hold(self, path: str | os.PathLike[str], line: int) -> None:
        """Keep the resume point at or before `line`: the start of a call sent as running
        whose end is not in the file yet. The next run reads it again (skipped: it is
        stored) so that its end is paired and checked with it, as if read in one run."""
        entry = self._entry(path)
        if entry is not None:
            with self._lock:
                entry.hold = line if entry.hold is None else min(entry.hold, line)

    def line_marks(self, path: str | os.PathLike[str], marks: list[tuple[int, int]]) -> None:
        """Line starts a run reads in `path`, (offset, lines before it), in order, from
        where it starts reading (it may go on adding to `marks`): `settle` reads the file
        from the last one before the first line not stored, not from the resume point."""
        entry = self._entry(path)
        if entry is not None:
            entry.marks = marks

    def settle(self, path: str | os.PathLike[str]) -> int:
        """Move the file's resume point past the lines whose records are all stored (or
        that hold none), and save it; returns the new offset.

        Reads from the old resume point to the first line not acknowledged: a line without
        its newline is still being written and stops it, as does a record not stored
        (rejected or unsent: the next run reads it again). Cheap after an append: only the
        new part is read, and only from the last line start the run gave (`line_marks`)
        before that line. For a gzip file the offset stays 0 (it cannot be seeked; the
        acks still skip what was stored)."""
        entry = self._entry(path)
        if entry is None or entry.ident is None:
            return 0
        ident = entry.ident
        if str(path).lower().endswith(".gz"):
            return 0
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                if (st.st_dev, st.st_ino) != (ident.dev, ident.ino) or st.st_size < ident.size:
                    return entry.resume_off  # replaced or truncated since: the next run looks again
                off, line, held = settled_prefix(
                    f,
                    entry.resume_off,
                    entry.resume_line,
                    ident.size,
                    entry.acks.union(entry.passed),
                    entry.hold,
                    entry.marks,
                )
        except OSError:
            return entry.resume_off
        if held is not None and off - held[0] <= HOLD_MAX_BYTES:
            off, line = held
        if off > entry.resume_off:
            with self._lock, self._write():
                entry.resume_off, entry.resume_line = off, line
                self._compact(entry)
                self.conn.execute(
                    "UPDATE files SET resume_off=?, resume_line=?, compacted=?, updated=? "
                    "WHERE id=?",
                    (off, line, entry.compacted, time.time(), entry.id),
                )
        return off

    def _compact(self, entry: FileEntry) -> None:
        """Drop the stored ack blocks wholly before the resume point (never read again:
        reading starts there), keeping their count: a file followed for days keeps a
        journal the size of its unsettled tail, not of its history."""
        below = entry.resume_line // BLOCK_LINES
        if below <= 0:
            return
        for (bits,) in self.conn.execute(
            "SELECT bits FROM acks WHERE file_id=? AND block<?", (entry.id, below)
        ):
            entry.compacted += int.from_bytes(bytes(bits), "little").bit_count()
        self.conn.execute("DELETE FROM acks WHERE file_id=? AND block<?", (entry.id, below))
        self.conn.execute("DELETE FROM passed WHERE file_id=? AND block<?", (entry.id, below))

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """One transaction of a run's writes. A write that fails (a disk full since the
        journal was opened) stops the upload with one line naming the journal, not with
        sqlite's words for an internal error; what the server stored since the last write
        is sent again by the next run (the server upserts by call id)."""
        try:
            with self.conn:
                yield
        except sqlite3.Error as exc:
            raise UsageError(cannot_write("resume journal", self.path, exc)) from None

    def _entry(self, path: str | os.PathLike[str]) -> FileEntry | None:
        key = str(path)
        with self._lock:  # two threads acking a new file must register it once
            if key not in self._files:
                self.file(path)
            return self._files[key]

    def acked(self, path: str | os.PathLike[str]) -> AckSet:
        """The lines acknowledged so far (a live view; empty for stdin)."""
        entry = self._entry(path)
        return entry.acks if entry is not None else AckSet()

    def passed(self, path: str | os.PathLike[str]) -> AckSet:
        """The refused lines passed over so far (`pass_over`; a live view): a file read
        whole by every pass (a JSON array, YAML) skips them rather than refuse them again."""
        entry = self._entry(path)
        return entry.passed if entry is not None else AckSet()

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
            with self._write():
                self.conn.executemany(
                    "INSERT OR REPLACE INTO acks (file_id, block, bits) VALUES (?, ?, ?)",
                    [(entry.id, b, entry.acks.block(b)) for b in sorted(touched)],
                )

    def pass_over(self, path: str | os.PathLike[str], lines: Iterable[int]) -> None:
        """Lines validation refused (not JSON, not a record): with `pass_invalid`, `settle`
        may move past them, so a file that grows all day is not read again from its first
        bad line by every pass. They stay in that pass's rejected file; a later run over
        the file does not report them again (use --restart to see them again)."""
        if not self.pass_invalid:
            return
        entry = self._entry(path)
        if entry is None:
            return
        with self._lock:
            touched = entry.passed.add(line for line in lines if line > 0)
            if touched:
                with self._write():
                    self.conn.executemany(
                        "INSERT OR REPLACE INTO passed (file_id, block, bits) VALUES (?, ?, ?)",
                        [(entry.id, b, entry.passed.block(b)) for b in sorted(touched)],
                    )

    def done(self, path: str | os.PathLike[str]) -> None:
        """Mark the file finished (all its records stored or rejected). Not when its name
        holds another file by now: rotated away during the run, it may not have been read
        to its end (the reads stop at a file `Replaced`); the next run finds it by inode."""
        entry = self._entry(path)
        if entry is None or entry.ident is None:
            return
        try:
            st = os.stat(path)
        except OSError:
            return
        if (st.st_dev, st.st_ino) != (entry.ident.dev, entry.ident.ino):
            return
        with self._lock, self._write():
            self.conn.execute(
                "UPDATE files SET done=1, acked=?, updated=? WHERE id=?",
                (len(entry.acks), time.time(), entry.id),
            )

    def forget(self, path: str | os.PathLike[str]) -> None:
        """Drop what is known about the file (e.g. after the user chose to start over)."""
        entry = self._entry(path)
        if entry is None:
            return
        with self._lock, self.conn:
            self.conn.execute("DELETE FROM acks WHERE file_id=?", (entry.id,))
            self.conn.execute("DELETE FROM passed WHERE file_id=?", (entry.id,))
            self.conn.execute(
                "UPDATE files SET acked=0, done=0, resume_off=0, resume_line=0, compacted=0 "
                "WHERE id=?",
                (entry.id,),
            )
            entry.acks, entry.passed, entry.compacted = AckSet(), AckSet(), 0
            entry.resume_off = entry.resume_line = 0

    def swap_note(self, key: str, swap: Callable[[str | None], str]) -> None:
        """Replace the note `key` by what `swap` makes of it (`notes.swap_note`)."""
        notes.swap_note(self.conn, self._lock, key, swap)

    def forget_target(self) -> None:
        """Drop everything known of this target's files (the target lost what it had
        acknowledged): every file is then sent from its start."""
        with self._lock, self.conn:
            self.conn.execute("DELETE FROM files WHERE target=?", (self.target,))
            self._files.clear()

    def first_note(self, key: str, value: str) -> bool:
        """True the first time `key` has this `value` (`notes.first_note`)."""
        return notes.first_note(self.conn, self._lock, key, value)

    def close(self) -> None:
        """Settle every file of this run (see `settle`), then close."""
        with self._lock:
            keys = [k for k, e in self._files.items() if e is not None]
        for key in keys:
            with contextlib.suppress(sqlite3.Error, UsageError):
                self.settle(key)
        with self._lock, contextlib.suppress(sqlite3.Error):
            self.conn.close()
        release(self._locks)  # after the settle: the next run starts from what it saved

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
