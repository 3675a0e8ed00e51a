"""Stored rows → the CallSchema dicts weave's server returns: the same keys in the same
order, datetimes as pydantic renders them, and the derived `summary.weave` block, so a script
reading `tail --format json` works on both."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from tracecli.store.exact_json import loads_exact


def render_ts(stored: str | None) -> str | None:
    """Stored `…T10:00:00.000000Z` → pydantic's `…T10:00:00Z`; non-zero micros are kept."""
    if stored is None:
        return None
    return stored[:19] + "Z" if stored.endswith(".000000Z") else stored


def _parse_ts(stored: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(stored)


def _ref_name(op_name: str) -> str | None:
    """`weave:///entity/project/op/name:digest` → `name`: weave's trace_name for an op or
    object ref (other refs, a call's or a table's, give none)."""
    parts = op_name.split("/")
    if len(parts) >= 7 and parts[5] in ("op", "object"):
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
        # an op ref names its op; any other op_name is the name, even an empty one
        name = _ref_name(op_name) if op_name.startswith("weave:///") else op_name
        if name is not None:
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


def _error_count(summary: Mapping[str, Any]) -> float:
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
    """A `calls` row (tables.CALL_COLUMNS order) → the CallSchema dict weave's server returns.

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
        attributes,
        inputs,
        otel_dump,
        wb_user_id,
        wb_run_id,
        wb_run_step,
        ended_at,
        exception,
        output,
        summary,
        wb_run_step_end,
        deleted_at,
    ) = row
    if columns:
        ended_at = ended_at if "ended_at" in columns else None
        exception = exception if "exception" in columns else None
        display_name = display_name if "display_name" in columns else None
        summary = summary if "summary" in columns else None
    loaded = loads_exact(summary) if summary else {}
    display_name = display_name or None  # weave's server reads "" back as null
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
        "attributes": loads_exact(attributes) if attributes else {},
        "inputs": loads_exact(inputs) if inputs else {},
        "ended_at": render_ts(ended_at),
        "exception": exception,
        "output": loads_exact(output) if output is not None else None,
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
        _blank_unselected(call, columns)
    if otel_dump:
        # weave's server keeps a call's otel_dump and answers it as attributes.otel_span
        # (whatever columns were asked for).
        if not isinstance(call["attributes"], dict):
            call["attributes"] = {}
        call["attributes"]["otel_span"] = loads_exact(otel_dump)
    return call


def _blank_unselected(call: dict[str, Any], columns: frozenset[str]) -> None:
    """Empty the fields that were not selected, as weave's server answers them."""
    for key in call:
        if key in _ALWAYS or key in columns or key == "summary":
            continue
        call[key] = {} if key in ("attributes", "inputs") else None
