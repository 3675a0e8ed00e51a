"""What an upload is asked and what it answers: options, progress, the report, the halt line
and the Ctrl-C handler. Shared by the Weave run (`upload.api`, `upload.run`, `upload.fates`)
and the Freeplay run (`upload.freeplay`), so none of them imports another to reach it.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

from tracecli.check.pairing import DEFAULT_MEMORY_BUDGET
from tracecli.check.passes import EarlierPasses
from tracecli.config.fields import (
    CHUNK_BYTES,
    CHUNK_SIZE,
    CONCURRENCY,
    MAX_CHUNK_BYTES,
    MAX_CHUNK_SIZE,
    MAX_CONCURRENCY,
    MAX_OUTAGE,
    MAX_RETRY_TIME,
    MIN_CHUNK_BYTES,
)
from tracecli.config.per_target import WeaveTarget
from tracecli.config.secret import SecretStr
from tracecli.diagnostics import Diagnostic, UsageError
from tracecli.inputs.reader import InputFormat
from tracecli.journal.rejected import Notes, RejectedWriter, stale_note
from tracecli.upload.findings import Findings

Mode = Literal["auto", "complete", "batch", "single", "otel"]
MODES: tuple[str, ...] = ("auto", "complete", "batch", "single", "otel")
MAX_DIAGNOSTICS = 200  # kept in the report; all are counted
GRACE_SECONDS = 5.0  # Ctrl-C: how long requests in flight may still be answered
PROGRESS_EVERY = 0.2  # seconds between progress callbacks


class HttpOptions(TypedDict):
    """What an HTTP target (Weave's or Freeplay's) is built with, from the options: one
    place, so both targets retry, time out and verify TLS alike."""

    concurrency: int
    timeout: float
    max_retry_time: float
    max_outage: float
    ca_bundle: str | None
    allow_insecure: bool
    on_retry: Callable[[Any], None] | None


@dataclass
class UploadOptions:
    """Everything `upload` needs; the CLI fills it from flags, a library caller directly.

    server/api_key/db follow `tracecli.config.per_target.resolve_weave`: a server from the
    argument or WF_TRACE_SERVER_URL, else the embedded store at `db` (or its default).
    """

    server: str | None = None
    api_key: str | SecretStr | None = None
    db: str | Path | None = None
    resolved: WeaveTarget | None = None  # server/key/db already resolved (the CLI's settings)
    target: Literal["weave", "freeplay"] = "weave"  # freeplay: tracecli.upload.freeplay
    project: str | None = None
    mode: Mode = "auto"
    # defaults and limits: the settings' own (tracecli.config.fields)
    chunk_size: int = CHUNK_SIZE
    chunk_bytes: int = CHUNK_BYTES
    concurrency: int = CONCURRENCY
    dry_run: bool = False
    strict: bool = False
    rejected: str | Path | None = None  # default: ./tracecli-rejected.jsonl
    max_retry_time: float = MAX_RETRY_TIME
    max_outage: float = MAX_OUTAGE  # no answer to any request this long: stop (resumable)
    restart: bool = False
    ca_bundle: str | None = None
    allow_insecure: bool = False
    input_format: InputFormat = "jsonl"  # for stdin ("-")
    journal_path: str | Path | None = None  # default: the user state dir
    memory_budget: int = DEFAULT_MEMORY_BUDGET  # open calls kept in memory before spilling
    timeout: float = 120.0
    jobs: int | None = None  # worker processes for big inputs (default: cores - 1, at most 4)
    on_retry: Callable[[Any], None] | None = None
    on_diagnostic: Callable[[Diagnostic], None] | None = None
    # `upload --follow`: whether a start whose end is not read yet should wait for it (by
    # call id) rather than go as a running call at the end of the pass; see upload/follow
    defer_start: Callable[[str], bool] | None = None
    follow: bool = False  # passes of upload --follow (the journal passes over invalid lines)
    # `upload --follow`: the calls its earlier passes read and the warnings held for a
    # parent not read yet (see check/passes.py); None: a single upload
    passes: EarlierPasses | None = None
    on_signal: Callable[[int], None] | None = None  # told of SIGINT/SIGTERM during the run

    def http_options(self) -> HttpOptions:
        return HttpOptions(
            concurrency=self.concurrency,
            timeout=self.timeout,
            max_retry_time=self.max_retry_time,
            max_outage=self.max_outage,
            ca_bundle=self.ca_bundle,
            allow_insecure=self.allow_insecure,
            on_retry=self.on_retry,
        )

    def check(self) -> None:
        if self.mode not in MODES:
            raise UsageError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 1 <= self.chunk_size <= MAX_CHUNK_SIZE:
            raise UsageError(
                f"--chunk-size must be between 1 and {MAX_CHUNK_SIZE:,}, got {self.chunk_size}"
            )
        if not MIN_CHUNK_BYTES <= self.chunk_bytes <= MAX_CHUNK_BYTES:
            raise UsageError(
                f"--chunk-bytes must be between 1 KiB and 32 MiB (the server's limit), "
                f"got {self.chunk_bytes}"
            )
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise UsageError(
                f"--concurrency must be between 1 and {MAX_CONCURRENCY}, got {self.concurrency}"
            )
        if self.max_retry_time < 0:
            raise UsageError(f"--max-retry-time must not be negative, got {self.max_retry_time}")
        if not self.max_outage > 0:
            raise UsageError(f"--max-outage must be more than 0, got {self.max_outage}")
        if self.project is not None:
            entity, sep, proj = self.project.partition("/")
            if not sep or not entity or not proj or "/" in proj:
                raise UsageError(f"--project must be entity/project, got {self.project!r}")


@dataclass
class Progress:
    """What the display shows; handed to `on_progress` a few times a second."""

    bytes_read: int
    bytes_total: int | None
    records: int
    uploaded: int
    rejected: int
    skipped: int
    retries: int
    elapsed: float
    # what the requests wait for, when not all is well: e.g. `server unreachable
    # (connection refused); retry 5 in 8 s`, `server answered HTTP 503; retry 2 in 1 s`
    status: str | None = None


class ProgressClock:
    """When to hand `on_progress` a `Progress`: at most every PROGRESS_EVERY seconds, or
    when forced (the end of a run), and never without a callback."""

    def __init__(self, on_progress: Callable[[Progress], None] | None) -> None:
        self.on_progress = on_progress
        self.started = time.monotonic()
        self._last = 0.0

    def due(self, force: bool = False) -> float | None:
        """The seconds since the start when a progress report is due now, else None."""
        if self.on_progress is None:
            return None
        now = time.monotonic()
        if not force and now - self._last < PROGRESS_EVERY:
            return None
        self._last = now
        return now - self.started

    def tell(
        self,
        report: UploadReport,
        target: object,
        *,
        bytes_read: int,
        bytes_total: int | None,
        records: int,
        elapsed: float,
    ) -> None:
        """Hand the callback the report's counts and the target's retries and status."""
        assert self.on_progress is not None
        stats = getattr(target, "stats", None)
        status = getattr(target, "status", None)
        self.on_progress(
            Progress(
                bytes_read=bytes_read,
                bytes_total=bytes_total,
                records=records,
                uploaded=report.uploaded,
                rejected=report.rejected,
                skipped=report.skipped,
                retries=stats()[1] if callable(stats) else 0,
                elapsed=elapsed,
                # what the requests wait for (a retry, an outage), if anything
                status=(status() or None) if callable(status) else None,
            )
        )


@dataclass
class FileReport:
    path: str
    records: int = 0
    skipped: int = 0
    changed: bool = False  # an earlier run saw other content here: started over


@dataclass
class UploadReport(Findings):
    target: str
    target_kind: Literal["server", "store"]
    mode: str
    project: str | None
    dry_run: bool
    files: list[FileReport] = field(default_factory=list)
    records: int = 0  # records read (valid or not)
    uploaded: int = 0  # calls stored in this run (running or complete): their start went
    ends_uploaded: int = 0  # ends alone, completing calls started earlier or elsewhere
    acked_records: int = 0  # records acknowledged in this run (a call is one or two)
    # calls (and lone ends) per endpoint; in single mode a call counts under both routes
    by_endpoint: dict[str, int] = field(default_factory=dict)
    requests_by_endpoint: dict[str, int] = field(default_factory=dict)  # acknowledged requests
    rejected: int = 0  # records rejected (by validation or the server)
    invalid: int = 0  # of those, refused by validation
    unsent: int = 0  # records not sent: the run was stopped first
    # what to do about what was not sent, when running again cannot resume it (stdin)
    resume_note: str | None = None
    skipped: int = 0  # records acknowledged by an earlier run
    retried: int = 0
    requests: int = 0
    bytes_sent: int = 0
    rejected_file: str | None = None
    stale_rejected_file: str | None = None
    stale_rejected_note: str | None = None  # about that file, once (see rejected.stale_note)
    interrupted: bool = False
    interrupted_by: int | None = None  # the signal that interrupted the run (SIGINT, SIGTERM)
    # why sending stopped before the end (the server looked down), as one line:
    # `server unreachable since 14:02:11; 187,990 records unsent; run the same command...`
    halted: str | None = None
    # why records were left unsent when requests gave up but too few to stop the run:
    # `the server failed a request, retried for --max-retry-time (last: ...); 4 records...`
    gave_up: str | None = None
    input_left: bool = False  # the run stopped before reading all of its input
    unread: int | None = None  # then, about how many records were not read (None: unknown)
    strict_blocked: bool = False  # --strict found errors: nothing was sent
    store_resent: bool = False  # the store was not as the journal left it: all sent again
    peak_open_calls: int = 0
    spilled: int = 0
    elapsed_s: float = 0.0

    @property
    def settled(self) -> int:
        """The records read that have their fate: stored (now or before), rejected or
        unsent. Each record read has exactly one; the rest are held (a half waiting)."""
        return self.acked_records + self.rejected + self.unsent + self.skipped

    @property
    def calls_per_s(self) -> float:
        return self.uploaded / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def changed_files(self) -> list[str]:
        return [f.path for f in self.files if f.changed]

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 128 + (self.interrupted_by or signal.SIGINT)
        if self.rejected or self.unsent or self.errors or self.strict_blocked:
            return 1
        return 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "target_kind": self.target_kind,
            "mode": self.mode,
            "project": self.project,
            "dry_run": self.dry_run,
            "files": len(self.files),
            "inputs": [
                {"path": f.path, "records": f.records, "skipped": f.skipped, "changed": f.changed}
                for f in self.files
            ],
            "records": self.records,
            "uploaded": self.uploaded,
            "ends_uploaded": self.ends_uploaded,
            "records_uploaded": self.acked_records,
            "by_endpoint": dict(self.by_endpoint),
            "requests_by_endpoint": dict(self.requests_by_endpoint),
            **self.fields_dict(
                "rejected invalid unsent skipped retried requests bytes_sent errors warnings "
                "diagnostics rejected_file interrupted halted gave_up unread strict_blocked "
                "changed_files store_resent peak_open_calls spilled"
            ),
            "elapsed_s": round(self.elapsed_s, 3),
            "calls_per_s": round(self.calls_per_s, 1),
        }


def keep_diagnostics(
    report: UploadReport,
    diags: Sequence[Diagnostic],
    on_diagnostic: Callable[[Diagnostic], None] | None,
    limit: int = MAX_DIAGNOSTICS,
) -> None:
    """Keep the first `limit` diagnostics in the report (all are counted elsewhere) and
    tell the caller of each as it comes (the CLI prints them at once)."""
    room = limit - len(report.diagnostics)
    if room > 0:
        report.diagnostics.extend(diags[:room])
    if on_diagnostic is not None:
        for d in diags:
            on_diagnostic(d)


def count_diagnostics(report: UploadReport, diags: Sequence[Diagnostic]) -> None:
    """Count diagnostics as errors or warnings, by their severity."""
    for d in diags:
        if d.is_error:
            report.errors += 1
        else:
            report.warnings += 1


def halt_line(why: str, report: UploadReport) -> str:
    """The one line that says the run stopped on a dead server, what is left, what to do:
    `server unreachable since 14:02:11; 187,990 records unsent; run the same command again
    to resume`: the records read and not stored, and those not read (counted in the
    plain JSON-lines files that were not read to their end; otherwise said so)."""
    unsent = report.unsent
    rest = ""
    if report.input_left and report.unread is not None:
        unsent += report.unread  # read or not, none of them is stored
    elif report.input_left:
        rest = " (and the rest of the input, not read)"
    return f"{why}; {unsent:,} records unsent{rest}; run the same command again to resume"


class Interrupt:
    """First Ctrl-C (or SIGTERM: how CI cancels a job, how systemd and Kubernetes stop a
    process): stop reading and wind down (the flag the loops check), so the run ends with
    its summary, the journal saved and the resume hint. Second: raise."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, on_signal: Callable[[int], None] | None = None) -> None:
        self._event = threading.Event()
        self.signum: int | None = None
        self._on_signal = on_signal  # a caller that runs several uploads (--follow)

    def is_set(self) -> bool:
        return self._event.is_set()

    def __call__(self, signum: int, frame: object) -> None:
        if self._event.is_set():
            raise KeyboardInterrupt
        self.signum = signum
        self._event.set()
        if self._on_signal is not None:
            self._on_signal(signum)

    def install(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {s: signal.signal(s, self) for s in self.SIGNALS}

        def restore() -> None:
            for s, handler in previous.items():
                signal.signal(s, handler)

        return restore


def publish_rejected(
    writer: RejectedWriter,
    report: UploadReport,
    *,
    keep: bool,
    complete: bool,
    notes: Notes | None,
) -> None:
    """End a run's rejected-records file and say in the report where it is: published
    (`complete=False` for a stopped run), dropped when not `keep` (--dry-run, a check that
    found nothing), or, when this run rejected nothing and an earlier run's file is still
    there, a note about that file (said once, see `stale_note`)."""
    if not keep:
        writer.discard()
        return
    written = writer.close(complete=complete)
    report.rejected_file = str(written) if written is not None else None
    if writer.stale and written is None:
        report.stale_rejected_file = str(writer.path)
        report.stale_rejected_note = stale_note(writer.path, notes)
