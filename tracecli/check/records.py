"""Shape detection and per-record validation: a raw value → a typed `Record` or diagnostics.

Trace files come in several shapes (what a logger wrote, what the SDK batches, what the
complete endpoint takes); this module detects the shape of each record on its own, checks it
against the spec models and the server's extra rules, and normalises it to the call body the
wire needs, remembering the shape so the original can be written back (rejected-records file).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from tracecli.diagnostics import Diagnostic, Location, Severity
from tracecli.schema import rules
from tracecli.schema.fastcheck import fast_ok
from tracecli.schema.fields import COMPLETED_FIELDS, END_FIELDS, ENDED_FIELDS, STARTED_FIELDS
from tracecli.schema.rules import META_KEY
from tracecli.schema.rules import describe_value as _describe  # one wording with schema/

if TYPE_CHECKING:
    from pydantic import ValidationError

Shape = Literal["flat", "batch", "request", "complete", "freeplay"]
Kind = Literal["start", "end", "complete", "freeplay"]

SHAPES_EXPECTED = (
    'a flat call {"type": "start"|"end"|"call", ...}, an upsert_batch item '
    '{"mode": "start"|"end", "req": {...}}, a request {"start": {...}} or {"end": {...}}, '
    "a completed call (op_name, started_at, ended_at, ...), a Freeplay completion "
    '{"messages": [...], "session_id": ...} or a Freeplay trace '
    '{"trace_id": ..., "session_id": ..., "input": ..., "output": ...}'
)


@dataclass(slots=True)
class Record:
    """One valid record: where it was read, how it was written, and its call body.

    `data` is the body as it goes on the wire (a StartedCallSchemaForInsert,
    EndedCallSchemaForInsert or CompletedCallSchemaForInsert dict, or a Freeplay request
    body with its `session_id`/`project_id`), untouched apart from the shape's wrapping.
    """

    loc: Location
    shape: Shape
    kind: Kind
    data: dict[str, Any]

    @property
    def call_id(self) -> str | None:
        return self.data.get("id")

    def original(self) -> dict[str, Any]:
        """The record as it was written (its wrapping restored), for the rejected file."""
        return wrap(self.shape, self.kind, self.data)


def wrap(shape: Shape, kind: Kind, data: dict[str, Any]) -> dict[str, Any]:
    if shape == "flat":
        return {"type": "call" if kind == "complete" else kind, **data}
    if shape == "batch":
        return {"mode": kind, "req": {kind: data}}
    if shape == "request":
        return {kind: data}
    if kind == "start":  # a dumped running call: its end fields were all empty
        return {**data, "ended_at": None}
    return dict(data)


class Parsed(NamedTuple):
    """What parsing one value gave: the record (None when it has errors) and its diagnostics."""

    record: Record | None
    diagnostics: list[Diagnostic]


# the models by name in schema/weave.py, imported by the first record that needs them
_MODELS: dict[str, str] = {
    "start": "StartedCallSchemaForInsert",
    "end": "EndedCallSchemaForInsert",
    "complete": "CompletedCallSchemaForInsert",
}
_FIELDS: dict[str, frozenset[str]] = {
    "start": frozenset(STARTED_FIELDS),
    "end": frozenset(ENDED_FIELDS),
    "complete": frozenset(COMPLETED_FIELDS),
}
# Keys the call schemas do not list but real producers write, kept quiet (the server
# ignores them): the weave SDK's `trace_id` and `is_eval` on an end, and what a
# `/calls/stream_query` answer holds beyond a completed call (its read-only fields), so a
# dumped project validates clean and uploads back.
_DUMP_KEYS = frozenset(
    {"deleted_at", "expire_at", "storage_size_bytes", "total_storage_size_bytes", "wb_username"}
)
SDK_KEYS: dict[str, frozenset[str]] = {
    "start": _DUMP_KEYS,  # a dumped running call (see parse_record)
    "end": frozenset({"trace_id", "is_eval"}),
    "complete": _DUMP_KEYS | {"is_eval"},
}


def _pydantic_diagnostics(loc: Location, exc: ValidationError, prefix: str) -> Iterator[Diagnostic]:
    for err in exc.errors(include_url=False, include_context=False):
        path = ".".join(str(p) for p in err["loc"] if p != "[key]")
        field = f"{prefix}{path}" if path else prefix.rstrip(".")
        etype = err["type"]
        if etype == "missing":
            msg = "required field is missing"
        elif etype == "extra_forbidden":
            msg = "unknown key: the server refuses unknown keys here"
        else:
            msg = err["msg"]
            got = err.get("input")
            if etype.endswith("_type") or etype.endswith("_parsing"):
                msg = f"{msg}, got {_describe(got)}"
        yield Diagnostic.at(loc, f"schema.{etype}", msg, field)


def check_call(
    loc: Location, kind: str, data: Any, prefix: str, fast: bool = True
) -> list[Diagnostic]:
    """Schema, server rules and tracecli's own needs for one call body.

    `fast=False` skips the happy-path shortcut (tests compare the two).
    """
    if not isinstance(data, dict):
        field = prefix.rstrip(".") or "(record)"
        return [
            Diagnostic.at(
                loc, "schema.dict_type", f"must be an object, got {_describe(data)}", field
            )
        ]
    if fast and fast_ok(kind, data):  # the happy path, clean but for its references:
        return [  # the fast check does not look inside values (see rules.check_refs)
            Diagnostic.at(loc, code, msg, prefix + field)
            for field, code, msg in rules.check_refs(data)
        ]
    # imported here for start-up time: pydantic and the call models (schema/weave.py) only
    # for a record the fast path does not vouch for; most runs never meet one
    from pydantic import ValidationError

    from tracecli.schema import weave

    try:
        getattr(weave, _MODELS[kind]).__pydantic_validator__.validate_python(data)
    except ValidationError as exc:
        diags = list(_pydantic_diagnostics(loc, exc, prefix))
    else:
        diags = []
    seen = {d.field for d in diags}
    for field, code, msg in rules.check_call(data):
        if prefix + field not in seen:  # one problem per field: the schema's word first
            diags.append(Diagnostic.at(loc, code, msg, prefix + field))
    for field, code, msg in rules.call_warnings(data):
        if prefix + field not in seen:
            diags.append(Diagnostic.at(loc, code, msg, prefix + field, Severity.WARNING))
    if kind == "start":
        # The hosted server would invent these, but then the call's end cannot find it and a
        # re-send (retry, resume) would store it twice.
        for name in ("id", "trace_id"):
            if data.get(name) is None and not any(d.field == prefix + name for d in diags):
                diags.append(
                    Diagnostic.at(
                        loc,
                        "missing-id",
                        "required by tracecli: without it the call's end cannot be paired "
                        "and a retry would store the call twice",
                        prefix + name,
                    )
                )
    known = _FIELDS[kind]
    quiet = SDK_KEYS[kind]
    for key in data:
        if key not in known and key not in quiet:
            diags.append(
                Diagnostic.at(
                    loc,
                    "unknown-field",
                    "not a field of the call schema: the server ignores it",
                    prefix + str(key),
                    Severity.WARNING,
                )
            )
    return diags


def parse_record(loc: Location, value: Any) -> Parsed:
    """Detect the shape of one value and validate it; never raises for any input."""
    if not isinstance(value, dict):
        return Parsed(
            None,
            [
                Diagnostic.at(
                    loc, "shape", f"expected a JSON object, got {_describe(value)}", "(record)"
                )
            ],
        )
    if META_KEY in value:
        value = {k: v for k, v in value.items() if k != META_KEY}

    if "type" in value:
        kind_raw = value.get("type")
        kinds = {"start": "start", "end": "end", "call": "complete"}
        if kind_raw not in kinds:
            return Parsed(
                None,
                [
                    Diagnostic.at(
                        loc,
                        "shape",
                        f"must be 'start', 'end' or 'call', got {_describe(kind_raw)}",
                        "type",
                    )
                ],
            )
        kind: Kind = kinds[kind_raw]  # type: ignore[assignment]
        data = {k: v for k, v in value.items() if k != "type"}
        return _finish(loc, "flat", kind, data, check_call(loc, kind, data, ""))

    if "mode" in value and "req" in value:
        mode = value.get("mode")
        if mode not in ("start", "end"):
            return Parsed(
                None,
                [
                    Diagnostic.at(
                        loc, "shape", f"must be 'start' or 'end', got {_describe(mode)}", "mode"
                    )
                ],
            )
        diags: list[Diagnostic] = []
        extra = [k for k in value if k not in ("mode", "req")]
        for k in extra:
            diags.append(
                Diagnostic.at(
                    loc,
                    "unknown-field",
                    "not part of an upsert_batch item: ignored",
                    str(k),
                    Severity.WARNING,
                )
            )
        req = value["req"]
        return _request(loc, "batch", mode, req, "req.", diags)

    if len(value) == 1 and ("start" in value or "end" in value):
        mode = "start" if "start" in value else "end"
        return _request(loc, "request", mode, value, "", [])

    if "messages" in value or "session_id" in value or ("trace_id" in value and "input" in value):
        return _freeplay(loc, value)  # a completion, or a trace (trace_id, no messages)

    if "op_name" in value and "ended_at" in value:
        if value["ended_at"] is None:  # a running call, as /calls/stream_query answers it
            start = {k: v for k, v in value.items() if k not in END_FIELDS}
            return _finish(loc, "complete", "start", start, check_call(loc, "start", start, ""))
        return _finish(loc, "complete", "complete", value, check_call(loc, "complete", value, ""))

    return Parsed(
        None,
        [
            Diagnostic.at(
                loc, "shape", f"record fits no known shape; expected {SHAPES_EXPECTED}", "(record)"
            )
        ],
    )


def _request(
    loc: Location, shape: Shape, mode: str, req: Any, prefix: str, diags: list[Diagnostic]
) -> Parsed:
    if not isinstance(req, dict):
        diags.append(
            Diagnostic.at(
                loc,
                "schema.dict_type",
                f"must be an object, got {_describe(req)}",
                prefix.rstrip("."),
            )
        )
        return Parsed(None, diags)
    for key in req:
        if key != mode:
            diags.append(
                Diagnostic.at(
                    loc,
                    "schema.extra_forbidden",
                    f"unknown key: {_ARTICLE[mode]} request holds only '{mode}' "
                    "(the server refuses others)",
                    prefix + str(key),
                )
            )
    if mode not in req:
        diags.append(
            Diagnostic.at(loc, "schema.missing", "required field is missing", prefix + mode)
        )
        return Parsed(None, diags)
    data = req[mode]
    diags.extend(check_call(loc, mode, data, f"{prefix}{mode}."))
    return _finish(loc, shape, mode, data, diags)  # type: ignore[arg-type]


_ARTICLE = {"start": "a start", "end": "an end"}


def _freeplay(loc: Location, value: dict[str, Any]) -> Parsed:
    # imported here for start-up time: the Freeplay schema's ~70 models cost more to
    # define than validating a small file takes, and Weave records never need them
    from tracecli.schema.freeplay import WARNING_CODES, check_completion

    diags = [
        Diagnostic.at(
            loc, code, msg, field, Severity.WARNING if code in WARNING_CODES else Severity.ERROR
        )
        for field, code, msg in check_completion(value)
    ]
    return _finish(loc, "freeplay", "freeplay", value, diags)


def _finish(loc: Location, shape: Shape, kind: Kind, data: Any, diags: list[Diagnostic]) -> Parsed:
    if any(d.severity is Severity.ERROR for d in diags):
        return Parsed(None, diags)
    return Parsed(Record(loc, shape, kind, data), diags)


def parse_ok(value: Mapping[str, Any]) -> bool:
    """True when a value parses with no errors (used by tests and the server's checks)."""
    return parse_record(Location("-", 0), dict(value)).record is not None
