"""Weave's call-query language → SQL for the embedded store, and stored rows → CallSchema dicts.

`/calls/stream_query` takes a `filter` (lists of ids and names), an optional Mongo-style
`query` (`{"$expr": {"$eq": [{"$getField": "op_name"}, {"$literal": "x"}]}}`), `sort_by`,
`limit`, `offset` and `columns`. This module turns the subset tail, the SDK and the tests use
into one parameterised SQL statement, refusing what it does not understand (`QueryError`)
rather than silently returning the wrong calls. Rows come back shaped exactly as weave's
server returns them (same keys, same order, datetimes as pydantic renders them, and the
derived `summary.weave` block), so a script reading `tail --format json` works on both.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from tracecli.diagnostics import TracecliError


class QueryError(TracecliError):
    """A query the store cannot answer: the server's 400, the CLI's usage error."""

    exit_code = 2


# Columns of the calls table, in the order SELECT returns them (see store.py).
SELECT_COLUMNS = (
    "project_id",
    "id",
    "trace_id",
    "op_name",
    "display_name",
    "parent_id",
    "thread_id",
    "turn_id",
    "started_at",
    "ended_at",
    "attributes",
    "inputs",
    "output",
    "summary",
    "exception",
    "wb_user_id",
    "wb_run_id",
    "wb_run_step",
    "wb_run_step_end",
    "deleted_at",
)
_PLAIN_FIELDS = frozenset(SELECT_COLUMNS)
_JSON_FIELDS = ("inputs", "output", "attributes", "summary")

STATUS_SQL = (
    "(CASE WHEN exception IS NOT NULL THEN 'error' WHEN ended_at IS NULL THEN 'running' "
    "WHEN json_extract(summary, '$.status_counts.error') > 0 THEN 'descendant_error' "
    "ELSE 'success' END)"
)
LATENCY_SQL = (
    "(CASE WHEN ended_at IS NOT NULL THEN "
    "CAST((julianday(ended_at) - julianday(started_at)) * 86400000 AS INTEGER) ELSE 0 END)"
)
_DERIVED = {"summary.weave.status": STATUS_SQL, "summary.weave.latency_ms": LATENCY_SQL}

# CallsFilter keys → column; every one is "column IN (list)".
_FILTER_COLUMNS = {
    "op_names": "op_name",
    "trace_ids": "trace_id",
    "call_ids": "id",
    "parent_ids": "parent_id",
    "thread_ids": "thread_id",
    "turn_ids": "turn_id",
    "wb_run_ids": "wb_run_id",
    "wb_user_ids": "wb_user_id",
}
_UNSUPPORTED_FILTERS = ("input_refs", "output_refs")
_SORT_DIRECTIONS = {"asc": "ASC", "desc": "DESC"}
_CASTS = {"int": "INTEGER", "double": "REAL", "bool": "INTEGER", "string": "TEXT"}


class _Sql:
    """Accumulates a WHERE clause and its parameters."""

    def __init__(self) -> None:
        self.params: list[Any] = []

    def param(self, value: Any) -> str:
        if isinstance(value, bool):
            value = int(value)
        elif value is not None and not isinstance(value, int | float | str):
            raise QueryError(f"query literal must be a string, number, bool or null: {value!r}")
        self.params.append(value)
        return "?"

    def id_list(self, values: Any, key: str) -> str:
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise QueryError(f"filter.{key} must be a list of strings")
        self.params.append(orjson.dumps(values).decode())
        return "(SELECT value FROM json_each(?))"


def json_path(parts: Sequence[str]) -> str:
    """`a.b.0` → `$."a"."b"[0]`: every key quoted so dots and quotes in keys stay keys."""
    out = ["$"]
    for part in parts:
        if part.isdigit():
            out.append(f"[{part}]")
        else:
            out.append('."' + part.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "".join(out)


def _field(name: Any, sql: _Sql) -> str:
    if not isinstance(name, str) or not name:
        raise QueryError(f"$getField needs a field name, got {name!r}")
    if name in _DERIVED:
        return _DERIVED[name]
    if name == "summary.weave.trace_name":
        return "COALESCE(display_name, op_name)"
    if name in _PLAIN_FIELDS:
        return name
    head, _, rest = name.partition(".")
    if head in _JSON_FIELDS and rest:
        return f"json_extract({head}, {sql.param(json_path(rest.split('.')))})"
    raise QueryError(f"cannot query on field {name!r}")


def _operand(node: Any, sql: _Sql) -> str:
    if isinstance(node, Mapping) and len(node) == 1:
        ((op, arg),) = node.items()
        if op == "$getField":
            return _field(arg, sql)
        if op == "$literal":
            return sql.param(arg)
        if op == "$convert":
            if not isinstance(arg, Mapping) or arg.get("to") not in _CASTS:
                raise QueryError(f"$convert needs input and to (one of {', '.join(_CASTS)})")
            return f"CAST({_operand(arg.get('input'), sql)} AS {_CASTS[arg['to']]})"
        return f"({_expr(node, sql)})"
    raise QueryError(f"not a query operand: {node!r}")


def _is_null_literal(node: Any) -> bool:
    return isinstance(node, Mapping) and "$literal" in node and node["$literal"] is None


def _expr(node: Any, sql: _Sql) -> str:
    if not isinstance(node, Mapping) or len(node) != 1:
        raise QueryError(f"not a query expression: {node!r}")
    ((op, arg),) = node.items()
    if op in ("$and", "$or"):
        if not isinstance(arg, list) or not arg:
            raise QueryError(f"{op} needs a non-empty list")
        joiner = " AND " if op == "$and" else " OR "
        return "(" + joiner.join(_expr(a, sql) for a in arg) + ")"
    if op == "$not":
        if not isinstance(arg, list) or len(arg) != 1:
            raise QueryError("$not needs a list of one expression")
        return f"NOT ({_expr(arg[0], sql)})"
    if op in ("$eq", "$gt", "$gte"):
        if not isinstance(arg, list) or len(arg) != 2:
            raise QueryError(f"{op} needs a list of two operands")
        left, right = arg
        if op == "$eq" and (_is_null_literal(left) or _is_null_literal(right)):
            other = right if _is_null_literal(left) else left
            return f"{_operand(other, sql)} IS NULL"
        sym = {"$eq": "=", "$gt": ">", "$gte": ">="}[op]
        return f"{_operand(left, sql)} {sym} {_operand(right, sql)}"
    if op == "$in":
        if not isinstance(arg, list) or len(arg) != 2 or not isinstance(arg[1], list):
            raise QueryError("$in needs [operand, [operands...]]")
        if not arg[1]:
            return "0"
        return f"{_operand(arg[0], sql)} IN ({', '.join(_operand(a, sql) for a in arg[1])})"
    if op == "$contains":
        if not isinstance(arg, Mapping) or "input" not in arg or "substr" not in arg:
            raise QueryError("$contains needs input and substr")
        left, sub = _operand(arg["input"], sql), _operand(arg["substr"], sql)
        if arg.get("case_insensitive"):
            return f"instr(lower({left}), lower({sub})) > 0"
        return f"instr({left}, {sub}) > 0"
    raise QueryError(f"unsupported query operator {op!r}")


def build_select(
    table_columns: str,
    project_id: str,
    *,
    filter: Mapping[str, Any] | None = None,
    query: Mapping[str, Any] | None = None,
    sort_by: Sequence[Mapping[str, Any]] | None = None,
    limit: int | None = None,
    offset: int | None = 0,
) -> tuple[str, list[Any]]:
    """One SELECT over `calls` for a stream_query request; raises QueryError when unsure."""
    sql = _Sql()
    where = [f"project_id = {sql.param(project_id)}"]
    for key, value in (filter or {}).items():
        if value is None:
            continue
        if key in _FILTER_COLUMNS:
            column = _FILTER_COLUMNS[key]
            values = value
            if key == "op_names" and isinstance(value, list):
                exact = [v for v in value if not (isinstance(v, str) and v.endswith(":*"))]
                wild = [v[:-1] for v in value if isinstance(v, str) and v.endswith(":*")]
                parts = [f"op_name IN {sql.id_list(exact, key)}"] if exact else []
                for prefix in wild:
                    esc = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                    parts.append(f"op_name LIKE {sql.param(esc + '%')} ESCAPE '\\'")
                where.append("(" + " OR ".join(parts) + ")" if parts else "0")
                continue
            where.append(f"{column} IN {sql.id_list(values, key)}")
        elif key == "trace_roots_only":
            if value:
                where.append("parent_id IS NULL")
        elif key in _UNSUPPORTED_FILTERS:
            if value:
                raise QueryError(f"filter.{key} is not supported by the embedded store")
        else:
            raise QueryError(f"unknown filter key {key!r}")
    if query:
        if not isinstance(query, Mapping) or set(query) != {"$expr"}:
            raise QueryError('query must be {"$expr": {...}}')
        where.append(_expr(query["$expr"], sql))
    order = []
    for item in sort_by or []:
        if not isinstance(item, Mapping):
            raise QueryError(f"sort_by items are {{field, direction}}, got {item!r}")
        field = item.get("field")
        direction = _SORT_DIRECTIONS.get(str(item.get("direction", "asc")).lower())
        if direction is None:
            raise QueryError(f"sort direction must be asc or desc, got {item.get('direction')!r}")
        order.append(f"{_field(field, sql)} {direction}")
    if not order:
        order.append("started_at ASC")
    fields = [item.get("field") for item in sort_by or [] if isinstance(item, Mapping)]
    if "id" not in fields:
        # weave's tie-break: id in the direction of a trailing started_at, else descending.
        last = order[-1].rsplit(" ", 1)[1]
        order.append("id " + (last if not fields or fields[-1] == "started_at" else "DESC"))
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise QueryError(f"limit must be a non-negative integer, got {limit!r}")
    if offset is not None and (not isinstance(offset, int) or offset < 0):
        raise QueryError(f"offset must be a non-negative integer, got {offset!r}")
    text = (
        f"SELECT {table_columns} FROM calls WHERE {' AND '.join(where)} "
        f"ORDER BY {', '.join(order)} LIMIT {sql.param(-1 if limit is None else limit)} "
        f"OFFSET {sql.param(offset or 0)}"
    )
    return text, sql.params


# ---- rows → CallSchema dicts ----------------------------------------------------------


def render_ts(stored: str | None) -> str | None:
    """Stored `…T10:00:00.000000Z` → pydantic's `…T10:00:00Z`; non-zero micros are kept."""
    if stored is None:
        return None
    return stored[:19] + "Z" if stored.endswith(".000000Z") else stored


