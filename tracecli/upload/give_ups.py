"""The words of the stop after requests given up in a row (`sender.Workers`): retries that
ran out, or a server that asked (Retry-After) for a longer wait than --max-retry-time,
where nothing was retried at all and saying "each retried" would mislead."""

from __future__ import annotations

from typing import Protocol

from tracecli.targets.outcome import Outcome
from tracecli.upload.report import UploadReport, halt_line


class GaveUp(Protocol):
    """What `sender.Workers` knows at the end of a run of the requests it gave up."""

    who: str
    halted: str | None
    gave_up: int
    last_give_up: Outcome | None


def gave_up_reason(who: str, n: int, out: Outcome | None, kept: str | None = None) -> str:
    """Why `n` requests were given up, the last one's reason as the stop line says it.

    With `kept` (what was not done between them: "stored", "recorded"), the stop after `n`
    in a row: `the server failed 8 requests in a row, each retried for --max-retry-time,
    with nothing stored between (last: ...)`, or `the server asked to wait 600 s
    (Retry-After), longer than --max-retry-time (300 s), on 8 requests in a row: not
    retried, and nothing stored between` when the last one was not retried for that.
    Without, fewer gave up than stop the run (one chunk, a few): the same words for them,
    so an exit code 1 with "not sent (resume)" in the summary is never left unexplained."""
    requests = "a request" if n == 1 else f"{n:,} requests"
    in_a_row = "" if kept is None else " in a row"
    if out is not None and out.asked:
        between = "" if kept is None else f", and nothing {kept} between"
        return f"{who} asked to wait {out.asked}, on {requests}{in_a_row}: not retried{between}"
    last = f" (last: {out.reason})" if out is not None and out.reason else ""
    each = "retried" if n == 1 else "each retried"
    between = "" if kept is None else f", with nothing {kept} between"
    return f"{who} failed {requests}{in_a_row}, {each} for --max-retry-time{between}{last}"


def say_unsent(workers: GaveUp, report: UploadReport) -> None:
    """Put in the report the one line that says why records were left unsent by requests
    given up: the stop (`halted`, an error), or, when too few gave up to stop the run, the
    last one's reason (`gave_up`; the unsent records already make the exit code 1)."""
    if workers.halted is not None:
        report.halted = halt_line(workers.halted, report)
        report.errors += 1
    elif workers.gave_up and report.unsent:
        why = gave_up_reason(workers.who, workers.gave_up, workers.last_give_up)
        report.gave_up = halt_line(why, report)
