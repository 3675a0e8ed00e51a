"""`tracecli tail`: the most recent calls of a project, once or following, from a Weave server
(`/calls/stream_query`) or straight from the embedded store.

Both sources answer the same query (filter, Mongo-style query, sort_by, limit, offset) with
the same CallSchema dicts, so everything above `CallSource` is written once. Following is
polling: each poll reads the newest calls page by page until it meets calls it has already
shown, and re-reads the calls it showed as running to catch them finishing. Each call is
reported once when it starts and once when it finishes (once only when it is first seen
already finished). This module prints nothing: the CLI renders what it returns.
"""

from __future__ import annotations

import datetime
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import httpx
import orjson
from pydantic import SecretStr

from tracecli.config.settings import Settings
from tracecli.diagnostics import TracecliError, UsageError
from tracecli.schema import rules
from tracecli.store.db import QueryError, Store, StoreError
from tracecli.store.query import loads_exact
from tracecli.targets.endpoint import endpoint
from tracecli.targets.outcome import config_error, network_message
from tracecli.targets.transport import http_client

PAGE = 100
MAX_PAGES = 10  # per poll: at most 1,000 new calls between two polls are reported
MAX_OPEN = 1000  # running calls watched for their end; beyond that the oldest are dropped
MAX_KNOWN = 50_000
ID_CHUNK = 100

Status = Literal["running", "success", "error", "descendant_error"]


class TailError(TracecliError):
    """A server or store problem: one line, exit 2. `transient` ones are retried by --follow."""

    exit_code = 2

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


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


# ---- sources ----------------------------------------------------------------------------


class CallSource(Protocol):
    description: str

    def query(
        self,
        project_id: str,
        *,
        filter: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        limit: int | None = None,
        offset: int = 0,
        sort_by: list[dict[str, str]] | None = None,
    ) -> list[dict[str, Any]]: ...

    def projects(self) -> list[str] | None:
        """Projects the source can list (most recent first), or None if it cannot."""
        ...

    def close(self) -> None: ...


class StoreSource:
    def __init__(self, path: str) -> None:
        self.store = Store(path, create=False)
        self.description = f"the trace store {path}"

    def query(self, project_id: str, **kwargs: Any) -> list[dict[str, Any]]:
        try:
            return list(self.store.query(project_id, **kwargs))
        except QueryError as exc:
            raise TailError(str(exc)) from None

    def projects(self) -> list[str] | None:
        return self.store.projects()

    def close(self) -> None:
        self.store.close()


