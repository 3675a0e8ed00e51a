"""`tracecli upload --follow`: keep shipping trace files as the app appends to them.

Not a second pipeline: every time the inputs changed (looked at when a file event wakes
the loop, and at least every `flush_interval`; see `tracecli.inputs.watch`) the follow
loop runs one ordinary `upload` pass over them, and the resume journal makes each pass
read and send only what is new (an append is a seek, a rotated or truncated file is
recognised; see `upload.journal`). So everything a single
upload guarantees — validation, pairing, chunking, retries, the rejected file, acks
journaled as they come — holds here too, and a restart (after SIGTERM, a crash, `kill -9`)
resumes exactly where the journal says.

What follow adds:
- Pairing with patience: a start whose end is not written yet waits (is not sent; the
  journal keeps the resume point before it, so the next pass reads it again) for up to
  `pair_wait` seconds from when it was first read, so most calls still go as completed
  calls; after that it goes as a running call and its end follows alone (Weave), or is
  rejected as having no end yet (Freeplay; see `pair_wait_applies`).
- Outages: a pass that cannot reach the server, or that the outage stop ended, is retried
  with a capped backoff, said once per change of state, for as long as `max_outage` allows
  (None: forever, as a sidecar must outlive a server restart).
- Signals: SIGTERM ends the current pass as an interrupted upload does (stop reading, let
  requests in flight finish, save the journal) and exits 0 (a service being stopped);
  Ctrl-C exits 130.
- A status for the display (records/s, calls shipped, lag, open calls, last error).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from tracecli.check.passes import EarlierPasses
from tracecli.config.fields import PAIR_WAIT
from tracecli.diagnostics import UsageError
from tracecli.inputs.reader import format_of
from tracecli.inputs.settle import QUIET_SECONDS, quiet_for
from tracecli.inputs.watch import FileEvents, Snapshot
from tracecli.journal.rejected import DEFAULT_NAME
from tracecli.upload.api import UploadOptions, UploadReport, upload
from tracecli.upload.follow_inputs import follow_watcher, yaml_quiet
from tracecli.upload.passes import (
    FollowRejects,
    PairPatience,
    PassSignals,
    pair_wait_applies,
    said_once,
)

BACKOFF_FIRST = 1.0  # seconds before the first retry of a pass that met an outage
BACKOFF_MAX = 30.0  # the cap: a sidecar checks again at least this often
# File events can wake the loop ~10 times a second while the app writes; a pass costs tens
# of milliseconds of CPU whatever it sends, so under load passes start at most this often
# (records then go in bigger chunks). A lone write still goes at once.
MIN_PASS_GAP = 0.25
QUIET_MARGIN = 0.05  # a pass for a YAML file gone quiet runs this long after, to be sure


@dataclass(slots=True)
class FollowOptions:
    flush_interval: float = 1.0  # the longest time between two looks (and so the latency)
    pair_wait: float = PAIR_WAIT  # auto mode: how long a start waits for its end
    max_outage: float | None = None  # give up after this long without a good pass
    poll: bool = False  # no file events: look every flush_interval only (network filesystems)
    yaml_quiet: float = QUIET_SECONDS  # a YAML file unchanged this long: its last document goes


@dataclass(slots=True)
class FollowStatus:
    """What the display shows about a follow: handed to `on_status` after every poll."""

    passes: int = 0
    records: int = 0  # new records read (not counting what was skipped as stored)
    calls: int = 0  # calls shipped (completed calls and running starts)
    ends: int = 0  # ends sent alone (their start went earlier)
    rejected: int = 0
    records_per_s: float = 0.0
    lag_s: float = 0.0  # how long the oldest change not yet shipped has waited
    open_calls: int = 0  # starts waiting for their end
    files: int = 0
    watching: str = "polling"  # "events" while file events wake the loop early
    watch_note: str | None = None  # why it polls, when it was not chosen
    last_error: str | None = None
    outage_since: float | None = None  # wall time the current outage began
    started: float = field(default_factory=time.time)

    def count(self, report: UploadReport) -> None:
        """Add a pass's counts (what it skipped as stored is not new)."""
        self.passes += 1
        self.records += report.records - report.skipped
        self.calls += report.uploaded
        self.ends += report.ends_uploaded
        self.rejected += report.rejected


def _next_look(
    now: float, flush_interval: float, pending: float | None, due: float | None
) -> float:
    """Seconds to wait before the next look unless an event wakes the loop: the flush interval
    at most, less when a change waits for its pass (a retry, the gap between passes) or a
    start's patience ends sooner (monotonic times)."""
    wait = flush_interval
    for t in (pending, due):
        if t is not None and t > now:
            wait = min(wait, t - now)
    return max(wait, 0.01)


