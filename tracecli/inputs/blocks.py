"""JSON-lines input cut into blocks of whole lines: the unit a worker reads and checks.

`validate` and `upload` both read big JSON-lines files this way (a file as byte ranges
that end at a line end, a stream as blocks read line by line) and both turn a block into
its lines with `block_lines`, so the two agree on where lines begin and end and on the
byte-order mark by construction.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import IO

from tracecli.inputs.same_file import FileKey, open_same
from tracecli.inputs.streams import BOM


def block_lines(data: bytes, at_start: bool) -> list[bytes]:
    """The lines of a block of whole lines, without their newlines. `at_start`: the block
    begins its input, where a UTF-8 byte-order mark may open the first line (dropped)."""
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the block ends with a newline: no line after it
    if at_start and lines and lines[0].startswith(BOM):
        lines[0] = lines[0][3:]
    return lines


def read_range(path: str, offset: int, length: int, key: FileKey | None = None) -> bytes:
    """One byte range of a plain file (a worker's unit of work); OSError if unreadable,
    `Replaced` when the name no longer holds the file `key` (`same_file`)."""
    with open_same(path, key) as f:
        f.seek(offset)
        return f.read(length)


def range_error(exc: OSError) -> str:
    """What to say when a range cannot be read."""
    return f"file cannot be read from here on: {exc.strerror or exc}"


def plan_ranges(
    path: str, size: int, block: int, start: int = 0, key: FileKey | None = None
) -> list[tuple[int, int]]:
    """Split a file (from `start`, a line start) into ranges of about `block` bytes that
    end at a line end (of the file `key`, see `read_range`)."""
    ranges = []
    with open_same(path, key) as f:
        while start < size:
            f.seek(min(start + block, size))
            if start + block < size:
                f.readline()
            end = min(f.tell(), size) if start + block < size else size
            ranges.append((start, end - start))
            start = end
    return ranges


def read_blocks(stream: IO[bytes], block: int) -> Iterator[bytes | Exception]:
    """Whole-line blocks of a stream (gzip, stdin), then the read error if one stops it.

    Line by line (C-speed `readline`), so the lines read before a truncated gzip's
    error are kept, as the serial reader keeps them.
    """
    buf: list[bytes] = []
    size = 0
    readline = stream.readline
    try:
        while True:
            line = readline()
            if not line:
                break
            buf.append(line)
            size += len(line)
            if size >= block:
                yield b"".join(buf)
                buf = []
                size = 0
    except (EOFError, OSError, zlib.error) as exc:
        if buf:
            yield b"".join(buf)
        yield exc
        return
    if buf:
        yield b"".join(buf)
