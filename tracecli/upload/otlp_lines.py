"""OTLP files read line by line, each line kept as read; `validate`'s entries of a line.

Apart from `tracecli.upload.otlp` (the upload's side), so `validate` imports no more than
it needs (no HTTP client).
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import orjson

from tracecli.check.entries import Diag, Entry
from tracecli.diagnostics import Diagnostic, Location
from tracecli.inputs.json_values import iter_json_values, json_error
from tracecli.inputs.reader import Source
from tracecli.inputs.sniff import OTLP, SNIFF_BYTES, sniff
from tracecli.inputs.streams import BOM, STDIN_NAME, open_stream, os_message
from tracecli.otel.calls import Call, SpanCalls
from tracecli.schema.fastcheck import Facts
from tracecli.upload.lines import REF_START, find_ref
from tracecli.upload.validate_blocks import examine, too_large
from tracecli.wire.encode import SERVER_MAX_BYTES


class RawLine:
    """One line of an OTLP file: its number, its bytes and its value."""

    __slots__ = ("line", "raw", "value")

    def __init__(self, line: int, raw: bytes, value: Any) -> None:
        self.line = line
        self.raw = raw
        self.value = value


def raw_lines(path: str, display: str) -> Iterator[tuple[int, bytes] | Diagnostic]:
    """The lines of an OTLP file (gzip too, stdin as `-`) as read: (number, bytes), a BOM
    taken off the first; a file that cannot be read (on), one diagnostic."""
    try:
        stream = open_stream(path)
    except OSError as exc:
        yield Diagnostic.at(Location(display, 0), "read-error", os_message(exc))
        return
    lineno = 0
    try:
        if _pretty(stream, path):
            yield from _requests_of(stream, display)
            return
        for raw in _lines(stream):
            lineno += 1
            if lineno == 1 and raw.startswith(BOM):
                raw = raw[3:]
            yield lineno, raw
    except (EOFError, OSError, zlib.error) as exc:
        yield Diagnostic.at(
            Location(display, lineno + 1),
            "read-error",
            f"file cannot be read from here on: {os_message(exc)}",
        )
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def _pretty(stream: IO[bytes], path: str) -> bool:
    """Whether the file holds its requests pretty-printed over many lines (`jq .`, the
    OTLP examples) or as a JSON array, as `sniff` tells it from the bytes buffered
    (`convert` reads them so). Peeked, not read: stdin and pipes are read once."""
    peek = getattr(stream, "peek", None)
    try:
        head = bytes(peek(SNIFF_BYTES)) if peek is not None else b""
    except (OSError, ValueError, EOFError, zlib.error):
        return False  # the read says why
    return sniff(head, path.endswith((".json", ".json.gz"))).fmt == "json"


def _requests_of(stream: IO[bytes], display: str) -> Iterator[tuple[int, bytes] | Diagnostic]:
    """Each request of a pretty-printed file as one line, placed at the line where it
    starts: its line breaks made spaces (a JSON string holds none), so what is kept of it
    (the rejected file) stays one line."""
    for item in iter_json_values(stream, display):
        if isinstance(item, Diagnostic):
            yield item
        else:
            yield item.line, item.raw.replace(b"\r", b" ").replace(b"\n", b" ") + b"\n"


READ_BYTES = 256 << 10


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    """A stream's lines as iterating it gives them (each with its `\n`, the last one
    without when the stream does not end with one), read in chunks: a file object finds a
    line's end byte by byte when the line outgrows its 8 KiB buffer (~5 instructions a
    byte, a seventh of orjson's parse of an OTLP line), a chunk's `find` with `memchr`.
    `read1`: a pipe's lines come as they are written."""
    read = getattr(stream, "read1", None) or stream.read
    pending: list[bytes] = []  # a line's start, in the chunks before (each copied once)
    while True:
        chunk = read(READ_BYTES)
        if not chunk:
            break
        find = chunk.find  # (a one-byte `find` is a memchr; `split` tests each byte)
        start = 0
        end = find(b"\n") + 1
        if pending and end:
            pending.append(chunk[:end])
            yield b"".join(pending)
            pending = []
            start, end = end, find(b"\n", end) + 1
        while end:
            yield chunk[start:end]
            start, end = end, find(b"\n", end) + 1
        if start < len(chunk):
            pending.append(chunk[start:] if start else chunk)
    if pending:
        yield b"".join(pending)


_BARE_REF = REF_START[1:]  # `weave`: in every reference, quoted or not
_ESCAPE = b"\\u00"  # how an escaped letter of `weave` begins


