"""What the weave SDK publishes beside its calls: objects (ops' code, datasets), tables, files.

`weave.op` publishes each op (an object whose source is a file) before its first call is
sent, and a call whose op could not be published is dropped by the SDK; so `tracecli serve`
keeps these in the store's file too, content-addressed as weave's server does (the digests
are computed the same way, so refs look the same). Only what the SDK needs to log and read
back calls is answered: create and read by digest or `latest`, no tags, aliases or deletes.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import re
import sqlite3
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from tracecli.diagnostics import TracecliError
from tracecli.store.query import QueryError

if TYPE_CHECKING:
    from tracecli.store.db import Store


class NotFound(TracecliError):
    """A ref, object or file the store does not hold (a 404 over HTTP)."""


def bytes_digest(data: bytes) -> str:
    """weave's digest: urlsafe base64 of SHA-256, `-`→X, `_`→Y, no padding."""
    encoded = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()
    return encoded.replace("-", "X").replace("_", "Y").rstrip("=")


def object_digest(val: Any) -> str:
    return bytes_digest(json.dumps(val, sort_keys=True).encode())


def table_digest(row_digests: Sequence[str]) -> str:
    h = hashlib.sha256()
    for d in row_digests:
        h.update(d.encode())
    return h.hexdigest()


def _kind(val: Any) -> str:
    if isinstance(val, Mapping) and val.get("_type") == "CustomWeaveType":
        weave_type = val.get("weave_type")
        if isinstance(weave_type, Mapping) and weave_type.get("type") == "Op":
            return "op"
    return "object"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")[:26] + "Z"


def object_classes(val: Any, builtin: str | None = None) -> tuple[str | None, str | None]:
    """(base_object_class, leaf_object_class) as weave's `get_object_classes` reads them from
    an object's `_bases` and `_class_name` (a weave.Evaluation: Evaluation, Evaluation)."""
    if isinstance(val, Mapping) and isinstance(val.get("_bases"), list):
        bases = val["_bases"]
        if len(bases) >= 2 and bases[-1] == "BaseModel" and bases[-2] in ("BaseObject", "Object"):
            leaf = val.get("_class_name")
            return (bases[-3] if len(bases) > 2 else leaf), leaf
    return builtin, builtin


def obj_create(store: Store, obj: Mapping[str, Any]) -> dict[str, Any]:
    """`/obj/create`: store a version of an object; the same content is the same version."""
    val = obj.get("val")
    digest = object_digest(val)
    project_id, object_id = obj["project_id"], obj["object_id"]
    base, leaf = object_classes(val, obj.get("builtin_object_class"))
    with store._transaction() as conn:
        conn.execute(
            "INSERT INTO objects (project_id, object_id, digest, kind, base_object_class, "
            "leaf_object_class, val, wb_user_id, created_at, version_index) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "(SELECT COUNT(*) FROM objects WHERE project_id = ? AND object_id = ?)) "
            "ON CONFLICT (project_id, object_id, digest) DO NOTHING",
            (
                project_id,
                object_id,
                digest,
                _kind(val),
                base,
                leaf,
                json.dumps(val),
                obj.get("wb_user_id"),
                _now(),
                project_id,
                object_id,
            ),
        )
    return {"digest": digest, "object_id": object_id}


_OBJ_COLUMNS = (
    "object_id, digest, kind, base_object_class, leaf_object_class, val, wb_user_id, "
    "created_at, version_index, version_index = (SELECT MAX(version_index) FROM objects o2 "
    "WHERE o2.project_id = o.project_id AND o2.object_id = o.object_id)"
)


def _obj_row(project_id: str, row: Sequence[Any], metadata_only: bool) -> dict[str, Any]:
    oid, dig, kind, base, leaf, val, user, created, index, latest = row
    return {
        "project_id": project_id,
        "object_id": oid,
        "created_at": created,
        "deleted_at": None,
        "digest": dig,
        "version_index": index,
        "is_latest": int(latest),
        "kind": kind,
        "base_object_class": base,
        "leaf_object_class": leaf or base,
        "val": {} if metadata_only else json.loads(val),
        "wb_user_id": user,
        "size_bytes": len(val),
    }


def obj_read(
    store: Store, project_id: str, object_id: str, digest: str, metadata_only: bool = False
) -> dict[str, Any]:
    """`/obj/read`: one version by digest, `latest` or `vN`; NotFound otherwise."""
    sql = f"SELECT {_OBJ_COLUMNS} FROM objects o WHERE project_id = ? AND object_id = ? "
    params: list[Any] = [project_id, object_id]
    if digest == "latest":
        sql += "ORDER BY version_index DESC LIMIT 1"
    elif digest.startswith("v") and digest[1:].isdigit():
        sql += "AND version_index = ?"
        params.append(int(digest[1:]))
    else:
        sql += "AND digest = ?"
        params.append(digest)
    with store._reader() as conn:
        row = conn.execute(sql, params).fetchone()
    if row is None:
        raise NotFound(f"Obj {object_id}:{digest} not found")
    obj = _obj_row(project_id, row, metadata_only)
    if metadata_only:
        obj["val"] = None
    return obj


