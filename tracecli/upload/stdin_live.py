"""`tracecli upload -` from a pipe that may not end soon (`tail -F app.jsonl |`,
`kubectl logs -f`, `journalctl -f`, a FIFO a service writes to).

A stream read as one upload waits for its end (or for big blocks) before it sends, and
what it read is lost when it is stopped: stdin cannot be read again. So a pipe is first
copied, as it comes, to a spool file in the state folder (`Spool`, a thread that returns
what the pipe holds at once). Then:

- The pipe ends before it was ever quiet for `QUIET` seconds (`cat f | tracecli upload -`):
  the spool is read as stdin by one ordinary upload, which says and reports exactly what
  it always did.
- Otherwise (the writer pauses, or is still writing after `OPEN_LIVE` s), and the spool
  starts as JSON (a whole JSON line, an array's `[`, a pretty-printed record's `{`): the
  spool is uploaded in passes as it grows, as `--follow` uploads a file (`upload.follow`):
  each pass sends what came since the last (the resume journal keeps the place), a start
  waits up to `pair_wait` seconds for its end, a pass runs once the pipe was quiet for
  `QUIET` seconds or what waits is `MAX_LAG` seconds old. At the pipe's end, or on
  SIGTERM/Ctrl-C, a last pass sends everything read (a start still alone goes as a
  running call). What it could not send stays in the spool, which the report names:
  `tracecli upload SPOOL` sends the rest (its journal knows what went). Otherwise the
  spool is removed.
- Anything else (gzip, YAML, CSV): read to its end first, as those cannot be read before
  they are whole.
A FIFO given by name is read the same way (`live_source`).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import orjson

from tracecli.config.fields import PAIR_WAIT  # as --follow: a start waits this long for its end
from tracecli.diagnostics import Diagnostic, UsageError
from tracecli.inputs.streams import (
    STDIN,
    STDIN_NAME,
    count_lines,
    read_pipe_from,
)
from tracecli.journal.rejected import DEFAULT_NAME
from tracecli.upload.engine import PARALLEL_MIN_BYTES
from tracecli.upload.passes import (
    FollowRejects,
    PairPatience,
    PassSignals,
    pair_wait_applies,
    said_once,
)
from tracecli.upload.report import FileReport, Progress, UploadOptions, UploadReport
from tracecli.upload.stdin_spool import Piped, Spool, spool_path, whole_json_line

QUIET = 1.0  # a pipe quiet this long: what it sent goes now
MAX_LAG = 2.0  # a pipe that never pauses: what waits goes when it is this old
LIVE_BYTES = 4 << 20  # once live, a pass at least every this much read
OPEN_LIVE = 5.0  # a pipe still open after this long, never quiet: uploaded as it comes
MIN_GAP = 0.25  # passes start at most this often
BACKOFF_MAX = 30.0  # an unreachable server: tried again at least this often

Uploader = Callable[..., UploadReport]  # `upload.api.upload`, given by the caller


def upload_stdin(
    upload: Uploader,
    opts: UploadOptions,
    on_progress: Callable[[Progress], None] | None = None,
    pair_wait: float = PAIR_WAIT,
    piped: Piped = Piped(STDIN, STDIN_NAME, "stdin"),
) -> UploadReport:
    """Upload stdin or a named pipe (`live_source`) as the module docstring says; the
    report is the run's. `pair_wait`: how long a start waits for its end while the pipe
    is open."""
    try:
        path = spool_path()
    except OSError:  # no state folder to spool in (read-only home): read to the end
        return upload([piped.path], opts, on_progress)
    fd = sys.stdin.fileno() if piped.path == STDIN else os.open(piped.path, os.O_RDONLY)
    spool = Spool(fd, path)
    wake = threading.Event()
    signals = PassSignals(wake)
    restore = signals.install()
    keep = False
    try:
        live = _wait_for_end_or_pause(spool, signals)
        if not live:
            spool.close()
            report = _as_stdin(upload, spool.path, opts, on_progress, piped)
            if signals.signum is not None and not report.interrupted:  # (gzip, YAML: cut)
                report.interrupted, report.interrupted_by = True, signals.signum
                report.resume_note = _not_sent_note(report, piped)
            return report
        keep = True  # until all is known sent (a second Ctrl-C raises: it stays)
        try:
            report = _Live(upload, spool, opts, signals, pair_wait, piped).run()
        except UsageError as exc:  # nothing could be sent (no server, a refused key)
            keep = spool.size > 0
            if not keep:
                raise
            n = count_lines(str(spool.path)) or 0
            raise UsageError(
                f"{exc}; {n:,} records read from {piped.said} were not sent; they are kept in "
                f"{spool.path}: `tracecli upload {spool.path}` sends them"
            ) from exc
        keep = report.unsent > 0
        return report
    finally:
        restore()
        spool.close()
        if not keep:
            with contextlib.suppress(OSError):
                spool.path.unlink()


def _wait_for_end_or_pause(spool: Spool, signals: PassSignals) -> bool:
    """Read until the pipe ends (False: one ordinary upload) or it is time to send as it
    comes (True): the pipe paused, is still open after `OPEN_LIVE` seconds (a fast pipe
    that ends soon goes as one upload, with worker processes), or a signal came, with a
    whole JSON line first. Gzip, arrays and other formats wait for the end."""
    start = time.monotonic()
    while not spool.eof.wait(0.05):
        now = time.monotonic()
        with spool.lock:
            quiet, head = now - spool.last_data, spool.head
        due = signals.signum is not None or quiet >= QUIET or now - start >= OPEN_LIVE
        if due and whole_json_line(head):
            return True
        if signals.signum is not None:
            return False  # not JSON lines: what was read goes as it is
    return False


def _as_stdin(
    upload: Uploader,
    path: Path,
    opts: UploadOptions,
    on_progress: Callable[[Progress], None] | None,
    piped: Piped,
) -> UploadReport:
    """One ordinary upload of the pipe, its bytes read from the spool (the pipe has
    ended): as stdin, or as the named pipe's one reader (`streams.pipe_stream`)."""
    with open(path, "rb") as raw:
        if piped.path == STDIN:
            saved = sys.stdin
            sys.stdin = io.TextIOWrapper(raw)
            try:
                report = upload([STDIN], opts, on_progress)
            finally:
                sys.stdin.detach()
                sys.stdin = saved
        else:
            with read_pipe_from(piped.path, raw):
                report = upload([piped.path], opts, on_progress)
    if report.interrupted or report.halted or report.unsent:
        report.resume_note = _not_sent_note(report, piped)
        if report.halted:  # (not "run the same command again": the pipe is gone)
            report.halted = f"{report.halted.split('; ')[0]}; {report.resume_note}"
    return report