def _quiet_at(snap: Snapshot, now: float) -> float | None:
    """When (monotonic) the YAML inputs that changed lately will have been quiet for
    `QUIET_SECONDS`, if any is that fresh: a pass reading one now holds its last document
    back (`yaml_records._WholeDocuments`), so another pass must run then to send it."""
    now_ns = time.time_ns()
    left = [quiet_for(s.mtime_ns, now_ns) for s in snap.stamps if format_of(s.path) == "yaml"]
    wait = min((t for t in left if t > 0), default=None)
    return None if wait is None else now + wait + QUIET_MARGIN


class _Settle:
    """When the YAML inputs read while fresh will have gone quiet (`at`, monotonic): a pass
    then sends the last documents held back. Forgotten by a pass that shipped, which reads
    what is quiet whole and is followed by a new look."""

    def __init__(self) -> None:
        self.at: float | None = None

    def look(self, snap: Snapshot) -> None:
        self.at = _earliest(self.at, _quiet_at(snap, time.monotonic()))


def _earliest(*times: float | None) -> float | None:
    return min((t for t in times if t is not None), default=None)


def _outage(exc: BaseException) -> bool:
    return isinstance(exc, UsageError) and "cannot reach the server" in str(exc)


def _check_options(paths: Iterable[str], opts: UploadOptions, fopts: FollowOptions) -> None:
    """UsageError (exit 2) for what --follow cannot do."""
    if opts.dry_run:
        raise UsageError("--follow cannot be combined with --dry-run")
    if opts.strict:
        raise UsageError("--follow cannot be combined with --strict")
    if any(p == "-" for p in paths):
        raise UsageError("--follow reads files, not stdin ('-')")
    if not fopts.flush_interval > 0:
        raise UsageError(f"--flush-interval must be more than 0, got {fopts.flush_interval}")
    if fopts.pair_wait < 0:
        raise UsageError(f"--pair-wait must not be negative, got {fopts.pair_wait}")
    if fopts.yaml_quiet < 0:
        raise UsageError(f"yaml_quiet must not be negative, got {fopts.yaml_quiet}")


class _Outage:
    """Passes that could not ship (the server down): the next try waits a pause that
    doubles up to BACKOFF_MAX; `max_outage` seconds with no good pass give up."""

    def __init__(self, status: FollowStatus, max_outage: float | None) -> None:
        self.status = status
        self.max_outage = max_outage
        self.retry_at = 0.0  # no pass before this (monotonic)
        self.backoff = BACKOFF_FIRST
        self.good_at = time.monotonic()

    def shipped(self) -> None:
        self.backoff = BACKOFF_FIRST
        self.good_at = time.monotonic()
        self.status.outage_since = None

    def given_up(self) -> bool:
        """A pass failed: wait longer before the next; True when it is time to stop."""
        if self.status.outage_since is None:
            self.status.outage_since = time.time()
        self.retry_at = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)
        return self.max_outage is not None and time.monotonic() - self.good_at > self.max_outage


class _Rate:
    """Records shipped per second over the last ten seconds of passes."""

    def __init__(self) -> None:
        self.window: list[tuple[float, int]] = []

    def add(self, now: float, records: int, last: float) -> float:
        """Note the records shipped so far at `now`; the rate (`last` when not known)."""
        self.window.append((now, records))
        self.window = [(t, n) for t, n in self.window if now - t <= 10.0]
        if len(self.window) > 1 and self.window[-1][0] > self.window[0][0]:
            (t0, n0), (t1, n1) = self.window[0], self.window[-1]
            return (n1 - n0) / (t1 - t0)
        return last


def _ship(
    inputs: list[str],
    opts: UploadOptions,
    rejects: FollowRejects,
    status: FollowStatus,
    on_report: Callable[[UploadReport], None] | None,
) -> UploadReport | None:
    """One pass: upload what the inputs hold now; its report, or None when the server
    could not be reached (said in the status; the loop tries again later)."""
    try:
        report = upload(inputs, opts)
    except UsageError as exc:
        if not _outage(exc):
            raise
        status.last_error = str(exc)
        return None
    finally:
        rejects.collect()
    status.count(report)
    if on_report is not None:
        on_report(report)
    if report.halted or report.gave_up:  # (gave up: a few requests, too few to stop it)
        status.last_error = report.halted or report.gave_up
    return report


def _pass_options(
    opts: UploadOptions,
    rejects: FollowRejects,
    patience: PairPatience,
    signals: PassSignals,
    passes: EarlierPasses,
) -> UploadOptions:
    """What each pass runs with: each diagnostic said once, starts held back for their end
    while `patience` waits for it, what the earlier passes read (`passes`), no worker
    processes, the pass's own rejected file."""
    return replace(
        opts,
        passes=passes,
        on_diagnostic=said_once(opts.on_diagnostic),
        defer_start=patience if patience.pair_wait > 0 else None,
        jobs=0,  # a pass reads what was appended: small; no worker processes per pass
        follow=True,
        rejected=rejects.pass_path,
        on_signal=lambda signum: signals(signum, None),  # a signal a pass caught late
    )


