"""Opening an input as bytes: stdin, a pipe or a file, gunzipped when it is gzip, and what
can be known of a file before reading it (regular or not, its lines from an offset)."""

from __future__ import annotations

import gzip
import os
import stat
import sys
from typing import IO, cast

BOM = b"\xef\xbb\xbf"
STDIN = "-"
STDIN_NAME = "<stdin>"  # how stdin is named in diagnostics
GZIP_MAGIC = b"\x1f\x8b"


def os_message(exc: BaseException) -> str:
    """What went wrong reading, in the OS's words when it has them."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def stream_position(stream: IO[bytes]) -> int:
    """Bytes of the underlying file consumed by a gzip stream (progress against the file's
    size); 0 for stdin and pipes, whose size is not known."""
    fileobj = getattr(stream, "fileobj", None)
    try:
        return int(fileobj.tell()) if fileobj is not None else 0
    except (OSError, ValueError):
        return 0


def count_lines(path: str, offset: int = 0) -> int | None:
    """The lines of a file from `offset` (a line's start) to its end, or None when it
    cannot be read: about the records a JSON-lines file holds there (a blank line, rare,
    counts too)."""
    n = 0
    last = b"\n"
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            for block in iter(lambda: f.read(1 << 20), b""):
                n += block.count(b"\n")
                last = block[-1:]
    except OSError:
        return None
    return n + (0 if last == b"\n" else 1)


def regular_file(path: str) -> bool:
    """A regular file, which can be read in ranges by its size; a pipe (`<(zcat f.gz)`)
    or a device reports a size of 0 and must be read as a stream to its end."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return True  # let the read say what is wrong


def file_head(path: str, n: int = 2) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""  # let the read say what is wrong


def read_as_stream(path: str) -> bool:
    """Whether `path` must be read front to back (stdin, a pipe, gzip by its suffix or its
    first bytes) rather than in byte ranges of a plain file."""
    if path == STDIN or path.lower().endswith(".gz") or not regular_file(path):
        return True
    return file_head(path) == GZIP_MAGIC


def open_stream(path: str) -> IO[bytes]:
    """The bytes of stdin, a pipe or a file, gunzipped when they are gzip: known by the
    suffix, or by the first two bytes whatever the name (a gzip file piped in)."""
    raw: IO[bytes]
    if path == STDIN:
        raw = sys.stdin.buffer
    else:
        if path.lower().endswith(".gz"):
            return cast(IO[bytes], gzip.open(path, "rb"))
        raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    peek = getattr(raw, "peek", None)
    if peek is not None and peek(2)[:2] == GZIP_MAGIC:
        return cast(IO[bytes], _GzipOver(raw))
    return raw


class _GzipOver(gzip.GzipFile):
    """A gzip stream that closes what it reads from (a pipe we opened), never stdin."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__(fileobj=raw, mode="rb")
        self._source = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._source is not sys.stdin.buffer:
                self._source.close()
