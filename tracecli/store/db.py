"""The embedded trace store: one SQLite file, one row per call, Weave server semantics.

Used in-process by the local upload target and `tail`, and over HTTP by `tracecli serve`.
Why it is shaped this way:

* A start inserts, an end completes its call, a completed call writes both halves, and a
  re-sent start, end or completed call rewrites the same row with the same content: an
  uploader that retries after a lost acknowledgement can never duplicate a call.
* An end can arrive before its start (the weave SDK's batches do that, and so do resumed
  uploads); it waits in `pending_ends` and is merged when its start lands, so nothing is lost
  and queries never see half a call.
* A whole batch is one transaction through `executemany`; the file itself (one writer
  behind a lock, pooled readers, WAL, migrations by `PRAGMA user_version`) is
  tracecli.store.sqlite_file's.
"""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Unpack

import orjson

from tracecli.store.query import Selection, build_select
from tracecli.store.render import render_call, selected_columns
from tracecli.store.rows import StoreError, complete_row, end_row, end_values, start_row
from tracecli.store.sqlite_file import SqliteFile
from tracecli.store.tables import (
    CALL_COLUMNS,
    CALL_KEY,
    COMPLETE_COLUMNS,
    PEND_COLUMNS,
    SQL_END,
    SQL_EXISTING,
    SQL_MERGE,
    SQL_UNPEND,
    START_COLUMNS,
)
from tracecli.store.upserts import upsert

__all__ = ["Store"]

_SELECT = ", ".join(CALL_COLUMNS)


