"""`upload --target freeplay`: read, convert, check and send records to Freeplay; report.

Same promises as the Weave upload, over Freeplay's one-request-per-record API: every input
record ends acknowledged (journaled at once, skipped by the next run), rejected (by the
checks or by the server: in the rejected file with the reason, as it was read), or unsent
(Ctrl-C, an auth failure or an outage stopped the run first: the next run sends it).
The records are sent by the upload's one sending engine (`upload.sender.Workers`: threads,
a short queue, the outage stop, Ctrl-C), Freeplay's part of it in `upload.freeplay_send`.
The report is the Weave upload's `UploadReport`, so the CLI renders both the same way.

Freeplay's handling of a repeated `completion_id` is unknown, so nothing acknowledged is
sent again: the journal skips acknowledged lines, and the `freeplay_ledger` skips
acknowledged records of a file that changed since (and a record met twice in one run).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import InitVar, dataclass
from functools import partial
from typing import Any

from tracecli.diagnostics import Diagnostic, Severity, TracecliError, UsageError
from tracecli.freeplay.stream import FreeplayPieces, Piece
from tracecli.inputs.reader import FILE_FORMAT, Source
from tracecli.inputs.sniff import OTLP
from tracecli.journal.acks import AckSet
from tracecli.journal.freeplay_ledger import (
    LEDGER_NAME,
    STDIN_KEY,
    SentLedger,
    record_key,
    source_key,
)
from tracecli.journal.rejected import DEFAULT_NAME, RejectedWriter, upload_inputs
from tracecli.journal.resume import Journal
from tracecli.otel.calls import SpanCalls
from tracecli.targets.endpoint import check_listening
from tracecli.targets.freeplay import (
    FreeplayTarget,
    Request,
    build_request,
    resolve_freeplay,
)
from tracecli.upload.freeplay_send import FreeplaySender, Job, Verdicts
from tracecli.upload.give_ups import say_unsent
from tracecli.upload.otlp_lines import OtlpCalls
from tracecli.upload.report import (
    GRACE_SECONDS,
    FileReport,
    Interrupt,
    Progress,
    ProgressClock,
    UploadOptions,
    UploadReport,
    count_diagnostics,
    keep_diagnostics,
    publish_rejected,
)
from tracecli.upload.run_inputs import sources_unread

# the Weave project of converted spans whose resource names none (Freeplay has its own)
OTLP_PROJECT = "otlp/freeplay"


def upload_freeplay(
    paths: Sequence[str],
    opts: UploadOptions,
    on_progress: Callable[[Progress], None] | None = None,
) -> UploadReport:
    """Upload Freeplay records (and Weave calls, converted) to Freeplay.

    Raises UsageError (exit 2) for bad options, a missing key or project, an unreachable
    server; AuthError (exit 2) when Freeplay refuses the key."""

    settings = resolve_freeplay(opts.server, opts.api_key, opts.project)
    if not 1 <= opts.concurrency <= 64:
        raise UsageError(f"--concurrency must be between 1 and 64, got {opts.concurrency}")
    if opts.max_retry_time < 0:
        raise UsageError(f"--max-retry-time must not be negative, got {opts.max_retry_time}")
    files = upload_inputs(paths, opts.rejected, opts.follow)
    target: FreeplayTarget | None = None
    if not opts.dry_run:
        target = FreeplayTarget(settings, **opts.http_options())
    interrupt = Interrupt(opts.on_signal)
    restore = interrupt.install()
    journal: Journal | None = None
    ledger: SentLedger | None = None
    started = time.monotonic()
    try:
        if target is not None:
            check_listening(target.name, f"Freeplay at {target.name}")
        new_run = partial(
            _FreeplayRun,
            files=files,
            opts=opts,
            project=settings.project_id,
            rejected=opts.rejected if opts.rejected is not None else DEFAULT_NAME,
            interrupt=interrupt,
            name=settings.api_base,
        )
        if opts.strict:
            check = new_run(target=None, journal=None)
            check.run(None)
            report = check.report
            if report.errors or report.rejected or report.interrupted:
                report.strict_blocked = not report.interrupted
                report.elapsed_s = time.monotonic() - started
                return report
        if target is not None:
            journal = Journal.open(
                server=settings.api_base,
                project=settings.project_id,
                restart=opts.restart,
                db_path=opts.journal_path,
            )
            journal.take(files, interrupt.is_set)  # (the run's list; see Journal.take)
            ledger = SentLedger.open(journal.path.parent / LEDGER_NAME, settings.api_base)
        run = new_run(target=target, journal=journal, ledger=ledger)
        run.run(on_progress)
        run.report.elapsed_s = time.monotonic() - started
        return run.report
    finally:
        restore()
        if target is not None:
            target.close()
        if journal is not None:
            journal.close()
        if ledger is not None:
            ledger.close()


def _key(request: Request) -> bytes:
    return record_key(request.project, request.kind, request.record_id)


def _count_endpoint(report: UploadReport, kind: str) -> None:
    """One record is one request on Freeplay: both counts go up together (the summary shows
    calls and requests per endpoint, as for Weave's batches)."""
    report.by_endpoint[kind] = report.by_endpoint.get(kind, 0) + 1
    report.requests_by_endpoint[kind] = report.requests_by_endpoint.get(kind, 0) + 1


@dataclass(eq=False)
class _FreeplayRun:
    """One pass over the inputs; `target` None = check only (--strict's first pass, --dry-run).

    `rejected`: where the rejected records go (a path or a stream); `name`: the target's
    name in the report when there is no target."""

    files: list[str]
    opts: UploadOptions
    project: str | None
    target: FreeplayTarget | None
    journal: Journal | None
    rejected: InitVar[Any]
    interrupt: Any
    name: InitVar[str]
    ledger: SentLedger | None = None

    def __post_init__(self, rejected: Any, name: str) -> None:
        target, dry_run = self.target, self.opts.dry_run
        self.check_only = target is None and not dry_run
        self.report = UploadReport(
            target=target.name if target is not None else name,
            target_kind="server",
            mode="freeplay",
            project=self.project,
            dry_run=dry_run,
        )
        self.report.files = [FileReport(p) for p in self.files]
        redact = target.transport.redact if target is not None else None
        self.writer = RejectedWriter(rejected, inputs=self.files, redact=redact)
        self.lock = threading.Lock()
        self.fatal: TracecliError | None = None  # the reading loop's (the sender has its own)
        self.sender: FreeplaySender | None = None
        self.sources: list[Any] = []
        self.otlp: set[int] = set()  # inputs that are OpenTelemetry files
        self.otlp_calls: Any = None
        self.acked: list[AckSet] = []
        self._src_keys: dict[tuple[int, ...], bytes | None] = {}
        self._inflight: set[bytes] = set()  # keys of the records queued or being sent
        self.started_at = time.time()  # --restart: only this run's acknowledgements count
        self._cond = threading.Condition()  # guards _inflight
        self.clock = ProgressClock(None)

    # -- the reading loop (main thread) -----------------------------------------------------
    def run(self, on_progress: Callable[[Progress], None] | None) -> None:
        self.clock = ProgressClock(on_progress)
        for i, path in enumerate(self.files):
            if self.journal is not None:
                st = self.journal.file(path)
                self.report.files[i].changed = st.changed
                self.acked.append(self.journal.acked(path))
            else:
                self.acked.append(AckSet())
            src: Any = Source.open(path, self.opts.input_format)
            src.refuse_foreign = True  # another tool's format: said once, not per line
            src.whole_lines = self.opts.follow  # a half-written last line waits (--follow)
            if src.foreign_kind == OTLP:  # OpenTelemetry spans: as the calls they become
                src = self._otlp(i, src)
            elif self.journal is not None and src.resume_at(st.resume_offset, st.resume_line):
                # an appended file: its stored part is not read again, but counted as skipped
                before = self.acked[-1].count_upto(st.resume_line) + st.compacted
                self.report.skipped += before
                self.report.files[i].skipped += before
                src.records += before
            self.sources.append(src)
        if self.target is not None:
            self.sender = FreeplaySender(
                self.target,
                concurrency=self.opts.concurrency,
                tell=Verdicts(
                    acked=self._acked,
                    rejected=lambda piece, reason, status: self._reject(piece, reason, status, []),
                    unsent=self._unsent,
                    settled=self._settled,
                ),
            )
        sender = self.sender
        pieces = iter(
            FreeplayPieces(
                self.sources,
                memory_budget=self.opts.memory_budget,
                strict=self.opts.strict,
                defer_start=self.opts.defer_start,
            )
        )
        complete = False
        try:
            for piece in pieces:
                if self.interrupt.is_set() or self._halting():
                    self._unsent(piece)
                    self.report.input_left = True
                    if not self.interrupt.is_set():  # what is left unread, counted if it can
                        self.report.unread = sources_unread(self.files, self.sources, self.acked)
                    break
                self._take(piece)
                self._progress()
            pieces.close()  # type: ignore[attr-defined]  # stopped early: free the pairer now
            if sender is not None and not self.interrupt.is_set():
                sender.wait(interrupted=self.interrupt.is_set, tick=self._progress_unlocked)
            if self.interrupt.is_set():
                self.report.interrupted = True
                self.report.interrupted_by = self.interrupt.signum
            if sender is not None and (self.interrupt.is_set() or sender.halted is not None):
                sender.stop(GRACE_SECONDS)  # in flight: answered now, or left unsent
            complete = not self.report.interrupted and not self._halting()
        finally:
            if sender is not None:
                sender.close()
                sender.join(timeout=5.0)
            self._finish(complete)
        if sender is not None:
            say_unsent(sender, self.report)
        fatal = self.fatal or (sender.fatal if sender is not None else None)
        if fatal is not None:
            raise fatal

    def _otlp(self, i: int, src: Source) -> Any:
        """An OpenTelemetry file: read as Weave calls. A line holds many spans and the
        journal remembers lines, so its lines are not journaled: what an earlier run sent
        is known by the ledger (records by content), as for a file that changed."""
        if self.otlp_calls is None:
            self.otlp_calls = SpanCalls(OTLP_PROJECT)
        self.otlp.add(i)
        self.acked[i] = AckSet()
        return OtlpCalls(src, self.otlp_calls)

    def _take(self, piece: Piece) -> None:
        report = self.report
        # stored by an earlier run: nothing to say of it (a lone end read again after the
        # resume point was sent with its start, which lies before it, unread)
        if piece.lines and all(line in self.acked[src] for src, line in piece.lines):
            with self.lock:
                report.skipped += len(piece.lines)
                for src, _ in piece.lines:
                    report.files[src].skipped += 1
            return
        if piece.diagnostics:
            self._diagnose(piece)
        foreign = any(d.code == FILE_FORMAT for d in piece.diagnostics)
        if not piece.lines or foreign:  # another tool's file: said once, as an error
            return
        if piece.record is None:
            errors = [d for d in piece.diagnostics if d.is_error]
            reason = "; ".join(f"{d.field}: {d.message}" if d.field else d.message for d in errors)
            with self.lock:
                report.invalid += len(piece.lines)
            self._reject(piece, reason, None, errors)
            return
        try:
            request = build_request(dict(piece.record), self.project)
        except UsageError as exc:
            self.fatal = exc
            self._unsent(piece)
            return
        key = _key(request)
        if self.ledger is not None:
            self._await_same(key)
            source = self._source_key(piece)
            earlier = (
                not self.opts.restart and source is not None and self.ledger.seen_from(key, source)
            )
            if earlier or self.ledger.seen_since(key, self.started_at):
                self._sent_before(piece)
                return
        if self.target is None:
            if self.opts.dry_run:
                with self.lock:
                    report.uploaded += 1
                    report.acked_records += len(piece.lines)
                    report.requests += 1
                    report.bytes_sent += len(request.body)
                    _count_endpoint(report, request.kind)
            return
        assert self.sender is not None
        with self._cond:
            self._inflight.add(key)
        self.sender.submit(Job(piece, request, key), self.interrupt.is_set)

    def _halting(self) -> bool:
        return self.fatal is not None or (self.sender is not None and self.sender.broken)

    def _settled(self, key: bytes) -> None:
        """A record is no longer in flight (see `_await_same`)."""
        with self._cond:
            self._inflight.discard(key)
            self._cond.notify_all()

    def _await_same(self, key: bytes) -> None:
        """Wait while a record with the same id is in flight (the same completion twice in
        the inputs): once it is acknowledged the ledger says so, and it is not sent again."""
        with self._cond:
            while key in self._inflight:
                stopped = self.sender is not None and self.sender.stopped
                if stopped or self._halting() or self.interrupt.is_set():
                    return
                self._cond.wait(0.1)

    # -- fates -------------------------------------------------------------------------------
    def _acked(self, piece: Piece, request: Request) -> None:
        if self.ledger is not None:
            self.ledger.add(_key(request), self._source_key(piece) or STDIN_KEY)
        self._journal_lines(piece)
        with self.lock:
            r = self.report
            r.uploaded += 1
            r.acked_records += len(piece.lines)
            _count_endpoint(r, request.kind)

    def _source_key(self, piece: Piece) -> bytes | None:
        """The ledger's key for the file(s) the piece came from; None for stdin (an earlier
        run's stdin is not this one's)."""
        srcs = tuple(sorted({src for src, _ in piece.lines}))
        if srcs not in self._src_keys:
            paths = [self.files[i] for i in srcs]
            self._src_keys[srcs] = None if "-" in paths else source_key(paths)
        return self._src_keys[srcs]

    def _sent_before(self, piece: Piece) -> None:
        """Freeplay acknowledged this very record already (the ledger says so): in an
        earlier run over the same file, which has changed since (the journal started it
        over), or earlier in this run (the same record twice in the inputs). Skip it, and
        journal the lines for the next run."""
        self._journal_lines(piece)
        with self.lock:
            self.report.skipped += len(piece.lines)
            for src, _ in piece.lines:
                self.report.files[src].skipped += 1

    def _journal_lines(self, piece: Piece) -> None:
        if self.journal is not None:
            by_src: dict[int, list[int]] = {}
            for src, line in piece.lines:
                if src in self.otlp:  # see _otlp
                    continue
                by_src.setdefault(src, []).append(line)
            for src, lines in by_src.items():
                self.journal.ack(self.files[src], lines)

    def _reject(
        self, piece: Piece, reason: str, status: int | None, diags: list[Diagnostic]
    ) -> None:
        with self.lock:
            for (src, line), original in zip(piece.lines, piece.originals, strict=True):
                self.writer.add(
                    original,
                    path=self.sources[src].path,
                    line=line,
                    reason=reason,
                    status=status,
                    diagnostics=[d.to_dict() for d in diags] or None,
                )
                self.report.rejected += 1
            if status is not None:
                src, line = piece.lines[0]
                code = f"http-{status}"
                what = f"Freeplay refused it (HTTP {status}): {reason}"
                self._keep(
                    [Diagnostic(self.sources[src].path, line, "", code, Severity.ERROR, what)]
                )

    def _unsent(self, piece: Piece) -> None:
        with self.lock:
            self.report.unsent += len(piece.lines)

    def _diagnose(self, piece: Piece) -> None:
        with self.lock:
            count_diagnostics(self.report, piece.diagnostics)
            self._keep(piece.diagnostics)

    def _keep(self, diags: Sequence[Diagnostic]) -> None:
        keep_diagnostics(self.report, diags, self.opts.on_diagnostic)

    def _finish(self, complete: bool) -> None:
        report = self.report
        for i, src in enumerate(self.sources):
            report.files[i].records = src.records
        report.records = sum(s.records for s in self.sources)
        if self.target is not None:
            report.unsent += 0 if complete else max(0, report.records - report.settled)
            report.requests, report.retried, report.bytes_sent = self.target.stats()
        keep = not self.opts.dry_run and not (self.check_only and not report.rejected)
        publish_rejected(self.writer, report, keep=keep, complete=complete, notes=self.journal)
        if self.journal is not None and complete:
            for f in self.files:
                self.journal.done(f)
        self._progress(force=True)

    # -- progress ----------------------------------------------------------------------------
    def _progress(self, force: bool = False) -> None:
        with self.lock:
            self._progress_unlocked(force)

    def _progress_unlocked(self, force: bool = False) -> None:
        elapsed = self.clock.due(force)
        if elapsed is None:
            return
        total: int | None = 0
        for s in self.sources:
            total = None if s.size is None or total is None else total + s.size
        self.clock.tell(
            self.report,
            self.target,
            bytes_read=sum(s.bytes_read for s in self.sources),
            bytes_total=total,
            records=sum(s.records for s in self.sources),
            elapsed=elapsed,
        )
