"""One pass of `upload` over the inputs: the reading loop, pairing and chunking.

`Run.read_all` reads the inputs through the block engine (`upload.engine`, validate's
too); each block is validated and encoded by `blocks.prepare_lines` (in the worker pool
on big inputs, else right here) and its entries are consumed here in input order: the
cross-record checks (`CrossChecker`, fed the facts already computed), pairing, chunking
(`units` says which request each call becomes under --mode), and handing full chunks to
the `Sender`. What then becomes of each record (the sender's callbacks `acked`,
`rejected` and `unsent`) is counted and journaled in `fates`, under one lock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tracecli.check.cross import CrossChecker
from tracecli.check.facts import refused_id
from tracecli.check.pairing import DUPLICATE, Half, Pairer
from tracecli.diagnostics import Diagnostic, Severity
from tracecli.inputs.reader import Source
from tracecli.inputs.streams import STDIN
from tracecli.journal.rejected import RejectedWriter
from tracecli.journal.resume import Journal
from tracecli.upload.blocks import (
    Bad,
    Entry,
    FreeplayRecord,
    Ok,
    Pair,
    Prepared,
    prepare_lines,
    prepare_range,
)
from tracecli.upload.engine import PLAIN, RECORDS, SPANS, Engine, Job, input_kind
from tracecli.upload.fates import Fates
from tracecli.upload.originals import entry_original, half_original
from tracecli.upload.pair_cols import Columns, columns_of, pair_at
from tracecli.upload.pool import engine_limits
from tracecli.upload.quick import QuickPairs, quick_modes
from tracecli.upload.refused import RefusedHalves
from tracecli.upload.report import FileReport, ProgressClock, UploadOptions, UploadReport
from tracecli.upload.run_inputs import InputState, otlp_inputs, read_error, source
from tracecli.upload.run_records import read_records
from tracecli.upload.stored_notes import not_about_stored, stored_then, unsure_after_prefix
from tracecli.upload.units import Routes, complete_unit, half_of, lone_unit, pair_unit
from tracecli.upload.validate import utf16_diagnostic, utf16_file
from tracecli.wire.chunking import Chunk, Chunker, Unit

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from tracecli.otel.calls import SpanCalls
    from tracecli.upload.sender import Sender

BLOCK_BYTES = 512 << 10  # lines are read, validated and encoded in blocks of about this size


class Run:
    def __init__(
        self,
        *,
        files: list[str],
        opts: UploadOptions,
        report: UploadReport,
        journal: Journal | None,
        writer: RejectedWriter,
        interrupted: Callable[[], bool],
        on_progress: Callable[[Any], None] | None,
        max_diagnostics: int,
        chunker: Chunker,
        pool: ProcessPoolExecutor | None = None,
        jobs: int = 0,
        share: bool = False,
    ) -> None:
        self.files = files
        self.opts = opts
        self.mode = opts.mode
        self.report = report
        self.journal = journal
        self.interrupted = interrupted
        self.chunker = chunker
        limits = engine_limits(share)
        self.engine = Engine(
            self._block,
            pool=pool,
            jobs=jobs,
            extra=limits.extra,
            share=limits.share,
            halted=self._halted,
            interrupted=interrupted,
        )
        self.sender: Sender | None = None
        self.checker = CrossChecker(strict=opts.strict, passes=opts.passes)
        self.pairer = Pairer(opts.memory_budget)
        self.file_reports: list[FileReport] = [FileReport(p) for p in files]
        report.files = self.file_reports
        self.display: list[str] = ["<stdin>" if f == STDIN else f for f in files]
        # What becomes of each record (the sender's callbacks: acked, rejected, unsent).
        # OpenTelemetry files are read through their converted calls (upload.otlp).
        self.otlp = otlp_inputs(files, opts.input_format, only=self.mode == "otel")
        self.otlp_calls: SpanCalls | None = None
        fates: Any = Fates
        if self.otlp:  # the OpenTelemetry mapping, imported only for its files (start-up)
            from tracecli.upload.otlp import otlp_fates

            fates, self.otlp_calls = otlp_fates(self.otlp, opts.project)
        self.fates = fates(
            files=files,
            display=self.display,
            report=report,
            journal=journal,
            writer=writer,
            max_diagnostics=max_diagnostics,
            on_diagnostic=opts.on_diagnostic,
        )
        self.inputs = InputState.empty(len(files))
        self.sizes = self.inputs.sizes
        self.bytes_done = self.inputs.bytes_done
        self.line_base = self.inputs.line_base
        self.acked_lines = self.inputs.acked_lines
        self.unread_prefix = [0] * len(files)
        self.routes = Routes()
        self.route = self.routes.__getitem__  # a project's calls/complete route
        self._quick_pairs: QuickPairs | None = None
        self.refused = RefusedHalves(self.display)  # see _finish_inputs
        self.clock = ProgressClock(on_progress)

    # -- reading --------------------------------------------------------------------------
    def read_all(self) -> None:
        report = self.report
        changed = self.inputs.look(self.files, self.journal, self.opts.follow)
        # what earlier runs stored, as it was now (the journal's view grows with this run)
        self.stored_before = [stored_then(a) for a in self.acked_lines]
        for f, c in zip(self.file_reports, changed, strict=True):
            f.changed = c
        read_to_end = False
        for i, path in enumerate(self.files):
            if self._halted():
                break
            self._read_file(i, path)
        else:
            read_to_end = not self._halted()  # else a file's reading stopped early
            self.engine.drain()
            if not self._halted():
                self._finish_inputs()
                self._flush()
        report.input_left = not read_to_end
        if self._halted():
            self._count_unsent()
            if report.input_left and not self.interrupted():
                report.unread = self.inputs.unread(self.files)
        self.engine.pending.clear()
        report.peak_open_calls = self.pairer.peak_open
        report.spilled = self.pairer.spilled
        self._progress(force=True)

    def _halted(self) -> bool:
        return self.interrupted() or (self.sender is not None and self.sender.broken)

    def _read_file(self, i: int, path: str) -> None:
        display = self.display[i]
        if utf16_file(path):  # PowerShell's `>`: said once, as validate says it
            self.fates.invalid(None, display, 1, [utf16_diagnostic(display)])
            return
        src = None if i in self.otlp else source(path, self.opts.input_format)
        kind = SPANS if i in self.otlp else input_kind(src, path)
        if kind == SPANS and self.otlp_calls is not None:
            self.engine.drain()  # keep input order: earlier blocks first
            from tracecli.upload.otlp import feed_spans

            feed_spans(self, i, self.otlp_calls)
            self.bytes_done[i] = self.sizes[i] or self.bytes_done[i]
        elif kind == RECORDS and src is not None:
            # YAML, a JSON array of records, another tool's format (said once): record
            # by record, here, rather than in blocks of lines
            self.engine.drain()  # keep input order: earlier blocks first
            self._read_records(i, src)
        elif kind == PLAIN:
            exc = self._read_plain(i, path)
            if exc is not None:
                self.fates.invalid(None, display, 0, [read_error(display, 0, exc)])
        else:
            self._read_stream(i, path, display)

    def _read_plain(self, i: int, path: str) -> OSError | None:
        project = self.opts.project
        # An appended file: read from where the stored records end (not from the start)
        offset, before = self.inputs.resume_at(i, self.journal, path)
        self.unread_prefix[i] = self.line_base[i]  # lines stored before, not read again
        if before:  # the records not read again count as read and skipped, as before
            self.file_reports[i].records += before
            self._skipped(i, before)

        key = self.inputs.keys.get(i)  # the file the journal took: read that one only

        def job(offset: int, length: int, last: bool) -> Job:
            return (i, offset + length), prepare_range, (path, offset, length, project, key)

        return self.engine.read_plain(path, self.sizes[i] or 0, offset, BLOCK_BYTES, job, key)

    def _read_stream(self, i: int, path: str, display: str) -> None:
        project = self.opts.project

        def job(data: bytes, done: int, first: bool) -> Job:
            return (i, done), prepare_lines, (data, display, first, project)

        stop = self.engine.read_stream(path, BLOCK_BYTES, job)
        if stop is None:
            return
        line = self.line_base[i] + 1 if stop.opened else 0
        prefix = "file cannot be read from here on: " if stop.opened else ""
        diag = read_error(display, line, stop.error, prefix)
        self.fates.invalid(None, display, line, [diag])

    def _read_records(self, i: int, src: Source) -> None:
        read_records(self, i, src)

    def _block(self, tag: tuple[int, int], got: Prepared) -> None:
        i, done = tag
        base = self.line_base[i]
        self.line_base[i] += got.lines
        self.file_reports[i].records += got.records
        self._consume(i, base, got.columns())
        self.inputs.block_read(i, done, got.lines)  # (and a line start for the journal)
        self._progress()

    # -- entries --------------------------------------------------------------------------
    def _consume(self, i: int, base: int, got: Columns | list[Entry]) -> None:
        """The cross-record checks and pairing for a block's entries, in input order: the
        usual pairs through `QuickPairs`, the rest here (a pair: an index, see `pair_cols`)."""
        block = got if isinstance(got, Columns) else columns_of(got)
        path = self.display[i]
        checker, feed_call, deferred = self.checker, self.checker.feed_call, self.checker.deferred
        acked = self.acked_lines[i]
        any_acked = len(acked) > 0
        out: list[Diagnostic] = []
        quick = self._quick()
        entries = block.items
        k, n = 0, len(block.codes)
        while k < n:
            e = entries[k]
            if quick is not None and type(e) is int:
                j = quick.take(block, k, i, path, base, acked)
                if j > k:
                    k = j
                    continue
            k += 1
            if type(e) is Ok:
                line = base + e.line
                feed_call(
                    path, line, e.kind, e.call_id, e.trace_id, e.parent_id, e.started, e.ended, out
                )
                if out or e.warnings:
                    diags = [
                        Diagnostic(path, line, f, c, Severity.WARNING, m) for f, c, m in e.warnings
                    ]
                    diags.extend(out)
                    out.clear()
                    if self.opts.strict:
                        diags = [d.as_error() for d in diags]
                    if any(d.severity is Severity.ERROR for d in diags):
                        self.refused.note(e.kind, e.call_id, i, line)
                        self.fates.invalid(entry_original(e), path, line, diags)
                        continue
                    self.fates.warn(diags)
                done = any_acked and line in acked
                if done:
                    self._skipped(i, 1)
                self._take_half(half_of(e, i, line, done))
            elif type(e) is int:
                self._pair(pair_at(block, e), i, base, path, out)
            elif type(e) is Bad:
                line = base + e.line
                cid = e.refused_id
                if cid is not None:
                    checker.note_refused_id(path, line, cid)
                    self.refused.note(refused_id(e.original)[0], cid, i, line)
                diags = [Diagnostic(path, line, f, c, s, m) for f, c, s, m in e.diags]
                self.fates.invalid(e.original, path, line, diags)
            elif type(e) is FreeplayRecord:
                self.fates.rejected_now(
                    [(e.value, i, base + e.line)],
                    "a Freeplay record: send it with `tracecli upload --target freeplay`",
                )
            if deferred:
                self.fates.late(checker.drain())

    def _quick(self) -> QuickPairs | None:
        """The quick path of the usual pairs (tracecli.upload.quick), when there is a sender."""
        if self._quick_pairs is None and self.sender is not None and quick_modes(self.mode):
            parts = (self.checker, self.chunker, self._submit, self.fates.late, self.routes)
            self._quick_pairs = QuickPairs(*parts)
        return self._quick_pairs

    def _pair(self, p: Pair, i: int, base: int, path: str, out: list[Diagnostic]) -> None:
        """A start and its end from one block: checked as one, sent without pairing."""
        line_s, line_e = base + p.line, base + p.end_line
        cid, project = p.call_id, p.project
        self.checker.feed_pair(
            path, line_s, cid, p.trace_id, p.parent_id, p.started, p.ended, line_e, out
        )
        acked = self.acked_lines[i]
        done_s = line_s in acked if acked else False
        done_e = line_e in acked if acked else False
        # positional: a keyword call of a slotted class costs about three times as much
        s = Half(
            "start", cid, project, p.start_body, b"", p.start_flag, i, line_s, p.start_shape,
            done_s, p.start_orig,
        )  # fmt: skip
        h = Half(
            "end", cid, project, p.end_body, p.end_tail, p.end_flag, i, line_e, p.end_shape,
            done_e, p.end_orig,
        )  # fmt: skip
        if not out:
            if done_s or done_e:
                self._skipped(i, int(done_s) + int(done_e))
            self._emit_pair(s, h)
            return
        diags = [d.as_error() for d in out] if self.opts.strict else list(out)
        out.clear()
        bad = {d.line for d in diags if d.is_error}
        self.fates.warn([d for d in diags if not d.is_error and d.line not in bad])
        for half in (s, h):
            if half.line in bad:
                mine = [d for d in diags if d.line == half.line]
                self.refused.note(half.kind, half.call_id, i, half.line)
                self.fates.invalid(half_original(half), path, half.line, mine)
            else:
                if half.done:
                    self._skipped(i, 1)
                self._take_half(half)

    def _skipped(self, i: int, n: int) -> None:
        self.report.skipped += n
        self.file_reports[i].skipped += n

    def _take_half(self, half: Half) -> None:
        if half.kind == "complete":
            if not half.done:
                self._add(complete_unit(self.mode, half, self.route))
            return
        other = self.pairer.match(half)
        if other is None:
            return
        if other is DUPLICATE:  # CrossChecker reports duplicates first; this is a safeguard
            self.fates.rejected_halves(
                [half],
                f"call id {half.call_id} already has "
                f"{'an' if half.kind == 'end' else 'a'} {half.kind}",
            )
            return
        assert isinstance(other, Half)
        start, end = (half, other) if half.kind == "start" else (other, half)
        self._emit_pair(start, end)

    # -- units ------------------------------------------------------------------------------
    def _emit_pair(self, s: Half, e: Half) -> None:
        if s.done or e.done:  # one half stored by an earlier run: the other goes alone
            if not (s.done and e.done):
                self._emit_lone(e if s.done else s, resumed=True)
            return
        self._add(pair_unit(self.mode, s, e, self.route))

    def _emit_lone(self, h: Half, resumed: bool = False) -> None:
        """A start with no end, or an end with no start, in the inputs."""
        if h.done:
            return
        if self.mode == "complete" and not resumed:
            other = "end" if h.kind == "start" else "start"
            self.fates.rejected_halves(
                [h],
                f"this call's {other} is not in the inputs, and --mode complete sends only "
                "completed calls (--mode auto sends it through call/upsert_batch)",
            )
            return
        unit = lone_unit(self.mode, h)
        if h.kind == "end":
            self.fates.lone_end(unit.recs[0])
        self._add(unit)

    def _add(self, unit: Unit) -> None:
        if self.sender is None:  # a check-only pass (--strict's first): nothing is sent
            self.fates.checked(unit.recs)
            return
        for chunk in self.chunker.add(unit):
            self._submit(chunk)

    def _submit(self, chunk: Chunk) -> None:
        assert self.sender is not None
        self.sender.submit(chunk, self.interrupted, self._progress)

    def _flush(self) -> None:
        if self.sender is not None:
            for chunk in self.chunker.flush():
                self._submit(chunk)

    def _count_unsent(self) -> None:
        """The run stops early: the records read but not handed to the sender (open
        chunks, halves waiting for their other half) are unsent, for the next run."""
        n = sum(len(c.recs) for c in self.chunker.flush())
        n += sum(1 for h in self.pairer.leftovers() if not h.done)
        if n:
            self.fates.add_unsent(n)

    def _finish_inputs(self) -> None:
        """End of all inputs: what the checker could not say before, and unpaired halves."""
        final = self.checker.finish()
        if self.otlp_calls is not None:
            final.extend(self.otlp_calls.finish(self.opts.passes))
        if self.opts.strict:
            final = [d.as_error() for d in final]
        if self.opts.follow:  # lines read again after a start still open, stored before
            final = not_about_stored(final, self.display, self.acked_lines)
        else:  # a resumed run reads again the lines after its resume point, stored before
            final = not_about_stored(final, self.display, self.stored_before)
            final = unsure_after_prefix(final, self.display, self.unread_prefix)
        if self.opts.passes is not None:  # held by earlier passes: their parent never came
            final.extend(self.opts.passes.due())
        self.fates.late(final)
        for h in self.pairer.leftovers():
            if self._halted():
                if not h.done:
                    self.fates.add_unsent(1)
                continue
            if h.kind == "start" and self.journal is not None:
                self.journal.hold(self.files[h.src], h.line)  # its end may be appended
                defer = self.opts.defer_start
                if defer is not None and not h.done and defer(h.call_id):
                    continue  # --follow: it waits for its end (read again next pass)
            why = self.refused.why_not_alone(h) if self.refused else None
            if why is None:
                self._emit_lone(h)
            elif not h.done:
                self.fates.rejected_halves([h], why, code="other-half-rejected")
            elif h.kind == "start":  # stored by an earlier run: it can only stay running
                self.fates.warn([self.refused.end_rejected(h)])

    # -- progress ---------------------------------------------------------------------------
    def _progress(self, force: bool = False) -> None:
        elapsed = self.clock.due(force)
        if elapsed is not None:
            self.clock.tell(
                self.report,
                self.sender.target if self.sender is not None else None,
                bytes_read=sum(self.bytes_done),
                bytes_total=self.inputs.bytes_total,
                records=sum(f.records for f in self.file_reports),
                elapsed=elapsed,
            )

    def tick(self) -> None:
        self._progress()

    def close(self) -> None:
        self.report.records = sum(f.records for f in self.file_reports)
        self.pairer.close()
