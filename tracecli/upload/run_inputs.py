"""What the upload run asks of its input files apart from reading them: which format one
is (sniffed), whether it is OpenTelemetry, how many records are left unread when a dead
server stops the run, and the one line for a read error."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from tracecli.diagnostics import Diagnostic, Location
from tracecli.inputs.reader import InputFormat, Source, count_lines, os_message, read_as_stream
from tracecli.upload.otlp import OTLP

UNREAD_COUNT_BYTES = 1 << 30  # at most this much unread input is counted at a stop


def count_unread(
    files: Sequence[str],
    sizes: Sequence[int | None],
    bytes_done: Sequence[int],
    line_base: Sequence[int],
    acked_lines: Sequence[Collection[int]],
) -> int | None:
    """Records of the input not read when a dead server stopped the run: the lines after
    what was read of each plain JSON-lines file (counted, up to UNREAD_COUNT_BYTES in
    all: a rough but honest "records unsent"); None when a file whose rest cannot be
    counted so (gzip, YAML, a JSON array, stdin) was not read to its end.

    Per input: its size (None: unknown), the bytes read, the lines read, and the lines an
    earlier run stored (not counted again)."""
    total = 0
    budget = UNREAD_COUNT_BYTES
    for i, path in enumerate(files):
        size = sizes[i]
        done = bytes_done[i]
        if size is not None and done >= size:
            continue
        if size is None or read_as_stream(path) or source_format(path) != "jsonl":
            return None
        budget -= size - done
        if budget < 0:
            return None
        n = count_lines(path, done)
        if n is None:
            return None
        # less what an earlier run stored (resumed, then stopped again)
        base = line_base[i]
        n -= sum(1 for line in acked_lines[i] if line > base)
        total += max(n, 0)
    return total


def source_format(path: str) -> str | None:
    src = source(path, "jsonl")
    if src is None:
        return None
    return "foreign" if src.foreign is not None else src.fmt


def is_otlp(path: str, stdin_format: InputFormat) -> bool:
    src = source(path, stdin_format)
    return src is not None and src.foreign_kind == OTLP


def source(path: str, stdin_format: InputFormat) -> Source | None:
    """The input as a Source (YAML, or JSON lines sniffed for a JSON array or another
    tool's format, see `reader.sniff`); None when it cannot even be looked at (the read
    then says why)."""
    try:
        src = Source.open(path, stdin_format)
    except OSError:
        return None
    src.refuse_foreign = True
    return src


def read_error(path: str, line: int, exc: BaseException, prefix: str = "") -> Diagnostic:
    return Diagnostic.at(Location(path, line), "read-error", prefix + os_message(exc))
