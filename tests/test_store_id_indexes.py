"""A bulk load into an empty store builds the id indexes once at its end (store/id_indexes.py):
the store ends as a new one would be, and a load killed before its end leaves a store that
the next open completes, before anything reads it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from tracecli.store.db import Store
from tracecli.store.id_indexes import DEFERRED
from tracecli.targets.local import LocalStoreTarget
from tracecli.wire.encode import batch_body, dumps

P = "team/proj"
ROUTE = f"/v2/{P}/calls/complete"


def _call(i: int) -> dict[str, Any]:
    return {
        "project_id": P,
        "id": f"c{i:04d}",
        "op_name": "llm.chat",
        "trace_id": f"t{i // 3}",
        "parent_id": None if i % 3 == 0 else f"c{i - i % 3:04d}",
        "started_at": "2026-02-25T06:13:20.000000Z",
        "ended_at": "2026-02-25T06:13:21Z",
        "attributes": {"i": i},
        "inputs": {"q": "hi"},
        "output": {"a": i / 3},
        "summary": {},
    }


BODY = batch_body(dumps(_call(i)) for i in range(30))


def _indexes(db: Path) -> list[tuple[str, str | None]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
        ).fetchall()


def _rows(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT * FROM calls ORDER BY id").fetchall()


def _plan(db: Path, where: str) -> str:
    with sqlite3.connect(db) as conn:
        plan = conn.execute(f"EXPLAIN QUERY PLAN SELECT id FROM calls WHERE {where}", (P, "x"))
        return " ".join(r[3] for r in plan)


def _fresh_schema(tmp_path: Path) -> list[tuple[str, str | None]]:
    Store(tmp_path / "fresh.db").close()
    return _indexes(tmp_path / "fresh.db")


def test_a_bulk_load_into_an_empty_store_builds_the_id_indexes_at_its_end(
    tmp_path: Path,
) -> None:
    bulk = LocalStoreTarget(tmp_path / "bulk.db", bulk=True)
    names = {n for n, _ in _indexes(tmp_path / "bulk.db")}
    assert not names & set(DEFERRED)  # left out while it loads
    assert bulk.post(ROUTE, BODY).status == 200
    bulk.close()
    plain = LocalStoreTarget(tmp_path / "plain.db")
    assert plain.post(ROUTE, BODY).status == 200
    plain.close()
    assert _indexes(tmp_path / "bulk.db") == _indexes(tmp_path / "plain.db")
    assert _indexes(tmp_path / "bulk.db") == _fresh_schema(tmp_path)
    assert _rows(tmp_path / "bulk.db") == _rows(tmp_path / "plain.db")
    assert len(_rows(tmp_path / "bulk.db")) == 30
    assert "calls_project_parent" in _plan(tmp_path / "bulk.db", "project_id = ? AND parent_id = ?")
    assert "calls_project_trace" in _plan(tmp_path / "bulk.db", "project_id = ? AND trace_id = ?")


def test_a_store_that_holds_a_call_keeps_its_indexes_through_a_bulk_load(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with Store(db) as s:
        s.calls_complete([_call(99)])
    target = LocalStoreTarget(db, bulk=True)
    assert _indexes(db) == _fresh_schema(tmp_path)
    assert target.post(ROUTE, BODY).status == 200
    assert _indexes(db) == _fresh_schema(tmp_path)
    target.close()
    assert len(_rows(db)) == 31


_KILLED = """
import os, sys
from pathlib import Path
from tracecli.targets.local import LocalStoreTarget
target = LocalStoreTarget(Path(sys.argv[1]), bulk=True)
out = target.post(sys.argv[2], sys.stdin.buffer.read())
assert out.status == 200, out
os._exit(0)  # killed: no close, no index built
"""


def test_a_bulk_load_killed_before_its_end_leaves_a_store_the_next_open_completes(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run([sys.executable, "-c", _KILLED, str(db), ROUTE], input=BODY, env=env, check=True)
    assert not {n for n, _ in _indexes(db)} & set(DEFERRED)
    assert len(_rows(db)) == 30  # every call acknowledged is stored
    with Store(db) as s:  # any open: upload, serve, tail
        assert _indexes(db) == _fresh_schema(tmp_path)
        assert s.count(P, filter={"parent_ids": ["c0000"]}) == 2
    # a resumed load sends the same calls again: stored once, indexes kept
    again = LocalStoreTarget(db, bulk=True)
    assert again.post(ROUTE, BODY).status == 200
    again.close()
    assert len(_rows(db)) == 30 and _indexes(db) == _fresh_schema(tmp_path)


def test_upload_defers_them_into_an_empty_store_but_not_under_follow(tmp_path: Path) -> None:
    """`upload --follow` runs for as long as the producer writes, with readers beside it:
    it keeps the indexes up to date as it goes."""
    from tracecli.upload.api import _open_target
    from tracecli.upload.report import UploadOptions

    for follow in (False, True):
        db = tmp_path / f"follow_{follow}.db"
        target, kind, _ = _open_target(UploadOptions(db=db, follow=follow), None, None, db)
        try:
            assert kind == "store"
            kept = {n for n, _ in _indexes(db)} & set(DEFERRED)
            assert kept == (set(DEFERRED) if follow else set())
        finally:
            target.close()
        assert _indexes(db) == _fresh_schema(tmp_path)