def _tell(
    status: FollowStatus, patience: PairPatience, on_status: Callable[[FollowStatus], None] | None
) -> None:
    status.open_calls = len(patience.waiting)
    if on_status is not None:
        on_status(status)


def _wind_down(
    restore: Callable[[], None],
    events: FileEvents | None,
    pass_opts: UploadOptions,
    passes: EarlierPasses,
) -> None:
    """The end of a follow, however it ends: signal handlers and file events let go, and
    the parent warnings still held (for a parent that did not come) said."""
    restore()
    if events is not None:
        events.close()
    if pass_opts.on_diagnostic is not None:
        for d in passes.rest():
            pass_opts.on_diagnostic(d)


def follow(
    paths: Iterable[str],
    opts: UploadOptions,
    fopts: FollowOptions,
    on_status: Callable[[FollowStatus], None] | None = None,
    on_report: Callable[[UploadReport], None] | None = None,
) -> int:
    """Ship the inputs as they grow until SIGTERM (exit code 0) or Ctrl-C (130), or until
    the server stayed unreachable for `fopts.max_outage` (1). Raises UsageError for what a
    single upload raises at once (bad options, a refused key): exit 2."""
    _check_options(paths, opts, fopts)
    patience = PairPatience(fopts.pair_wait if pair_wait_applies(opts) else 0.0)
    watcher = follow_watcher(paths, opts.on_diagnostic, patience.pair_wait, fopts.flush_interval)
    rejects = FollowRejects(Path(opts.rejected if opts.rejected is not None else DEFAULT_NAME))
    own = {os.path.realpath(rejects.path), os.path.realpath(rejects.pass_path)}
    status = FollowStatus()
    wake = threading.Event()  # set by a signal or a file event: look now
    signals = PassSignals(wake)
    passes = EarlierPasses(fopts.pair_wait)  # parents other passes read: check/passes.py
    pass_opts = _pass_options(opts, rejects, patience, signals, passes)
    restore = yaml_quiet(fopts.yaml_quiet, signals.install())
    events = None if fopts.poll else FileEvents(watcher.paths, wake)
    last: Snapshot | None = None
    changed_at: float | None = None  # monotonic time of the oldest change not shipped yet
    settle = _Settle()
    pass_at = -MIN_PASS_GAP  # when the last pass started (monotonic)
    outage = _Outage(status, fopts.max_outage)
    rate = _Rate()
    try:
        while True:
            if signals.signum is not None:
                return 0 if signals.signum == signal.SIGTERM else 130
            wake.clear()  # before the look: a change after it wakes the next wait
            now = time.monotonic()
            snap = watcher.scan()
            status.files = len(snap.files)
            if events is not None:
                events.refresh()  # folders that appeared are watched from now on
                status.watching, status.watch_note = events.mode, events.reason
            if snap != last and changed_at is None:
                changed_at = now
            due = _earliest(patience.next_due(), settle.at)
            not_before = max(outage.retry_at, pass_at + min(MIN_PASS_GAP, fopts.flush_interval))
            run_now = (
                snap.files
                and now >= not_before
                and (changed_at is not None or (due is not None and now >= due))
            )
            if run_now:
                pass_at = now
                patience.new_pass()
                inputs = [f for f in snap.files if os.path.realpath(f) not in own]
                if not inputs:  # only our own rejected file matched: nothing to ship
                    last, changed_at = snap, None
                    wake.wait(fopts.flush_interval)
                    continue
                report = _ship(inputs, pass_opts, rejects, status, on_report)
                if report is not None and report.interrupted:
                    return 0 if report.interrupted_by == signal.SIGTERM else 130
                status.records_per_s = rate.add(now, status.records, status.records_per_s)
                # shipped: later changes are measured from now (records left unsent by
                # requests given up go by a pass after the backoff)
                if report is not None and not report.halted and not report.unsent:
                    last = snap
                    changed_at = settle.at = None
                    outage.shipped()
                    watcher.shipped(snap)
                elif outage.given_up():
                    _tell(status, patience, on_status)
                    return 1
            settle.look(snap)
            status.lag_s = 0.0 if changed_at is None else time.monotonic() - changed_at
            _tell(status, patience, on_status)
            pending = not_before if changed_at is not None else None  # a change waits for it
            due = _earliest(patience.next_due(), settle.at)
            pause = _next_look(time.monotonic(), fopts.flush_interval, pending, due)
            wake.wait(pause)
    finally:
        _wind_down(restore, events, pass_opts, passes)
