"""Where a file's settled prefix ends: the lines from the resume point on that are all
stored (or hold no record), found at C speed.

`Journal.settle` runs once per file at the end of every upload (and every pass of
--follow); asked line by line (a bitmap test and a strip per line) it cost a few
microseconds per record of the file, on the process that every record passes through.
Here the bitmap says which line is the first one not stored (`Bitmap.next_missing`), the
file is read in blocks whose newlines are counted, not split, and only that line is
looked at (a blank line holds no record: the search goes on after it).

The run that just read the file knows where its blocks' lines start (`marks`: a plain
file is cut into blocks of whole lines, each block's lines counted by the worker): the
search starts from the last of those before the first line not stored, so a file read
whole and stored whole is not read again (its newlines counted cost ~5 instructions a
byte, 3 µs a call, on the reading process at the end of every run).
"""

from __future__ import annotations

import re
from typing import BinaryIO

from tracecli.packing import Bitmap

READ_BYTES = 1 << 20  # the file is read in blocks of this size


def _after_lines(data: bytes, k: int, count: int) -> int:
    """The offset in `data` just past its first `k` newlines, of the `count` it holds:
    the usual answer (all of them) from the last one; else one split, once per file."""
    if k <= 0:
        return 0
    if k == count:
        return data.rindex(b"\n") + 1
    return len(data) - len(data.split(b"\n", k)[-1])


# A line that holds no record (what `bytes.strip` leaves empty), at the start of a block
# of whole lines or after a newline.
_BLANK = re.compile(rb"(?:^|\n)[ \t\r\x0b\x0c]*\n")
_NEWLINE = re.compile(rb"\n")

Marks = list[tuple[int, int]]  # line starts a run read: (offset, lines before it), in order


def _known_start(
    f: BinaryIO, off: int, line: int, last: int, size: int, marks: Marks
) -> tuple[int, int]:
    """The furthest line start in `marks` after lines `line`..`last` (all settled), within
    `size`; (`off`, `line`) when none is known. Marks count from where this run read the
    file: they are used only when (`off`, `line`) is one of them (the numbering agrees),
    and one is taken only after a newline (a last block may end in a line being written)."""
    if last <= line or (off, line) not in marks:
        return off, line
    for o, n in reversed(marks):
        if n <= line:
            break
        if n <= last and o <= size:
            f.seek(o - 1)
            if f.read(1) == b"\n":
                return o, n
    return off, line


def settled_prefix(
    f: BinaryIO,
    off: int,
    line: int,
    size: int,
    done: Bitmap,
    hold: int | None,
    marks: Marks | None = None,
) -> tuple[int, int, tuple[int, int] | None]:
    """(offset, lines before it, held) where the settled prefix of `f` ends, read from
    `off` (`line` lines before it) up to `size` bytes: it goes on while each line ends in
    a newline within `size` and is in `done` (stored, or passed over), or is blank.

    `held`: the (offset, lines before it) of line `hold` (1-based), or of the first line
    read if that is later, when the prefix passes it (a start whose end is awaited keeps
    the resume point before it); None otherwise. `marks`: line starts known (see the
    module), from which the search may start."""
    stop = done.next_missing(line + 1)  # the first line (1-based) not stored
    if marks:  # lines before `stop` (and before `hold`) are settled: start at the last known
        last = stop - 1 if hold is None else min(stop - 1, hold - 1)
        off, line = _known_start(f, off, line, last, size, marks)
    f.seek(off)
    data = b""
    left = size - off  # bytes still to read within `size`
    held: tuple[int, int] | None = None
    while True:
        # lines line+1 .. line+n end within `data` (whole lines only)
        n = count = data.count(b"\n")
        ends = stop <= line + n
        if ends and _BLANK.search(data) is not None:
            # blank lines hold no record: the prefix goes on past those not stored
            starts = [0, *(m.end() for m in _NEWLINE.finditer(data))]
            while stop <= line + n:
                k = stop - line - 1
                if data[starts[k] : starts[k + 1]].strip():
                    break
                stop = done.next_missing(stop + 1)
            ends = stop <= line + n
        if ends:
            n = stop - line - 1  # the prefix ends before that line
        if hold is not None and held is None:
            first = max(hold, line + 1)
            if first <= line + n:
                held = (off + _after_lines(data, first - line - 1, count), first - 1)
        cut = _after_lines(data, n, count)
        off += cut
        line += n
        if ends or left <= 0:
            # a line not stored, or nothing more within `size` (a last line without its
            # newline is still being written)
            return off, line, held
        block = f.read(min(READ_BYTES, left))
        if not block:
            return off, line, held
        left -= len(block)
        data = data[cut:] + block
