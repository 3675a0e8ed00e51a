"""Opening an input as bytes: stdin, a pipe or a file, gunzipped when it is gzip, and what
can be known of a file before reading it (regular or not, its lines from an offset)."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import stat
import sys
from collections.abc import Iterator
from typing import IO, cast

BOM = b"\xef\xbb\xbf"
STDIN = "-"
STDIN_NAME = "<stdin>"  # how stdin is named in diagnostics
GZIP_MAGIC = b"\x1f\x8b"
HEAD_BYTES = 64 << 10  # the head of an input its format is told from


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
    elif not regular_file(path):
        raw = pipe_stream(path)
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


_PIPES: dict[str, io.BufferedReader] = {}


def pipe_stream(path: str) -> io.BufferedReader:
    """The one reader of a pipe given by name (`<(zcat f.gz)`, a FIFO, `/dev/fd/N`), which
    can be read only once, as stdin: opened at the first ask, its head read then (for
    `sniff.head_of` to look at with `peek`) and kept in front of the rest, so that every
    later open of the path in this process gets the same stream, from its start, until
    it is closed."""
    got = _PIPES.get(path)
    if got is not None and not got.closed:
        return got
    raw = open(path, "rb", buffering=0)  # noqa: SIM115 - closed with the stream
    head = _pipe_head(raw)
    got = io.BufferedReader(_Headed(raw, head), max(len(head), io.DEFAULT_BUFFER_SIZE))
    _PIPES[path] = got
    return got


@contextlib.contextmanager
def read_pipe_from(path: str, stream: IO[bytes]) -> Iterator[None]:
    """While in the block, the named pipe `path` reads as `stream` (what was read from it
    already, kept in a file: `upload.stdin_live`), as `pipe_stream` gives it."""
    _PIPES[path] = io.BufferedReader(stream, HEAD_BYTES)  # type: ignore[arg-type]
    try:
        yield
    finally:
        _PIPES.pop(path, None)


def _pipe_head(raw: IO[bytes]) -> bytes:
    """A pipe's first bytes, enough to tell its format: up to its end or `HEAD_BYTES`, or
    its first line once it is whole and not a lone `{` or `[` (a JSON line tells all;
    a writer still writing is not waited for beyond it)."""
    head = b""
    while len(head) < HEAD_BYTES:
        more = raw.read(HEAD_BYTES - len(head))
        if not more:
            break
        head += more
        if head[:2] == GZIP_MAGIC:
            continue
        text = head.removeprefix(BOM).lstrip()
        end = text.find(b"\n")
        if end >= 0 and text[:end].strip() not in (b"{", b"["):
            break
    return head


class _Headed(io.RawIOBase):
    """A pipe's head, read already, then the rest of the pipe."""

    def __init__(self, raw: IO[bytes], head: bytes) -> None:
        super().__init__()
        self._raw = raw
        self._head = head

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        return self._raw.readinto(b)  # type: ignore[attr-defined, no-any-return]

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()