_OBJ_FILTER_LISTS = {
    "object_ids": "object_id IN",
    "base_object_classes": "base_object_class IN",
    "exclude_base_object_classes": "base_object_class NOT IN",
    "leaf_object_classes": "COALESCE(leaf_object_class, base_object_class) IN",
}


def objs_query(
    store: Store,
    project_id: str,
    filter: Mapping[str, Any] | None = None,
    *,
    metadata_only: bool = False,
    limit: int | None = None,
    offset: int | None = None,
    sort_by: Sequence[Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """`/objs/query` (the SDK's get_evaluations, list of datasets): object versions by id,
    class, op-ness and latest-only, oldest first, as weave's SQLite server answers them.
    Tags and aliases are not stored, so a filter on them matches nothing."""
    where: list[str] = ["project_id = ?"]
    params: list[Any] = [project_id]
    f = filter or {}
    if f.get("is_op") is not None:
        where.append("kind = 'op'" if f["is_op"] else "kind != 'op'")
    for key, cond in _OBJ_FILTER_LISTS.items():
        if f.get(key):
            where.append(f"{cond} (SELECT value FROM json_each(?))")
            params.append(json.dumps(list(f[key])))
    if f.get("latest_only"):
        where.append(
            "version_index = (SELECT MAX(version_index) FROM objects o2 "
            "WHERE o2.project_id = o.project_id AND o2.object_id = o.object_id)"
        )
    if f.get("tags") or f.get("aliases"):
        where.append("0")
    order = [
        f"{s['field']} {str(s.get('direction')).upper()}"
        for s in sort_by or []
        if s.get("field") in ("object_id", "created_at") and s.get("direction") in ("asc", "desc")
    ]
    sql = f"SELECT {_OBJ_COLUMNS} FROM objects o WHERE {' AND '.join(where)} ORDER BY "
    order = order or ["created_at ASC"]
    sql += ", ".join([*order, "version_index ASC"])
    sql += " LIMIT ? OFFSET ?"
    params += [-1 if limit is None else limit, offset or 0]
    with store._reader() as conn:
        rows = conn.execute(sql, params).fetchall()
    return [_obj_row(project_id, row, metadata_only) for row in rows]


def table_create(store: Store, project_id: str, rows: Sequence[Any]) -> dict[str, Any]:
    """`/table/create`: rows stored by content, the table by its ordered row digests."""
    encoded = [json.dumps(r) for r in rows]
    row_digests = [object_digest(r) for r in rows]
    digest = table_digest(row_digests)
    with store._transaction() as conn:
        conn.executemany(
            "INSERT OR IGNORE INTO table_rows (project_id, digest, val) VALUES (?, ?, ?)",
            [(project_id, d, v) for d, v in zip(row_digests, encoded, strict=True)],
        )
        conn.execute(
            "INSERT OR IGNORE INTO tables (project_id, digest, row_digests) VALUES (?, ?, ?)",
            (project_id, digest, json.dumps(row_digests)),
        )
    return {"digest": digest, "row_digests": row_digests}


def _table_value(conn: sqlite3.Connection, project_id: str, digest: str, column: str) -> Any:
    """`column` (an expression of ours, never the client's) of a stored table; NotFound (a
    404, as weave's server answers) when there is no such table."""
    row = conn.execute(
        f"SELECT {column} FROM tables WHERE project_id = ? AND digest = ?", (project_id, digest)
    ).fetchone()
    if row is None:
        raise NotFound(f"Table {digest} not found")
    return row[0]


class TableQuery(NamedTuple):
    """What `/table/query` asks of a table's rows, in weave's words (every part optional)."""

    row_digests: Sequence[str] | None = None
    sort_by: Sequence[Mapping[str, Any]] | None = None
    limit: int | None = None
    offset: int | None = None


def _table_order(sort_by: Sequence[Mapping[str, Any]] | None) -> tuple[str, list[str]]:
    """weave's ORDER BY of `/table/query`: each field a JSON path into the row's value
    (`a.b` → `$.a.b`), else the table's own order; QueryError (a 400) for weave's refusals."""
    if not sort_by:
        return "ORDER BY ordered.original_order", []
    parts, params = [], []
    for sort in sort_by:
        field, direction = str(sort.get("field", "")), str(sort.get("direction", "asc"))
        if not field.strip():
            raise QueryError("Sort field cannot be empty")
        if field.startswith(".") or field.endswith(".") or ".." in field:
            raise QueryError(
                f"Invalid sort field '{field}': field names cannot start/end with dots or "
                "contain consecutive dots"
            )
        if any(not part.strip() for part in field.split(".")):
            raise QueryError(f"Invalid sort field '{field}': field path components cannot be empty")
        if direction.lower() not in ("asc", "desc"):
            raise QueryError(f"Invalid sort direction: {direction}")
        parts.append(f"json_extract(tr.val, ?) {direction.upper()}")
        params.append("$." + field)
    return "ORDER BY " + ", ".join(parts), params


def table_rows(
    store: Store, project_id: str, digest: str, query: TableQuery = TableQuery()
) -> list[dict[str, Any]]:
    """`/table/query` as weave's SQLite server answers it: the rows of a table (each with
    its digest and `original_index`, its place in the table; a row stored twice is there
    twice), only those of `row_digests` when given, in the table's order or `sort_by`'s."""
    order, params = _table_order(query.sort_by)
    where = ""
    if query.row_digests:
        where = "WHERE tr.digest IN (SELECT value FROM json_each(?))"
        params = [json.dumps(list(query.row_digests)), *params]
    sql = (
        "WITH ordered AS (SELECT json_each.value AS digest, CAST(json_each.key AS INTEGER)"
        " AS original_order FROM tables, json_each(tables.row_digests)"
        " WHERE tables.project_id = ? AND tables.digest = ?)"
        " SELECT tr.digest, tr.val, ordered.original_order FROM ordered"
        " JOIN table_rows tr ON tr.project_id = ? AND tr.digest = ordered.digest"
        f" {where} {order} LIMIT ? OFFSET ?"
    )
    limit = -1 if query.limit is None else query.limit
    with store._reader() as conn:
        _table_value(conn, project_id, digest, "1")  # NotFound for no such table
        rows = conn.execute(
            sql, [project_id, digest, project_id, *params, limit, query.offset or 0]
        ).fetchall()
    return [{"digest": d, "val": json.loads(v), "original_index": i} for d, v, i in rows]


def table_row_count(store: Store, project_id: str, digest: str) -> int:
    """`/table/query_stats` (the SDK's len(dataset.rows)): a table's row count."""
    with store._reader() as conn:
        return int(_table_value(conn, project_id, digest, "json_array_length(row_digests)"))


def file_create(store: Store, project_id: str, content: bytes) -> dict[str, Any]:
    digest = bytes_digest(content)
    with store._transaction() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO files (project_id, digest, val) VALUES (?, ?, ?)",
            (project_id, digest, content),
        )
    return {"digest": digest}


def file_content(store: Store, project_id: str, digest: str) -> bytes:
    with store._reader() as conn:
        row = conn.execute(
            "SELECT val FROM files WHERE project_id = ? AND digest = ?", (project_id, digest)
        ).fetchone()
    if row is None:
        raise NotFound(f"File {digest} not found")
    return bytes(row[0])


_TABLE_REF = re.compile(r"weave:///([^/]+/[^/]+)/table/([^/]+)\Z")


def _table_row(store: Store, project_id: str, row_digest: str) -> Any:
    """A row of a table by its digest: what a ref's `id` part names (a Dataset row), read
    as weave's server reads it (the project's row of that digest)."""
    with store._reader() as conn:
        row = conn.execute(
            "SELECT val FROM table_rows WHERE project_id = ? AND digest = ?",
            (project_id, row_digest),
        ).fetchone()
    if row is None:
        raise NotFound(f"Row {row_digest} not found")
    return json.loads(row[0])


def refs_read_batch(store: Store, refs: Sequence[str]) -> list[Any]:
    """`/refs/read_batch`: the values of object and op refs (`weave:///e/p/object/name:digest`,
    extra path parts walk into the value, an `id` part into the table a value names: a
    Dataset's row); a ref the store cannot resolve is NotFound."""
    return [_read_ref(store, ref) for ref in refs]


def _read_ref(store: Store, ref: str) -> Any:
    if not ref.startswith("weave:///"):
        raise NotFound(f"Invalid ref {ref!r}")
    parts = ref[len("weave:///") :].split("/")
    if len(parts) < 4 or parts[2] not in ("object", "op"):
        raise NotFound(f"Cannot read ref {ref!r}: only object and op refs are stored")
    project_id = f"{parts[0]}/{parts[1]}"
    name, _, digest = parts[3].partition(":")
    value = obj_read(store, project_id, name, digest or "latest")["val"]
    extra = parts[4:]
    for kind, key in zip(extra[::2], extra[1::2], strict=False):
        if kind in ("key", "attr") and isinstance(value, Mapping) and key in value:
            value = value[key]
        elif kind == "index" and isinstance(value, list) and key.isdigit():
            value = value[int(key)]
        elif kind == "id" and isinstance(value, str) and (table := _TABLE_REF.match(value)):
            value = _table_row(store, table.group(1), key)
        else:
            raise NotFound(f"Cannot read ref {ref!r}: no {kind} {key!r}")
    return value
