"""Property tests: validate never crashes, and the fast path never vouches for a bad record.

- random bytes and random JSON values, as files, through `validate`: no exception, no
  traceback, exit 0 or 1;
- call bodies built from valid and nearly valid field values: whenever the fast path
  (`fastcheck`, and the block reader's `_fast` on whole records) says "valid", the full
  check (pydantic models + server rules) must report nothing, and the facts it hands the
  cross-record checks must be the ones the full path would give;
- the same records as lines, in several styles: a block checked with the typed decoder
  (`schema.typed`) in front reports exactly what it reports without it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.support.sweeps import examples
from tracecli.check.facts import call_facts, timestamp
from tracecli.check.pairpack import unpack_pairs
from tracecli.check.records import check_call, parse_record
from tracecli.cli import app
from tracecli.diagnostics import Location
from tracecli.schema.fastcheck import (
    COMPLETE_KEYS,
    END_KEYS,
    START_KEYS,
    fast_ok,
)
from tracecli.upload import validate_blocks as blocks
from tracecli.upload.lines import plain_refs
from tracecli.upload.typed_lines import shape_of, typed_line
from tracecli.upload.validate import validate_paths

pytestmark = pytest.mark.slow  # hypothesis runs of the CLI and the parsers: out of the fast loop

LOC = Location("f.jsonl", 1)
EXAMPLES = int(os.environ.get("TRACECLI_FUZZ_EXAMPLES") or examples(400))  # more: deeper
SETTINGS = settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# ------------------------------------------------------------------ whole files, any bytes
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids),
    max_leaves=20,
)


@SETTINGS
@given(data=st.binary(max_size=2000))
def test_random_bytes_never_crash(tmp_path: Path, data: bytes) -> None:
    for name in ("x.jsonl", "x.yaml", "x.jsonl.gz"):
        p = tmp_path / name
        p.write_bytes(data)
        report = validate_paths([str(p)])
        assert report.errors >= 0


@SETTINGS
@given(values=st.lists(json_values, max_size=8))
def test_random_json_never_crashes(tmp_path: Path, values: list[Any]) -> None:
    p = tmp_path / "v.jsonl"
    p.write_text("".join(json.dumps(v) + "\n" for v in values), encoding="utf-8")
    report = validate_paths([str(p)])
    assert report.records == len(values)
    assert all(d.code != "internal" for d in report.diagnostics)


@settings(max_examples=25, deadline=None)
@given(values=st.lists(json_values | st.binary(max_size=50), max_size=6))
def test_cli_exit_is_0_or_1(values: list[Any]) -> None:
    lines = [v if isinstance(v, bytes) else json.dumps(v).encode() for v in values]
    result = CliRunner().invoke(app, ["validate", "-"], input=b"\n".join(lines))
    assert result.exit_code in (0, 1), result.stderr
    assert "Traceback" not in result.stdout + result.stderr


# ------------------------------------------------------------------ call bodies
UUID = "6cad4a26-8d11-4ece-9738-f7d93d9c1724"
ODD_IDS = [UUID.upper(), "0123456789ABCDEF", "0123456789abcdef" * 2, "", UUID + "\n", UUID[:-1]]
ids = st.sampled_from([UUID, "0123456789abcdef", *ODD_IDS]) | st.uuids().map(str)
times = st.sampled_from(
    [
        "2026-03-02T09:14:05Z",
        "2026-03-02T09:14:05.123456Z",
        "2026-03-02T09:14:05.123+00:00",
        "2026-03-02T09:14:05+00:00",
        "2026-03-02T09:14:05.5-00:00",
        "2026-03-02T09:14:05.1234567Z",
        "2026-03-02 09:14:05+05:30",
        "2026-03-02T09:14:05-23:59",
        "2026-03-02T09:14:05+24:00",
        "2026-02-29T00:00:00Z",
        "2028-02-29T00:00:00Z",
        "2026-03-02T09:14:60Z",
        "2026-03-02T09:14:05",
        "2026-03-02",
        "20260302T091405Z",
        "1772442845",
        "0999-01-01T00:00:00Z",
        "yesterday",
    ]
) | st.datetimes(timezones=st.just(__import__("datetime").UTC)).map(
    lambda d: d.isoformat().replace("+00:00", "Z")
)
small = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | st.text()
objects = st.dictionaries(st.text(max_size=5) | st.integers(0, 3), small, max_size=3)
names = st.text(max_size=3) | st.sampled_from(
    ["x" * 128, "x" * 129, "agent.run", "weave:///e/p/op/run:abc", "weave:///nope"]
)
usage = st.dictionaries(
    st.sampled_from(["prompt_tokens", "completion_tokens", "requests", "cost"]) | st.text(),
    st.none() | st.integers(-5, 10**20) | st.booleans() | st.floats(allow_nan=False) | st.text(),
    max_size=3,
)
summaries = st.fixed_dictionaries(
    {},
    optional={
        "usage": st.none() | st.dictionaries(st.text(max_size=6), usage | small, max_size=2),
        "status_counts": st.none()
        | st.dictionaries(
            st.sampled_from(["success", "error", "running", "descendant_error", "ok"]),
            st.integers(-2, 5) | st.booleans() | st.text(max_size=2),
            max_size=3,
        ),
        "weave": objects,
    },
)
FIELD_VALUES: dict[str, Any] = {
    "project_id": st.sampled_from(["acme/agents", "acme", "a/b/c", "/x", "e/p "]) | small,
    "id": ids | small,
    "trace_id": ids | small,
    "parent_id": ids | small,
    "op_name": names | small,
    "display_name": names | st.just("d" * 1025) | small,
    "thread_id": small,
    "turn_id": small,
    "started_at": times | small,
    "ended_at": times | small,
    "attributes": objects | small,
    "inputs": objects | small,
    "otel_dump": objects | small,
    "wb_user_id": small,
    "wb_run_id": st.sampled_from(["acme:run1", "e/p/r", "e/p/r/x", "//", "e//r", "a:b"]) | small,
    "wb_run_step": st.sampled_from([2**63 - 1, 2**63, 2**64]) | st.integers(-2, 5) | small,
    "wb_run_step_end": st.sampled_from([2**63 - 1, 2**63]) | st.integers(-2, 5) | small,
    "is_eval": small,
    "exception": small,
    "output": small | objects,
    "summary": summaries | small,
}


VALID: dict[str, Any] = {
    "project_id": st.sampled_from(["acme/agents", "e/p", "a b/c"]),
    "id": st.uuids().map(str) | st.just("0123456789abcdef"),
    "trace_id": st.uuids().map(str) | st.just("0123456789abcdef" * 2),
    "parent_id": st.none() | st.uuids().map(str),
    "op_name": st.sampled_from(["agent.run", "x" * 128, "openai.chat", "weave:///x"]),
    "display_name": st.none() | st.text(max_size=10),
    "thread_id": st.none() | st.text(max_size=5),
    "turn_id": st.none() | st.text(max_size=5),
    "started_at": times,
    "ended_at": times,
    "attributes": st.dictionaries(st.text(max_size=4), small, max_size=2),
    "inputs": st.dictionaries(st.text(max_size=4), small, max_size=2),
    "otel_dump": st.none() | st.just({}),
    "wb_user_id": st.none(),
    "wb_run_id": st.none() | st.just("acme/agents/run1"),
    "is_eval": st.none() | st.booleans(),
    "wb_run_step": st.none() | st.integers(0, 5),
    "wb_run_step_end": st.none() | st.integers(0, 5),
    "exception": st.none() | st.text(max_size=5),
    "output": small | objects,
    "summary": summaries,
}


def bodies(keys: frozenset[str], required: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid-looking body (required fields, some optional ones), then 0-3 mutations:
    a field set to an arbitrary value, deleted, or an unknown key added."""

    @st.composite
    def build(draw: Any) -> dict[str, Any]:
        body = {k: draw(VALID[k]) for k in required}
        for k in sorted(keys - set(required)):
            if draw(st.booleans()):
                body[k] = draw(VALID[k])
        for _ in range(draw(st.integers(0, 3))):
            k = draw(st.sampled_from([*sorted(keys), "unknown_key"]))
            if draw(st.booleans()):
                body.pop(k, None)
            else:
                body[k] = draw(FIELD_VALUES.get(k, small))
        return body

    return build()