class ServerSource:
    """A Weave server's `/calls/stream_query`, through the client every command opens
    (`tracecli.targets.transport.http_client`): --ca-bundle honoured, no key over plain
    http to another host without --allow-insecure, the key masked in every message."""

    def __init__(
        self,
        url: str,
        api_key: SecretStr | None,
        *,
        ca_bundle: str | Path | None = None,
        allow_insecure: bool = False,
    ) -> None:
        server = endpoint(url, api_key, allow_insecure=allow_insecure)
        self.url = server.base_url
        self.host = server.host
        self.redact = server.redact
        self.description = server.base_url
        self.has_key = server.key is not None
        self.client = http_client(server, ca_bundle=ca_bundle, timeout=30.0, connect_timeout=5.0)

    def failure(self, exc: httpx.HTTPError, doing: str) -> TracecliError:
        """What a request that got no answer tells the user: a certificate or URL problem
        is a usage error (exit 2, retrying cannot help); network trouble is transient."""
        fatal = config_error(exc, self.host, self.redact)
        if fatal is not None:
            return fatal
        if isinstance(exc, httpx.TimeoutException):
            return TailError(f"{self.url} did not answer in time", transient=True)
        return TailError(f"{doing}: {network_message(exc, self.redact)}", transient=True)

    def _auth_error(self, status: int) -> TailError:
        """A 401/403: with no key sent, the server requires one; else it refused ours."""
        if not self.has_key:
            return TailError(
                f"{self.url} requires an API key (HTTP {status}): pass --api-key, set "
                "WANDB_API_KEY, or add the host to ~/.netrc"
            )
        return TailError(
            f"{self.url} refused the API key (HTTP {status}): check --api-key, "
            "WANDB_API_KEY or ~/.netrc"
        )

    def query(
        self,
        project_id: str,
        *,
        filter: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        limit: int | None = None,
        offset: int = 0,
        sort_by: list[dict[str, str]] | None = None,
    ) -> list[dict[str, Any]]:
        body = {
            "project_id": project_id,
            "filter": filter,
            "query": query,
            "limit": limit,
            "offset": offset or None,
            "sort_by": sort_by,
        }
        body = {k: v for k, v in body.items() if v is not None}
        try:
            r = self.client.post(
                "/calls/stream_query", json=body, headers={"Accept": "application/jsonl"}
            )
        except httpx.HTTPError as exc:
            raise self.failure(exc, f"cannot reach {self.url}") from None
        if r.status_code in (401, 403):
            raise self._auth_error(r.status_code)
        if r.status_code >= 400:
            raise TailError(
                f"{self.url} answered HTTP {r.status_code} to /calls/stream_query: "
                + self.redact(_reason(r)),
                transient=r.status_code >= 500 or r.status_code == 429,
            )
        calls = []
        for n, line in enumerate(r.content.splitlines(), 1):
            if not line.strip():
                continue
            try:
                calls.append(loads_exact(line))  # integers beyond 64 bits stay exact
            except ValueError:
                raise TailError(f"{self.url} sent a line that is not JSON (line {n})") from None
        return calls

    def projects(self) -> list[str] | None:
        """What `tracecli serve` holds (its own GET /tracecli/projects, the most recently
        active first); None from any other server: a Weave server cannot list projects."""
        try:
            r = self.client.get("/tracecli/projects")
        except httpx.HTTPError as exc:
            failure = self.failure(exc, f"cannot reach {self.url}")
            if isinstance(failure, TailError):
                failure.transient = False
            raise failure from None
        if r.status_code in (401, 403):
            raise self._auth_error(r.status_code)
        try:
            projects = r.json()["projects"] if r.status_code == 200 else None
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(projects, list) or not all(isinstance(p, str) for p in projects):
            return None
        return projects

    def close(self) -> None:
        self.client.close()


