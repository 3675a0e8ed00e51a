"""Weave's call-query language → SQL for the embedded store.

`/calls/stream_query` takes a `filter` (lists of ids and names), an optional Mongo-style
`query` (`{"$expr": {"$eq": [{"$getField": "op_name"}, {"$literal": "x"}]}}`), `sort_by`,
`limit`, `offset` and `columns`. This module turns the subset tail, the SDK and the tests use
into one parameterised SQL statement, refusing what it does not understand (`QueryError`)
rather than silently returning the wrong calls. The rows it selects become CallSchema dicts
in `tracecli.store.render`; JSON is read and written by `tracecli.store.exact_json`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict, Unpack

import orjson

from tracecli.diagnostics import TracecliError
from tracecli.store.tables import CALL_COLUMNS


class QueryError(TracecliError):
    """A query the store cannot answer: the server's 400, the CLI's usage error."""

    exit_code = 2


_PLAIN_FIELDS = frozenset(CALL_COLUMNS) - {"otel_dump"}
_JSON_FIELDS = ("inputs", "output", "attributes", "summary")

STATUS_SQL = (
    "(CASE WHEN exception IS NOT NULL THEN 'error' WHEN ended_at IS NULL THEN 'running' "
    "WHEN json_extract(summary, '$.status_counts.error') > 0 THEN 'descendant_error' "
    "ELSE 'success' END)"
)
# Unrounded, as weave's SQLite server compares and sorts it (the rendered value is rounded).
LATENCY_SQL = (
    "(CASE WHEN ended_at IS NOT NULL THEN "
    "CAST((julianday(ended_at) - julianday(started_at)) * 86400000 AS FLOAT) ELSE 0 END)"
)

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
# The filters with an index of their own (store/tables.py): the primary key (project_id, id),
# calls_project_trace and calls_project_parent. A non-empty list of ids picks a few calls;
# see `build_select` for how that steers the plan. (thread, turn and run ids have no index:
# their filters are tested on the rows the started_at walk reads, as before.)
_INDEXED_FILTERS = frozenset({"call_ids", "trace_ids", "parent_ids"})
_UNSUPPORTED_FILTERS = ("input_refs", "output_refs")
_SORT_DIRECTIONS = {"asc": "ASC", "desc": "DESC"}
# `$convert` targets and the inferred casts of comparisons, as weave's SQLite server names them.
_CASTS = {"int": "INT", "double": "FLOAT", "bool": "BOOL", "string": "TEXT"}
_INT64 = (-(2**63), 2**63)


class _Sql:
    """Accumulates a WHERE clause and its parameters."""

    def __init__(self) -> None:
        self.params: list[Any] = []

    def param(self, value: Any) -> str:
        if isinstance(value, bool):
            value = int(value)  # weave writes `true`, which SQLite reads as 1
        elif isinstance(value, int) and not _INT64[0] <= value < _INT64[1]:
            value = float(value)  # SQLite reads such a literal as a real, as weave's does
        elif value is not None and not isinstance(value, int | float | str):
            raise QueryError(f"query literal must be a string, number, bool or null: {value!r}")
        self.params.append(value)
        return "?"

    def id_list(self, values: Any, key: str) -> str:
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise QueryError(f"filter.{key} must be a list of strings")
        self.params.append(orjson.dumps(values).decode())
        return "(SELECT value FROM json_each(?))"


def split_field(path: str) -> list[str]:
    r"""`a.b\.c` → `["a", "b.c"]`: dots split, backslash-escaped dots stay (weave's rule)."""
    return [p.replace("\\.", ".") for p in re.split(r"(?<!\\)\.", path)]


def json_path(parts: Sequence[str]) -> str:
    """`a.b.0` → `$."a"."b"[0]`, as weave's `quote_json_path` writes it."""
    out = ["$"]
    for part in parts:
        try:
            int(part)
            out.append(f"[{part}]")
        except ValueError:
            out.append('."' + part + '"')
    return "".join(out)


def _inferred_json_cast(extract: str, json_type: str, cast: str) -> str:
    """weave's `_sqlite_inferred_json_cast_sql`: a JSON value read as the literal's type, NULL
    where it is not one (never SQLite's 0 for text or objects)."""
    sql_type = _CASTS[cast]
    cast_sql = f"CAST({extract} AS {sql_type})"
    text = f"CAST({extract} AS TEXT)"
    digits = f"replace({text}, '.', '')"
    base = f"({text} != '' AND {digits} != '' AND {digits} NOT GLOB '*[^0-9]*'"
    if cast == "double":
        plain = f"{base} AND (length({text}) - length({digits})) <= 1)"
        return (
            f"CASE WHEN {json_type} IN ('integer', 'real') THEN {cast_sql} "
            f"WHEN {json_type} = 'text' AND {plain} THEN {cast_sql} ELSE NULL END"
        )
    plain = f"{base} AND {digits} = {text})"
    if cast == "int":
        return (
            f"CASE WHEN {json_type} = 'integer' THEN {cast_sql} "
            f"WHEN {json_type} = 'text' AND {plain} THEN {cast_sql} ELSE NULL END"
        )
    lowered = f"lower(trim({text}))"
    return (
        f"CASE WHEN {json_type} = 'true' THEN 1 WHEN {json_type} = 'false' THEN 0 "
        f"WHEN {json_type} = 'integer' THEN {cast_sql} "
        f"WHEN {json_type} = 'text' AND {lowered} = 'true' THEN 1 "
        f"WHEN {json_type} = 'text' AND {lowered} = 'false' THEN 0 "
        f"WHEN {json_type} = 'text' AND {plain} THEN {cast_sql} ELSE NULL END"
    )


def json_field_sql(column: str, path: str, cast: str | None, sql: _Sql) -> str:
    """A JSON column's value at a dotted path, as weave's SQLite server compares it: as text
    (so `inputs.x = "3"` matches the number 3 too), or cast to a number/bool when the other
    side of the comparison is a number/bool literal."""
    # The path is written into the SQL as a string literal (quotes doubled), not bound: the
    # CASE below repeats it, and a literal keeps the positional parameters in step.
    where = "'" + (json_path(split_field(path)) if path else "$").replace("'", "''") + "'"
    extract = f"json_extract({column}, {where})"
    if cast is None:
        return f"CAST({extract} AS TEXT)"
    return _inferred_json_cast(extract, f"json_type({column}, {where})", cast)


FieldSql = Callable[[str, "str | None", _Sql], str]

# The fields weave derives from the columns, queried and sorted on as its server does.
_DERIVED: dict[str, str] = {
    "summary.weave.latency_ms": LATENCY_SQL,
    "summary.weave.status": STATUS_SQL,
}
# weave's trace name: the display name, else for an op ref (`weave:///e/p/op/name:digest`, which
# weave's server keeps in its internal ref form) the name between the last `/` and the `:`
# after it, else op_name. SQLite has no reverse(): rtrim with every character but `/` cuts
# the ref back to its last `/`.
_REF_TAIL = "substr(op_name, length(rtrim(op_name, replace(op_name, '/', ''))) + 1)"
TRACE_NAME_SQL = (
    "(CASE WHEN display_name IS NOT NULL AND display_name != '' THEN display_name "
    "WHEN substr(op_name, 1, 9) = 'weave:///' "
    f"THEN substr({_REF_TAIL}, 1, instr({_REF_TAIL}, ':') - 1) ELSE op_name END)"
)
_SORT_DERIVED = {**_DERIVED, "summary.weave.trace_name": TRACE_NAME_SQL}


def _field_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise QueryError(f"{where} needs a field name, got {name!r}")
    return name


def call_field(name: Any, cast: str | None, sql: _Sql) -> str:
    """A `$getField` of a call → SQL, as weave's `_transform_external_calls_field_to_internal_
    calls_field` (derived status and latency; JSON columns by path; plain columns as they are)."""
    field = _field_name(name, "$getField")
    if field in _DERIVED:
        return _DERIVED[field]
    head, dot, rest = field.partition(".")
    if head in _JSON_FIELDS:
        return json_field_sql(head, rest, cast, sql)
    if field in _PLAIN_FIELDS and not dot:
        return field
    if field.startswith("feedback."):
        raise QueryError("feedback fields are not supported in call queries by tracecli serve")
    raise QueryError(f"cannot query on field {field!r}")


def _literal_cast(node: Any) -> str | None:
    """weave's `infer_literal_filter_cast`: a bool, int or float literal casts the field."""
    if not (isinstance(node, Mapping) and len(node) == 1 and "$literal" in node):
        return None
    value = node["$literal"]
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    return None


def _shared_cast(nodes: Sequence[Any]) -> str | None:
    casts = set()
    for node in nodes:
        cast = _literal_cast(node)
        if cast is None:
            return None
        casts.add(cast)
    if casts == {"int", "double"}:
        return "double"
    return casts.pop() if len(casts) == 1 else None


def _is_field(node: Any) -> bool:
    return isinstance(node, Mapping) and len(node) == 1 and "$getField" in node


class _Compiler:
    """weave's Mongo-style `$expr` → one SQL condition, over the fields `field` resolves."""

    def __init__(self, sql: _Sql, field: FieldSql) -> None:
        self.sql, self.field = sql, field

    def operand(self, node: Any, cast: str | None = None) -> str:
        if isinstance(node, Mapping) and len(node) == 1:
            ((op, arg),) = node.items()
            if op == "$getField":
                return self.field(arg, cast, self.sql)
            if op == "$literal":
                return self.sql.param(arg)
            if op == "$convert":
                if not isinstance(arg, Mapping) or "input" not in arg:
                    raise QueryError(f"$convert needs input and to (one of {', '.join(_CASTS)})")
                if arg.get("to") not in _CASTS:  # `exists`, which weave's model takes
                    raise QueryError(f"Unknown cast: {arg.get('to')}")
                return f"CAST({self.operand(arg.get('input'))} AS {_CASTS[arg['to']]})"
            return self.expr(node)
        raise QueryError(f"not a query operand: {node!r}")

    def _pair(self, arg: Any, op: str) -> tuple[str, str]:
        if not isinstance(arg, list) or len(arg) != 2:
            raise QueryError(f"{op} needs a list of two operands")
        left, right = arg
        return self.operand(left, _literal_cast(right)), self.operand(right, _literal_cast(left))

    def expr(self, node: Any) -> str:
        if not isinstance(node, Mapping) or len(node) != 1:
            raise QueryError(f"not a query expression: {node!r}")
        ((op, arg),) = node.items()
        if op in ("$and", "$or"):
            if not isinstance(arg, list):
                raise QueryError(f"{op} needs a list")
            if not arg:  # in weave's words
                raise QueryError(f"Empty {op[1:].upper()} operation")
            if len(arg) == 1:
                return self.operand(arg[0])
            joiner = " AND " if op == "$and" else " OR "
            return "(" + joiner.join(self.operand(a) for a in arg) + ")"
        if op == "$not":
            if not isinstance(arg, list) or len(arg) != 1:
                raise QueryError("$not needs a list of one expression")
            return f"(NOT ({self.operand(arg[0])}))"
        if op == "$eq":
            if not isinstance(arg, list) or len(arg) != 2:
                raise QueryError("$eq needs a list of two operands")
            if isinstance(arg[1], Mapping) and arg[1] == {"$literal": None}:
                return f"({self.operand(arg[0])} IS NULL)"
            left, right = self._pair(arg, op)
            return f"({left} = {right})"
        if op in _COMPARE:
            left, right = self._pair(arg, op)
            return f"({left} {_COMPARE[op]} {right})"
        if op == "$in":
            if not isinstance(arg, list) or len(arg) != 2 or not isinstance(arg[1], list):
                raise QueryError("$in needs [operand, [operands...]]")
            left = self.operand(arg[0], _shared_cast(arg[1]) if _is_field(arg[0]) else None)
            return f"({left} IN ({', '.join(self.operand(a) for a in arg[1])}))"
        if op == "$contains":
            if not isinstance(arg, Mapping) or "input" not in arg or "substr" not in arg:
                raise QueryError("$contains needs input and substr")
            left, sub = self.operand(arg["input"]), self.operand(arg["substr"])
            if arg.get("case_insensitive"):
                left, sub = f"LOWER({left})", f"LOWER({sub})"
            return f"instr({left}, {sub})"
        raise QueryError(f"unsupported query operator {op!r}")


_COMPARE = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def compile_query(query: Any, sql: _Sql, field: FieldSql) -> str:
    """`{"$expr": ...}` → a SQL condition; QueryError for what is not weave's query language."""
    if not isinstance(query, Mapping) or set(query) != {"$expr"}:
        raise QueryError('query must be {"$expr": {...}}')
    return _Compiler(sql, field).expr(query["$expr"])


def _sort_field(name: Any, sql: _Sql) -> str:
    """A sort_by field → SQL as weave's SQLite server sorts: JSON values uncast, latency as
    a float, status derived."""
    field = _field_name(name, "sort_by")
    if field in _SORT_DERIVED:
        return _SORT_DERIVED[field]
    head, dot, rest = field.partition(".")
    if head in _JSON_FIELDS and dot:
        return f"json_extract({head}, {sql.param(json_path(split_field(rest)))})"
    if field in _PLAIN_FIELDS:
        return field
    raise QueryError(f"cannot sort on field {field!r}")


class Selection(TypedDict, total=False):
    """Which calls of a project a query picks, in the words of weave's `/calls/stream_query`
    (every key optional): the store turns it into SQL here, `tail` sends it to a server."""

    filter: Mapping[str, Any] | None
    query: Mapping[str, Any] | None
    sort_by: Sequence[Mapping[str, Any]] | None
    limit: int | None
    offset: int | None


def _filter_terms(filter: Mapping[str, Any] | None, sql: _Sql) -> tuple[list[str], bool]:
    """A CallsFilter's conditions, as weave's server applies them, and whether one of them
    names ids with an index of their own (see `build_select`)."""
    where: list[str] = []
    by_id_index = roots_only = False
    for key, value in (filter or {}).items():
        if value is None:
            continue
        if key in _FILTER_COLUMNS:
            column = _FILTER_COLUMNS[key]
            if isinstance(value, list) and not value and key != "thread_ids":
                continue  # weave's server skips an empty list (but not thread_ids)
            if key == "op_names" and isinstance(value, list):
                # weave's server: `name:*` → LIKE 'name%' (the colon dropped, no escaping)
                exact = [v for v in value if not (isinstance(v, str) and v.endswith(":*"))]
                wild = [v[:-2] for v in value if isinstance(v, str) and v.endswith(":*")]
                parts = [f"op_name IN {sql.id_list(exact, key)}"] if exact else []
                parts += [f"op_name LIKE {sql.param(prefix + '%')}" for prefix in wild]
                where.append("(" + " OR ".join(parts) + ")")
                continue
            where.append(f"{column} IN {sql.id_list(value, key)}")
            by_id_index |= key in _INDEXED_FILTERS
        elif key == "trace_roots_only":
            roots_only = bool(value)
        elif key in _UNSUPPORTED_FILTERS:
            if value:
                raise QueryError(f"filter.{key} is not supported by the embedded store")
        else:
            raise QueryError(f"unknown filter key {key!r}")
    if roots_only:
        # `IS NULL` is an equality to SQLite: it would take calls_project_parent for it (every
        # root of the project) over the ids' own index.
        where.append(("+" if by_id_index else "") + "parent_id IS NULL")
    return where, by_id_index


def build_select(
    table_columns: str, project_id: str, **selection: Unpack[Selection]
) -> tuple[str, list[Any]]:
    """One SELECT over `calls` for a stream_query request, answering as weave's SQLite server
    does (deleted calls left out, an empty id list ignored, `limit: 0` meaning no limit);
    raises QueryError when unsure.

    The plan: SQLite (no ANALYZE statistics) prefers walking calls_project_started, which
    hands rows over in started_at order with no sort, to any index that would need one; so a
    query for one trace read every call of the project (55 ms of CPU on 200k calls). When
    the filter names call, trace or parent ids (`_INDEXED_FILTERS`: each has an index), the
    ORDER BY terms, the roots-only condition and the Mongo-style query are written behind a
    unary `+`: the same values and order, but no index can serve them, so the id filters are
    all the planner can SEARCH by; it reads the few rows they name and sorts them (0.1 ms).
    Unfiltered and broad queries (op names, roots only, threads, runs, a query) keep the
    started_at walk, which stops after `limit` rows. A `+` rather than `INDEXED BY`: no index
    is named in the SQL, and with several id filters SQLite still picks among their indexes.
    tests/test_store_plans.py checks the plan of each read with EXPLAIN QUERY PLAN.
    """
    filter, query = selection.get("filter"), selection.get("query")
    sort_by, limit, offset = (
        selection.get("sort_by"),
        selection.get("limit"),
        selection.get("offset"),
    )
    sql = _Sql()
    where = [f"project_id = {sql.param(project_id)}", "deleted_at IS NULL"]
    terms, by_id_index = _filter_terms(filter, sql)
    where += terms
    steer = "+" if by_id_index else ""
    if query:
        condition = compile_query(query, sql, call_field)
        where.append(f"+({condition})" if by_id_index else condition)
    order = []
    for item in sort_by or []:
        if not isinstance(item, Mapping):
            raise QueryError(f"sort_by items are {{field, direction}}, got {item!r}")
        direction = _SORT_DIRECTIONS.get(str(item.get("direction", "asc")).lower())
        if direction is None:
            raise QueryError(f"sort direction must be asc or desc, got {item.get('direction')!r}")
        order.append(f"{_sort_field(item.get('field'), sql)} {direction}")
    if sort_by is None:
        order = ["started_at ASC", "id ASC"]
    elif order:
        fields = [item.get("field") for item in sort_by]
        if "id" not in fields:
            # weave's tie-break: id in the direction of a trailing started_at, else descending.
            last = order[-1].rsplit(" ", 1)[1]
            order.append("id " + (last if fields[-1] == "started_at" else "DESC"))
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise QueryError(f"limit must be a non-negative integer, got {limit!r}")
    if offset is not None and (not isinstance(offset, int) or offset < 0):
        raise QueryError(f"offset must be a non-negative integer, got {offset!r}")
    text = f"SELECT {table_columns} FROM calls WHERE {' AND '.join(where)}"
    if order:
        text += f" ORDER BY {', '.join(steer + term for term in order)}"
    text += f" LIMIT {sql.param(limit or -1)} OFFSET {sql.param(offset or 0)}"
    return text, sql.params
