"""`upload`: read, validate, pair, encode, chunk and send trace records; return a report.

The whole line of DESIGN.md runs here, on one reading thread plus the sender's workers:

    files → parse_record + CrossChecker (validate's own rules) → Pairer (start + end)
          → encode once → Chunker → Sender (threads) → journal / rejected file

Every record read ends in exactly one place: acknowledged by the server (journaled at
once), skipped (acknowledged by an earlier run), rejected (refused by validation or by the
server: in the rejected file with the reason), or unsent (Ctrl-C or an auth failure stopped
the run first; the next run sends it). The report counts each.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

from tracecli.config.per_target import WeaveTarget, resolve_weave
from tracecli.config.secret import SecretStr
from tracecli.diagnostics import UsageError
from tracecli.inputs.workers import stop_pool
from tracecli.journal.database import store_key
from tracecli.journal.rejected import DEFAULT_NAME, RejectedWriter, upload_inputs
from tracecli.journal.resume import Journal
from tracecli.journal.store_marks import StoreGuard
from tracecli.targets import DryRunTarget, Target
from tracecli.upload.give_ups import say_unsent
from tracecli.upload.pool import default_jobs, start_pool
from tracecli.upload.report import (
    GRACE_SECONDS,
    MAX_DIAGNOSTICS,
    Interrupt,
    Progress,
    UploadOptions,
    UploadReport,
    publish_rejected,
)
from tracecli.upload.run import Run
from tracecli.upload.sender import Sender
from tracecli.wire.chunking import Chunker

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

# the library's face: what a caller needs to run an upload and read its report
__all__ = [
    "RESUME_HINT",
    "Progress",
    "UploadOptions",
    "UploadReport",
    "upload",
]

RESUME_HINT = (
    "run the same command again to resume (acknowledged records are skipped); --restart starts over"
)


def upload(
    paths: Sequence[str],
    options: UploadOptions | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> UploadReport:
    """Upload trace files; the report says where every record went.

    Raises UsageError (exit 2) for bad options, a missing key, an unreachable server, and
    AuthError (exit 2) when the server refuses the key (nothing more is sent).
    """
    opts = options or UploadOptions()
    if opts.target == "freeplay":  # one request per record: its own pipeline
        # imported here for start-up time: the Freeplay pipeline (its schema's ~70 models,
        # the OpenTelemetry mapping) is for Freeplay uploads only
        from tracecli.upload.freeplay import upload_freeplay

        return upload_freeplay(paths, opts, on_progress)
    opts.check()
    weave = _weave_target(opts)
    files = upload_inputs(paths, opts.rejected, opts.follow)

    target, kind, journal_key = _open_target(opts, weave.server, weave.api_key, weave.db)
    # What exists now (modules, the caller's objects) is left out of garbage collection
    # for the run, so the sender's frequent collections (see Sender) cost little; undone
    # at the end. Before the fork, too: the workers then share those pages unchanged.
    gc.freeze()
    # Fork the workers before any thread exists (the sender's, a progress display's).
    jobs = default_jobs() if opts.jobs is None else max(0, opts.jobs)
    pool = start_pool(files, jobs)
    interrupt = Interrupt(opts.on_signal)
    shared = _Shared(
        files=files,
        opts=opts,
        rejected_path=Path(opts.rejected if opts.rejected is not None else DEFAULT_NAME),
        redact=getattr(getattr(target, "transport", None), "redact", None),
        interrupt=interrupt,
        kind=kind,
        pool=pool,
        jobs=jobs,
    )
    journal: Journal | None = None
    guard: StoreGuard | None = None
    restore = interrupt.install()
    started = time.monotonic()
    failed = True  # until the run returns: then the workers are let go politely
    try:
        if opts.strict:
            check = _run(shared, DryRunTarget(target.name), None, None, blocked_check=True)
            if check.errors or check.rejected or check.interrupted:  # (it sent nothing)
                check.strict_blocked = not check.interrupted
                check.elapsed_s = time.monotonic() - started
                failed = False
                return check
        if not opts.dry_run:
            journal = Journal.open(
                server=journal_key,
                project=opts.project,
                restart=opts.restart,
                db_path=opts.journal_path,
                pass_invalid=opts.follow,
            )
            journal.take(files, interrupt.is_set)  # (the run's list; see Journal.take)
            # the embedded store: a restored older copy is sent everything again
            guard = StoreGuard.open(journal, getattr(target, "store", None))
        report = _run(shared, target, journal, on_progress)
        report.elapsed_s = time.monotonic() - started
        report.store_resent = guard is not None and guard.lost
        failed = False
        return report
    finally:
        restore()
        if pool is not None:
            stop_pool(pool, failed)
        if guard is not None:
            guard.close()
        target.close()
        if journal is not None:
            journal.close()
        gc.unfreeze()


def _weave_target(opts: UploadOptions) -> WeaveTarget:
    """Where a Weave upload goes (as the CLI resolved it, or from the options)."""
    weave = opts.resolved or resolve_weave(
        opts.server,
        opts.api_key.get_secret_value() if isinstance(opts.api_key, SecretStr) else opts.api_key,
        str(opts.db) if opts.db is not None else None,
    )
    if opts.mode == "otel" and weave.server is None:
        raise UsageError(
            "--mode otel sends OpenTelemetry spans to a Weave server's /otel/v1/traces: give "
            "--server (the embedded store takes the converted calls: leave out --mode otel)"
        )
    return weave


def _open_target(
    opts: UploadOptions, server: str | None, api_key: SecretStr | None, db: Path | None
) -> tuple[Target, Literal["server", "store"], str]:
    if server is not None:
        from tracecli.targets.weave import WeaveHttpTarget  # start-up: not for the store

        t = WeaveHttpTarget(server, api_key=api_key, **opts.http_options())
        if opts.dry_run:
            name = t.name
            t.close()
            return DryRunTarget(name), "server", name
        try:
            t.check_reachable()
        except BaseException:
            t.close()
            raise
        return t, "server", t.name
    assert db is not None
    if opts.dry_run:
        return DryRunTarget(str(db)), "store", store_key(db, None)
    from tracecli.targets.local import LocalStoreTarget  # start-up: not for a server

    local = LocalStoreTarget(db, bulk=not opts.follow)  # (--follow: readers run beside it)
    try:  # the store's id is part of its key: a new or replaced file is a new target
        return local, "store", store_key(db, local.store.store_id())
    except BaseException:
        local.close()
        raise


class _Shared(NamedTuple):
    """What both passes of one upload share (--strict's check, then the sending run)."""

    files: list[str]
    opts: UploadOptions
    rejected_path: Path
    redact: Callable[[str], str] | None
    interrupt: Interrupt
    kind: Literal["server", "store"]
    pool: ProcessPoolExecutor | None
    jobs: int


def _run(
    shared: _Shared,
    target: Target,
    journal: Journal | None,
    on_progress: Callable[[Progress], None] | None,
    blocked_check: bool = False,
) -> UploadReport:
    files, opts, interrupt, kind = shared.files, shared.opts, shared.interrupt, shared.kind
    report = UploadReport(
        target=target.name,
        target_kind=kind,
        mode=opts.mode,
        project=opts.project,
        dry_run=opts.dry_run,
    )
    writer = RejectedWriter(shared.rejected_path, inputs=files, redact=shared.redact)
    run = Run(
        files=files,
        opts=opts,
        report=report,
        journal=journal,
        writer=writer,
        interrupted=interrupt.is_set,
        on_progress=on_progress,
        max_diagnostics=MAX_DIAGNOSTICS,
        chunker=Chunker(opts.chunk_size, opts.chunk_bytes),
        pool=shared.pool,
        jobs=shared.jobs,
        share=kind == "server",
    )
    if blocked_check:  # --strict's first pass: read and check everything, send nothing
        return _check_only(run, report, writer, interrupt, opts.dry_run)
    concurrency = min(opts.concurrency, target.concurrency) if kind == "store" else opts.concurrency
    sender = Sender(
        target,
        concurrency=max(1, concurrency),
        on_acked=run.fates.acked,
        on_rejected=run.fates.rejected,
        on_unsent=run.fates.unsent,
    )
    run.sender = sender
    complete = False
    try:
        run.read_all()
        while not interrupt.is_set() and not sender.broken:
            if sender.wait(timeout=0.2, interrupted=interrupt.is_set):
                break
            run.tick()
        if interrupt.is_set():
            report.interrupted = True
            report.interrupted_by = interrupt.signum
            sender.stop(GRACE_SECONDS)
        elif sender.halted is not None:
            sender.stop(GRACE_SECONDS)  # requests in flight: answered now, or left unsent
        complete = not report.interrupted and not sender.broken
    finally:
        sender.close()
        run.close()
        requests, retries, nbytes = target.stats()
        report.requests, report.retried, report.bytes_sent = requests, retries, nbytes
        publish_rejected(writer, report, keep=not opts.dry_run, complete=complete, notes=journal)
        if journal is not None and complete:
            for f in files:
                journal.done(f)
    say_unsent(sender, report)
    if sender.fatal is not None:
        raise sender.fatal
    return report


def _check_only(
    run: Run, report: UploadReport, writer: RejectedWriter, interrupt: Interrupt, dry_run: bool
) -> UploadReport:
    """Read and check every record, pair and encode, and send nothing (the run has no
    sender: its calls are dropped as they are made). The rejected file is written only
    when there is something in it to fix (and never by --dry-run)."""
    try:
        run.read_all()
        if interrupt.is_set():
            report.interrupted = True
            report.interrupted_by = interrupt.signum
    finally:
        run.close()
        keep = not dry_run and bool(report.errors or report.rejected)
        publish_rejected(writer, report, keep=keep, complete=not report.interrupted, notes=None)
    return report
