"""What the upload run asks of its input files apart from reading them: which format one
is (sniffed), whether it is OpenTelemetry, how many records are left unread when a dead
server stops the run, and the one line for a read error."""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracecli.diagnostics import Diagnostic, Location, UsageError
from tracecli.inputs.reader import InputFormat, Source
from tracecli.inputs.same_file import FileKey, Replaced, open_same
from tracecli.inputs.sniff import OTLP
from tracecli.inputs.streams import STDIN, count_lines, os_message, read_as_stream, regular_file
from tracecli.inputs.watch import whole_lines_end, whole_lines_end_in
from tracecli.journal.acks import AckSet
from tracecli.journal.resume import Journal

UNREAD_COUNT_BYTES = 1 << 30  # at most this much unread input is counted at a stop
_EMPTY: frozenset[int] = frozenset()


@dataclass(slots=True)
class InputState:
    """Where the run stands in each input (lists indexed as the inputs), and what the
    journal says an earlier run stored of it."""

    sizes: list[int | None]  # None: unknown (a pipe, stdin)
    bytes_done: list[int]
    line_base: list[int]  # lines read before the next block
    acked_lines: list[Any]  # lines stored by an earlier run (a live view of the journal)
    resume: list[tuple[int, int]]  # (offset, lines before it): the acknowledged prefix
    compacted: list[int]  # acked lines before it the journal no longer lists
    bytes_total: int | None = 0
    # line starts read in each plain input, (offset, lines before it), for the journal's
    # settle (`Journal.line_marks`): where reading began, then each block's end
    marks: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    # the file each journaled input is (device, inode): its reads are of that file only
    keys: dict[int, FileKey] = field(default_factory=dict)

    @classmethod
    def empty(cls, n: int) -> InputState:
        return cls([None] * n, [0] * n, [0] * n, [_EMPTY] * n, [(0, 0)] * n, [0] * n)

    def look(self, files: Sequence[str], journal: Journal | None, follow: bool) -> list[bool]:
        """Sizes and the journal's state of every input; whether each changed since."""
        changed = []
        for i, path in enumerate(files):
            if journal is not None:
                st = journal.file(path)
                changed.append(st.changed)
                if st.acked:  # (a live view: lines acked by this run are not looked up)
                    self.acked_lines[i] = journal.acked(path)
                self.resume[i] = (st.resume_offset, st.resume_line)
                self.compacted[i] = st.compacted
                if st.ino:
                    self.keys[i] = FileKey(st.dev, st.ino)
            else:
                changed.append(False)
            if path == STDIN or not regular_file(path):  # a pipe: no size to show
                self.bytes_total = None
                continue
            try:
                size = self._size(i, path, follow)
            except Replaced:
                size = 0  # rotated away since its identity was taken: the next run finds it
            except OSError:
                if not follow:
                    raise
                size = 0  # gone since the follow looked (rotated away): the next look knows
            self.sizes[i] = size
            if self.bytes_total is not None:
                self.bytes_total += size
        return changed

    def _size(self, i: int, path: str, follow: bool) -> int:
        """The size of input `i`, of the very file the journal took (`keys`): in a follow,
        up to its last whole line (a last line still being written waits for the next pass)."""
        key = self.keys.get(i)
        if key is None:  # not journaled: by name, as before
            size = os.path.getsize(path)
            return whole_lines_end(path, size) if follow else size
        with open_same(path, key) as f:
            size = os.fstat(f.fileno()).st_size
            return whole_lines_end_in(f, size) if follow else size

    def resume_at(self, i: int, journal: Journal | None, path: str) -> tuple[int, int]:
        """(offset, records before it) where a plain file is read from: after the prefix
        an earlier run stored, when the file still holds it (appended), else its start.
        Those records count as read and skipped. The line starts to come are told to the
        journal (`Journal.line_marks`: from here, then each block's end, `block_read`)."""
        size = self.sizes[i] or 0
        offset, lines = self.resume[i] if self.resume[i][0] <= size else (0, 0)
        self.line_base[i] = lines
        self.bytes_done[i] = offset
        if journal is not None:
            self.marks[i] = marks = [(offset, lines)]
            journal.line_marks(path, marks)
        if not lines:
            return offset, 0
        acked = self.acked_lines[i]
        before = acked.count_upto(lines) if isinstance(acked, AckSet) else 0
        return offset, before + self.compacted[i]

    def block_read(self, i: int, end: int, lines: int) -> None:
        """A block of input `i` read up to `end`, `lines` lines (counted in `line_base`):
        of a plain input, where its lines end is a line start for the journal; a range
        that could not be read (no line) ends those."""
        self.bytes_done[i] = end
        marks = self.marks.get(i)
        if marks is not None:
            if lines:
                marks.append((end, self.line_base[i]))
            else:
                del self.marks[i]

    def unread(self, files: Sequence[str]) -> int | None:
        """The records left unread (see `count_unread`)."""
        return count_unread(files, self.sizes, self.bytes_done, self.line_base, self.acked_lines)


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


def sources_unread(
    files: Sequence[str], sources: Sequence[Any], acked: Sequence[Any]
) -> int | None:
    """`count_unread` of inputs read through `Source`s (a Freeplay upload), taken where
    they stand: before they are closed (a closed source counts as read to its end)."""
    sizes = [getattr(s, "size", None) for s in sources]
    done = [getattr(s, "bytes_read", 0) for s in sources]
    lines = [getattr(s, "line", 0) for s in sources]
    return count_unread(files, sizes, done, lines, acked)


def source_format(path: str) -> str | None:
    src = source(path, "jsonl")
    if src is None:
        return None
    return "foreign" if src.foreign is not None else src.fmt


def otlp_inputs(files: Sequence[str], stdin_format: InputFormat, only: bool) -> set[int]:
    """The inputs that are OpenTelemetry traces files (read through their converted
    calls); `only` (--mode otel): a UsageError unless they all are."""
    otlp = {i for i, f in enumerate(files) if is_otlp(f, stdin_format)}
    if only and len(otlp) < len(files):
        other = next(f for i, f in enumerate(files) if i not in otlp)
        raise UsageError(
            f"{other}: not an OpenTelemetry traces file; --mode otel sends only those "
            "(upload Weave calls without --mode otel)"
        )
    return otlp


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
