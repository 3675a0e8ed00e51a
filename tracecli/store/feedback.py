"""Feedback on calls (the weave SDK's `call.feedback`, reactions, notes, scores), kept in the
store's `feedback` table and answered as weave's server answers it: ids are UUID v7, the
payload is stored as sent, and the columns the store does not fill come back empty."""

from __future__ import annotations

import datetime
import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tracecli.store.query import QueryError, _Sql, compile_query, json_field_sql

if TYPE_CHECKING:
    from tracecli.store.db import Store


FEEDBACK_COLUMNS = (
    "id",
    "project_id",
    "weave_ref",
    "wb_user_id",
    "creator",
    "created_at",
    "feedback_type",
    "payload",
    "annotation_ref",
    "runnable_ref",
    "call_ref",
    "trigger_ref",
    "queue_id",
)
# Columns weave's feedback table has that the store does not fill: answered empty.
_FEEDBACK_EMPTY: dict[str, Any] = {
    "scorer_tags": [],
    "scorer_tag_reasons": {},
    "scorer_tag_confidences": {},
    "scorer_ratings": {},
    "scorer_rating_reasons": {},
    "scorer_rating_confidences": {},
}


def uuid7() -> str:
    """A UUID version 7 (time-ordered), the kind of id weave's server gives feedback."""
    ms = int(time.time() * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 64) & 0xFFF) << 64
    value |= (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def feedback_create(store: Store, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`/feedback/create` and `/feedback/batch/create`: answers `{id, created_at,
    wb_user_id, payload}` for each, as weave's server does."""
    rows, answers = [], []
    for item in items:
        now = datetime.datetime.now(datetime.UTC)
        row = {
            "id": item.get("id") or uuid7(),
            "project_id": item["project_id"],
            "weave_ref": item["weave_ref"],
            "wb_user_id": item.get("wb_user_id"),
            "creator": item.get("creator"),
            "created_at": now.isoformat(sep=" "),
            "feedback_type": item["feedback_type"],
            "payload": json.dumps(item.get("payload") or {}),
            **{k: item.get(k) for k in FEEDBACK_COLUMNS[8:]},
        }
        rows.append(tuple(row[c] for c in FEEDBACK_COLUMNS))
        answers.append(
            {
                "id": row["id"],
                "created_at": now.isoformat(timespec="microseconds")[:26] + "Z",
                "wb_user_id": row["wb_user_id"],
                "payload": item.get("payload") or {},
            }
        )
    with store._transaction() as conn:
        conn.executemany(
            f"INSERT OR REPLACE INTO feedback ({', '.join(FEEDBACK_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(FEEDBACK_COLUMNS))})",
            rows,
        )
    return answers


def feedback_field(name: Any, cast: str | None, sql: Any) -> str:
    """A `$getField` of feedback → SQL: its columns, and `payload.<path>` inside the payload."""
    if name in FEEDBACK_COLUMNS and name != "payload":
        return str(name)
    if isinstance(name, str) and name.startswith("payload."):
        return json_field_sql("payload", name[len("payload.") :], cast, sql)
    raise QueryError(f"cannot query feedback on field {name!r}")


def feedback_query(
    store: Store,
    project_id: str,
    *,
    query: Mapping[str, Any] | None = None,
    fields: Sequence[str] | None = None,
    sort_by: Sequence[Mapping[str, Any]] | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> list[dict[str, Any]]:
    """`/feedback/query`: the rows weave's server answers (all its columns, or `fields`)."""
    sql = _Sql()
    where = [f"project_id = {sql.param(project_id)}"]
    if query:
        where.append(compile_query(query, sql, feedback_field))
    order = []
    for item in sort_by or []:
        direction = str(item.get("direction", "asc")).upper()
        if direction not in ("ASC", "DESC"):
            raise QueryError(f"sort direction must be asc or desc, got {item.get('direction')!r}")
        order.append(f"{feedback_field(item.get('field'), None, sql)} {direction}")
    text = f"SELECT {', '.join(FEEDBACK_COLUMNS)} FROM feedback WHERE {' AND '.join(where)}"
    text += f" ORDER BY {', '.join(order)}" if order else " ORDER BY rowid"
    text += f" LIMIT {sql.param(-1 if limit is None else limit)} OFFSET {sql.param(offset or 0)}"
    with store._reader() as conn:
        rows = conn.execute(text, sql.params).fetchall()
    out = []
    for row in rows:
        full = dict(zip(FEEDBACK_COLUMNS, row, strict=True))
        full["payload"] = json.loads(full["payload"])
        full.update({k: type(v)() for k, v in _FEEDBACK_EMPTY.items()})
        out.append({f: full.get(f) for f in fields} if fields else full)
    return out


PURGE_REFUSED = "Can only purge feedback by specifying one or more feedback ids"


def _purge_ids(expr: Any) -> list[str] | None:
    """The ids of weave's only allowed purge: `$eq` on id, or `$or` of such (None: refused)."""
    if not isinstance(expr, Mapping) or len(expr) != 1:
        return None
    ((op, arg),) = expr.items()
    if op == "$or" and isinstance(arg, list):
        ids = [_purge_ids(a) for a in arg]
        return None if any(i is None or len(i) != 1 for i in ids) else [i[0] for i in ids if i]
    if op == "$eq" and isinstance(arg, list) and len(arg) == 2:
        field, literal = arg
        if field == {"$getField": "id"} and isinstance(literal, Mapping):
            value = literal.get("$literal")
            if isinstance(value, str) and len(literal) == 1:
                return [value]
    return None


def feedback_purge(store: Store, project_id: str, query: Mapping[str, Any]) -> None:
    """`/feedback/purge`: only by feedback id, as weave's server allows (else a 400)."""
    ids = _purge_ids(query.get("$expr") if isinstance(query, Mapping) else None)
    if ids is None:
        raise QueryError(PURGE_REFUSED)
    with store._transaction() as conn:
        conn.execute(
            "DELETE FROM feedback WHERE project_id = ? AND id IN (SELECT value FROM json_each(?))",
            (project_id, json.dumps(ids)),
        )


# What weave's server puts in `summary.weave.feedback` for `include_feedback`.
CALL_FEEDBACK_FIELDS = (
    "id",
    "feedback_type",
    "weave_ref",
    "payload",
    "creator",
    "created_at",
    "wb_user_id",
    "runnable_ref",
    "call_ref",
    "trigger_ref",
    "annotation_ref",
    *_FEEDBACK_EMPTY,
)


def feedback_by_call(store: Store, project_id: str) -> dict[str, list[dict[str, Any]]]:
    """The feedback on each call of a project (`weave:///<project>/call/<id>`), by call id,
    oldest first: what `include_feedback` adds to every call."""
    prefix = f"weave:///{project_id}/call/"
    rows = feedback_query(store, project_id, fields=CALL_FEEDBACK_FIELDS)
    by_call: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        ref = row["weave_ref"]
        if isinstance(ref, str) and ref.startswith(prefix):
            by_call.setdefault(ref[len(prefix) :].split("/", 1)[0], []).append(row)
    return by_call
