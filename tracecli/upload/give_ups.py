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


def give_ups_reason(who: str, n: int, kept: str, out: Outcome | None) -> str:
    """`the server failed 8 requests in a row, each retried for --max-retry-time, ...`, or
    `the server asked to wait 600 s (Retry-After), longer than --max-retry-time (300 s),
    on 8 requests in a row: ...` when the last one was not retried for that."""
    if out is not None and out.asked:
        return (
            f"{who} asked to wait {out.asked}, on {n} requests in a row: not retried, "
            f"and nothing {kept} between"
        )
    last = f" (last: {out.reason})" if out is not None and out.reason else ""
    return (
        f"{who} failed {n} requests in a row, each retried for --max-retry-time, with "
        f"nothing {kept} between{last}"
    )


def gave_up_reason(who: str, n: int, out: Outcome | None) -> str:
    """Why records were left unsent when fewer requests gave up than stop the run (one
    chunk, a few): the last one's reason, as the stop line would say it, so an exit code 1
    with "not sent (resume)" in the summary is never left unexplained."""
    requests = "a request" if n == 1 else f"{n:,} requests"
    if out is not None and out.asked:
        return f"{who} asked to wait {out.asked}, on {requests}: not retried"
    last = f" (last: {out.reason})" if out is not None and out.reason else ""
    each = "retried" if n == 1 else "each retried"
    return f"{who} failed {requests}, {each} for --max-retry-time{last}"


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
