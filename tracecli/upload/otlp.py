"""OTLP files in `upload` and `validate`: their spans, converted, fed to the usual pipeline.

An OpenTelemetry file holds batches of spans, one `ExportTraceServiceRequest` per line.
Each span becomes the completed call weave's server stores for it (tracecli.otel.calls) and
enters the pipeline of Weave files as a record of its line: the same call checks, the same
cross-record checks, the same chunks, sender, retries and rejected file. What differs:

- A line holds many records, and the journal remembers lines. A line is journaled once
  every one of its spans is stored (`InFlight`), so a run stopped half-way through a line
  sends that line's spans again on resume (the server keeps one call per id) and never
  skips a span it did not store. A line with a rejected span is never journaled, like a
  rejected Weave record: every run finds it again.
- The rejected file holds the span as it was read (a one-span request, with its resource
  and scope), not the call it became: `OtlpFates` puts it back, from the raw line kept
  while its spans are in flight (memory: the lines of the chunks in flight).
- Duplicate span ids and parents found in no input are told by the OTLP checks (with the
  span's field path), across lines and files; the call checks are fed no parent for these
  calls, so the same missing parent is not said twice.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any, NamedTuple, Protocol

import orjson

from tracecli.diagnostics import Diagnostic, Location
from tracecli.otel.calls import SpanCalls, original_at, span_original
from tracecli.otel.deep_text import deep_warning
from tracecli.otel.read import Unread, spans_of_request
from tracecli.otel.to_weave import span_to_call
from tracecli.otel.weave_fails import weave_fails_on
from tracecli.upload.blocks import Entry
from tracecli.upload.engine import Engine
from tracecli.upload.fates import Fates
from tracecli.upload.originals import originals
from tracecli.upload.otlp_blocks import Workers, line_blocks, map_blocks
from tracecli.upload.otlp_lines import RawLine, read_lines
from tracecli.upload.otlp_map import entries_of, part_records
from tracecli.upload.otlp_times import span_time_order
from tracecli.upload.report import FileReport
from tracecli.wire.chunking import Chunk, Unit, journal_lines, pack, unpack
from tracecli.wire.otel import is_otel_route, otel_route


class Run(Protocol):
    """What feeding an OTLP file needs of the upload run (tracecli.upload.run.Run), named
    here so that this module, which run.py calls, does not import it back."""

    files: list[str]
    display: list[str]
    file_reports: list[FileReport]
    fates: Any
    sizes: list[int | None]
    bytes_done: list[int]
    acked_lines: list[Any]

    engine: Engine  # the upload's worker processes
    opts: Any  # the run's UploadOptions (--mode otel reads `strict`)

    @property
    def mode(self) -> str: ...  # "otel": spans sent as read; otherwise converted to calls
    def _halted(self) -> bool: ...
    def _consume(self, i: int, base: int, entries: list[Entry]) -> None: ...
    def _skipped(self, i: int, n: int) -> None: ...
    def _add(self, unit: Unit) -> None: ...
    def _progress(self, force: bool = False) -> None: ...


# -- which lines are done ----------------------------------------------------------------
class _Line:
    __slots__ = ("left", "ok", "raw")

    def __init__(self, raw: bytes, left: int) -> None:
        self.raw = raw
        self.left = left
        self.ok = True


class InFlight:
    """The lines whose spans are not all settled yet (stored, rejected or unsent), with
    their bytes; a line is done when the last one settles, and journaled if all were
    stored. Thread-safe: the sender's workers settle spans."""

    def __init__(self) -> None:
        self._lines: dict[tuple[int, int], _Line] = {}
        self._lock = threading.Lock()

    def open(self, src: int, line: int, raw: bytes, spans: int) -> None:
        """A line about to be fed: `spans` records plus one hold, released by `close`."""
        with self._lock:
            self._lines[src, line] = _Line(raw, spans + 1)

    def close(self, src: int, line: int) -> list[int]:
        return self.settle(src, [line], True)

    def settle(self, src: int, lines: Sequence[int], ok: bool) -> list[int]:
        """Spans of these lines settled; the lines now done and wholly stored."""
        done: list[int] = []
        with self._lock:
            for line in lines:
                entry = self._lines.get((src, line))
                if entry is None:
                    continue
                entry.left -= 1
                if not ok:
                    entry.ok = False
                if entry.left <= 0:
                    del self._lines[src, line]
                    if entry.ok:
                        done.append(line)
        return done

    def raw(self, src: int, line: int) -> bytes | None:
        with self._lock:
            entry = self._lines.get((src, line))
            return None if entry is None else entry.raw

    def __len__(self) -> int:
        return len(self._lines)


