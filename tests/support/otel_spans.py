"""Shared OTLP test data: a bare span, spans of the committed fixtures and the changes the
usual reader cares about, attribute lists of every kind, and a comparison of decoded values
with types (used by tests/test_otel_speed.py, test_otel_typed.py and the input tests)."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
from hypothesis import strategies as st

FIXTURES = Path(__file__).resolve().parent.parent / "otel_fixtures"


def bare_span(span_id: str, parent: str | None = None) -> dict[str, Any]:
    """A hand-made OTLP span of one trace with no attributes (a chat call's name and kind),
    one second long: for tests of how requests are read, not of the mapping."""
    span: dict[str, Any] = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": span_id,
        "name": "chat gpt-4o",
        "kind": 3,
        "startTimeUnixNano": "1772445245000000000",
        "endTimeUnixNano": "1772445246000000000",
        "status": {},
    }
    if parent:
        span["parentSpanId"] = parent
    return span


def same_values(a: object, b: object) -> bool:
    """Equal, with type (1 is not 1.0 nor True), NaN equal to NaN, and key order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_values(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_values(a[k], b[k]) for k in a)  # type: ignore[index]
    return a == b


KEYS = st.lists(st.sampled_from(["a", "b", "0", "1", ""]), min_size=1, max_size=3).map(".".join)
ANY_VALUES = st.recursive(
    st.one_of(
        st.text(max_size=6).map(lambda s: {"stringValue": s}),
        st.sampled_from(['{"x": 1}', "[1, 2]", '{"a": {"b": NaN}}', "[", '{"0": 1, "1": 2}']).map(
            lambda s: {"stringValue": s}
        ),
        st.integers(-(2**63), 2**63 - 1).map(lambda n: {"intValue": str(n)}),
        st.booleans().map(lambda b: {"boolValue": b}),
        # a JSON number is finite once read (orjson refuses 1e400): NaN and the infinities
        # come as OTLP/JSON writes them, as text
        st.floats(allow_nan=False, allow_infinity=False).map(lambda f: {"doubleValue": f}),
        st.sampled_from(["NaN", "Infinity", "-Infinity"]).map(lambda s: {"doubleValue": s}),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda vs: {"arrayValue": {"values": vs}}),
        st.lists(st.tuples(KEYS, inner), max_size=3).map(
            lambda kvs: {"kvlistValue": {"values": [{"key": k, "value": v} for k, v in kvs]}}
        ),
    ),
    max_leaves=6,
)
ATTRIBUTE_LISTS = st.lists(
    st.tuples(KEYS, ANY_VALUES).map(lambda kv: {"key": kv[0], "value": kv[1]}), max_size=8
)


def fixture_spans() -> list[dict[str, Any]]:
    out = []
    for name in ("agent-seed1.jsonl.gz", "conventions.jsonl", "wb_run_id.jsonl"):
        data = (FIXTURES / name).read_bytes()
        for line in (gzip.decompress(data) if name.endswith(".gz") else data).splitlines():
            for rs in orjson.loads(line)["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    out.extend(ss["spans"])
    return out


SPANS = fixture_spans()
CHANGES = st.sampled_from(
    [
        ("status", {"code": 2, "message": "boom"}),
        ("status", {"code": "STATUS_CODE_ERROR"}),
        ("status", {"code": None}),
        ("status", []),
        ("status", "x"),
        ("name", None),
        ("name", 3),
        ("traceId", "AB" * 16),
        ("traceId", None),
        ("trace_id", "ab" * 16),
        ("spanId", "12" * 7),
        ("parentSpanId", ""),
        ("parentSpanId", None),
        ("parent_span_id", "cd" * 8),
        ("parentSpanId", "zz" * 8),
        ("startTimeUnixNano", 1772445245000112014),
        ("endTimeUnixNano", "18446744073709551616"),
        ("startTimeUnixNano", None),
        ("kind", "SPAN_KIND_CLIENT"),
        ("kind", 9),
        ("kind", True),
        ("kind", None),
        ("traceState", "a=b"),
        ("trace_state", "a=b"),
        ("traceState", 1),
        ("flags", 2**32),
        ("flags", "256"),
        ("flags", None),
        ("attributes", [{"key": "a", "value": {}}]),
        ("attributes", None),
        ("events", [{"name": "e", "timeUnixNano": "x"}]),
        ("links", [{"traceId": "ab" * 16, "spanId": "cd" * 8}]),
    ]
)
