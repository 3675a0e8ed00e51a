"""A decoded span → the Weave completed call that weave's server stores for it.

This is weave's `Span.to_call` (weave 0.52.42, `trace_server/opentelemetry/python_spans.py`)
written for tracecli, step for step, so that uploading the result through `calls/complete`
stores what posting the span to `/otel/v1/traces` stores. Where weave's server would fail
on a span (a 500 for the whole request), `MappingError` says why instead.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any, NamedTuple

from tracecli.otel.deep_text import DeepText, deep_text
from tracecli.otel.nesting import to_json_serializable
from tracecli.otel.spans import STATUS_ERROR, Span
from tracecli.otel.weave_keys import (
    ATTRIBUTE_KEYS,
    INPUT_KEYS,
    OUTPUT_KEYS,
    SPAN_OVERRIDES,
    USAGE_KEYS,
    WB_KEYS,
    iso_from_ns,
    picks,
    with_total,
)
from tracecli.weave_usage import USAGE_FIELDS  # the usage fields weave writes for every call

_GROUPS = (USAGE_KEYS, INPUT_KEYS, OUTPUT_KEYS, ATTRIBUTE_KEYS, WB_KEYS, SPAN_OVERRIDES)

MAX_OP_NAME_LENGTH = 128
MAX_DISPLAY_NAME_LENGTH = 1024
_DELIMITERS = (",", ";", "|", " ", "/", "?", ".")
_SPLIT = re.compile("(" + "|".join(map(re.escape, _DELIMITERS)) + ")")


class MappingError(ValueError):
    """A span weave's server cannot turn into a call (it fails the request)."""

    def field(self, where: str) -> str:
        """The field path it names, the span's being `where`."""
        return where


class DeepError(MappingError):
    """A call nested past what weave's server stores (JSON text an attribute holds)."""

    def __init__(self, found: DeepText) -> None:
        super().__init__(found.message())
        self.found = found

    def field(self, where: str) -> str:
        return self.found.at(where)


def shorten_name(
    name: str, max_len: int, abbrv: str = "...", use_delimiter_in_abbr: bool = True
) -> str:
    """Weave's `shorten_name`: cut at a delimiter where it can, end with `abbrv`."""
    if len(name) <= max_len:
        return name
    parts = [p for p in _SPLIT.split(name) if p != ""] or [name]
    if len(parts) <= 1:
        return name[: max_len - len(abbrv)] + abbrv
    short = parts[0]
    if len(short) > max_len - len(abbrv):
        return short[: max_len - len(abbrv)] + abbrv
    i = 1
    while i < len(parts):
        delimiter = ""
        while parts[i] in _DELIMITERS:
            delimiter += parts[i]
            i += 1
            if i == len(parts):  # weave's loop runs off the end here (an IndexError)
                raise MappingError(f"name {name[:40]!r}... ends with a delimiter: weave fails")
        nxt = delimiter + parts[i]
        if not abbrv:
            tail = ""
        elif abbrv.startswith(delimiter) or not use_delimiter_in_abbr:
            tail = abbrv
        else:
            tail = delimiter + abbrv
        if len(short) + len(nxt) >= max_len - len(tail):
            short += tail
            break
        short += nxt
        i += 1
    return short


def op_name_of(name: str) -> str:
    """Span names of 128+ characters: shortened, with 4 hex digits of their SHA-256."""
    if len(name) < MAX_OP_NAME_LENGTH:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:4]
    return shorten_name(name, MAX_OP_NAME_LENGTH, abbrv=f":{digest}", use_delimiter_in_abbr=False)


def _inputs(picked: dict[str, Any]) -> dict[str, Any]:
    inputs = picked or {}
    if len(inputs) == 1:
        nested = inputs.get("inputs") or inputs.get("input")
        if isinstance(nested, dict) and all(type(k) is str for k in nested):
            inputs = to_json_serializable(nested)
    return inputs


def _output(picked: dict[str, Any]) -> Any:
    outputs: Any = picked or {}
    if len(outputs) == 1:
        nested = outputs.get("outputs") or outputs.get("output")
        if nested is not None:
            outputs = to_json_serializable(nested)
    return outputs


def _has_output(outputs: Any) -> bool:
    if isinstance(outputs, int):
        return True
    try:
        return len(outputs) > 0
    except TypeError:
        raise MappingError(f"output is a {type(outputs).__name__}: weave fails on it") from None


_NO_USAGE = dict.fromkeys(USAGE_FIELDS)


def _usage_row(usage: dict[str, Any]) -> dict[str, Any]:
    if not usage:
        return _NO_USAGE.copy()  # most spans: no token counts
    row = {name: usage.get(name) for name in USAGE_FIELDS}
    for name, value in row.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise MappingError(f"usage {name} is {value!r}, not an integer: weave fails on it")
    return row