class Store(SqliteFile):
    """An embedded Weave-compatible call store in one SQLite file.

    Thread-safe (see SqliteFile): `path` may be ":memory:" (tests, throwaway).
    """

    # -- writes

    def write(
        self,
        starts: Iterable[Mapping[str, Any]] = (),
        ends: Sequence[Mapping[str, Any]] = (),
        completes: Iterable[Mapping[str, Any]] = (),
    ) -> list[tuple[str, str]]:
        """Store starts, ends and completed calls in one transaction.

        Returns the (id, trace_id) of each start, in order (ids are generated when absent).
        Order inside one call does not matter: starts and completes land first, then each
        end completes its call or waits in pending_ends for its start.
        """
        start_rows = [start_row(s) for s in starts]
        complete_rows = [complete_row(c) for c in completes]
        end_rows = [end_values(e) for e in ends]  # (every end's time checked first)
        end_rows = [end_row(e, v) for e, v in zip(ends, end_rows, strict=True)]
        return self.write_rows(start_rows, complete_rows, end_rows)

    def write_rows(
        self,
        start_rows: Sequence[tuple[Any, ...]] = (),
        complete_rows: Sequence[tuple[Any, ...]] = (),
        end_rows: Sequence[tuple[Any, ...]] = (),
        *,
        complete_columns: tuple[str, ...] = COMPLETE_COLUMNS,
    ) -> list[tuple[str, str]]:
        """`write` for rows already built (START_COLUMNS, `complete_columns` (project_id
        and id first), and an end's project_id and id then END_COLUMNS): what `store.rows`
        makes of the records, or `store.body_rows` straight from an upload's request body."""
        with self._transaction() as conn:
            if start_rows:
                conn.executemany(*upsert("calls", START_COLUMNS, CALL_KEY, start_rows))
            if complete_rows:
                conn.executemany(*upsert("calls", complete_columns, CALL_KEY, complete_rows))
            if end_rows:
                self._write_ends(conn, end_rows)
            if (start_rows or complete_rows) and conn.execute(
                "SELECT 1 FROM pending_ends LIMIT 1"
            ).fetchone():
                for project, ids in _by_project((r[0], r[1]) for r in start_rows):
                    conn.execute(SQL_MERGE, (project, ids))
                keys = [(r[0], r[1]) for r in (*start_rows, *complete_rows)]
                for project, ids in _by_project(keys):
                    conn.execute(SQL_UNPEND, (project, ids))
        return [(r[1], r[2]) for r in start_rows]

    @staticmethod
    def _write_ends(conn: sqlite3.Connection, end_rows: Sequence[tuple[Any, ...]]) -> None:
        keys = [(r[0], r[1]) for r in end_rows]
        existing: set[tuple[str, str]] = set()
        for project, ids in _by_project(keys):
            existing.update((project, r[0]) for r in conn.execute(SQL_EXISTING, (project, ids)))
        update = [(*r[2:], *k) for k, r in zip(keys, end_rows, strict=True) if k in existing]
        pend = [r for k, r in zip(keys, end_rows, strict=True) if k not in existing]
        if update:
            conn.executemany(SQL_END, update)
        if pend:
            conn.executemany(*upsert("pending_ends", PEND_COLUMNS, CALL_KEY, pend))

    def call_start(self, start: Mapping[str, Any]) -> dict[str, str]:
        """`POST /call/start`: returns {id, trace_id} like CallStartRes."""
        ((call_id, trace_id),) = self.write(starts=[start])
        return {"id": call_id, "trace_id": trace_id}

    def call_end(self, end: Mapping[str, Any]) -> dict[str, Any]:
        """`POST /call/end`: returns {} like CallEndRes."""
        self.write(ends=[end])
        return {}

    def calls_complete(self, calls: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """`POST /v2/{entity}/{project}/calls/complete`: returns {}."""
        self.write(completes=calls)
        return {}

    def upsert_batch(self, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """`POST /call/upsert_batch` items `{mode, req: {start|end}}` → the `res` list."""
        starts: list[Mapping[str, Any]] = []
        ends: list[Mapping[str, Any]] = []
        kinds: list[str] = []
        for i, item in enumerate(items):
            mode = item.get("mode")
            req = item.get("req") or {}
            if mode not in ("start", "end") or not isinstance(req.get(mode), Mapping):
                raise StoreError(f"batch item {i}: needs mode 'start' or 'end' and req.{mode}", 1)
            (starts if mode == "start" else ends).append(req[mode])
            kinds.append(mode)
        started = iter(self.write(starts=starts, ends=ends))
        res: list[dict[str, Any]] = []
        for kind in kinds:
            if kind == "start":
                call_id, trace_id = next(started)
                res.append({"id": call_id, "trace_id": trace_id})
            else:
                res.append({})
        return res

    def set_display_name(self, project_id: str, call_id: str, display_name: str) -> bool:
        """`POST /call/update` (the SDK's `call.set_display_name`); False: no such call."""
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE calls SET display_name = ? WHERE project_id = ? AND id = ?",
                (display_name, project_id, call_id),
            )
        return cur.rowcount > 0

    def delete_calls(self, project_id: str, call_ids: Sequence[str]) -> int:
        """`POST /calls/delete`: the calls and all their descendants are marked deleted and
        leave every query, as on weave's server; answers weave's count (the descendants found
        plus the ids asked for, whether stored or not)."""
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")[:26] + "Z"
        ids = orjson.dumps(list(call_ids)).decode()
        with self._transaction() as conn:
            descendants = [
                r[0]
                for r in conn.execute(
                    "WITH RECURSIVE d(id) AS ("
                    " SELECT id FROM calls WHERE project_id = ?1 AND deleted_at IS NULL"
                    " AND parent_id IN (SELECT value FROM json_each(?2))"
                    " UNION SELECT c.id FROM calls c JOIN d ON c.parent_id = d.id"
                    " WHERE c.project_id = ?1 AND c.deleted_at IS NULL)"
                    " SELECT id FROM d",
                    (project_id, ids),
                )
            ]
            every = orjson.dumps(descendants + list(call_ids)).decode()
            conn.execute(
                "UPDATE calls SET deleted_at = ? WHERE project_id = ? AND deleted_at IS NULL "
                "AND id IN (SELECT value FROM json_each(?))",
                (now, project_id, every),
            )
        return len(descendants) + len(call_ids)

    # -- reads

    def query(
        self,
        project_id: str,
        *,
        columns: Sequence[str] | None = None,
        include_costs: bool = False,
        **selection: Unpack[Selection],
    ) -> Iterator[dict[str, Any]]:
        """Calls of a project as weave's `/calls/stream_query` returns them, streamed.

        The request is checked now (QueryError for what the store cannot answer); rows are
        read lazily, so a large result never sits in memory.
        """
        sql, params = build_select(_SELECT, project_id, **selection)
        wanted = selected_columns(columns, include_costs) or None
        return self._rows(sql, params, wanted)

    def _rows(
        self, sql: str, params: list[Any], wanted: frozenset[str] | None
    ) -> Iterator[dict[str, Any]]:
        with self._reader() as conn:
            cur = conn.execute(sql, params)
            try:
                while rows := cur.fetchmany(256):
                    for row in rows:
                        yield render_call(row, wanted)
            finally:
                cur.close()

    def count(self, project_id: str, **selection: Unpack[Selection]) -> int:
        """Calls stored for a project (ends still waiting for their start are not calls)."""
        if not any(selection.values()):
            sql = "SELECT COUNT(*) FROM calls WHERE project_id = ? AND deleted_at IS NULL"
            params = [project_id]
        else:
            inner, params = build_select("id", project_id, **selection)
            sql = f"SELECT COUNT(*) FROM ({inner})"
        with self._reader() as conn:
            return int(conn.execute(sql, params).fetchone()[0])

    def trace_storage_bytes(self, project_id: str, **selection: Unpack[Selection]) -> int:
        """`include_total_storage_size`, as weave's SQLite server sums it: for each matching
        root call, the stored size of every call of its trace (sizes of this store's text)."""
        inner, params = build_select("trace_id, parent_id", project_id, **selection)
        sql = (
            "SELECT COALESCE(SUM(COALESCE(length(c.attributes), 0) + COALESCE(length(c.inputs), 0)"
            " + COALESCE(length(c.output), 0) + COALESCE(length(c.summary), 0)), 0)"
            f" FROM ({inner}) AS m JOIN calls c ON c.project_id = ? AND c.trace_id = m.trace_id"
            " WHERE m.parent_id IS NULL"
        )
        with self._reader() as conn:
            return int(conn.execute(sql, [*params, project_id]).fetchone()[0])

    def projects(self) -> list[str]:
        """Project ids that hold calls, the most recently active (latest start) first."""
        with self._reader() as conn:
            rows = conn.execute(
                "SELECT project_id FROM calls GROUP BY project_id "
                "ORDER BY MAX(started_at) DESC, project_id"
            ).fetchall()
        return [r[0] for r in rows]

    def pending_ends(self, project_id: str | None = None) -> int:
        """Ends still waiting for their start (all projects when project_id is None)."""
        with self._reader() as conn:
            if project_id is None:
                return int(conn.execute("SELECT COUNT(*) FROM pending_ends").fetchone()[0])
            return int(
                conn.execute(
                    "SELECT COUNT(*) FROM pending_ends WHERE project_id = ?", (project_id,)
                ).fetchone()[0]
            )


def _by_project(keys: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(project_id, id) pairs → [(project_id, JSON list of ids)] for json_each parameters."""
    groups: dict[str, list[str]] = {}
    for project, call_id in keys:
        groups.setdefault(project, []).append(call_id)
    return [(p, orjson.dumps(ids).decode()) for p, ids in groups.items()]