def _parse_ts(stored: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(stored)


def _ref_name(op_name: str) -> str | None:
    """`weave:///entity/project/op/name:digest` → `name` (weave's trace_name for op refs)."""
    parts = op_name.split("/")
    if len(parts) >= 7 and parts[5] == "op":
        return parts[6].split(":", 1)[0] or None
    return None


def derive_summary(
    summary: dict[str, Any],
    op_name: str,
    started_at: str | None,
    ended_at: str | None,
    exception: str | None,
    display_name: str | None,
) -> dict[str, Any]:
    """weave's `make_derived_summary_fields`: status, trace_name or display_name, latency_ms."""
    weave = summary.pop("weave", None)
    extra = {
        k: v
        for k, v in (weave.items() if isinstance(weave, dict) else ())
        if k not in ("status", "trace_name", "latency_ms", "display_name")
    }
    if exception:
        status = "error"
    elif ended_at is None:
        status = "running"
    elif _error_count(summary) > 0:
        status = "descendant_error"
    else:
        status = "success"
    derived: dict[str, Any] = {"status": status}
    if not display_name:
        name = _ref_name(op_name) if op_name.startswith("weave:///") else op_name
        if name:
            derived["trace_name"] = name
    if ended_at and started_at:
        delta = _parse_ts(ended_at) - _parse_ts(started_at)
        derived["latency_ms"] = (delta.days * 86400 + delta.seconds) * 1000 + (
            delta.microseconds // 1000
        )
    if display_name:
        derived["display_name"] = display_name
    derived.update(extra)
    summary["weave"] = derived
    return summary


def _error_count(summary: Mapping[str, Any]) -> int:
    counts = summary.get("status_counts")
    value = counts.get("error", 0) if isinstance(counts, Mapping) else 0
    return value if isinstance(value, int | float) else 0


_ALWAYS = frozenset({"id", "project_id", "op_name", "trace_id", "started_at"})


def selected_columns(columns: Sequence[str] | None, include_costs: bool = False) -> frozenset[str]:
    """The stored columns a `columns` request reads, as weave's server picks them: the top
    level of each dotted name (`inputs.query` reads `inputs`), `*_dump` as its column, and
    with `summary` the fields its derived part needs. Empty: every column."""
    if not columns:
        return frozenset()
    picked = set()
    for column in columns:
        top = str(column).split(".")[0]
        picked.add(top[:-5] if top.endswith("_dump") else top)
    if include_costs:
        picked.add("summary")
    if "summary" in picked:
        picked.update(("ended_at", "exception", "display_name"))
    return frozenset(picked | _ALWAYS)


def render_call(row: Sequence[Any], columns: frozenset[str] | None = None) -> dict[str, Any]:
    """A `calls` row (SELECT_COLUMNS order) → the CallSchema dict weave's server returns.

    With `columns` (from selected_columns), unselected fields come back empty as on weave's
    server, and `summary.weave` is derived from what was selected only (no `ended_at`: the
    call reads as running), as weave derives it.
    """
    (
        project_id,
        id_,
        trace_id,
        op_name,
        display_name,
        parent_id,
        thread_id,
        turn_id,
        started_at,
        ended_at,
        attributes,
        inputs,
        output,
        summary,
        exception,
        wb_user_id,
        wb_run_id,
        wb_run_step,
        wb_run_step_end,
        deleted_at,
    ) = row
    if columns:
        ended_at = ended_at if "ended_at" in columns else None
        exception = exception if "exception" in columns else None
        display_name = display_name if "display_name" in columns else None
        summary = summary if "summary" in columns else None
    loaded = orjson.loads(summary) if summary else {}
    call: dict[str, Any] = {
        "id": id_,
        "project_id": project_id,
        "op_name": op_name,
        "display_name": display_name,
        "trace_id": trace_id,
        "parent_id": parent_id,
        "thread_id": thread_id,
        "turn_id": turn_id,
        "started_at": render_ts(started_at),
        "attributes": orjson.loads(attributes) if attributes else {},
        "inputs": orjson.loads(inputs) if inputs else {},
        "ended_at": render_ts(ended_at),
        "exception": exception,
        "output": orjson.loads(output) if output is not None else None,
        "summary": derive_summary(
            loaded if isinstance(loaded, dict) else {},
            op_name,
            started_at,
            ended_at,
            exception,
            display_name,
        ),
        "wb_user_id": wb_user_id,
        "wb_run_id": wb_run_id,
        "wb_run_step": wb_run_step,
        "wb_run_step_end": wb_run_step_end,
        "deleted_at": render_ts(deleted_at),
        "expire_at": None,
        "storage_size_bytes": None,
        "total_storage_size_bytes": None,
    }
    if columns:
        for key in call:
            if key in _ALWAYS or key in columns or key == "summary":
                continue
            if key in ("attributes", "inputs"):
                call[key] = {}
            else:
                call[key] = None
    return call