def _model(attributes: dict[str, Any]) -> Any:
    model = attributes.get("model")
    if not model:
        parameters = attributes.get("model_parameters")
        if parameters:
            if not isinstance(parameters, dict):
                raise MappingError("model parameters are not an object: weave fails on them")
            model = parameters.get("model")
    if model and not isinstance(model, str):
        raise MappingError(f"model is {model!r}, not a string: weave fails on it")
    return model


_NO_WANDB = {"display_name": None, "thread_id": None, "turn_id": None, "wb_run_id": None,
             "wb_run_step": None, "wb_run_step_end": None}  # fmt: skip


def _wandb_fields(span: Span, wandb: dict[str, Any], project_id: str) -> dict[str, Any]:
    if not wandb:
        return _NO_WANDB  # most spans (only spread into the call)
    display_name = _lax_str(wandb.get("display_name"), "wandb.display_name")
    if display_name and len(display_name) >= MAX_DISPLAY_NAME_LENGTH:
        display_name = shorten_name(display_name, MAX_DISPLAY_NAME_LENGTH)
    thread_id = wandb.get("thread_id") or None
    turn_id = span.span_id if thread_id is not None and wandb.get("is_turn") else None
    return {
        "display_name": display_name or None,
        "thread_id": _lax_str(thread_id, "conversation/thread id"),
        "turn_id": turn_id,
        "wb_run_id": _run_id(wandb.get("wb_run_id") or None, project_id),
        **_steps(wandb),
    }


def _run_id(run: Any, project_id: str) -> str | None:
    """weave stores `<project>:<run>` when the run has no `/` or `:`; that reads back as
    `entity/project/run`, the wire form written here. (weave formats any value it can
    search for `/`: a list or an object too.)"""
    if run is None:
        return None
    if not isinstance(run, (str, list, dict)):
        raise MappingError(f"wandb.wb_run_id is {run!r}, not a string: weave fails on it")
    if "/" in run or ":" in run:
        return None
    return f"{project_id}/{run}"


def _lax_str(value: Any, name: str) -> str | None:
    """A string as pydantic's lax mode reads one for weave's call models (bytes decoded)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            pass
    raise MappingError(f"{name} is {value!r}, not a string: weave fails on it")


_LAX_INT = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*")
_LAX_INTEGRAL_FLOAT = re.compile(r"([+-]?[0-9]+)\.0*")


def _step(value: Any, name: str) -> int | None:
    """An integer as pydantic's lax mode reads one (weave validates its call models)."""
    if value is None or isinstance(value, int):
        return None if value is None else int(value)  # a bool is 1 or 0
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        text = value.strip()
        if _LAX_INT.fullmatch(text):
            return int(text)
        integral = _LAX_INTEGRAL_FLOAT.fullmatch(text)
        if integral:
            return int(integral.group(1))
    raise MappingError(f"wandb.{name} is {value!r}, not an integer: weave fails on it")


def _steps(wandb: dict[str, Any]) -> dict[str, int | None]:
    """Run steps; a negative one is refused: by weave's checks (`wb_run_step`), by
    tracecli's call checks (`wb_run_step_end`, which weave's SQLite server stores)."""
    out = {}
    for name in ("wb_run_step", "wb_run_step_end"):
        step = _step(wandb.get(name) or None, name)
        if step is not None and step < 0:
            raise MappingError(f"wandb.{name} is {step}: must be non-negative")
        out[name] = step
    return out


def _when(value: Any, fallback: datetime) -> datetime:
    return value if isinstance(value, datetime) else fallback


class _Picked(NamedTuple):
    """What weave's picks give a span's call, checked as weave's server would use it."""

    usage: dict[str, Any]  # the usage row
    model: Any
    inputs: dict[str, Any]
    outputs: Any
    attributes: dict[str, Any]
    wandb: dict[str, Any]
    overrides: dict[str, Any]
    fallback: bool  # nothing picked: the call's attributes are the span's own


def _picked_parts(span: Span) -> _Picked:
    """Weave's picks of a span's attributes and the checks on them, in `span_to_call`'s
    order (raises `MappingError` where weave's server fails)."""
    # weave's picks, in its order (each one's list conversion shows in the next)
    picked = picks(span.attributes, _GROUPS, span.keys)
    usage, inputs, outputs, attributes, wandb, overrides = picked
    usage = with_total(usage)
    inputs = _inputs(inputs)
    outputs = _output(outputs)
    row = _usage_row(usage)
    model = _model(attributes)
    fallback = not attributes and not inputs and not _has_output(outputs) and not usage
    custom = wandb.get("attributes")
    if custom:
        try:
            attributes.update(custom)  # as weave: any value dict.update takes
        except (TypeError, ValueError):
            raise MappingError("wandb.attributes is not an object: weave fails on it") from None
    return _Picked(row, model, inputs, outputs, attributes, wandb, overrides, fallback)


