"""`validate`: check trace files record by record and across records; return a report.

Read → parse → check, no network. Each record is checked on its own (`blocks.examine`:
shape, schema, server rules), then in input order across all inputs (`CrossChecker`: a
start in one file pairs with its end in another). JSONL is cut into blocks of whole lines
that a process pool checks on every core while this process runs the cross-record rules
on what comes back; small inputs, YAML and single-core machines run the same functions
in-process, so both ways give the same report.

Never raises for the content of the inputs: every problem becomes a Diagnostic. Only a
path that does not exist (or a directory without trace files) is a UsageError.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from tracecli.check.cross import CrossChecker
from tracecli.check.entries import Diag, Entry, diag_entry
from tracecli.check.pairpack import Packed
from tracecli.diagnostics import Diagnostic, Location, Severity, UsageError
from tracecli.inputs.reader import FILE_FORMAT, InputFormat, Source, expand_paths
from tracecli.inputs.sniff import UTF16
from tracecli.inputs.streams import STDIN, file_head, os_message, regular_file
from tracecli.upload import validate_blocks as blocks
from tracecli.upload.engine import (
    PARALLEL_MIN_BYTES,
    PLAIN,
    RECORDS,
    SPANS,
    Engine,
    Job,
    input_kind,
    read_as_lines,
    worth_a_pool,
)
from tracecli.upload.engine import default_jobs as engine_jobs
from tracecli.upload.findings import Findings
from tracecli.upload.lines import line_extras
from tracecli.wire.wideints import exact_loads

if TYPE_CHECKING:
    from tracecli.otel.calls import SpanCalls

BLOCK_BYTES = 1 << 20
# the project of spans whose resource names none (validate sends nothing: any will do)
VALIDATE_PROJECT = "otlp/validate"
DEFAULT_MAX_ERRORS = 200
IN_FLIGHT_PER_JOB = 2  # blocks submitted ahead per worker: enough to keep every core busy
# and at least this many in all, every one in the workers' pipe (`Engine`'s `eager`): for the
# workers to go on through this process's longest pause (the cross-record checks sort 65k
# ids at a time, ~50 ms: ~3 blocks a worker on 2 cores); with 2 a worker, both idled ~45 ms
# at each such pause. (A stream's blocks are in memory meanwhile: 1 MiB each.)
IN_FLIGHT_MIN = 12

ProgressFn = Callable[["Progress"], None]


@dataclass
class Progress:
    """What the CLI's progress display needs; `bytes_total` is None for stdin."""

    path: str
    bytes_done: int
    bytes_total: int | None
    records: int


@dataclass
class ValidationReport(Findings):
    """The outcome of one `validate` run. Counts are exact; `diagnostics` may be capped."""

    files: int = 0
    records: int = 0
    calls: int = 0
    unlisted: int = 0  # diagnostics counted but not listed (--max-errors)
    strict: bool = False

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            **self.fields_dict("files records calls errors warnings diagnostics"),
        }


class _Sink:
    """Counts every diagnostic, lists the first `cap` errors and `cap` warnings."""

    def __init__(self, report: ValidationReport, strict: bool, cap: int) -> None:
        self.report = report
        self.strict = strict
        self.cap = cap if cap > 0 else sys.maxsize
        self.listed_errors = 0
        self.listed_warnings = 0

    def add(self, d: Diagnostic) -> None:
        r = self.report
        if d.severity is Severity.WARNING and self.strict:
            d = d.as_error()
        if d.severity is Severity.ERROR:
            r.errors += 1
            if self.listed_errors < self.cap:
                self.listed_errors += 1
                r.diagnostics.append(d)
                return
        else:
            r.warnings += 1
            if self.listed_warnings < self.cap:
                self.listed_warnings += 1
                r.diagnostics.append(d)
                return
        r.unlisted += 1


def default_jobs() -> int:
    """Worker processes: $TRACECLI_JOBS (see `worker_count`), else one per core this process
    may use (the reading process mostly waits for them), at most 8; none on one core."""
    return engine_jobs(cap=8, spare=0)


