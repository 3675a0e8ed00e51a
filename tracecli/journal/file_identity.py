"""What the journal knows a file by: its identity on disk (path, size, mtime, device and
inode, the hashes of its head and of the bytes before its end), its stored row, and the
comparisons that tell an unchanged file, an appended one, and a moved one apart."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from typing import IO, Any, NamedTuple

from tracecli.diagnostics import UsageError

HEAD_BYTES = 64 * 1024
TAIL_BYTES = 4096  # the bytes before a file's end that must be unchanged for an append


class Identity(NamedTuple):
    path: str
    size: int
    mtime_ns: int
    head: str
    tail: str = ""
    dev: int = 0
    ino: int = 0


class FileRow(NamedTuple):
    """A `files` row, as `Journal.file` compares it with the file on disk."""

    id: int
    path: str
    size: int
    mtime_ns: int
    head: str
    done: bool
    tail: str
    dev: int
    ino: int
    resume_off: int
    resume_line: int
    compacted: int


ROW_COLUMNS = (
    "id, path, size, mtime_ns, head, done, tail, dev, ino, resume_off, resume_line, compacted"
)


def hash_range(f: IO[bytes], start: int, length: int) -> str:
    f.seek(start)
    return hashlib.sha256(f.read(length)).hexdigest()


def prefix_hashes(f: IO[bytes], size: int) -> tuple[str, str]:
    """The hashes that stand for the file's first `size` bytes: its head (up to 64 KiB)
    and the 4 KiB before `size`. Reading these costs the same whatever the file's size."""
    head = hash_range(f, 0, min(size, HEAD_BYTES))
    start = max(0, size - TAIL_BYTES)
    return head, hash_range(f, start, size - start)


def unchanged(row: FileRow, ident: Identity) -> bool:
    same = (row.size, row.mtime_ns, row.head) == (ident.size, ident.mtime_ns, ident.head)
    return same and (not row.tail or row.tail == ident.tail)


def still_there(row: FileRow) -> bool:
    """Whether the file an entry was made for still begins, at its path, with what was
    seen (then a copy elsewhere is another upload, made on purpose)."""
    try:
        return same_prefix(row.path, row, os.stat(row.path).st_size)
    except (OSError, ValueError):  # gone, or a detached entry's name
        return False


def same_prefix(path: str | IO[bytes], row: FileRow, size: int) -> bool:
    """Whether the file still begins with the bytes an earlier run saw (an append).
    `path` may be the file already open (the one an identity was taken of)."""
    if not row.tail or size < row.size:
        return False
    try:
        if not isinstance(path, str):
            return prefix_hashes(path, row.size) == (row.head, row.tail)
        with open(path, "rb") as f:
            return prefix_hashes(f, row.size) == (row.head, row.tail)
    except OSError:
        return False


def identity(path: str | os.PathLike[str]) -> Identity | None:
    """The file's identity, or None when it is not a regular file (stdin, a pipe)."""
    f = open_regular(path)
    if f is None:
        return None
    with f:
        return identity_of(f, path)


def open_regular(path: str | os.PathLike[str]) -> IO[bytes] | None:
    """The regular file at `path`, open for reading (the caller closes it); None when it
    is not one (stdin, a pipe: never opened, it could block) or is gone."""
    if str(path) == "-":
        return None
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
    except OSError:
        return None
    try:
        f = open(path, "rb")  # noqa: SIM115 - returned open, the caller closes it
    except FileNotFoundError:  # gone since (rotated away): as if never there
        return None
    except OSError as exc:  # unreadable (permissions, an I/O error): one line, not a traceback
        raise UsageError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # replaced by a pipe meanwhile
        f.close()
        return None
    return f


def identity_of(f: IO[bytes], path: str | os.PathLike[str]) -> Identity:
    """The identity of the open file `f` (named `path`): its device, inode, size and
    hashes all from that one descriptor, so a rename of `path` meanwhile (a rotation)
    cannot give the identity of one file with the content of another."""
    st = os.fstat(f.fileno())
    try:
        head, tail = prefix_hashes(f, st.st_size)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    return Identity(
        os.path.realpath(path), st.st_size, st.st_mtime_ns, head, tail, st.st_dev, st.st_ino
    )


def identity_values(ident: Identity) -> tuple[int, int, str, str, int, int]:
    """The columns a `files` row keeps of an identity, in ROW order after the path:
    size, mtime_ns, head, tail, dev, ino."""
    return (ident.size, ident.mtime_ns, ident.head, ident.tail, ident.dev, ident.ino)


def stored_path(path: str) -> str | bytes:
    """A path as the journal's `files.path` can hold it. A name that is not UTF-8 is kept
    by Python as lone surrogates, which SQLite refuses (every upload of a folder holding
    one ended in a traceback): it goes as its bytes, and `file_row` reads it back."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def file_row(values: Sequence[Any]) -> FileRow:
    """A `files` row as read (its columns in `ROW_COLUMNS` order), the path as it was."""
    return FileRow(values[0], os.fsdecode(values[1]), *values[2:])
