"""The fast path holds for every common way of writing a trace file, and stays exact.

Files are written with `json.dumps` defaults (spaces after separators, whole-second
times), compactly with fractions, with "+00:00" offsets, keys in any order and optional
fields spelled out as null. Every style must reach the fast path (each call of a block
comes back as one pair, which only the fast path makes) and give the same facts; and
the string comparison that pairing uses instead of parsing two times must order them
as their instants do.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.sweeps import examples
from tracecli.check.facts import ended_before, timestamp
from tracecli.check.pairpack import unpack_pairs
from tracecli.schema.fastcheck import same_layout
from tracecli.upload.validate_blocks import check_lines

UTC = datetime.UTC
T0 = datetime.datetime(2026, 3, 2, 9, 14, 5, 250000, tzinfo=UTC)


def _calls(n: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    out = []
    for i in range(n):
        cid = f"{i:08x}-0000-4000-8000-000000000000"
        start = {
            "project_id": "acme/agents",
            "id": cid,
            "op_name": "agent.run",
            "trace_id": "6513270e-269e-4d37-b2a7-4de452e6b438",
            "parent_id": None,
            "started_at": T0 + datetime.timedelta(seconds=i),
            "attributes": {"depth": 0},
            "inputs": {"q": "hi", "k": 5},
        }
        end = {
            "project_id": "acme/agents",
            "id": cid,
            "ended_at": T0 + datetime.timedelta(seconds=i + 1.5),
            "exception": None,
            "output": {"answer": "x"},
            "summary": {"usage": {"m": {"prompt_tokens": 3, "requests": 1}}},
        }
        out.append((start, end))
    return out


def _time(t: datetime.datetime, style: str) -> str:
    if style == "dumps":
        return t.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    if style == "offsets":
        return t.isoformat(timespec="milliseconds")
    if style == "zone":
        return t.astimezone(datetime.timezone(datetime.timedelta(hours=-5))).isoformat(sep=" ")
    return t.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _line(kind: str, body: dict[str, Any], style: str) -> bytes:
    rec: dict[str, Any] = {"type": kind}
    for k, v in body.items():
        rec[k] = _time(v, style) if isinstance(v, datetime.datetime) else v
    if style == "dumps":
        return json.dumps(rec).encode()
    if style in ("offsets", "zone"):
        nulls = ("wb_run_id", "wb_run_step", "otel_dump") if kind == "start" else ()
        rec.update(dict.fromkeys(nulls))
        return orjson.dumps(rec, option=orjson.OPT_SORT_KEYS)
    return orjson.dumps(rec)


STYLES = ("compact", "dumps", "offsets", "zone")


def test_every_style_takes_the_fast_path() -> None:
    calls = _calls(20)
    facts = {}
    for style in STYLES:
        lines = [_line("start", s, style) for s, _ in calls]
        lines += [_line("end", e, style) for _, e in calls]
        got = check_lines(b"\n".join(lines) + b"\n", "t.jsonl", True)
        assert (got.lines, got.records, got.entries) == (40, 40, []), style
        pairs = unpack_pairs(got.pairs)
        assert len(pairs) == 20, style  # every call paired: each record took the fast path
        assert not any(p.ended_first for p in pairs)  # none ends before it starts
        facts[style] = [
            (p.line, p.id, p.trace_id, p.parent_id, timestamp(p.started), p.end_line) for p in pairs
        ]
    want = facts["compact"]
    for style in ("offsets", "zone"):
        assert facts[style] == want, style
    # whole seconds: the same calls at the same lines, their times cut to the second
    assert [f[:4] + f[5:] for f in facts["dumps"]] == [f[:4] + f[5:] for f in want]


def test_an_end_before_its_start_is_found_in_every_style() -> None:
    ((start, end),) = _calls(1)
    end = {**end, "ended_at": start["started_at"] - datetime.timedelta(seconds=2)}
    for style in STYLES:
        data = _line("start", start, style) + b"\n" + _line("end", end, style) + b"\n"
        (pair,) = unpack_pairs(check_lines(data, "t.jsonl", True).pairs)
        assert pair.ended_first, style


zones = st.sampled_from(["Z", "+00:00", "-00:00", "+05:30", "-08:00", "+14:00"])
stamps = st.builds(
    lambda d, digits, zone, sep: _canonical(d, digits, zone, sep),
    st.datetimes(
        min_value=datetime.datetime(1000, 1, 2), max_value=datetime.datetime(9999, 12, 30)
    ),
    st.integers(0, 6),
    zones,
    st.sampled_from(["T", " "]),
)


def _canonical(d: datetime.datetime, digits: int, zone: str, sep: str) -> str:
    text = d.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    if digits:
        text += "." + f"{d.microsecond:06d}"[:digits]
    return text + zone


@pytest.mark.slow
@settings(max_examples=examples(500), deadline=None)
@given(a=stamps, b=stamps)
def test_same_layout_strings_order_as_their_instants(a: str, b: str) -> None:
    before = timestamp(a) < timestamp(b)  # type: ignore[operator]
    if same_layout(a, b):
        assert (a < b) == before
    assert ended_before(a, b) == before


@settings(max_examples=examples(200), deadline=None)
@given(a=stamps, zone=zones)
def test_same_layout_needs_one_zone(a: str, zone: str) -> None:
    b = a[:-1] + zone if a.endswith("Z") else a[:-6] + zone
    assert same_layout(a, b) == (a == b or (len(a) == len(b) and a[-6:] == b[-6:]))