def validate_paths(
    paths: Iterable[str],
    *,
    strict: bool = False,
    stdin_format: InputFormat = "jsonl",
    max_errors: int = DEFAULT_MAX_ERRORS,
    on_progress: ProgressFn | None = None,
    jobs: int | None = None,
) -> ValidationReport:
    """Validate every record of every path, together; see the module docstring.

    `max_errors` caps how many errors (and, separately, warnings) are listed, 0 for all;
    the counts stay exact. `jobs`: worker processes (None: `default_jobs()`; 0: none).
    """
    paths = list(paths)
    if not paths:
        raise UsageError("no input: give one or more files, directories or - for stdin")
    files = expand_paths(paths)
    for raw in paths:
        if raw != STDIN and Path(raw).is_dir() and not any(_under(f, raw) for f in files):
            raise UsageError(
                f"{raw}: no trace files (*.jsonl, *.ndjson, *.json, *.yaml, *.yml, "
                "optionally .gz) in it"
            )
    report = ValidationReport(files=len(files), strict=strict)
    run = _Run(
        report, strict, max_errors, on_progress, default_jobs() if jobs is None else max(0, jobs)
    )
    try:
        run.start_pool(files)
        for path in files:
            run.file(path, stdin_format)
        run.drain_pool()
        for d in run.checker.finish() + (run.otlp.finish() if run.otlp is not None else []):
            run.sink.add(d)
    except BaseException:
        run.close(failed=True)
        raise
    run.close()
    report.calls = run.checker.calls
    order = {p: i for i, p in enumerate(run.order)}
    report.diagnostics.sort(key=lambda d: (order.get(d.path, len(order)), d.line))
    return report


def _under(file: str, folder: str) -> bool:
    return Path(file).is_relative_to(folder)


