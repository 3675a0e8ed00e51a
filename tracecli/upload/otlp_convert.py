"""`convert --to weave` of big OTLP files with worker processes, as validate and upload read them.

Mapping a span to its call and encoding it is nearly all of a conversion's work and needs
nothing but the line, so the blocks of lines of a JSON-lines input go to forked workers
(`otlp_blocks.map_blocks`, its `convert` flavour: each span's written line and its warning
come back); what needs the whole run (span ids read before, the files told they lack a
project, the counts and diagnostics) stays with `tracecli.otel.convert`'s run, in the
reading process, in input order: the same lines and diagnostics as converting there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tracecli.diagnostics import Diagnostic, Location
from tracecli.inputs.reader import Source, expand_paths
from tracecli.inputs.streams import STDIN_NAME
from tracecli.inputs.workers import fork_pool, stop_pool
from tracecli.otel.convert import ConvertRun, OtelConvertReport, check_project, convert_otlp
from tracecli.upload import engine
from tracecli.upload.otlp_blocks import Workers, line_blocks, map_blocks
from tracecli.upload.otlp_map import SpanPart

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

PARALLEL_MIN_BYTES = engine.PARALLEL_MIN_BYTES


def default_jobs() -> int:
    """Worker processes: $TRACECLI_JOBS (see `worker_count`), else one per core this process
    may use, at most 8 (as validate's: the reading process mostly waits for them)."""
    return engine.default_jobs(cap=8, spare=0)


def convert_spans(
    paths: Sequence[str],
    write: Callable[[bytes], Any],
    *,
    project: str | None = None,
    strict: bool = False,
    on_diagnostic: Callable[[Diagnostic], None] | None = None,
    jobs: int | None = None,
) -> OtelConvertReport:
    """`convert_otlp`, its JSON-lines inputs mapped by `jobs` worker processes (default:
    `default_jobs`) when they are big enough to repay them; the same report and lines."""
    check_project(project)
    jobs = default_jobs() if jobs is None else jobs
    files = expand_paths(paths)
    big = engine.worth_a_pool(files, PARALLEL_MIN_BYTES, engine.read_as_lines)
    pool = fork_pool(jobs) if jobs > 0 and big else None
    if pool is None:
        return convert_otlp(
            paths, write, project=project, strict=strict, on_diagnostic=on_diagnostic
        )
    failed = True
    try:
        reader = _BlockReader(pool, jobs)
        report = convert_otlp(
            paths,
            write,
            project=project,
            strict=strict,
            on_diagnostic=on_diagnostic,
            reader=reader.read,
        )
        failed = False
        return report
    finally:
        stop_pool(pool, failed)


class _BlockReader:
    """JSON-lines sources read in blocks, mapped by the pool's workers (while it lasts)."""

    def __init__(self, pool: ProcessPoolExecutor, jobs: int) -> None:
        self.pool: ProcessPoolExecutor | None = pool
        self.workers = Workers(lambda: self.pool, jobs, self._broken, _never)

    def _broken(self) -> None:
        self.pool = None  # a worker died: the rest is mapped here

    def read(self, run: ConvertRun, src: Source) -> bool:
        """`src`'s spans converted into `run`; False for a source not read as JSON lines
        (a JSON array, YAML: `convert_otlp` reads it)."""
        if src.fmt != "jsonl":
            return False
        display = src.path
        path = "-" if display == STDIN_NAME else display
        blocks = line_blocks(path, display)
        for parts in map_blocks(blocks, display, run.project, self.workers, convert=True):
            if parts.error is not None:  # not JSON, or unreadable from here on
                run.left_out(parts.error, 0)
                src.records += parts.line > 0  # a line of the file all the same
                continue
            src.records += 1
            loc = Location(display, parts.line)
            for p in parts.spans:
                _span(run, loc, p)
        return True


def _span(run: ConvertRun, loc: Location, p: SpanPart) -> None:
    """One span mapped by a worker, settled as `ConvertRun.span` settles one read here:
    unread, a span id read before, no project, refused, else its line written."""
    run.report.spans += p.spans
    if p.span_id is None:
        assert p.refused is not None  # (no span read: why)
        return run.left_out(p.refused, p.spans)
    assert p.trace_id is not None  # read with its span id
    duplicate = run.ledger.add_ids(loc, p.where, p.span_id, p.parent_id, p.trace_id)
    if duplicate is not None:
        return run.left_out(duplicate)
    if p.project is None:
        return run.no_project(loc, p.where)
    if p.refused is not None:
        return run.left_out(p.refused)
    return run.done(p.entry)


def _never() -> bool:
    return False
