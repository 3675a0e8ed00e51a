"""The embedded store in-process: Weave semantics, idempotence, order tolerance, concurrency,
queries, schema versioning."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from tests.support.servers import end_half, make_call, start_half
from tracecli.config import paths
from tracecli.store.db import Store
from tracecli.store.query import QueryError
from tracecli.store.render import render_ts
from tracecli.store.rows import StoreError, to_ts
from tracecli.store.tables import SCHEMA_VERSION

P = "team/proj"
SUCCESS_1500 = {"status": "success", "trace_name": "llm.chat", "latency_ms": 1500}


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "traces.db")
    yield s
    s.close()


def rows(store: Store, project: str = P, **kw) -> dict[str, dict]:
    return {c["id"]: c for c in store.query(project, **kw)}


def test_start_then_end_makes_one_whole_call(store: Store) -> None:
    call = make_call(P, tokens=(3, 2))
    assert store.call_start(start_half(call)) == {"id": call["id"], "trace_id": call["trace_id"]}
    (running,) = store.query(P)
    assert running["ended_at"] is None and running["summary"]["weave"]["status"] == "running"
    assert store.call_end(end_half(call)) == {}
    (done,) = store.query(P)
    assert done["ended_at"] == call["ended_at"].replace(".000000", "")
    assert done["output"] == {"text": "answer"}
    assert done["summary"]["usage"] == call["summary"]["usage"]
    assert done["summary"]["weave"] == {
        "status": "success",
        "trace_name": "llm.chat",
        "latency_ms": 1500,
    }


def test_same_batch_twice_and_ends_before_starts_store_each_call_once_and_whole(
    store: Store,
) -> None:
    calls = [make_call(P, at=i, tokens=(i, 1)) for i in range(30)]
    starts = [{"mode": "start", "req": {"start": start_half(c)}} for c in calls]
    ends = [{"mode": "end", "req": {"end": end_half(c)}} for c in calls]
    # ends of the first ten arrive alone, before any start
    assert store.upsert_batch(ends[:10]) == [{}] * 10
    assert store.count(P) == 0 and store.pending_ends(P) == 10
    # a batch with starts and (for the rest) ends, some ends placed before their start
    batch = ends[20:] + starts + ends[10:20]
    first = store.upsert_batch(batch)
    assert store.upsert_batch(batch) == first  # the same batch again: same answer
    assert store.upsert_batch(ends[:10]) == [{}] * 10  # re-sent ends: harmless
    store.calls_complete(calls[:5])  # and a re-send as completed calls
    assert store.count(P) == 30 and store.pending_ends() == 0
    got = rows(store)
    assert set(got) == {c["id"] for c in calls}
    for c in calls:
        r = got[c["id"]]
        assert r["ended_at"] is not None, "every call is whole"
        assert r["inputs"] == c["inputs"] and r["output"] == c["output"]
        assert r["summary"]["usage"] == c["summary"]["usage"]


def test_completed_calls_resent_keep_one_row_same_content(store: Store) -> None:
    calls = [make_call(P, at=i) for i in range(5)]
    store.calls_complete(calls)
    before = list(store.query(P))
    store.calls_complete(calls)
    store.calls_complete(calls[::-1])
    assert list(store.query(P)) == before
    with sqlite3.connect(store.path) as raw:
        assert raw.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 5


def test_absent_fields_are_stored_as_sql_null_and_missing_ones_named(store: Store) -> None:
    """None is bound through the store's own adapter (it answers None): still SQL NULL."""
    call = make_call(P)
    call.update(display_name=None, thread_id=None, exception=None, output=None)
    store.calls_complete([call])
    with sqlite3.connect(store.path) as raw:
        types = raw.execute(
            "SELECT typeof(display_name), typeof(thread_id), typeof(exception), typeof(output),"
            " typeof(otel_dump), typeof(deleted_at) FROM calls"
        ).fetchone()
        assert types == ("null",) * 6
        assert raw.execute("SELECT COUNT(*) FROM calls WHERE output IS NULL").fetchone()[0] == 1
    for field, what in (
        ("id", "completed call"),
        ("op_name", "call start"),
        ("ended_at", "call end"),
    ):
        broken = {**call, field: None}
        with pytest.raises(StoreError, match=f"{what} .*missing {field}"):
            store.calls_complete([broken])


def test_resent_start_after_end_keeps_the_end(store: Store) -> None:
    call = make_call(P)
    store.call_start(start_half(call))
    store.call_end(end_half(call))
    store.call_start(start_half(call))
    (r,) = store.query(P)
    assert r["ended_at"] is not None and r["output"] == {"text": "answer"}


def test_pending_end_merges_with_a_later_start_in_another_batch(store: Store) -> None:
    call = make_call(P, exception="ValueError: boom")
    store.call_end(end_half(call))
    assert list(store.query(P)) == []  # a headless end is not a call
    store.call_start(start_half(call))
    (r,) = store.query(P)
    assert r["exception"] == "ValueError: boom"
    assert r["summary"]["weave"]["status"] == "error"
    assert store.pending_ends() == 0