def no_ref(raw: bytes) -> bool:
    """`find_ref(raw) is None`: the line surely names no reference. Most lines hold neither
    `weave` nor `\\u00`, which two `find`s tell (~7k instructions a span on OTLP lines,
    where the block's two regex searches, `block_may_ref`, took ~20k: its escape search
    runs whenever a block holds a backslash, and OTLP's JSON text always does)."""
    if raw.find(_BARE_REF) < 0 and raw.find(_ESCAPE) < 0:
        return True
    return find_ref(raw) is None


def parse_line(display: str, lineno: int, raw: bytes) -> RawLine | Diagnostic | None:
    """One line parsed (None for a blank one)."""
    try:
        return RawLine(lineno, raw, orjson.loads(raw))
    except orjson.JSONDecodeError as exc:
        if raw.strip():
            return Diagnostic.at(Location(display, lineno), "json", json_error(raw, exc))
        return None


def read_lines(path: str, display: str) -> Iterator[RawLine | Diagnostic]:
    """The lines of an OTLP file parsed, each kept as read."""
    for item in raw_lines(path, display):
        got = item if isinstance(item, Diagnostic) else parse_line(display, *item)
        if got is not None:
            yield got


_NEAR_LIMIT = SERVER_MAX_BYTES // 2  # calls this large are measured as `too_large` does


def _json_size(call: dict[str, Any]) -> int | None:
    """The size of a call as orjson writes it; None when orjson cannot write it."""
    try:
        return len(orjson.dumps(call))
    except orjson.JSONEncodeError:
        return None


def on_span(field: str, where: str) -> str:
    """A call field named on the span it came from."""
    return f"{where} (as a call: {field})" if field else where


# -- validate ------------------------------------------------------------------------------
def checked(call: dict[str, Any], line: int, path: str, where: str, plain: bool) -> list[Entry]:
    """`validate`'s entries for a span's call (see `tracecli.check.entries`), named on the
    span. `plain`: its values are JSON's own and its line names no reference."""
    mine: list[Entry] = []
    size = _json_size(call) if plain else None
    # JSON's own values (orjson writes them, so no wide integer, lone surrogate or deep
    # nesting) and no reference: the fast check answers as the full one would, as it
    # does for a line of a JSONL file
    examine(call, line, path, mine, size is not None)
    if size is None or size > _NEAR_LIMIT:
        too_large(call, line, mine)
    out: list[Entry] = []
    for e in mine:
        if type(e) is Diag:
            e = e._replace(field=on_span(e.field, where))
        elif type(e) is Facts and e.kind in ("complete", "start", "end"):
            e = e._replace(parent_id=None)  # parents: the OTLP checks'
        out.append(e)
    return out


@dataclass(frozen=True, slots=True)
class RefusedSpan(Diagnostic):
    """A span's refusal that carries the span as it was read (a one-span request): what the
    rejected file holds, so that a fixed span can be uploaded again. Said and counted as
    the diagnostic it is; `original` is not part of what it says."""

    original: Any = None

    @classmethod
    def of(cls, d: Diagnostic, original: Any) -> RefusedSpan:
        return cls(d.path, d.line, d.field, d.code, d.severity, d.message, original)

    def to_dict(self) -> dict[str, Any]:
        d = Diagnostic.to_dict(self)
        d.pop("original", None)
        return d


class OtlpCalls:
    """An OTLP input read as the Weave calls its spans become, in the shape of a `Source`
    (`(Location, call)` items, diagnostics for spans refused), for the Freeplay upload,
    which converts Weave calls."""

    def __init__(self, src: Source, calls: SpanCalls) -> None:
        self.path = src.path
        self.fmt = src.fmt
        self.size = src.size
        self.foreign = None
        self.foreign_kind = OTLP
        self.refuse_foreign = False
        self.bytes_read = 0
        self.records = 0
        self._calls = calls

    def __iter__(self) -> Iterator[tuple[Location, Any] | Diagnostic]:
        path = "-" if self.path == STDIN_NAME else self.path
        for item in read_lines(path, self.path):
            if isinstance(item, Diagnostic):
                yield item
                continue
            self.bytes_read += len(item.raw)
            for got in self._calls.of_line(Location(self.path, item.line), item.value):
                self.records += 1
                if isinstance(got, Call):
                    yield got.loc, got.call
                else:  # the span as read goes with it, for the rejected file
                    yield RefusedSpan.of(got.diagnostic, got.original)
        self.bytes_read = self.size or self.bytes_read