START = bodies(
    START_KEYS, ("project_id", "id", "trace_id", "op_name", "started_at", "attributes", "inputs")
)
END = bodies(END_KEYS, ("project_id", "id", "ended_at", "summary"))
COMPLETE = bodies(COMPLETE_KEYS, tuple(k for k in COMPLETE_KEYS if k in VALID and k != "otel_dump"))


@pytest.mark.parametrize(
    ("kind", "strategy"), [("start", START), ("end", END), ("complete", COMPLETE)]
)
def test_fast_path_never_accepts_what_the_models_refuse(kind: str, strategy: Any) -> None:
    accepted = 0

    @settings(max_examples=EXAMPLES, deadline=None)
    @given(body=strategy)
    def check(body: dict[str, Any]) -> None:
        nonlocal accepted
        # as the blocks use it: only for lines whose reference-like strings all parse
        if fast_ok(kind, body) and plain_refs(json.dumps(body).encode()):
            accepted += 1
            assert check_call(LOC, kind, body, "", fast=False) == []

    check()
    # (one in 40 at least: typically 1 in 4-8; a third of the sweep ran 9 of 133 once)
    assert accepted > EXAMPLES // 40, "the strategy must reach the fast path now and then"


shapes = st.one_of(
    START.map(lambda b: {"type": "start", **b}),
    END.map(lambda b: {"type": "end", **b}),
    COMPLETE.map(lambda b: {"type": "call", **b}),
    START.map(lambda b: {"mode": "start", "req": {"start": b}}),
    END.map(lambda b: {"mode": "end", "req": {"end": b}}),
    START.map(lambda b: {"start": b}),
    END.map(lambda b: {"end": b}),
    COMPLETE,
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(value=shapes)
def test_block_fast_path_agrees_with_parse_record(value: dict[str, Any]) -> None:
    value = json.loads(json.dumps(value, default=str))  # as the JSON reader gives it
    out: list[Any] = []
    if blocks._fast(value, 1, out, True):
        parsed = parse_record(LOC, value)
        assert parsed.diagnostics == []
        assert parsed.record is not None
        (got,) = out
        want = call_facts(parsed.record, 1)
        assert got[:5] == want[:5]
        # times stay the strings written (validated); they mean the same instants
        assert [timestamp(t) for t in got[5:]] == list(want[5:])


def _typed_off() -> dict[str, Any]:
    saved = blocks.SHAPES
    blocks.SHAPES = dict.fromkeys(saved)  # type: ignore[misc]
    return saved


def _styled(v: dict[str, Any], style: str) -> bytes:
    if style == "dumps":
        return json.dumps(v, default=str, ensure_ascii=False).encode()
    sep = None if style == "ascii" else (",", ":")
    v = json.loads(json.dumps(v, default=str))  # (keys as strings, to sort them)
    return json.dumps(v, separators=sep, sort_keys=style == "sorted").encode()


def test_typed_decoder_agrees_with_the_orjson_path() -> None:
    """The typed decoder (msgspec, `schema.typed`) in front of orjson changes nothing a
    block reports, and vouches only for records the full check finds nothing in."""
    vouched = 0

    @settings(max_examples=EXAMPLES, deadline=None)
    @given(
        values=st.lists(shapes, min_size=1, max_size=4),
        style=st.sampled_from(["dumps", "compact", "sorted", "ascii"]),
    )
    def check(values: list[dict[str, Any]], style: str) -> None:
        nonlocal vouched
        lines = [_styled(v, style) for v in values]
        data = b"".join(line + b"\n" for line in lines)
        got = blocks.check_lines(data, "t.jsonl", True)
        saved = _typed_off()
        try:
            want = blocks.check_lines(data, "t.jsonl", True)
        finally:
            blocks.SHAPES = saved  # type: ignore[misc]
        assert (got.lines, got.records, got.entries) == (want.lines, want.records, want.entries)
        assert (got.pairs is None) == (want.pairs is None)
        if got.pairs is not None and want.pairs is not None:
            assert unpack_pairs(got.pairs) == unpack_pairs(want.pairs)
        for line in lines:
            value = json.loads(line)
            shape = shape_of(value)
            if shape is not None and typed_line(line, shape) is not None:
                vouched += 1
                parsed = parse_record(LOC, value)
                assert parsed.diagnostics == [] and parsed.record is not None

    check()
    assert vouched > EXAMPLES // 40, "the strategy must reach the typed path now and then"