def test_start_without_ids_gets_fresh_ones(store: Store) -> None:
    start = start_half(make_call(P))
    del start["id"], start["trace_id"]
    res = store.call_start(start)
    assert len(res["id"]) == 36 and len(res["trace_id"]) == 36
    assert store.count(P) == 1


def test_same_id_in_two_projects_are_two_calls(store: Store) -> None:
    call = make_call(P)
    other = dict(call, project_id="team/other")
    store.calls_complete([call, other])
    assert store.count(P) == 1 and store.count("team/other") == 1


def test_projects_most_recent_first(store: Store) -> None:
    store.calls_complete([make_call("a/old", at=0), make_call("b/new", at=100)])
    store.calls_complete([make_call("a/old", at=50)])
    assert store.projects() == ["b/new", "a/old"]


def test_concurrent_writers_threads_and_two_store_objects(tmp_path: Path) -> None:
    db = tmp_path / "traces.db"
    a, b = Store(db), Store(db)  # two handles: like `serve` and an `upload` on one file
    calls = [make_call(P, at=i) for i in range(400)]
    errors: list[BaseException] = []

    def work(store: Store, part: list[dict], mode: str) -> None:
        try:
            for i in range(0, len(part), 10):
                chunk = part[i : i + 10]
                if mode == "complete":
                    store.calls_complete(chunk)
                else:
                    store.upsert_batch(
                        [{"mode": "end", "req": {"end": end_half(c)}} for c in chunk]
                        + [{"mode": "start", "req": {"start": start_half(c)}} for c in chunk]
                    )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(store, calls[k::4], mode))
        for k, (store, mode) in enumerate(
            [(a, "complete"), (b, "complete"), (a, "batch"), (b, "batch")]
        )
    ]
    threads += [threading.Thread(target=work, args=(b, calls[::4], "batch"))]  # overlaps
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert a.count(P) == 400 and b.pending_ends() == 0
    assert all(c["ended_at"] for c in a.query(P))
    a.close()
    b.close()


def test_query_filters_sort_limit_offset(store: Store) -> None:
    root = make_call(P, at=0, op="agent.run")
    kids = [
        make_call(P, at=i, trace_id=root["trace_id"], parent_id=root["id"], op="tool.search")
        for i in (1, 2, 3)
    ]
    other = make_call(P, at=4, op="llm.chat", exception="KeyError: 'x'")
    store.calls_complete([root, *kids, other])
    ids = lambda calls: [c["id"] for c in calls]  # noqa: E731
    assert ids(store.query(P)) == ids([root, *kids, other])  # default: started_at asc
    newest = [{"field": "started_at", "direction": "desc"}]
    assert ids(store.query(P, sort_by=newest, limit=2)) == [other["id"], kids[2]["id"]]
    assert ids(store.query(P, sort_by=newest, limit=2, offset=2)) == ids(kids[1::-1])
    assert ids(store.query(P, filter={"op_names": ["tool.search"]})) == ids(kids)
    assert ids(store.query(P, filter={"trace_ids": [root["trace_id"]]})) == ids([root, *kids])
    assert ids(store.query(P, filter={"parent_ids": [root["id"]]})) == ids(kids)
    assert ids(store.query(P, filter={"call_ids": [other["id"], root["id"]]})) == ids([root, other])
    assert ids(store.query(P, filter={"trace_roots_only": True})) == ids([root, other])
    err = {"$expr": {"$eq": [{"$getField": "summary.weave.status"}, {"$literal": "error"}]}}
    assert ids(store.query(P, query=err)) == [other["id"]]
    assert store.count(P, query=err) == 1
    op_field, tool = {"$getField": "op_name"}, {"$literal": "TOOL"}
    contains = {
        "$expr": {"$contains": {"input": op_field, "substr": tool, "case_insensitive": True}}
    }
    assert ids(store.query(P, query=contains)) == ids(kids)
    nested = {"$expr": {"$eq": [{"$getField": "inputs.prompt"}, {"$literal": "question at 2"}]}}
    assert ids(store.query(P, query=nested)) == [kids[1]["id"]]
    assert list(store.query("nobody/here")) == []


def test_query_columns_empty_the_rest(store: Store) -> None:
    store.calls_complete([make_call(P)])
    (c,) = store.query(P, columns=["id", "ended_at"])
    assert c["inputs"] == {} and c["output"] is None and c["ended_at"] is not None
    assert c["summary"] == {
        "weave": {"status": "success", "trace_name": "llm.chat", "latency_ms": 1500}
    }


@pytest.mark.parametrize(
    "kw",
    [
        {"filter": {"nope": ["x"]}},
        {"filter": {"trace_ids": "not-a-list"}},
        {"filter": {"input_refs": ["weave:///x"]}},
        {"query": {"$expr": {"$regex": ["a", "b"]}}},
        {"query": {"$expr": {"$eq": [{"$getField": "no_such_field"}, {"$literal": 1}]}}},
        {"query": {"nope": {}}},
        {"sort_by": [{"field": "started_at", "direction": "sideways"}]},
        {"sort_by": [{"field": "bogus", "direction": "asc"}]},
        {"limit": -1},
    ],
)
def test_query_refuses_what_it_cannot_answer(store: Store, kw: dict) -> None:
    with pytest.raises(QueryError):
        store.query(P, **kw)


