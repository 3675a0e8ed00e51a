"""The fate of every record sent, counted and journaled under one lock.

The sender's worker threads report each chunk acknowledged, rejected or unsent while the
reading loop is still refusing invalid records and warning about others: both write the
report, the journal, the rejected file and the kept diagnostics. Keeping every such write
in this one class, behind its lock, is what keeps the counts exact (each record read ends
up acknowledged, skipped, rejected or unsent, once).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracecli.check.pairing import Half
from tracecli.diagnostics import Diagnostic, Severity
from tracecli.journal.rejected import RejectedWriter
from tracecli.journal.resume import Journal
from tracecli.targets import endpoint_label
from tracecli.upload.originals import half_original, originals
from tracecli.upload.report import UploadReport, count_diagnostics, keep_diagnostics
from tracecli.wire.chunking import Chunk, count_ends, journal_lines


@dataclass(kw_only=True, eq=False)
class Fates:
    """Where each record of one run ends up (see the module's docstring); OtlpFates adds
    what OpenTelemetry inputs need."""

    files: list[str]
    display: list[str]  # the inputs' names as said in messages ("<stdin>" for "-")
    report: UploadReport
    journal: Journal | None
    writer: RejectedWriter
    max_diagnostics: int
    on_diagnostic: Callable[[Diagnostic], None] | None
    lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    # Lone ends in flight (packed records): acknowledged, they complete a call started
    # elsewhere and are counted as such, not as calls uploaded.
    lone_ends: set[int] = field(default_factory=set, init=False)

    def lone_end(self, rec: int) -> None:
        """A lone end is about to be sent (see `lone_ends`)."""
        with self.lock:
            self.lone_ends.add(rec)

    def checked(self, recs: Sequence[int]) -> None:
        """These records were checked and made into a request that a check-only pass
        (--strict's first) does not send: nothing to count."""

    def add_unsent(self, n: int) -> None:
        """Records read but never handed to the sender (the run stopped early)."""
        with self.lock:
            self.report.unsent += n

    # -- diagnostics ------------------------------------------------------------------------
    def keep(self, diags: Sequence[Diagnostic]) -> None:
        keep_diagnostics(self.report, diags, self.on_diagnostic, self.max_diagnostics)

    def warn(self, diags: Sequence[Diagnostic]) -> None:
        with self.lock:
            self.report.warnings += len(diags)
            self.keep(diags)

    def late(self, diags: Sequence[Diagnostic]) -> None:
        """Diagnostics about records read earlier (maybe sent already): counted, shown."""
        if not diags:
            return
        with self.lock:
            count_diagnostics(self.report, diags)
            self.keep(diags)

    def invalid(self, value: Any, path: str, line: int, diags: Sequence[Diagnostic]) -> None:
        """A record with errors: not sent; into the rejected file with its diagnostics."""
        errors = [d for d in diags if d.is_error]
        reason = "; ".join(f"{d.field}: {d.message}" if d.field else d.message for d in errors)
        with self.lock:
            self.report.errors += len(errors)
            self.report.warnings += len(diags) - len(errors)
            self.report.rejected += 1
            self.report.invalid += 1
            self.keep(diags)
            self.writer.add(
                value,
                path=path,
                line=line,
                reason=reason,
                status=None,
                diagnostics=[d.to_dict() for d in diags],
            )
        if self.journal is not None:  # upload --follow: not read again by every pass
            self.journal.pass_over(path, [line])

    # -- fates (called from the sender's threads) -------------------------------------------
    def acked(self, route: str, chunk: Chunk, calls: int) -> None:
        journal = self.journal
        recs = chunk.recs
        if journal is not None and recs:
            for src, lines in self._journal_lines(recs).items():
                journal.ack(self.files[src], lines)
        label = endpoint_label(route)
        with self.lock:
            r = self.report
            r.acked_records += len(recs)
            # A call counts as uploaded when its start (or the whole call) is stored: in
            # single mode that is the /call/start step, so a run stopped between a call's
            # two steps and the run that resumes it do not both count it, nor neither.
            # An end alone completes a call stored earlier (or elsewhere): counted apart.
            r.uploaded += len(recs) - count_ends(recs)
            if self.lone_ends:
                r.ends_uploaded += self._lone_ends_in(recs)
            r.by_endpoint[label] = r.by_endpoint.get(label, 0) + chunk.units
            r.requests_by_endpoint[label] = r.requests_by_endpoint.get(label, 0) + 1

    def _journal_lines(self, recs: Sequence[int]) -> dict[int, list[int]]:
        """The input lines acknowledged records come from, by input: what to journal. A
        hook: OTLP inputs journal a line only once all its spans are stored (`OtlpFates`)."""
        return journal_lines(recs)

    def _lone_ends_in(self, recs: Any) -> int:
        """How many of `recs` are lone ends, forgetting them (call under the lock)."""
        n = 0
        lone = self.lone_ends
        for rec in recs:
            if rec in lone:
                lone.discard(rec)
                n += 1
        return n

    def rejected(self, chunk: Chunk, reason: str, status: int | None) -> None:
        """The server refused these records (or retries ran out): into the rejected file."""
        if self.lone_ends:
            with self.lock:
                self._lone_ends_in(chunk.recs)
        self.rejected_now(list(originals(chunk)), reason, status)

    def rejected_halves(self, halves: Sequence[Half], reason: str, code: str | None = None) -> None:
        items = [(half_original(h), h.src, h.line) for h in halves]
        self.rejected_now(items, reason, code=code)

    def rejected_now(
        self,
        items: Sequence[tuple[dict[str, Any], int, int]],
        reason: str,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        if code is None:
            code = f"http-{status}" if status is not None else "not-sent"
        diags = []
        with self.lock:
            for original, src, line in items:
                path = self.display[src]
                self.writer.add(original, path=path, line=line, reason=reason, status=status)
                self.report.rejected += 1
                diags.append(Diagnostic(path, line, "", code, Severity.ERROR, reason))
            self.keep(diags)
        if self.journal is not None and status is not None and _refused_for_good(status):
            for _, src, line in items:  # upload --follow: not sent again by every pass
                self.journal.pass_over(self.files[src], [line])

    def unsent(self, chunk: Chunk) -> None:
        with self.lock:
            if self.lone_ends:
                self._lone_ends_in(chunk.recs)
            self.report.unsent += len(chunk.recs)


def _refused_for_good(status: int) -> bool:
    """A 4xx answer other than a timeout or a rate limit: sending again changes nothing."""
    return 400 <= status < 500 and status not in (408, 425, 429)