def _not_sent_note(report: UploadReport, piped: Piped) -> str:
    n = report.unsent + (report.unread or 0)
    rest = f" (and the rest of {piped.said})" if report.input_left and report.unread is None else ""
    return (
        f"{n:,} records read from {piped.said} were not sent{rest}; a pipe is not "
        "journaled, so running the command again cannot send them"
    )


class _Live:
    """The passes over a growing spool, and the last one."""

    def __init__(
        self,
        upload: Uploader,
        spool: Spool,
        opts: UploadOptions,
        signals: PassSignals,
        pair_wait: float,
        piped: Piped,
    ) -> None:
        self.piped = piped
        self.upload = upload
        self.spool = spool
        self.signals = signals
        self.patience = PairPatience(pair_wait if pair_wait_applies(opts) else 0.0)
        self.rejects = FollowRejects(
            Path(opts.rejected if opts.rejected is not None else DEFAULT_NAME)
        )
        said = said_once(opts.on_diagnostic)
        where = str(spool.path)

        def say(d: Diagnostic) -> None:
            said(replace(d, path=piped.name) if d.path == where else d)

        self.opts = replace(
            opts,
            on_diagnostic=say,
            follow=True,
            restart=False,
            rejected=self.rejects.pass_path,
            on_signal=lambda signum: signals(signum, None),
        )
        try:
            self.rejects_from = self.rejects.path.stat().st_size  # appended from here on
        except OSError:
            self.rejects_from = 0
        self.reports: list[UploadReport] = []
        self.reached = False  # the last pass reached the server (its report is the last)
        self.error: str | None = None
        self.started = time.monotonic()

    def _pass(self, last: bool, backlog: int) -> bool:
        """One pass over the `backlog` bytes not sent yet; False when the server could
        not be reached. Worker processes only for a big backlog (a fast pipe): a pass
        over what a second brought is small."""
        self.patience.new_pass()
        self.reached = False
        defer = self.patience if self.patience.pair_wait > 0 and not last else None
        jobs = self.opts.jobs if backlog >= PARALLEL_MIN_BYTES else 0
        pass_opts = replace(self.opts, defer_start=defer, jobs=jobs)
        try:
            report = self.upload([str(self.spool.path)], pass_opts)
        except UsageError as exc:
            if "cannot reach the server" not in str(exc):
                raise
            self.error = str(exc)
            return False
        finally:
            self.rejects.collect()
        self.reports.append(report)
        self.reached = True
        return not (report.halted or report.unsent)

    def run(self) -> UploadReport:
        sent_size = 0
        first_unsent: float | None = None
        retry_at = 0.0
        backoff = 1.0
        pass_at = -MIN_GAP
        while self.signals.signum is None and not self.spool.eof.is_set():
            now = time.monotonic()
            with self.spool.lock:
                size, quiet = self.spool.size, now - self.spool.last_data
            if size > sent_size and first_unsent is None:
                first_unsent = now
            due = self.patience.next_due()
            ready = first_unsent is not None and (
                quiet >= QUIET or now - first_unsent >= MAX_LAG or size - sent_size >= LIVE_BYTES
            )
            if (ready or (due is not None and now >= due)) and now >= max(
                retry_at, pass_at + MIN_GAP
            ):
                pass_at = now
                if self._pass(last=False, backlog=size - sent_size):
                    sent_size, first_unsent, backoff = size, None, 1.0
                else:
                    retry_at, backoff = now + backoff, min(backoff * 2, BACKOFF_MAX)
            self.signals.event.wait(0.1)
        return self._last(sent_size)

    def _last(self, sent_size: int) -> UploadReport:
        """Everything read goes now (a start alone as a running call); what cannot stays
        in the spool, and the report says so."""
        self.spool.end_line()  # (what the thread copies after this is not read)
        self._pass(last=True, backlog=self.spool.size - sent_size)
        return self._report()

    def _name_in_rejects(self) -> None:
        """The records this run rejected name the pipe as their source, not the spool
        (gone, or to be sent by its own name)."""
        old = orjson.dumps(str(self.spool.path))[1:-1]
        new = orjson.dumps(self.piped.name)[1:-1]
        try:
            data = self.rejects.path.read_bytes()
            tail = data[self.rejects_from :]
            if old in tail:
                self.rejects.path.write_bytes(data[: self.rejects_from] + tail.replace(old, new))
        except OSError:
            pass  # the records are there, named by the spool

    def _findings(self, total: UploadReport) -> None:
        """Every pass's diagnostics, each once (a start waiting for its end is read by
        several passes), named by the pipe; counted as they are listed."""
        where = str(self.spool.path)
        seen: set[tuple[int, str, str]] = set()
        total.diagnostics = []
        total.errors = sum(r.errors for r in self.reports)  # (lists may be capped: counts
        total.warnings = sum(r.warnings for r in self.reports)  # less those said again)
        for r in self.reports:
            for d in r.diagnostics:
                if (d.line, d.code, d.field) not in seen:
                    seen.add((d.line, d.code, d.field))
                    named = replace(d, path=self.piped.name) if d.path == where else d
                    total.diagnostics.append(named)
                elif d.is_error:
                    total.errors -= 1
                else:
                    total.warnings -= 1

    def _report(self) -> UploadReport:
        reports = self.reports
        if not reports:
            raise UsageError(self.error or "cannot reach the server")
        final = reports[-1]
        total = replace(final, files=[FileReport(self.piped.name)], by_endpoint={})
        keys = "uploaded ends_uploaded acked_records rejected invalid requests bytes_sent retried"
        for k in keys.split():
            setattr(total, k, sum(getattr(r, k) for r in reports))
        for r in reports:
            for ep, n in r.by_endpoint.items():
                total.by_endpoint[ep] = total.by_endpoint.get(ep, 0) + n
        if self.reached:  # the last pass's report says what it could not send
            total.unsent = final.unsent
        else:  # what was read less what went (lines: records of JSON lines)
            read = count_lines(str(self.spool.path)) or 0
            total.unsent = max(0, read - total.acked_records - total.rejected)
        total.records = total.acked_records + total.rejected + total.unsent
        total.skipped = 0
        total.files[0].records = total.records
        self._findings(total)
        total.input_left = False
        total.rejected_file = str(self.rejects.path) if total.rejected else None
        if total.rejected:
            self._name_in_rejects()
        total.peak_open_calls = max(r.peak_open_calls for r in reports)
        total.elapsed_s = time.monotonic() - self.started
        if self.signals.signum is not None:
            total.interrupted, total.interrupted_by = True, self.signals.signum
        else:
            total.interrupted, total.interrupted_by = False, None
        if total.unsent:
            why = (self.error or total.halted or total.gave_up or "").split(";")[0]
            kept = self.spool.path
            total.halted = (
                f"{why + '; ' if why else ''}{total.unsent:,} records read from "
                f"{self.piped.said} were not sent; they are kept in {kept}: "
                f"`tracecli upload {kept}` sends them"
            )
            total.resume_note = total.halted
        else:
            total.halted = total.gave_up = None
            total.resume_note = f"every record read from {self.piped.said} was sent" + (
                f" or rejected ({total.rejected:,} in {total.rejected_file})"
                if total.rejected
                else ""
            )
        return total