class OtlpFates(Fates):
    """`Fates` for runs with OTLP inputs: a line is journaled when all its spans are
    stored, and a refused span goes to the rejected file as it was read."""

    def __init__(self, *, otlp: set[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.otlp = otlp  # input indexes of the OTLP files
        self.flight = InFlight()
        self._index = {p: i for i, p in enumerate(self.display)}

    def _original(self, src: int, line: int, value: Any) -> Any:
        """The span a converted call came from, as read (the call when it cannot be found)."""
        if not isinstance(value, dict) or "resourceSpans" in value:
            return value
        raw = self.flight.raw(src, line)
        if raw is None:
            return value
        try:
            return span_original(orjson.loads(raw), str(value.get("id")))
        except orjson.JSONDecodeError:  # pragma: no cover - it was read before
            return value

    def _journal_lines(self, recs: Sequence[int]) -> dict[int, list[int]]:
        out = {}
        for src, lines in journal_lines(recs).items():
            if src in self.otlp:
                lines = self.flight.settle(src, lines, True)
            if lines:
                out[src] = lines
        return out

    def acked(self, route: str, chunk: Chunk, calls: int) -> None:
        if self.journal is None:
            self._journal_lines(chunk.recs)  # settled all the same (frees their bytes)
        super().acked(route, chunk, calls)

    def checked(self, recs: Sequence[int]) -> None:
        for src, lines in journal_lines(recs).items():  # settled all the same (frees their bytes)
            if src in self.otlp:
                self.flight.settle(src, lines, True)

    def fed(self, src: int, line: int) -> None:
        """A line's records all handed on (see `InFlight.open`): journaled if they were
        all stored already (or it had none)."""
        done = self.flight.close(src, line)
        if done and self.journal is not None:
            self.journal.ack(self.files[src], done)

    def invalid(self, value: Any, path: str, line: int, diags: Sequence[Diagnostic]) -> None:
        src = self._index.get(path)
        if src in self.otlp:
            value = self._original(src, line, value)
            self.flight.settle(src, [line], False)
        super().invalid(value, path, line, diags)

    def rejected(self, chunk: Chunk, reason: str, status: int | None) -> None:
        if self.lone_ends:
            with self.lock:
                self._lone_ends_in(chunk.recs)
        if is_otel_route(chunk.route):  # --mode otel: each item holds its span as read
            items = []
            for u in chunk.iter_units():
                src, line, _, _ = unpack(u.recs[0])
                items.append((item_request(u.parts[0]), src, line))
                self.flight.settle(src, [line], False)
            self.rejected_now(items, reason, status)
            return
        items = []
        for value, src, line in originals(chunk):
            if src in self.otlp:
                value = self._original(src, line, value)
                self.flight.settle(src, [line], False)
            items.append((value, src, line))
        self.rejected_now(items, reason, status)

    def unsent(self, chunk: Chunk) -> None:
        for src, lines in journal_lines(chunk.recs).items():
            if src in self.otlp:
                self.flight.settle(src, lines, False)
        super().unsent(chunk)


# -- upload --------------------------------------------------------------------------------
def _read(run: Run, i: int, n: int) -> None:
    """Progress: the bytes of lines read (uncompressed for .gz: at most the file's size)."""
    size = run.sizes[i]
    done = run.bytes_done[i] + n
    run.bytes_done[i] = min(done, size) if size else done
    run._progress()


def _requests(run: Run, i: int) -> Iterator[RawLine]:
    """The lines of OTLP input `i` that hold a request, until the run halts; a line that
    does not is counted here and told to the fates as invalid (both feeds read this way)."""
    path, report = run.display[i], run.file_reports[i]
    for item in read_lines(run.files[i], path):
        if run._halted():
            return
        if isinstance(item, Diagnostic):
            run.fates.invalid(None, path, item.line, [item])
            report.records += 1
            continue
        yield item


class _Input(NamedTuple):
    """What both feeds use of the run for input `i`."""

    fates: OtlpFates
    path: str  # as shown
    acked: Any  # its lines stored by an earlier run
    report: FileReport


def _input(run: Run, i: int) -> _Input:
    fates = run.fates
    assert isinstance(fates, OtlpFates)
    return _Input(fates, run.display[i], run.acked_lines[i], run.file_reports[i])


def feed_upload(run: Run, i: int, calls: SpanCalls) -> None:
    """Every span of input `i` (an OTLP file) converted and consumed by `run`."""
    fates, path, acked, report = _input(run, i)
    blocks = line_blocks(run.files[i], path)
    engine = run.engine
    workers = Workers(lambda: engine.pool, engine.jobs, lambda: engine.close(True), run._halted)
    for parts in map_blocks(blocks, path, calls.project, workers):
        if run._halted():
            return
        if parts.error is not None:
            fates.invalid(None, path, parts.line, [parts.error])
            report.records += 1
            continue
        entries = entries_of(calls, path, parts)
        report.records += sum(map(part_records, parts.spans))
        if not entries:
            continue
        line = parts.line
        live = not (acked and line in acked)
        if live:
            fates.flight.open(i, line, parts.raw, len(entries))
        run._consume(i, 0, entries)
        if live:
            fates.fed(i, line)
        _read(run, i, len(parts.raw))


__all__ = ["OtlpFates", "feed_upload"]


# -- --mode otel: the spans unchanged, to the server's OTel route ---------------------------
def otel_item(project: str, request: Any) -> bytes:
    """One span as a batch item: a one-span request and the project it goes to (the target
    merges the items of a chunk into one ExportTraceServiceRequest, see targets.weave)."""
    return orjson.dumps({"project": project, "request": request})


def item_request(item: bytes) -> Any:
    """The one-span request an item carries (what the rejected file holds)."""
    return orjson.loads(item)["request"]


def feed_otel(run: Run, i: int, calls: SpanCalls) -> None:
    """Every span of input `i` checked at the OTLP level and sent as it was read."""
    fates, path, acked, report = _input(run, i)
    for item in _requests(run, i):
        line = item.line
        loc = Location(path, line)
        spans = list(spans_of_request(loc, item.value))
        report.records += sum((s.spans or 1) if isinstance(s, Unread) else 1 for s in spans)
        if acked and line in acked:
            read = [s for s in spans if not isinstance(s, Unread)]
            for at in read:  # stored: a child read later has its parent in the inputs
                calls.ledger.add_ids(loc, at.where, at.span.span_id, None, at.span.trace_id)
            run._skipped(i, len(read))
            continue
        fates.flight.open(i, line, item.raw, len(spans))
        for s in spans:
            if isinstance(s, Unread):
                request = original_at(item.value, s.diagnostic.field)
                fates.invalid(request, path, line, [s.diagnostic])
                continue
            request = original_at(item.value, s.where)
            refused = calls.ledger.add(loc, s.where, s.span)
            project = s.project_id or calls.project
            if refused is None:  # no project, or a span weave's server answers 500 for
                refused = (calls.no_project(loc, s.where) if project is None
                           else weave_fails_on(loc, s.where, s.span, project))  # fmt: skip
            if refused is not None:
                fates.invalid(request, path, line, [refused])
                continue
            assert project is not None  # a span with no project was refused just above
            if s.span.deep:  # JSON text that may nest deep: a call weave cannot read back
                deep = deep_warning(loc, s.where, s.span, span_to_call(s.span, project))
                if deep is not None and run.opts.strict:
                    fates.invalid(request, path, line, [deep.as_error()])
                    continue
                if deep is not None:
                    fates.warn([deep])
            backwards = span_time_order(loc, s.span, project, run.opts.strict)
            if backwards is not None:  # weave stores it: a warning, as in the other modes
                if backwards.is_error:
                    fates.invalid(request, path, line, [backwards])
                    continue
                fates.warn([backwards])
            rec = pack(i, line, "complete", "complete")
            run._add(Unit(otel_route(project), (otel_item(project, request),), (rec,)))
        fates.fed(i, line)
        _read(run, i, len(item.raw))


def otlp_fates(otlp: set[int], project: str | None) -> tuple[Any, SpanCalls]:
    """What a run with OTLP inputs (indexes `otlp`) uses in place of `Fates`, and the span
    calls its files are converted through."""
    return partial(OtlpFates, otlp=otlp), SpanCalls(project)


def feed_spans(run: Run, i: int, calls: SpanCalls) -> None:
    """Input `i`'s spans, as the run's mode says: sent as read (`--mode otel`) or
    converted to calls."""
    (feed_otel if run.mode == "otel" else feed_upload)(run, i, calls)