def test_datetimes_normalised_and_rendered_like_pydantic() -> None:
    assert to_ts("2026-01-01T10:00:00Z") == "2026-01-01T10:00:00.000000Z"
    assert to_ts("2026-01-01T12:00:00.5+02:00") == "2026-01-01T10:00:00.500000Z"
    assert to_ts("2026-01-01T10:00:00") == "2026-01-01T10:00:00.000000Z"  # naive → UTC
    assert to_ts(1767261600) == "2026-01-01T10:00:00.000000Z"  # epoch seconds, as pydantic
    with pytest.raises(StoreError):
        to_ts("yesterday")
    assert render_ts("2026-01-01T10:00:00.000000Z") == "2026-01-01T10:00:00Z"
    assert render_ts("2026-01-01T10:00:00.200000Z") == "2026-01-01T10:00:00.200000Z"


def test_a_time_already_in_the_stored_form_is_kept_only_when_it_is_a_real_instant() -> None:
    """The fast path for `...SS.ffffffZ` answers as the general one: same text, and the
    same refusal for what only looks like that form (a week date, a 30th of February)."""
    assert to_ts("2026-01-01T10:00:00.123456Z") == "2026-01-01T10:00:00.123456Z"
    assert to_ts("2026-W01-4T10:00:00.123456Z") == "2026-01-01T10:00:00.123456Z"
    assert to_ts("2026-01-01T10:00:00,123456Z") == "2026-01-01T10:00:00.123456Z"
    assert to_ts("2024-02-29T23:59:59Z") == "2024-02-29T23:59:59.000000Z"
    assert to_ts("2026-W01-4T10:00:00Z") == "2026-01-01T10:00:00.000000Z"
    for bad in (
        "2026-02-30T10:00:00.123456Z",
        "2025-02-29T10:00:00Z",
        "2026-01-01T24:00:00.000000Z",
        "2026-01-01T10:0a:00.000000Z",
    ):
        with pytest.raises(StoreError):
            to_ts(bad)


def test_missing_required_field_is_a_clear_error(store: Store) -> None:
    start = start_half(make_call(P))
    del start["started_at"]
    with pytest.raises(StoreError, match="missing started_at"):
        store.call_start(start)
    with pytest.raises(StoreError, match="mode"):
        store.upsert_batch([{"mode": "sideways", "req": {}}])


def test_schema_version_and_foreign_files(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    Store(db).close()
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"calls_project_started", "calls_project_trace", "calls_project_parent"} <= names
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer tracecli"):
        Store(db)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as raw:
        raw.execute("CREATE TABLE mine (x)")
    with pytest.raises(StoreError, match="not a tracecli store"):
        Store(other)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError):
        Store(junk)
    with pytest.raises(StoreError, match="no trace store"):
        Store(tmp_path / "missing.db", create=False)


def test_default_path_follows_env_and_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert paths.default_db().parts[-2:] == ("tracecli", "traces.db")
    monkeypatch.setenv("TRACECLI_DB", str(tmp_path / "x.db"))
    assert paths.default_db() == tmp_path / "x.db"
    with Store(paths.default_db()) as s:
        s.calls_complete([make_call(P)])
    assert (tmp_path / "x.db").exists()


def test_memory_store_and_closed_store() -> None:
    s = Store(":memory:")
    s.calls_complete([make_call(P)])
    assert s.count(P) == 1
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.calls_complete([make_call(P)])


def test_a_version_1_store_is_migrated_with_its_calls(tmp_path: Path) -> None:
    """Stores written before the object tables (schema 1) open, keep their calls and gain
    the tables the weave SDK's object routes need."""
    from tracecli.store.tables import MIGRATIONS

    db = tmp_path / "v1.db"
    call = make_call(P)
    with sqlite3.connect(db) as raw:
        for statement in MIGRATIONS[0]:
            raw.execute(statement)
        raw.execute("PRAGMA user_version = 1")
    with Store(db) as store:
        store.calls_complete([call])
    with sqlite3.connect(db) as raw:
        raw.execute("PRAGMA user_version = 1")
        raw.execute("DROP TABLE objects")
        raw.execute("DROP TABLE tables")
        raw.execute("DROP TABLE table_rows")
        raw.execute("DROP TABLE files")
        raw.execute("DROP TABLE feedback")
    with Store(db) as store:
        assert [c["id"] for c in store.query(P)] == [call["id"]]
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"calls", "pending_ends", "objects", "tables", "table_rows", "files"} <= names
        assert "feedback" in names


def test_a_store_that_cannot_be_created_is_one_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the trace store"):
        Store(blocker / "sub" / "traces.db")
