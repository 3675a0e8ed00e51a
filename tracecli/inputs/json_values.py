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
    return _Scanner(stream, path, block).values()


class _Scanner:
    """The scan of `iter_json_values`: where it is in the buffer, the line there, the depth,
    and the element being cut out. A step reads up to the next byte that matters (a quote,
    a bracket, the start of the next element) with a regular expression, so Python runs
    once per token, not once per byte."""

    __slots__ = (
        "block", "buf", "closed", "depth", "done", "eof", "esc", "first", "in_str", "line",
        "path", "pos", "read", "start", "start_line", "top",
    )  # fmt: skip

    def __init__(self, stream: IO[bytes], path: str, block: int) -> None:
        self.read = stream.read
        self.path = path
        self.block = block
        self.buf = bytearray()
        self.pos = 0
        self.line = 1  # the line at `pos`
        self.top = -1  # the depth of the elements: 1 inside `[...]`, 0 for values in a row
        self.depth = 0
        self.start = -1  # where the current element starts in buf; -1 between elements
        self.start_line = 0
        self.in_str = False
        self.esc = False
        self.closed = False  # the array's `]` was read
        self.eof = False
        self.first = True
        self.done = False

    def values(self) -> Iterator[RawValue | Diagnostic]:
        while not self.done:
            item = self._step()
            if item is not None:
                yield item
        if self.start >= 0:
            yield Diagnostic.at(
                Location(self.path, self.start_line),
                "json",
                "invalid JSON: the file ends inside this record (is it cut short?)",
            )
        elif self.top == 1 and not self.closed:
            yield Diagnostic.at(
                Location(self.path, self.line),
                "json",
                "invalid JSON: the array is not closed (`]` missing)",
            )

    def _step(self) -> RawValue | Diagnostic | None:
        """One stretch of scanning; what it completes, if anything."""
        buf = self.buf
        if self.pos >= len(buf) or (
            # a scalar element is only known complete at its end
            self.start >= 0
            and self.top == self.depth
            and not self.in_str
            and buf[self.start] not in b'{["'
        ):
            return self._scalar_or_more()
        if self.start < 0:
            return self._between()
        return self._element()

    def _find(self, pattern: re.Pattern[bytes]) -> int:
        """Move to the next match of `pattern`, counting the lines passed: its offset, or
        -1 when the buffer holds none (then `pos` is at the buffer's end)."""
        m = pattern.search(self.buf, self.pos)
        end = m.start() if m is not None else len(self.buf)
        self.line += self.buf.count(b"\n", self.pos, end)
        self.pos = end
        return end if m is not None else -1

    def _cut(self) -> RawValue:
        """The element from its start to `pos`; the scan is then between elements."""
        value = RawValue(self.start_line, bytes(self.buf[self.start : self.pos]))
        self.start = -1
        return value

    def _scalar_or_more(self) -> RawValue | None:
        """A scalar element completed at its end, or more bytes read (dropping what is done
        with); at the end of the stream, the scan is done."""
        if self.pos < len(self.buf):
            m = _SCALAR_END.search(self.buf, self.pos)
            if m is not None or self.eof:
                end = m.start() if m is not None else len(self.buf)
                self.line += self.buf.count(b"\n", self.pos, end)
                self.pos = end
                return self._cut()
        if self.eof:
            self.done = True
            return None
        keep = self.start if self.start >= 0 else self.pos
        if keep:
            del self.buf[:keep]
            self.pos -= keep
            if self.start >= 0:
                self.start = 0
        more = self.read(self.block)
        if not more:
            self.eof = True
            return None
        if self.first:
            self.first = False
            more = more[3:] if more.startswith(BOM) else more
        self.buf += more
        return None

    def _between(self) -> Diagnostic | None:
        """Between elements: the start of the next one, or the array's closing `]`."""
        if self._find(_NEXT) < 0:
            return None
        c = self.buf[self.pos]
        if self.top < 0:  # the very first byte: an array, or values one after another
            self.top = 1 if c == 0x5B else 0
            if self.top == 1:
                self.depth = 1
                self.pos += 1
                return None
        if self.closed:
            self.done = True
            return Diagnostic.at(
                Location(self.path, self.line),
                "json",
                "invalid JSON: text after the array's closing ]",
            )
        if self.top == 1 and c == 0x5D:  # `]`: the end of the array
            self.closed = True
            self.depth = 0
            self.pos += 1
            return None
        self.start, self.start_line = self.pos, self.line
        if c in b"{[":
            self.depth += 1
            self.pos += 1
        elif c == 0x22:
            self.in_str = True
            self.pos += 1
        return None

    def _element(self) -> RawValue | None:
        """Inside a string, object or array element: to its end (the quote that closes it,
        the bracket that brings the depth back), or to the end of the buffer. The loop
        that most bytes go through: it runs on local variables."""
        buf, pos, line, depth, top = self.buf, self.pos, self.line, self.depth, self.top
        in_str, esc = self.in_str, self.esc
        size = len(buf)
        done = False
        while pos < size:
            if esc:
                esc = False
                pos += 1
                continue
            m = (_INSIDE if in_str else _OUTSIDE).search(buf, pos)
            end = m.start() if m is not None else size
            line += buf.count(b"\n", pos, end)
            pos = end if m is None else end + 1
            if m is None:
                break
            c = buf[end]
            if in_str:
                if c == 0x5C:  # a backslash: the next byte is escaped
                    esc = True
                    continue
                in_str = False
                done = depth == top  # a string element ends with its quote
            elif c == 0x22:
                in_str = True
            elif c in b"{[":
                depth += 1
            else:
                depth -= 1
                done = depth <= top
            if done:
                depth = top
                break
        self.pos, self.line, self.depth, self.in_str, self.esc = pos, line, depth, in_str, esc
        return self._cut() if done else None
