"""Tell which calls of a failed request the server already holds, so a re-send skips them.

A chunk can reach the server twice: the connection dropped after the server stored it (so
the request is retried), or a killed upload lost the acknowledgements of its requests in
flight (so the resumed run sends them again). Production Weave keeps call versions and takes
the second copy, but Weave's SQLite trace server (the reference server, and set-ups built on
it) has the call id as a primary key: the re-sent call is a 500, and since it writes a batch
item by item, the items before the failing one are stored and the rest are not. Retrying
that 500 until the deadline, then rejecting calls that are in fact stored, would be wrong
twice over; instead the sender asks the server which calls of the chunk it holds
(`/calls/stream_query` by call id) and sends only the rest.

Pure functions here: what an item is, whether the server's answer covers it, and how a chunk
divides into what is stored and what is left.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from tracecli.wire.chunking import Chunk, Unit
from tracecli.wire.encode import CALL_END, CALL_START, UPSERT_BATCH

# (project_id, call id) → whether the stored call has ended (an end or a complete call landed)
Stored = Mapping[tuple[str, str], bool]


class ItemKey(NamedTuple):
    kind: str  # "start", "end" or "complete"
    project_id: str
    call_id: str


def item_key(route: str, item: bytes) -> ItemKey | None:
    """What one encoded item writes, or None when it cannot be told (then it is re-sent)."""
    try:
        value: Any = orjson.loads(item)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    if route == UPSERT_BATCH:
        kind = value.get("mode")
        req = value.get("req")
        body = req.get(kind) if isinstance(req, dict) and isinstance(kind, str) else None
    elif route == CALL_START:
        kind, body = "start", value.get("start")
    elif route == CALL_END:
        kind, body = "end", value.get("end")
    elif route.endswith("/calls/complete"):
        kind, body = "complete", value
    else:
        return None
    if kind not in ("start", "end", "complete") or not isinstance(body, dict):
        return None
    project, cid = body.get("project_id"), body.get("id")
    if not isinstance(project, str) or not isinstance(cid, str):
        return None
    return ItemKey(kind, project, cid)


def is_stored(key: ItemKey, stored: Stored) -> bool:
    """A start is stored once its call exists; an end or a complete call once it has ended.
    (A complete call whose start alone is stored is not: its end would be lost.)"""
    ended = stored.get((key.project_id, key.call_id))
    if ended is None:
        return False
    return key.kind == "start" or ended


def chunk_keys(chunk: Chunk) -> list[ItemKey]:
    """The keys of a chunk's items that can be told (for the query)."""
    return [k for item in chunk.items if (k := item_key(chunk.route, item)) is not None]


def by_project(keys: Iterable[ItemKey]) -> dict[str, list[str]]:
    """Call ids to look up, per project, each once, in first-seen order."""
    out: dict[str, dict[str, None]] = {}
    for k in keys:
        out.setdefault(k.project_id, {})[k.call_id] = None
    return {p: list(ids) for p, ids in out.items()}


def split_stored(chunk: Chunk, stored: Stored) -> tuple[Chunk, Chunk]:
    """(the units the server holds whole, the rest without their stored items).

    A unit keeps its records whatever happens to its items: a start and end pair whose
    start is stored goes on as its end alone, and its records are acknowledged when that
    end is."""
    held = Chunk(chunk.route)
    rest = Chunk(chunk.route)
    for i in range(chunk.units):
        unit = chunk.unit(i)
        left = tuple(
            part
            for part in unit.parts
            if (key := item_key(chunk.route, part)) is None or not is_stored(key, stored)
        )
        if not left:
            held.add(unit)
        elif len(left) == len(unit.parts):
            rest.add(unit)
        else:
            rest.add(Unit(unit.route, left, unit.recs, unit.extra, unit.steps))
    return held, rest


def parse_stored(lines: Iterable[bytes]) -> dict[tuple[str, str], bool]:
    """A `/calls/stream_query` answer (JSON lines of calls) as `Stored`."""
    out: dict[tuple[str, str], bool] = {}
    for line in lines:
        try:
            call = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(call, dict) and isinstance(call.get("id"), str):
            project = call.get("project_id")
            if isinstance(project, str):
                out[(project, call["id"])] = call.get("ended_at") is not None
    return out


def stored_query(project_id: str, ids: Sequence[str]) -> bytes:
    """The `/calls/stream_query` body that asks which of `ids` exist and whether they ended."""
    return orjson.dumps(
        {
            "project_id": project_id,
            "filter": {"call_ids": list(ids)},
            "columns": ["id", "project_id", "ended_at"],
            "limit": len(ids),
        }
    )
