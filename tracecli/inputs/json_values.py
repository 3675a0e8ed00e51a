"""JSON that is not one record a line: the elements of a JSON array (or JSON values one after
another, as `jq` writes them) cut out of a stream as raw bytes, and the one wording of a
value that is not JSON."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, NamedTuple

import orjson

from tracecli.diagnostics import Diagnostic, Location
from tracecli.inputs.streams import BOM


def json_error(raw: bytes, exc: orjson.JSONDecodeError) -> str:
    """The message for a line that is not JSON (invalid UTF-8 gets its own wording).

    The same whether or not the line still holds its newline (the file reader keeps it,
    the block reader splits it off): orjson would place an error at the end on "line 2".
    """
    if raw.endswith(b"\n"):
        raw = raw[:-1]
        try:
            orjson.loads(raw)
        except orjson.JSONDecodeError as again:
            exc = again
    msg = str(exc)
    if "utf-8" in msg.lower() or "surrogate" in msg.lower():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as uexc:
            return f"invalid UTF-8 at byte {uexc.start + 1}"
    if "recursion" in msg.lower() or "depth limit" in msg.lower():
        return "invalid JSON: nested too deeply (more than 1024 levels)"
    # orjson: "unexpected character: line 1 column 5 (char 4)"; the line is ours already.
    msg = msg.split(": line 1 column", 1)[0] if ": line 1 column" in msg else msg
    col = getattr(exc, "colno", None)
    where = f" at column {col}" if col else ""
    if _non_finite_at(raw, getattr(exc, "pos", None)):
        # what Python's json.dumps writes for float('nan') by default: not JSON
        msg = "NaN and Infinity are not JSON (write null, or the value as a string)"
    return f"invalid JSON{where}: {msg}"


def _non_finite_at(raw: bytes, pos: int | None) -> bool:
    if not isinstance(pos, int) or not (b"NaN" in raw or b"Infinity" in raw):
        return False
    text = raw.decode("utf-8", "replace")
    return text.startswith(("NaN", "Infinity"), pos) or text.startswith("-Infinity", pos - 1)


class RawValue(NamedTuple):
    line: int  # where the value starts
    raw: bytes


_OUTSIDE = re.compile(rb'[\[\]{}"]')  # what changes the depth, outside strings
_INSIDE = re.compile(rb'["\\]')  # what ends a string, or escapes the next byte
_NEXT = re.compile(rb"[^\s,]")  # the start of the next value (commas between are skipped)
_SCALAR_END = re.compile(rb"[\s,\]]")


def iter_json_values(
    stream: IO[bytes], path: str, block: int = 1 << 16
) -> Iterator[RawValue | Diagnostic]:
    """The raw bytes of each element of a JSON array (or of each of JSON values that
    follow one another), with the line where it starts, read incrementally: a scanner
    that only tracks strings and nesting depth, so memory holds one element and a block.
    Each element is parsed by the caller (orjson), exactly as a JSON line would be.
    A file cut short is one diagnostic at the element it cuts."""
    buf = bytearray()
    pos = 0
    line = 1  # the line at `pos`
    top = -1  # the depth of the elements: 1 inside `[...]`, 0 for values in a row
    depth = 0
    start = -1  # where the current element starts in buf; -1 between elements
    start_line = 0
    in_str = False
    esc = False
    closed = False  # the array's `]` was read
    eof = False
    first = True

    while True:
        if pos >= len(buf) or (
            start >= 0 and top == depth and not in_str and buf[start] not in b'{["'
        ):
            # more bytes (a scalar element is only known complete at its end)
            if pos < len(buf):
                m = _SCALAR_END.search(buf, pos)
                if m is not None or eof:
                    end = m.start() if m is not None else len(buf)
                    yield RawValue(start_line, bytes(buf[start:end]))
                    line += buf.count(b"\n", pos, end)
                    pos, start = end, -1
                    continue
            if eof:
                break
            keep = start if start >= 0 else pos
            if keep:
                del buf[:keep]
                pos -= keep
                if start >= 0:
                    start = 0
            more = stream.read(block)
            if not more:
                eof = True
                continue
            if first:
                first = False
                more = more[3:] if more.startswith(BOM) else more
            buf += more
            continue
        if esc:
            esc = False
            pos += 1
            continue
        if in_str:
            m = _INSIDE.search(buf, pos)
            end = m.start() if m is not None else len(buf)
            line += buf.count(b"\n", pos, end)
            if m is None:
                pos = end
                continue
            pos = end + 1
            if buf[end] == 0x5C:  # a backslash: the next byte is escaped
                esc = True
                continue
            in_str = False
            if depth == top:  # a string element
                yield RawValue(start_line, bytes(buf[start:pos]))
                start = -1
            continue
        if start < 0:  # between elements
            m = _NEXT.search(buf, pos)
            end = m.start() if m is not None else len(buf)
            line += buf.count(b"\n", pos, end)
            pos = end
            if m is None:
                continue
            c = buf[pos]
            if top < 0:  # the very first byte: an array, or values one after another
                top = 1 if c == 0x5B else 0
                if top == 1:
                    depth = 1
                    pos += 1
                    continue
            if closed:
                yield Diagnostic.at(
                    Location(path, line), "json", "invalid JSON: text after the array's closing ]"
                )
                return
            if top == 1 and c == 0x5D:  # `]`: the end of the array
                closed = True
                depth = 0
                pos += 1
                continue
            start, start_line = pos, line
            if c in b"{[":
                depth += 1
                pos += 1
            elif c == 0x22:
                in_str = True
                pos += 1
            continue
        m = _OUTSIDE.search(buf, pos)
        end = m.start() if m is not None else len(buf)
        line += buf.count(b"\n", pos, end)
        if m is None:
            pos = end
            continue
        pos = end + 1
        c = buf[end]
        if c == 0x22:
            in_str = True
        elif c in b"{[":
            depth += 1
        else:
            depth -= 1
            if depth <= top:
                yield RawValue(start_line, bytes(buf[start:pos]))
                start = -1
                depth = top
    if start >= 0:
        yield Diagnostic.at(
            Location(path, start_line),
            "json",
            "invalid JSON: the file ends inside this record (is it cut short?)",
        )
    elif top == 1 and not closed:
        yield Diagnostic.at(
            Location(path, line), "json", "invalid JSON: the array is not closed (`]` missing)"
        )
