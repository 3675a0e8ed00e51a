"""Batches of rows from several threads in one transaction (store/group_commit.py): every
batch is stored exactly as if written alone, `write` returns only once its batch is
committed, and a batch that fails fails alone, in its own thread."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tracecli.store.body_rows import ROW_COLUMNS, completed_rows
from tracecli.store.db import Store
from tracecli.store.group_commit import GroupWriter, _Batch
from tracecli.targets.local import LocalStoreTarget
from tracecli.targets.retry import Action
from tracecli.wire.encode import batch_body, dumps

P = "team/proj"


def body(first: int, n: int) -> bytes:
    return batch_body(
        dumps(
            {
                "project_id": P,
                "id": f"c{i:05d}",
                "op_name": "llm.chat",
                "trace_id": f"t{i // 3}",
                "parent_id": None if i % 3 == 0 else f"c{i - i % 3:05d}",
                "started_at": "2026-02-25T06:13:20.000000Z",
                "attributes": {"i": i},
                "inputs": {"q": "hi"},
                "ended_at": "2026-02-25T06:13:21.500000Z",
                "output": {"a": i},
                "summary": {},
                **({"display_name": f"n{i}"} if i % 7 == 0 else {}),
            }
        )
        for i in range(first, first + n)
    )


def stored(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT * FROM calls ORDER BY project_id, id").fetchall()
        assert conn.execute("SELECT COUNT(*) FROM pending_ends").fetchone() == (0,)
    return rows


def test_threads_store_what_one_writer_stores(tmp_path: Path) -> None:
    bodies = [body(i * 40, 40) for i in range(24)]
    alone = Store(tmp_path / "alone.db")
    for b in bodies:
        rows = completed_rows(b)
        assert rows is not None
        alone.write_rows(complete_rows=rows, complete_columns=ROW_COLUMNS)
    alone.close()

    target = LocalStoreTarget(tmp_path / "grouped.db")
    sizes: list[int] = []
    write_group = target._grouped._write_group

    def counted(group: list[Any]) -> None:
        sizes.append(len(group))
        write_group(group)

    target._grouped._write_group = counted  # type: ignore[method-assign]
    start = threading.Barrier(6)

    def post(mine: Sequence[bytes]) -> None:
        start.wait()
        for b in mine:
            out = target.post(f"/v2/{P}/calls/complete", b)
            assert out.action is Action.OK
            # acknowledged means stored: another connection sees every call of it
            ids = [r[1] for r in completed_rows(b) or ()]
            assert target.store.count(P, filter={"call_ids": ids}) == len(ids) == 40

    threads = [threading.Thread(target=post, args=(bodies[i::6],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(sizes) == len(bodies)
    assert target.requests == len(bodies)
    target.close()
    assert stored(tmp_path / "grouped.db") == stored(tmp_path / "alone.db")


class _Failing(Store):
    """A store whose writes fail for a batch holding call `bad`."""

    bad = "c00045"

    def write_rows(self, *a: Any, **kw: Any) -> list[tuple[str, str]]:
        if any(r[1] == self.bad for r in kw["complete_rows"]):
            raise sqlite3.OperationalError("disk I/O error")
        return super().write_rows(*a, **kw)


def test_a_failing_batch_fails_alone(tmp_path: Path) -> None:
    """The group's transaction fails (one batch holds `bad`): each batch is written again
    on its own, and only the failing one gets an error."""
    store = _Failing(tmp_path / "s.db")
    writer = GroupWriter(store, ROW_COLUMNS)
    group = [_Batch(rows) for rows in (_rows(0), _rows(10), _rows(40), _rows(60))]
    writer._write_group(group)
    assert [b.done for b in group] == [True] * 4
    assert [type(b.error) for b in group] == [
        type(None),
        type(None),
        sqlite3.OperationalError,
        type(None),
    ]
    assert store.count(P) == 30
    store.close()


class _Stopped(Store):
    def write_rows(self, *a: Any, **kw: Any) -> list[tuple[str, str]]:
        raise KeyboardInterrupt


def test_batches_of_a_stopped_writer_are_not_taken_for_stored(tmp_path: Path) -> None:
    store = _Stopped(tmp_path / "s.db")
    writer = GroupWriter(store, ROW_COLUMNS)
    group = [_Batch(_rows(0)), _Batch(_rows(10))]
    with pytest.raises(KeyboardInterrupt):
        writer._write_group(group)
    assert all(b.done and isinstance(b.error, RuntimeError) for b in group)
    store.close()


def _rows(first: int) -> list[tuple[Any, ...]]:
    rows = completed_rows(body(first, 10))
    assert rows is not None
    return rows


def test_write_raises_its_own_batchs_error(tmp_path: Path) -> None:
    store = _Failing(tmp_path / "s.db")
    writer = GroupWriter(store, ROW_COLUMNS)
    writer.write(_rows(0))
    with pytest.raises(sqlite3.OperationalError):
        writer.write(_rows(40))
    assert store.count(P) == 10
    store.close()


class _Held(Store):
    """A store whose first write waits for `gate`: the batches handed in meanwhile queue."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.sizes: list[int] = []

    def write_rows(self, *a: Any, **kw: Any) -> list[tuple[str, str]]:
        self.sizes.append(len(kw["complete_rows"]))
        if len(self.sizes) == 1:
            self.gate.wait(10)
        return super().write_rows(*a, **kw)


def test_batches_waiting_meanwhile_share_one_transaction(tmp_path: Path) -> None:
    store = _Held(tmp_path / "s.db")
    writer = GroupWriter(store, ROW_COLUMNS)
    threads = [threading.Thread(target=writer.write, args=(_rows(i * 10),)) for i in range(4)]
    threads[0].start()
    while not store.sizes:
        threading.Event().wait(0.01)
    for t in threads[1:]:
        t.start()
    for _ in range(1000):  # (bounded: 10 s)
        with writer._cond:
            if len(writer._waiting) == 3:
                break
        threading.Event().wait(0.01)
    store.gate.set()
    for t in threads:
        t.join(10)
    assert store.sizes == [10, 30]
    assert store.count(P) == 40
    store.close()
