"""The OTLP fast paths hold to the formulas they replace (weave's, as written before).

Pure functions, checked with hypothesis against the slow code they stand in for: a fast
path that drifts by one microsecond or one JSON value would show as a differing call.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from tracecli.otel.nesting import load_json_text
from tracecli.otel.weave_keys import iso_from_ns, utc_from_seconds

UINT64_MAX = 2**64 - 1


def _slow_iso(ns: int) -> str:
    return utc_from_seconds(ns / 1_000_000_000).isoformat()


@settings(max_examples=3000)
@given(
    st.one_of(
        st.integers(0, UINT64_MAX),
        # real spans: now-ish, every nanosecond digit
        st.integers(1_600_000_000 * 10**9, 1_900_000_000 * 10**9),
        # the rounding edges: just below and above a half or a whole microsecond
        st.builds(
            lambda s, us, d: s * 10**9 + us * 1000 + d,
            st.integers(0, 4_000_000_000),
            st.integers(0, 999_999),
            st.sampled_from([0, 1, 499, 500, 501, 999]),
        ),
    )
)
def test_iso_from_ns_is_fromtimestamp(ns: int) -> None:
    assert iso_from_ns(ns) == _slow_iso(ns)


def test_iso_from_ns_edges() -> None:
    for ns in (0, 1, 999, 500, 1500, 999_999_999, 10**9 - 1, 10**9, UINT64_MAX):
        assert iso_from_ns(ns) == _slow_iso(ns), ns
    assert iso_from_ns(1772445245000112014) == "2026-03-02T09:54:05.000112"
    assert json.dumps(iso_from_ns(0)) == '"1970-01-01T00:00:00"'


def _slow_load(text: str) -> object:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return text


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
_json_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


def _same(a: object, b: object) -> bool:
    """Equal, with type (1 is not 1.0 nor True), NaN equal to NaN, and key order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)  # type: ignore[index]
    return a == b


@settings(max_examples=1500)
@given(
    st.one_of(
        _json_values.map(lambda v: json.dumps([v])),
        _json_values.map(lambda v: json.dumps({"k": v, "x": [v]}, ensure_ascii=False)),
        # text that looks like JSON but may not be: cut, spaced, doubled keys, escapes
        st.text(alphabet='[]{}",:0123456789.eE+-aNInfity \\t\\n\\u', max_size=40).map(
            lambda t: "[" + t
        ),
        st.lists(st.integers(-(2**66), 2**66), max_size=3).map(
            lambda v: '{"a":' + json.dumps(v) + ',"a":1}'
        ),
    )
)
def test_load_json_text_is_json_loads(text: str) -> None:
    assert _same(load_json_text(text), _slow_load(text))


def test_load_json_text_edges() -> None:
    for text in (
        "[18446744073709551616]",
        "[-9223372036854775809]",
        "[1e400]",
        '["\\ud800"]',
        "[NaN, Infinity, -Infinity]",
        '{"a": 1, "a": 2}',
        "[" * 2000 + "]" * 2000,
        "[1] x",
        "{",
        '["a\tb"]',
    ):
        assert _same(load_json_text(text), _slow_load(text)), text
