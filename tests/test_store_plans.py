"""The embedded store's id filters SEARCH their own index instead of walking the project.

Every statement the store runs is kept (SQLite's trace callback, parameters written in)
while `tracecli serve`'s routes and `tail` read from it; then SQLite is asked how it plans
each read that filters on call, trace or parent ids (EXPLAIN QUERY PLAN): it must SEARCH
that id's index, never walk calls_project_started (every call of the project), while an
unfiltered read keeps that walk (it stops after `limit` rows). The answers are checked
against the unfiltered listing, filtered here.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.servers import app_server, make_call, start_half
from tracecli.readback.sources import StoreSource
from tracecli.readback.tail import TailRequest, recent
from tracecli.serve.app import create_app
from tracecli.store.db import Store

P = "team/proj"
_INDEX_OF = {
    "id": "sqlite_autoindex_calls_1",
    "trace_id": "calls_project_trace",
    "parent_id": "calls_project_parent",
}
_ID_FILTER = re.compile(r"\b(id|trace_id|parent_id) IN \(SELECT value FROM json_each\(")
_WALK = "calls_project_started"
_NEWEST_FIRST = [{"field": "started_at", "direction": "desc"}]


class PlannedStore(Store):
    """A Store that keeps the statements its connections run, as SQLite ran them."""

    def __init__(self, path: Path) -> None:
        self.statements: list[str] = []
        super().__init__(path)

    def _connect(self) -> sqlite3.Connection:
        conn = super()._connect()
        conn.set_trace_callback(self.statements.append)
        return conn


def _traces(store: Store) -> list[list[dict[str, Any]]]:
    """Three traces of a root and four children (two children of each start at the same
    time: the id breaks the tie), one child still running, and calls of another project."""
    traces = []
    for t in range(3):
        root = make_call(P, at=t * 10.0)
        kids = [
            make_call(P, at=t * 10.0 + 1 + k // 2, trace_id=root["trace_id"], parent_id=root["id"])
            for k in range(4)
        ]
        traces.append([root, *kids])
    running = make_call(P, at=25.0, duration=None, trace_id=traces[2][0]["trace_id"])
    running["parent_id"] = traces[2][0]["id"]
    traces[2].append(running)
    store.calls_complete([c for trace in traces for c in trace if c is not running])
    store.call_start(start_half(running))
    store.calls_complete([make_call("team/other", at=float(i)) for i in range(3)])
    return traces


def _plan(db: Path, statement: str) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + statement))
    finally:
        conn.close()


def _reads(store: PlannedStore) -> Iterator[str]:
    for statement in store.statements:
        head = statement.lstrip().split(None, 1)[0].upper()
        if head in ("SELECT", "WITH") and re.search(r"\bFROM calls\b", statement):
            yield statement


def _ids(calls: list[dict[str, Any]]) -> list[str]:
    return [c["id"] for c in calls]


@pytest.fixture
def planned(tmp_path: Path) -> Iterator[PlannedStore]:
    store = PlannedStore(tmp_path / "traces.db")
    yield store
    store.close()


def _assert_id_reads_search_their_index(store: PlannedStore, db: Path) -> int:
    checked = 0
    for statement in _reads(store):
        columns = set(_ID_FILTER.findall(statement))
        if not columns:
            continue
        plan = _plan(db, statement)
        wanted = {_INDEX_OF[c] for c in columns}
        searched = set(re.findall(r"SEARCH calls USING (?:COVERING )?INDEX (\w+) \(", plan))
        assert searched & wanted, f"{statement}\n  planned: {plan}"
        assert _WALK not in plan, f"{statement}\n  walks the project: {plan}"
        checked += 1
    return checked


def test_serve_id_filters_search_their_index_with_unchanged_answers(
    planned: PlannedStore, tmp_path: Path
) -> None:
    traces = _traces(planned)
    trace, child = traces[2], traces[2][3]
    tid = trace[0]["trace_id"]
    with app_server(create_app(planned)) as url:

        def stream(**body: Any) -> list[dict[str, Any]]:
            """/calls/stream_query's answer."""
            r = httpx.post(url + "/calls/stream_query", json={"project_id": P, **body})
            assert r.status_code == 200, r.text
            return [orjson.loads(line) for line in r.content.splitlines()]

        planned.statements.clear()
        two = {tid, traces[0][0]["trace_id"]}
        roots = {"$expr": {"$eq": [{"$getField": "parent_id"}, {"$literal": None}]}}
        not_child = {"$expr": {"$not": [{"$eq": [{"$getField": "id"}, {"$literal": child["id"]}]}]}}
        slowest = [{"field": "summary.weave.latency_ms", "direction": "desc"}]
        cases: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
            ({"filter": {"trace_ids": [tid]}}, lambda c: c["trace_id"] == tid),
            (
                {"filter": {"call_ids": [child["id"], trace[0]["id"]]}},
                lambda c: c["id"] in {child["id"], trace[0]["id"]},
            ),
            (
                {"filter": {"parent_ids": [trace[0]["id"]]}, "sort_by": _NEWEST_FIRST},
                lambda c: c["parent_id"] == trace[0]["id"],
            ),
            (
                {
                    "filter": {"trace_ids": [tid], "op_names": ["llm.chat"]},
                    "sort_by": _NEWEST_FIRST,
                },
                lambda c: c["trace_id"] == tid,
            ),
            (
                {
                    "filter": {"trace_ids": [*two], "trace_roots_only": True},
                    "sort_by": _NEWEST_FIRST,
                },
                lambda c: c["parent_id"] is None and c["trace_id"] in two,
            ),
            (
                {"filter": {"trace_ids": [*two]}, "query": roots},
                lambda c: c["parent_id"] is None and c["trace_id"] in two,
            ),
            (
                {"filter": {"trace_ids": [tid]}, "query": not_child, "sort_by": slowest},
                lambda c: c["trace_id"] == tid and c["id"] != child["id"],
            ),
        ]
        for body, keep in cases:
            listing = stream(**{k: v for k, v in body.items() if k == "sort_by"})
            expected = _ids([c for c in listing if keep(c)])
            assert len(expected) >= 2 and _ids(stream(**body)) == expected, body
            assert _ids(stream(**body, limit=2, offset=1)) == expected[1:3], body
        stats = httpx.post(
            url + "/calls/query_stats",
            json={
                "project_id": P,
                "filter": {"trace_ids": [tid]},
                "include_total_storage_size": True,
            },
        ).json()
        assert stats["count"] == len(trace) and stats["total_storage_size_bytes"] > 0
        read = httpx.post(url + "/call/read", json={"project_id": P, "id": child["id"]}).json()
        assert read["call"]["id"] == child["id"]
        r = httpx.post(url + "/calls/delete", json={"project_id": P, "call_ids": [trace[0]["id"]]})
        assert r.json() == {"num_deleted": len(trace)}
        assert stream(filter={"trace_ids": [tid]}) == []
    assert _assert_id_reads_search_their_index(planned, tmp_path / "traces.db") >= 18