class _Run:
    """State of one run: the checker, the sink, and the block engine with its pool."""

    def __init__(
        self,
        report: ValidationReport,
        strict: bool,
        max_errors: int,
        on_progress: ProgressFn | None,
        jobs: int,
    ) -> None:
        self.report = report
        self.sink = _Sink(report, strict, max_errors)
        self.checker = CrossChecker(strict=strict)
        self.on_progress = on_progress
        self.jobs = jobs
        ahead = max(0, IN_FLIGHT_MIN - IN_FLIGHT_PER_JOB * jobs)
        self.engine = Engine(self._block, per_job=IN_FLIGHT_PER_JOB, extra=ahead, eager=True)
        self.order: list[str] = []
        self.otlp: SpanCalls | None = None  # OpenTelemetry inputs: the span checks' state

    # -- per file --------------------------------------------------------------------
    def file(self, path: str, stdin_format: InputFormat) -> None:
        src = Source.open(path, stdin_format)
        src.refuse_foreign = True  # another tool's format: said once, not on every line
        src.exact = exact_loads  # a JSON array's elements read as a JSON line is
        self.order.append(src.path)
        if utf16_file(path):
            self.drain_pool()
            self.sink.add(utf16_diagnostic(src.path))
            return
        kind = input_kind(src, path)
        if kind == SPANS:  # OpenTelemetry spans: checked as the calls they become
            self.drain_pool()
            self._otlp(src, path)
        elif kind == RECORDS:  # YAML, a JSON array, not ours
            self.drain_pool()  # keep input order: earlier blocks first
            self._yaml(src)
        elif kind == PLAIN:
            self._plain(src)
        else:
            self._stream(src, path)

    def _plain(self, src: Source) -> None:
        lines = _LineCounter()
        path = src.path

        def job(offset: int, length: int, last: bool) -> Job:
            return (
                _Block(src, lines, offset + length, last),
                blocks.check_range,
                (path, offset, length),
            )

        exc = self.engine.read_plain(path, src.size or 0, 0, BLOCK_BYTES, job)
        if exc is not None:
            self.sink.add(Diagnostic.at(Location(path, 0), "read-error", os_message(exc)))

    def _stream(self, src: Source, path: str) -> None:
        lines = _LineCounter()

        def job(data: bytes, done: int, first: bool) -> Job:
            return _Block(src, lines, done, False), blocks.check_lines, (data, src.path, first)

        stop = self.engine.read_stream(path, BLOCK_BYTES, job)
        if stop is not None and not stop.opened:
            self.sink.add(
                Diagnostic.at(Location(src.path, 0), "read-error", os_message(stop.error))
            )
            return
        if stop is not None:
            msg = f"file cannot be read from here on: {os_message(stop.error)}"
            self.sink.add(Diagnostic.at(Location(src.path, lines.n + 1), "read-error", msg))
        self.engine.submit(_Block(src, lines, src.size or 0, True), None, ())

    def _yaml(self, src: Source) -> None:
        entries: list[Entry] = []
        for item in src:
            if isinstance(item, Diagnostic):
                self.sink.add(item)
                # a record that cannot be read is a record read and refused, as `upload`
                # counts it (run_records.py); another tool's file holds no record of ours
                self.report.records += item.code != FILE_FORMAT
                continue
            loc, value = item
            self.report.records += 1
            entries.clear()
            extras = line_extras(value, b"", True)  # NaN, lone surrogates: as in a JSON line
            blocks.examine(value, loc.line, src.path, entries)
            blocks.too_large(value, loc.line, entries)
            if extras:
                refused = {
                    e.field for e in entries if type(e) is Diag and e.severity is Severity.ERROR
                }
                entries.extend(diag_entry(loc.line, *e) for e in extras if e[0] not in refused)
            self._consume(entries, src.path, 0)
        self._progress(src.path, src.bytes_read, src.size)

    def _otlp(self, src: Source, path: str) -> None:
        # imported here for start-up time: the OpenTelemetry mapping costs more to import
        # than validating a small file takes, and only span files need it
        from tracecli.otel.calls import SpanCalls
        from tracecli.upload.otlp_blocks import validate_lines
        from tracecli.upload.otlp_map import validate_entries

        if self.otlp is None:
            self.otlp = SpanCalls(VALIDATE_PROJECT)
        done = 0
        engine = self.engine
        for item in validate_lines(self.otlp, path, src.path, engine.pool, engine.jobs):
            if isinstance(item, Diagnostic):
                self.sink.add(item)
                self.report.records += 1  # a line refused whole: one record, as upload counts
                continue
            done += len(item.raw)
            spans, entries = validate_entries(self.otlp, src.path, item)
            self.report.records += spans
            self._consume(entries, src.path, 0)
            self._progress(src.path, min(done, src.size or done), src.size)
        self._progress(src.path, src.size or done, src.size)

    # -- blocks ------------------------------------------------------------------------
    def start_pool(self, files: list[str]) -> None:
        """Start the workers if the JSONL inputs are big enough to repay them."""
        self.engine.start(
            self.jobs, self.jobs > 0 and worth_a_pool(files, PARALLEL_MIN_BYTES, read_as_lines)
        )

    def drain_pool(self) -> None:
        self.engine.drain()

    def _block(self, block: _Block, got: blocks.Checked | None) -> None:
        got = got if got is not None else _NOTHING
        src = block.src
        base = block.lines.n
        block.lines.n += got.lines
        self.report.records += got.records
        self._consume(got.entries, src.path, base, got.pairs)
        self._progress(src.path, src.size or block.done if block.last else block.done, src.size)

    def _consume(
        self,
        entries: list[Entry],
        path: str,
        base: int,
        pairs: Packed | None = None,
    ) -> None:
        out: list[Diagnostic] = []
        self.checker.feed_block(path, base, entries, out, pairs)
        add = self.sink.add
        for d in out:
            add(d)

    def _progress(self, path: str, done: int, total: int | None) -> None:
        if self.on_progress is not None:
            self.on_progress(Progress(path, done, total, self.report.records))

    def close(self, failed: bool = False) -> None:
        """Stop the workers: politely after a run, at once when it failed (Ctrl-C)."""
        self.engine.close(failed)


_NOTHING = blocks.Checked(0, 0, [], None)


class _LineCounter:
    """The lines of one file before its next block, shared by its blocks. (Plain classes
    and NamedTuples here, not dataclasses: a dataclass is made by compiling its methods'
    source at import, a cost every run of a small file pays.)"""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


class _Block(NamedTuple):
    src: Source
    lines: _LineCounter  # shared by the blocks of one file: lines before this block
    done: int  # bytes of the file read once this block is checked (for progress)
    last: bool


def utf16_file(path: str) -> bool:
    """What Windows PowerShell's `>` writes: every line would be garbage (upload asks too)."""
    return path != STDIN and regular_file(path) and file_head(path).startswith(_UTF16_BOMS)


def utf16_diagnostic(display: str) -> Diagnostic:
    return Diagnostic.at(Location(display, 1), "file-encoding", UTF16)


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