def _reason(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text.strip()[:200] or r.reason_phrase
    if isinstance(body, dict):
        if isinstance(reason := body.get("reason"), str):
            return reason
        detail = body.get("detail")
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            first = detail[0]
            loc = ".".join(str(p) for p in first.get("loc", []) if p != "body")
            return f"{loc}: {first.get('msg')}" if loc else str(first.get("msg"))
        if detail:
            return str(detail)
    return str(body)[:200]


def open_source(settings: Settings) -> CallSource:
    """Where `tail` and `export` read: the Weave server of `settings` with its key (exit 2
    for a remote server without one), else the embedded store."""
    target = settings.weave_target()
    if target.server is None:
        assert target.db is not None
        return StoreSource(str(target.db))
    return ServerSource(
        target.server,
        target.api_key,
        ca_bundle=settings.ca_bundle,
        allow_insecure=settings.allow_insecure,
    )


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
        events: list[TailEvent] = []
        fetched: set[str] = set()
        offset = 0
        for _ in range(MAX_PAGES):
            page = self._newest(PAGE, offset)
            fresh = False
            for call in page:
                fetched.add(call["id"])
                fresh |= self._observe(call, events)
            if len(page) < PAGE or not fresh:
                break
            offset += PAGE
        watched = [i for i in self.open if i not in fetched]
        for start in range(0, len(watched), ID_CHUNK):
            ids = watched[start : start + ID_CHUNK]
            for call in self.source.query(self.req.project, filter={"call_ids": ids}):
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


# ---- what a row shows -------------------------------------------------------------------


def _parse_ts(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=datetime.UTC)


def status_of(call: Mapping[str, Any]) -> Status:
    summary = call.get("summary")
    weave = summary.get("weave") if isinstance(summary, Mapping) else None
    status = weave.get("status") if isinstance(weave, Mapping) else None
    if status in ("running", "success", "error", "descendant_error"):
        return cast(Status, status)
    if call.get("exception"):
        return "error"
    return "running" if call.get("ended_at") is None else "success"


def duration_of(call: Mapping[str, Any]) -> float | None:
    start, end = _parse_ts(call.get("started_at")), _parse_ts(call.get("ended_at"))
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def tokens_of(call: Mapping[str, Any]) -> int | None:
    """Total tokens over every model in summary.usage (total_tokens, else input + output)."""
    summary = call.get("summary")
    usage = summary.get("usage") if isinstance(summary, Mapping) else None
    if not isinstance(usage, Mapping):
        return None
    total, found = 0, False
    for u in usage.values():
        if not isinstance(u, Mapping):
            continue
        t = u.get("total_tokens")
        if not isinstance(t, int):
            parts = [
                u.get("prompt_tokens", u.get("input_tokens")),
                u.get("completion_tokens", u.get("output_tokens")),
            ]
            ints = [p for p in parts if isinstance(p, int)]
            t = sum(ints) if ints else None
        if t is not None:
            total, found = total + t, True
    return total if found else None


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"  # floored, as the server's summary.weave.latency_ms
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_start(value: Any) -> str:
    dt = _parse_ts(value)
    if dt is None:
        return str(value or "")
    return dt.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


STATUS_LABELS = {
    "running": "running",
    "success": "success",
    "error": "error",
    "descendant_error": "child error",
}
COLUMNS = ("started (UTC)", "op", "status", "duration", "tokens", "id", "exception")


_TRACEBACK_HEAD = "Traceback (most recent call last):"


def exception_line(exception: Any) -> str:
    """The exception as one line, type and message: the weave SDK stores it as JSON
    (`{"type": "ValueError", "message": "boom", "traceback": [...]}`): `ValueError: boom`; a
    logged Python traceback ends with that line, so its last line is the one shown; other
    text shows its first line."""
    if not exception:
        return ""
    text = str(exception).strip()
    if text.startswith("{"):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("type"), str):
            message = data.get("message")
            text = f"{data['type']}: {message}" if message not in (None, "") else data["type"]
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    if _TRACEBACK_HEAD in lines[0]:
        # the exception is the last unindented line (its message may span lines after it)
        unindented = [line for line in lines[1:] if not line[:1].isspace()]
        return (unindented[0] if unindented else lines[-1]).strip()
    return lines[0]


ID_SHOWN = 8  # the end of an id: what the table shows and --id/--trace accept


def row_of(call: Mapping[str, Any]) -> tuple[str, ...]:
    """The table cells of one call, in COLUMNS order (raw text: the CLI makes it safe)."""
    op = call.get("display_name") or call.get("op_name") or ""
    if isinstance(op, str) and op.startswith("weave:///"):
        op = op.rsplit("/", 1)[-1].split(":", 1)[0] or op
    tokens = tokens_of(call)
    first = exception_line(call.get("exception"))
    return (
        format_start(call.get("started_at")),
        str(op),
        STATUS_LABELS[status_of(call)],
        format_duration(duration_of(call)),
        f"{tokens:,}" if tokens is not None else "",
        # The end: time-ordered ids (UUIDv7, what the weave SDK makes) share their start;
        # `--id` takes it back (a unique prefix or suffix of an id).
        str(call.get("id") or "")[-ID_SHOWN:],
        first[:200] + ("…" if len(first) > 200 else ""),
    )


__all__ = [
    "COLUMNS",
    "CallSource",
    "Follower",
    "ServerSource",
    "StoreError",
    "StoreSource",
    "TailError",
    "TailEvent",
    "TailRequest",
    "and_more",
    "open_source",
    "recent",
    "resolve_project",
    "row_of",
]