def test_tail_reads_search_the_id_index_and_keep_the_walk_without_one(
    planned: PlannedStore, tmp_path: Path
) -> None:
    traces = _traces(planned)
    db = tmp_path / "traces.db"
    source = StoreSource(str(db))
    source.store.close()
    source.store = planned
    tid = traces[1][0]["trace_id"]
    planned.statements.clear()
    shown = recent(source, TailRequest(P, limit=3, trace=tid))
    assert _ids(shown) == _ids(sorted(traces[1], key=lambda c: (c["started_at"], c["id"])))[-3:]
    (one,) = recent(source, TailRequest(P, call_id=traces[0][2]["id"]))
    assert one["id"] == traces[0][2]["id"]
    assert _assert_id_reads_search_their_index(planned, db) == 2
    planned.statements.clear()
    assert len(recent(source, TailRequest(P, limit=4))) == 4
    assert len(recent(source, TailRequest(P, limit=4, op="llm.chat"))) == 4
    plans = [_plan(db, s) for s in _reads(planned)]
    assert len(plans) == 2 and all(f"SEARCH calls USING INDEX {_WALK} (" in p for p in plans)


@pytest.mark.parametrize(
    "selection",
    [
        {},
        {"filter": {"op_names": ["llm.chat"]}},
        {"filter": {"trace_roots_only": True}},
        {"filter": {"thread_ids": ["t1"], "wb_run_ids": ["r1"]}},
        {"filter": {"trace_ids": [], "call_ids": []}},  # empty lists are no filter
    ],
)
def test_broad_reads_keep_the_started_at_walk(
    planned: PlannedStore, tmp_path: Path, selection: dict[str, Any]
) -> None:
    _traces(planned)
    planned.statements.clear()
    list(planned.query(P, limit=5, sort_by=_NEWEST_FIRST, **selection))
    (statement,) = _reads(planned)
    assert "+" not in statement.split(" FROM calls ", 1)[1]
    assert f"SEARCH calls USING INDEX {_WALK} (" in _plan(tmp_path / "traces.db", statement)