def check_span(span: Span, project_id: str) -> None:
    """`span_to_call`'s refusals (`MappingError`), without making the call: its picks and
    the fields weave's server reads of them, its op name. What the call adds beyond those
    (`otel_span`, times, the summary) cannot fail. A span whose call may hold a value JSON
    cannot carry (not `plain_call`) is refused only once the call is encoded: the caller
    makes that call. A span none of whose keys a pick may read (`_picked`: a fifth of an
    agent's spans) picks nothing, and only its name may fail."""
    if span.deep:  # JSON text that may nest deep: the call itself is measured
        span_to_call(span, project_id)
        return
    if span.keys is not None and not any(map(_picked, span.keys)):
        op_name_of(span.name)
        return
    p = _picked_parts(span)
    op_name_of(span.name)
    _wandb_fields(span, p.wandb, project_id)


def span_to_call(span: Span, project_id: str) -> dict[str, Any]:
    """The completed call (CompletedCallSchemaForInsert as JSON values) for one span."""
    p = _picked_parts(span)
    usage, model, inputs, outputs, attributes, wandb, overrides, fallback = p
    start_iso = iso_from_ns(span.start_time_unix_nano)
    end_iso = iso_from_ns(span.end_time_unix_nano)
    if overrides:
        started = _when(overrides.get("start_time"), span.start_time)
        ended = _when(overrides.get("end_time"), span.end_time)
        started_at, ended_at = iso_utc(started), iso_utc(ended)
    else:
        started_at, ended_at = start_iso + "Z", end_iso + "Z"
    if fallback:
        attributes = span.json_attributes()
    otel_dump = span.otel_dump(
        start_iso, end_iso
    )  # after the picks above: weave's mutations show in it
    op_name = op_name_of(span.name)
    status = "error" if span.status_code == STATUS_ERROR else "success"
    latency_ms = int((span.end_time_unix_nano - span.start_time_unix_nano) / 1_000_000)
    call = {
        "project_id": project_id,
        "id": span.span_id,
        "trace_id": span.trace_id,
        "parent_id": span.parent_id,
        "op_name": op_name,
        "started_at": started_at,
        "ended_at": ended_at,
        "attributes": attributes,
        "inputs": inputs,
        "output": outputs,
        "summary": {
            "weave": {"status": status, "latency_ms": latency_ms, "trace_name": op_name},
            "usage": {model or "usage": usage},
        },
        "exception": span.status_message if span.status_code == STATUS_ERROR else None,
        "otel_dump": otel_dump,
        **_wandb_fields(span, wandb, project_id),
    }
    if span.deep:  # JSON text that may nest deep: weave fails on a call nested too deep
        found = deep_text(span, call)
        if found is not None and not found.deep.stored:
            raise DeepError(found)
    return call


def _pick_paths() -> tuple[str, ...]:
    """Every attribute path weave's picks read (inputs, output, usage, call attributes,
    W&B fields, time overrides)."""
    out: list[str] = []
    for keys in _GROUPS:
        for specs in [keys] if isinstance(keys, list) else list(keys.values()):
            out.extend(spec if isinstance(spec, str) else spec[0] for spec in specs)
    return tuple(out)


_PICK_PATHS = _pick_paths()
_PICKED: dict[str, bool] = {}  # attribute key → whether a pick may read its value


def _picked(key: str) -> bool:
    """Whether a pick may read (part of) the value of the attribute with this key: their
    paths are one, or one lies under the other (a pick takes a whole subtree; one deeper
    than the attribute walks into its value)."""
    got = _PICKED.get(key)
    if got is None:
        got = any(
            key == p or key.startswith(p + ".") or p.startswith(key + ".") for p in _PICK_PATHS
        )
        if len(_PICKED) >= 4096:
            _PICKED.clear()
        _PICKED[key] = got
    return got


def plain_call(span: Span) -> bool:
    """Whether the call `span_to_call` makes of this span holds only values JSON writes as
    they are, as far as its attributes go (no bytes, no NaN): the attributes it copies
    come from picks, and the rest is made JSON-safe (`to_json_serializable`). So a span
    whose few impure values (a bytes fingerprint) no pick reads makes a plain call, and
    `validate` checks it on the fast path, as it does a plain span's."""
    return span.plain or not any(map(_picked, span.impure))


def iso_utc(when: datetime) -> str:
    """ISO 8601 with `Z` for weave's naive UTC times; an aware time keeps its offset."""
    text = when.isoformat()
    return text + "Z" if when.tzinfo is None else text
