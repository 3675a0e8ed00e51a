"""A project's calls written out whole: what `/calls/stream_query` answers, one call a line.

`tracecli export` uses this to save a project from a Weave server or the embedded store in
the form a server returns it (CallSchema, oldest first), a file `tracecli upload` sends back
to any server. Every call is written, however many: the store's rows and a server's answer
are streamed to the file, never held in memory; integers beyond 64 bits stay exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any, NamedTuple

import httpx

from tracecli.readback.sources import CallSource, ServerSource, StoreSource, TailError
from tracecli.store.exact_json import dumps_exact, loads_exact
from tracecli.store.query import QueryError

ORDER = [{"field": "started_at", "direction": "asc"}, {"field": "id", "direction": "asc"}]


class ExportResult(NamedTuple):
    project: str
    calls: int
    bytes_written: int


def _store_lines(source: StoreSource, project: str) -> Iterator[bytes]:
    try:
        for call in source.store.query(project, sort_by=ORDER):
            yield dumps_exact(call)
    except QueryError as exc:
        raise TailError(str(exc)) from None


def _server_lines(source: ServerSource, project: str) -> Iterator[bytes]:
    body = {"project_id": project, "sort_by": ORDER}
    try:
        with source.client.stream(
            "POST",
            "/calls/stream_query",
            json=body,
            headers={"Accept": "application/jsonl"},
            timeout=httpx.Timeout(300.0, connect=10.0),
        ) as r:
            source.no_redirect(r)
            if r.status_code >= 400:
                r.read()
                raise TailError(
                    f"{source.url} answered HTTP {r.status_code} to /calls/stream_query"
                    + (": check --api-key" if r.status_code in (401, 403) else "")
                )
            for n, line in enumerate(r.iter_lines(), 1):
                if not line.strip():
                    continue
                try:
                    loads_exact(line)  # checked, then written as the server sent it
                except ValueError:
                    message = f"{source.url} sent a line that is not JSON (line {n})"
                    raise TailError(message) from None
                yield line.encode()
    except httpx.HTTPError as exc:
        failure = source.failure(exc, f"reading {project} from {source.url} failed")
        if isinstance(failure, TailError):
            failure = TailError(f"{failure} (the file is incomplete)")
        raise failure from None


def export_project(source: CallSource, project: str, out: IO[bytes]) -> ExportResult:
    """Write every call of `project` to `out` (JSON lines, oldest first); how many, how big."""
    lines: Iterator[bytes]
    if isinstance(source, StoreSource):
        lines = _store_lines(source, project)
    elif isinstance(source, ServerSource):
        lines = _server_lines(source, project)
    else:  # any other source: its query answer, whole
        lines = (dumps_exact(c) for c in source.query(project, sort_by=ORDER))
    count = size = 0
    for line in lines:
        out.write(line + b"\n")
        count += 1
        size += len(line) + 1
    return ExportResult(project, count, size)


def read_export(data: bytes) -> list[dict[str, Any]]:
    """The calls of an export file (for tests and tools): exact integers kept."""
    return [loads_exact(line) for line in data.splitlines() if line.strip()]
