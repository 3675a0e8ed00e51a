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

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson

from tracecli.check.passes import EarlierPasses
from tracecli.diagnostics import Diagnostic, UsageError
from tracecli.inputs.reader import format_of
from tracecli.inputs.settle import QUIET_SECONDS, quiet_for
from tracecli.inputs.watch import FileEvents, Snapshot
from tracecli.journal.rejected import DEFAULT_NAME
from tracecli.upload.api import UploadOptions, UploadReport, upload
from tracecli.upload.follow_inputs import follow_watcher, yaml_quiet

BACKOFF_FIRST = 1.0  # seconds before the first retry of a pass that met an outage
BACKOFF_MAX = 30.0  # the cap: a sidecar checks again at least this often
# File events can wake the loop ~10 times a second while the app writes; a pass costs tens
# of milliseconds of CPU whatever it sends, so under load passes start at most this often
# (records then go in bigger chunks). A lone write still goes at once.
MIN_PASS_GAP = 0.25
QUIET_MARGIN = 0.05  # a pass for a YAML file gone quiet runs this long after, to be sure
SEEN_LIMIT = 100_000  # diagnostics said once: forget them all beyond this many (memory)


@dataclass(slots=True)
class FollowOptions:
    flush_interval: float = 1.0  # the longest time between two looks (and so the latency)
    pair_wait: float = 30.0  # auto mode: how long a start waits for its end
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


class PassSignals:
    """SIGTERM/SIGINT between passes (a pass installs its own handler and is interrupted
    by the same signals, see upload.report.Interrupt)."""

    def __init__(self, wake: threading.Event) -> None:
        self.event = wake  # the loop's wait: a signal ends it at once
        self.signum: int | None = None

    def __call__(self, signum: int, frame: object) -> None:
        self.signum = signum
        self.event.set()

    def install(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {s: signal.signal(s, self) for s in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for s, h in previous.items():
                signal.signal(s, h)

        return restore


class PairPatience:
    """When each open start was first read, for `pair_wait`; forgotten soon after it no
    longer waits, so memory follows the open calls, not the day's traffic."""

    def __init__(self, pair_wait: float) -> None:
        self.pair_wait = pair_wait
        self.first_seen: dict[str, float] = {}
        self.waiting: set[str] = set()

    def __call__(self, call_id: str) -> bool:
        now = time.monotonic()
        t = self.first_seen.setdefault(call_id, now)
        wait = now - t < self.pair_wait
        if wait:
            self.waiting.add(call_id)
        return wait

    def new_pass(self) -> None:
        self.waiting = set()
        limit = time.monotonic() - self.pair_wait - 60.0
        if len(self.first_seen) > 1024:
            self.first_seen = {k: t for k, t in self.first_seen.items() if t >= limit}

    def next_due(self) -> float | None:
        """When the oldest waiting start stops waiting (monotonic), if any waits."""
        if not self.waiting:
            return None
        return min(self.first_seen[c] for c in self.waiting) + self.pair_wait


def said_once(callback: Callable[[Diagnostic], None] | None) -> Callable[[Diagnostic], None]:
    """Diagnostics said once per follow: a rejected line is read again by every pass (it
    is not stored, so the journal does not move past it), and a start waiting for its end
    is not yet "a call that stays running"."""
    seen: set[tuple[str, int, str]] = set()

    def say(d: Diagnostic) -> None:
        if d.code == "running-call":
            return
        key = (d.path, d.line, d.code)
        if key in seen:
            return
        if len(seen) >= SEEN_LIMIT:
            seen.clear()
        seen.add(key)
        if callback is not None:
            callback(d)

    return say


class FollowRejects:
    """One rejected-records file for the whole follow. A pass writes its own (the usual
    writer replaces the file each run, which would lose what earlier passes rejected);
    its records are then appended here, each (source, line, reason) once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pass_path = path.with_name(path.name + ".pass-tmp")
        self.seen: set[tuple[str, int, str]] = set()

    def collect(self) -> None:
        try:
            data = self.pass_path.read_bytes()
        except OSError:
            return
        out: list[bytes] = []
        for raw in data.splitlines():
            try:
                meta = orjson.loads(raw).get("_tracecli") or {}
                key = (str(meta.get("source")), int(meta.get("line") or 0), str(meta.get("reason")))
            except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
                key = ("", 0, raw.decode("utf-8", "replace"))
            if key in self.seen:
                continue
            if len(self.seen) >= SEEN_LIMIT:
                self.seen.clear()
            self.seen.add(key)
            out.append(raw + b"\n")
        if out:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "ab") as f:
                f.writelines(out)
        with contextlib.suppress(OSError):
            self.pass_path.unlink()


def pair_wait_applies(opts: UploadOptions) -> bool:
    """Whether a start waits for its end (`pair_wait`): in Weave's auto mode, where the
    wait lets it go as one completed call (after it, it goes as a running call); in
    complete mode and for Freeplay, which take finished calls only (a start still alone
    when the wait ends is rejected as having no end, yet read again by later passes, which
    send it with its end if that comes). Batch, single and otel modes send a start as it
    is read, by design."""
    return opts.target == "freeplay" or opts.mode in ("auto", "complete")


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
    # a parent read by an earlier pass, or written within pair_wait of its child, is no
    # "parent call is not in the inputs" (see check/passes.py)
    passes = EarlierPasses(fopts.pair_wait)
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
                # (records left unsent by requests given up: a pass after the backoff)
                if report is not None and not report.halted and not report.unsent:
                    # shipped: later changes are measured from now
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
        restore()
        if events is not None:
            events.close()
        if pass_opts.on_diagnostic is not None:  # held for a parent that did not come
            for d in passes.rest():
                pass_opts.on_diagnostic(d)
