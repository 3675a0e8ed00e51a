"""`tracecli tail`: the most recent calls of a project, once or following, from a Weave server
(`/calls/stream_query`) or straight from the embedded store.

Both sources answer the same query (filter, Mongo-style query, sort_by, limit, offset) with
the same CallSchema dicts, so everything above `CallSource` is written once. Following is
polling: each poll reads the newest calls page by page until it meets calls it has already
shown, and re-reads the calls it showed as running to catch them finishing. Each call is
reported once when it starts and once when it finishes (once only when it is first seen
already finished). This module prints nothing: the CLI renders what it returns. The two
sources are in `tracecli.readback.sources`, the cells of a row in `tracecli.readback.rows`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

from tracecli.diagnostics import UsageError
from tracecli.readback.rows import status_of
from tracecli.readback.sources import CallSource, TailError
from tracecli.schema import rules

PAGE = 100
MAX_PAGES = 10  # per poll: at most 1,000 new calls between two polls are reported
MAX_OPEN = 1000  # running calls watched for their end; beyond that the oldest are dropped
MAX_KNOWN = 50_000
ID_CHUNK = 100


@dataclass(frozen=True)
class TailRequest:
    project: str
    limit: int = 20
    op: str | None = None
    trace: str | None = None
    errors: bool = False
    call_id: str | None = None

    def filter(self) -> dict[str, Any] | None:
        f: dict[str, Any] = {}
        if self.call_id:
            f["call_ids"] = [self.call_id]
        if self.op:
            f["op_names"] = [self.op]
        if self.trace:
            f["trace_ids"] = [self.trace]
        return f or None

    def query(self) -> dict[str, Any] | None:
        if not self.errors:
            return None
        status = {"$getField": "summary.weave.status"}
        return {"$expr": {"$eq": [status, {"$literal": "error"}]}}


def and_more(items: list[str], shown: int = 10) -> str:
    """`a, b, c` or, for a longer list cut to `shown`, `a, b, c and 3 more`."""
    if len(items) <= shown:
        return ", ".join(items)
    return f"{', '.join(items[:shown])} and {len(items) - shown} more"


def resolve_project(
    source: CallSource, project: str | None, *, wait: bool = False
) -> tuple[str, str | None]:
    """The project to show and a note when it was picked for the user.

    Without --project: the store's only project, else its most recently active one (latest
    call start), with a note naming the others; the same from `tracecli serve`; a Weave
    server cannot list projects, so there --project is required. A project with no calls is
    an error (exit 2): it is usually a typo; unless `wait` (--follow), where it is the
    project a program is about to write to, and the note says tail waits for its calls.
    """
    if project is not None:
        problems = list(rules.check_project_id(project, "--project"))
        if problems:
            raise UsageError(f"--project must be entity/project, got {project!r}")
        if not _has_calls(source, project):
            if wait:
                return project, f"no calls in {project} yet; waiting for the first ones"
            known = source.projects()
            hint = f" (projects there: {and_more(known)})" if known else ""
            raise TailError(f"project {project!r} has no calls in {source.description}{hint}")
        return project, None
    projects = source.projects()
    if projects is None:
        raise UsageError(
            f"--project entity/project is required with a server ({source.description} "
            "cannot list its projects); or set project in tracecli.yaml or TRACECLI_PROJECT"
        )
    if not projects:
        raise TailError(
            f"{source.description} holds no calls yet"
            + ("; give --project to wait for a project's first calls" if wait else "")
        )
    if len(projects) == 1:
        return projects[0], None
    return projects[0], (
        f"showing {projects[0]}, the most recently active of {len(projects)} projects "
        f"(others: {and_more(projects[1:], 5)}); choose with --project"
    )


def _has_calls(source: CallSource, project: str) -> bool:
    return bool(source.query(project, limit=1))


# ---- reading ----------------------------------------------------------------------------

_NEWEST_FIRST = [{"field": "started_at", "direction": "desc"}]


def recent(source: CallSource, req: TailRequest) -> list[dict[str, Any]]:
    """The `req.limit` most recent calls (by start time), oldest first."""
    if req.limit <= 0:
        return []
    calls = source.query(
        req.project,
        filter=req.filter(),
        query=req.query(),
        limit=req.limit,
        sort_by=_NEWEST_FIRST,
    )
    return calls[::-1]


@dataclass(frozen=True)
class TailEvent:
    kind: Literal["start", "end"]
    call: dict[str, Any]

    @property
    def at(self) -> str:
        c = self.call
        return (c.get("ended_at") if self.kind == "end" else None) or c.get("started_at") or ""


class Follower:
    """Reports each call once when it starts and once when it ends, poll after poll."""

    def __init__(self, source: CallSource, req: TailRequest) -> None:
        self.source, self.req = source, req
        self.known: OrderedDict[str, bool] = OrderedDict()  # id → finished
        self.open: OrderedDict[str, str] = OrderedDict()  # running id → started_at

    def snapshot(self) -> list[dict[str, Any]]:
        """The `req.limit` most recent calls, oldest first, as `recent` gives them.

        A wider window is read and remembered, so that the first poll reports news only
        (and the end of a running call that was just outside the snapshot).
        """
        window = self._newest(max(PAGE, self.req.limit))
        for call in window:
            self._remember(call)
        return window[: max(self.req.limit, 0)][::-1]

    def poll(self) -> list[TailEvent]:
        """What started or ended since the last poll. Every read is made before anything is
        remembered: a read that fails (the poll is tried again at the next interval) must
        leave the calls the poll's earlier reads found to be reported then, not seen."""
        read: list[dict[str, Any]] = []
        fetched: set[str] = set()
        offset = 0
        for _ in range(MAX_PAGES):
            page = self._newest(PAGE, offset)
            fresh = False
            for call in page:
                fresh |= call["id"] not in self.known and call["id"] not in fetched
                fetched.add(call["id"])
            read += page
            if len(page) < PAGE or not fresh:
                break
            offset += PAGE
        watched = [i for i in self.open if i not in fetched]
        for start in range(0, len(watched), ID_CHUNK):
            ids = watched[start : start + ID_CHUNK]
            read += self.source.query(self.req.project, filter={"call_ids": ids})
        events: list[TailEvent] = []
        for call in read:
            self._observe(call, events)
        events.sort(key=lambda e: e.at)
        return events

    def _newest(self, limit: int, offset: int = 0) -> list[dict[str, Any]]:
        return self.source.query(
            self.req.project,
            filter=self.req.filter(),
            query=self.req.query(),
            limit=limit,
            offset=offset,
            sort_by=_NEWEST_FIRST,
        )

    def _observe(self, call: dict[str, Any], events: list[TailEvent]) -> bool:
        """Record what changed about `call`; True when it was not seen before."""
        call_id = call["id"]
        done = status_of(call) != "running"
        before = self.known.get(call_id)
        if before is None:
            events.append(TailEvent("end" if done else "start", call))
        elif before is False and done:
            events.append(TailEvent("end", call))
        else:
            return False
        self._remember(call)
        return before is None

    def _remember(self, call: dict[str, Any]) -> None:
        call_id = call["id"]
        done = status_of(call) != "running"
        self.known[call_id] = done
        self.known.move_to_end(call_id)
        while len(self.known) > MAX_KNOWN:
            self.known.popitem(last=False)
        if done:
            self.open.pop(call_id, None)
        else:
            self.open[call_id] = call.get("started_at") or ""
            while len(self.open) > MAX_OPEN:
                self.open.popitem(last=False)
