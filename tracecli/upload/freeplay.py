"""`upload --target freeplay`: read, convert, check and send records to Freeplay; report.

Same promises as the Weave upload, over Freeplay's one-request-per-record API: every input
record ends acknowledged (journaled at once, skipped by the next run), rejected (by the
checks or by the server: in the rejected file with the reason, as it was read), or unsent
(Ctrl-C, an auth failure or an outage stopped the run first: the next run sends it).
`concurrency` worker threads post through the target's one pooled client; the reader blocks
on a short queue, so memory stays bounded. The report is the Weave upload's `UploadReport`,
so the CLI renders both the same way.

Freeplay's handling of a repeated `completion_id` is unknown, so nothing acknowledged is
sent again: the journal skips acknowledged lines, and the `freeplay_ledger` skips
acknowledged records of a file that changed since (and a record met twice in one run).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from tracecli.diagnostics import Diagnostic, Severity, TracecliError, UsageError
from tracecli.freeplay.stream import FreeplayPieces, Piece
from tracecli.inputs.reader import FILE_FORMAT, Source, expand_paths
from tracecli.otel.calls import SpanCalls
from tracecli.targets.freeplay import (
    DEFAULT_API_BASE,
    FreeplaySettings,
    FreeplayTarget,
    Request,
    build_request,
    resolve_freeplay,
)
from tracecli.targets.redact import strip_userinfo
from tracecli.targets.retry import Action
from tracecli.targets.transport import Outcome, check_listening
from tracecli.upload.freeplay_ledger import (
    LEDGER_NAME,
    STDIN_KEY,
    SentLedger,
    record_key,
    source_key,
)
from tracecli.upload.journal import AckSet, Journal
from tracecli.upload.otlp_lines import OTLP, OtlpCalls
from tracecli.upload.rejected import DEFAULT_NAME, RejectedWriter, skip_rejected_file, stale_note
from tracecli.upload.report import (
    FileReport,
    Interrupt,
    Progress,
    UploadOptions,
    UploadReport,
    halt_line,
)
from tracecli.upload.sender import halt_reason

GRACE_SECONDS = 5.0
PROGRESS_EVERY = 0.2
MAX_DIAGNOSTICS = 200
# the Weave project of converted spans whose resource names none (Freeplay has its own)
OTLP_PROJECT = "otlp/freeplay"
OUTAGE_GIVE_UPS = 8  # records given up in a row (none acknowledged) that stop the upload


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
    files = skip_rejected_file(paths, expand_paths(paths), opts.rejected)
    if not files:
        raise UsageError(
            "no trace files found in the given paths (.jsonl, .ndjson, .json, .yaml, .yml)"
        )
    if files.count("-") > 1:
        raise UsageError("stdin ('-') can be read only once")
    target: FreeplayTarget | None = None
    if not opts.dry_run:
        target = FreeplayTarget(
            settings,
            concurrency=opts.concurrency,
            timeout=opts.timeout,
            max_retry_time=opts.max_retry_time,
            max_outage=opts.max_outage,
            ca_bundle=opts.ca_bundle,
            allow_insecure=opts.allow_insecure,
            on_retry=opts.on_retry,
        )
    interrupt = Interrupt(opts.on_signal)
    restore = interrupt.install()
    journal: Journal | None = None
    ledger: SentLedger | None = None
    started = time.monotonic()
    try:
        if target is not None:
            check_listening(target.name, f"Freeplay at {target.name}")
        rejected = opts.rejected if opts.rejected is not None else DEFAULT_NAME
        if opts.strict:
            check = _FreeplayRun(
                files, opts, settings.project_id, None, None, rejected, interrupt, settings.api_base
            )
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
            ledger = SentLedger.open(journal.path.parent / LEDGER_NAME, settings.api_base)
        run = _FreeplayRun(
            files,
            opts,
            settings.project_id,
            target,
            journal,
            rejected,
            interrupt,
            settings.api_base,
            ledger,
        )
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


def wrong_api_base(out: Outcome, settings: FreeplaySettings) -> str | None:
    """Why every request would fail, when a 404/405 says the API base is not Freeplay's API
    (e.g. FREEPLAY_API_BASE without `/api`): stopping at once beats rejecting every record.
    Freeplay's own 404s ("Project not found", an unknown id) carry a JSON `message` and are
    answered on a base ending in /api; anything else is taken as "no such route"."""
    if out.status not in (404, 405):
        return None
    freeplay_like = isinstance(out.body, dict) and isinstance(out.body.get("message"), str)
    if freeplay_like and urlsplit(settings.api_base).path.rstrip("/").endswith("/api"):
        return None
    base = strip_userinfo(settings.api_base)
    return (
        f"{base} answered HTTP {out.status} ({out.reason or 'no message'}): "
        "it does not look like Freeplay's API; the API base (--server, FREEPLAY_API_BASE) "
        f"includes /api, e.g. {DEFAULT_API_BASE} or https://<subdomain>.freeplay.ai/api"
    )


def not_freeplay_answer(out: Outcome, request: Request) -> str | None:
    """Why a 2xx is not Freeplay's acknowledgement, if it is not: Freeplay answers a
    completion with `{"completion_id": ...}` and a trace with a JSON object (201 `{}`), as
    the SDK expects. A web page answering 200 (an API base without `/api` in front of a web
    app) must not count as stored. Only what positively is not that answer counts (a
    content type that is not JSON, a JSON object without the id), so an answer read
    without its body still passes."""
    ctype = out.headers.get("content-type", "")
    not_json = bool(ctype) and "json" not in ctype.lower()
    body = out.body
    no_id = (
        request.kind == "completions"
        and isinstance(body, dict)
        and not isinstance(body.get("completion_id"), str)
    )
    if not (not_json or no_id):
        return None
    return (
        f"answered HTTP {out.status} ({ctype}) without Freeplay's JSON acknowledgement: it "
        "does not look like Freeplay's API; the API base (--server, FREEPLAY_API_BASE) "
        f"includes /api, e.g. {DEFAULT_API_BASE}"
    )


def _count_endpoint(report: UploadReport, kind: str) -> None:
    """One record is one request on Freeplay: both counts go up together (the summary shows
    calls and requests per endpoint, as for Weave's batches)."""
    report.by_endpoint[kind] = report.by_endpoint.get(kind, 0) + 1
    report.requests_by_endpoint[kind] = report.requests_by_endpoint.get(kind, 0) + 1


class _FreeplayRun:
    """One pass over the inputs; `target` None = check only (--strict's first pass, --dry-run)."""

    def __init__(
        self,
        files: list[str],
        opts: UploadOptions,
        project: str | None,
        target: FreeplayTarget | None,
        journal: Journal | None,
        rejected: Any,
        interrupt: Any,
        name: str,
        ledger: SentLedger | None = None,
    ) -> None:
        self.files = files
        self.opts = opts
        self.project = project
        self.target = target
        self.journal = journal
        self.ledger = ledger
        self.interrupt = interrupt
        self.check_only = target is None and not opts.dry_run
        self.report = UploadReport(
            target=target.name if target is not None else name,
            target_kind="server",
            mode="freeplay",
            project=project,
            dry_run=opts.dry_run,
        )
        self.report.files = [FileReport(p) for p in files]
        redact = target.transport.redact if target is not None else None
        self.writer = RejectedWriter(rejected, inputs=files, redact=redact)
        self.lock = threading.Lock()
        self.fatal: TracecliError | None = None
        self.sources: list[Any] = []
        self.otlp: set[int] = set()  # inputs that are OpenTelemetry files
        self.otlp_calls: Any = None
        self.acked: list[AckSet] = []
        self._queue: queue.Queue[tuple[Piece, Request, bytes] | None] = queue.Queue(
            maxsize=max(2, opts.concurrency * 2)
        )
        self._pending = 0
        self._give_ups = 0  # records given up in a row (retries ran out), none acked between
        self.halted: str | None = None  # why the run stopped early without a fatal error
        self._src_keys: dict[tuple[int, ...], bytes | None] = {}
        self._inflight: set[bytes] = set()  # keys of the records queued or being sent
        self.started_at = time.time()  # --restart: only this run's acknowledgements count
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._last_progress = 0.0
        self.started = time.monotonic()

    # -- the reading loop (main thread) -----------------------------------------------------
    def run(self, on_progress: Callable[[Progress], None] | None) -> None:
        self.on_progress = on_progress
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
        threads = []
        if self.target is not None:
            threads = [
                threading.Thread(target=self._work, name=f"tracecli-freeplay-{i}", daemon=True)
                for i in range(self.opts.concurrency)
            ]
            for t in threads:
                t.start()
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
                    break
                self._take(piece)
                self._progress()
            pieces.close()  # type: ignore[attr-defined]  # stopped early: free the pairer now
            if self.target is not None and not self.interrupt.is_set():
                self._wait(interrupted=self.interrupt.is_set)
            if self.interrupt.is_set():
                self.report.interrupted = True
                self.report.interrupted_by = self.interrupt.signum
                self._stop(GRACE_SECONDS)
            elif self.halted is not None:
                self._stop(GRACE_SECONDS)  # in flight: answered now, or left unsent
            complete = not self.report.interrupted and not self._halting()
        finally:
            self._stopping.set()
            for _ in threads:
                self._queue.put(None)
            for t in threads:
                t.join(timeout=5.0)
            self._finish(complete)
        if self.halted is not None:
            self.report.halted = halt_line(self.halted, self.report)
            self.report.errors += 1
        if self.fatal is not None:
            raise self.fatal

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
        if piece.diagnostics:
            self._diagnose(piece)
        foreign = any(d.code == FILE_FORMAT for d in piece.diagnostics)
        if not piece.lines or foreign:  # another tool's file: said once, as an error
            return
        if all(line in self.acked[src] for src, line in piece.lines):
            with self.lock:
                report.skipped += len(piece.lines)
                for src, _ in piece.lines:
                    report.files[src].skipped += 1
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
        with self._cond:
            self._pending += 1
            self._inflight.add(key)
        while True:
            if self._stopping.is_set() or self._halting() or self.interrupt.is_set():
                self._done_one(key)
                self._unsent(piece)
                return
            try:
                self._queue.put((piece, request, key), timeout=0.1)
                return
            except queue.Full:
                continue

    # -- workers ---------------------------------------------------------------------------
    def _work(self) -> None:
        assert self.target is not None
        while True:
            job = self._queue.get()
            if job is None:
                return
            piece, request, key = job
            try:
                if self._stopping.is_set() or self._halting():
                    self._unsent(piece)
                    continue
                try:
                    out = self.target.send(request)
                except TracecliError as exc:  # AuthError, TLS/config: everything stops
                    if self.fatal is None:
                        self.fatal = exc
                    self._unsent(piece)
                    continue
                if out.action is Action.OK and (odd := not_freeplay_answer(out, request)):
                    if self.fatal is None:  # nothing says it was recorded: not acknowledged
                        self.fatal = UsageError(f"{self.target.name} {odd}")
                    self._unsent(piece)
                elif out.action is Action.OK:
                    self._give_ups = 0
                    self._acked(piece, request)
                elif out.action is Action.CANCELLED:
                    self._unsent(piece)
                elif out.status == 404 and "project not found" in out.reason.lower():
                    if self.fatal is None:
                        project = request.path.split("/")[3]
                        self.fatal = UsageError(
                            f"Freeplay says: {out.reason} (project {project}; check --project "
                            "and that the key has access to it)"
                        )
                    self._unsent(piece)
                elif (wrong := wrong_api_base(out, self.target.settings)) is not None:
                    if self.fatal is None:
                        self.fatal = UsageError(wrong)
                    self._unsent(piece)
                elif out.action is Action.UNREACHABLE:  # no answer for --max-outage
                    self._unsent(piece)
                    with self.lock:
                        if self.halted is None:
                            self.halted = halt_reason(self.target, out)
                elif out.action is Action.GIVE_UP:  # no verdict on the record: unsent
                    self._unsent(piece)
                    self._gave_up(out)
                else:  # REJECT: Freeplay refused it
                    self._reject(piece, out.reason, out.status, [])
            except Exception as exc:  # never lose a record to a bug in a callback
                if self.fatal is None:
                    self.fatal = TracecliError(f"internal error while sending: {exc!r}")
                self._unsent(piece)
            finally:
                self._done_one(key)

    def _halting(self) -> bool:
        return self.fatal is not None or self.halted is not None

    def _gave_up(self, out: Outcome) -> None:
        """Retries ran out for a record (it stays unsent: Freeplay never refused it). When
        that happens to `OUTAGE_GIVE_UPS` records in a row (twice `concurrency` if more)
        with nothing acknowledged between, Freeplay is failing, not refusing a record:
        stop, rather than spend --max-retry-time on every record left; the next run sends
        the rest. (No answer at all stops sooner: --max-outage, in the transport.)"""
        with self.lock:
            self._give_ups += 1
            limit = max(OUTAGE_GIVE_UPS, 2 * self.opts.concurrency)
            if self._give_ups < limit or self.halted is not None:
                return
            last = f" (last: {out.reason})" if out.reason else ""
            self.halted = (
                f"Freeplay failed {self._give_ups} requests in a row, each retried for "
                f"--max-retry-time, with nothing acknowledged between{last}"
            )

    def _done_one(self, key: bytes) -> None:
        with self._cond:
            self._pending -= 1
            self._inflight.discard(key)
            self._cond.notify_all()

    def _await_same(self, key: bytes) -> None:
        """Wait while a record with the same id is in flight (the same completion twice in
        the inputs): once it is acknowledged the ledger says so, and it is not sent again."""
        with self._cond:
            while key in self._inflight:
                if self._stopping.is_set() or self._halting() or self.interrupt.is_set():
                    return
                self._cond.wait(0.1)

    def _wait(
        self, timeout: float | None = None, interrupted: Callable[[], bool] | None = None
    ) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending:
                if interrupted is not None and interrupted():
                    return False
                left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
                if left <= 0:
                    return False
                self._cond.wait(left)
                self._progress_unlocked()
        return True

    def _stop(self, grace: float) -> None:
        self._stopping.set()
        if not self._wait(grace) and self.target is not None:
            self.target.cancel()
            self._wait(2.0)

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
            for d in piece.diagnostics:
                if d.is_error:
                    self.report.errors += 1
                else:
                    self.report.warnings += 1
            self._keep(piece.diagnostics)

    def _keep(self, diags: Sequence[Diagnostic]) -> None:
        room = MAX_DIAGNOSTICS - len(self.report.diagnostics)
        if room > 0:
            self.report.diagnostics.extend(diags[:room])
        cb = self.opts.on_diagnostic
        if cb is not None:
            for d in diags:
                cb(d)

    def _finish(self, complete: bool) -> None:
        report = self.report
        for i, src in enumerate(self.sources):
            report.files[i].records = src.records
        report.records = sum(s.records for s in self.sources)
        if self.target is not None:
            report.requests, report.retried, report.bytes_sent = self.target.stats()
        if self.opts.dry_run or (self.check_only and not report.rejected):
            self.writer.discard()
        else:
            written = self.writer.close(complete=complete)
            report.rejected_file = str(written) if written is not None else None
            if self.writer.stale and written is None:
                report.stale_rejected_file = str(self.writer.path)
                report.stale_rejected_note = stale_note(self.writer.path, self.journal)
        if self.journal is not None and complete:
            for f in self.files:
                self.journal.done(f)
        self._progress(force=True)

    # -- progress ----------------------------------------------------------------------------
    def _progress(self, force: bool = False) -> None:
        with self.lock:
            self._progress_unlocked(force)

    def _progress_unlocked(self, force: bool = False) -> None:
        cb = getattr(self, "on_progress", None)
        if cb is None:
            return
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_EVERY:
            return
        self._last_progress = now
        r = self.report
        total: int | None = 0
        for s in self.sources:
            total = None if s.size is None or total is None else total + s.size
        cb(
            Progress(
                bytes_read=sum(s.bytes_read for s in self.sources),
                bytes_total=total,
                records=sum(s.records for s in self.sources),
                uploaded=r.uploaded,
                rejected=r.rejected,
                skipped=r.skipped,
                retries=self.target.stats()[1] if self.target is not None else 0,
                elapsed=now - self.started,
                status=(self.target.status() or None) if self.target is not None else None,
            )
        )
