"""OTLP attribute values nested past what weave's server reads are refused, in every mode.

weave's `/otel/v1/traces` reads the request with protobuf, which refuses a message nested
more than 100 deep below the request: the whole request is answered 400. An attribute's
`arrayValue` adds two messages per level, a `kvlistValue` three, so a span attribute holds
47 arrays (31 key/value lists) at most; a resource one level more, an event or link one
less. tracecli refuses such a span (a resource or scope: its spans) with one line naming
the attribute, in `validate`, `convert` and `upload` (every mode); the rest of the file
goes. The table below was measured on weave-ref with protobuf bodies (what weave documents
and `--mode otel` sends; weave-ref's OTLP/JSON reader, protobuf's JSON parser, counts the
request itself too and refuses one level sooner where the count ends at exactly 101: a
resource's 48 arrays, an event's or link's 47); the slow test holds tracecli's verdicts to
weave-ref's, at each boundary and one past it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.servers import ServerHandle
from tests.support.uploadkit import read_back, run_cli
from tracecli.diagnostics import Location
from tracecli.otel.read import Unread, spans_of_request
from tracecli.wire.otlp_proto import encode_request

pytest_plugins = ["tests.support.servers"]

# (where the attribute is, what nests) → the most levels weave's server takes
WEAVE_TAKES = {
    ("span", "array"): 47,
    ("span", "kvlist"): 31,
    ("resource", "array"): 48,
    ("resource", "kvlist"): 32,
    ("scope", "array"): 47,
    ("scope", "kvlist"): 31,
    ("event", "array"): 47,
    ("event", "kvlist"): 31,
    ("link", "array"): 47,
    ("link", "kvlist"): 31,
}
T0 = 1_772_445_245_000_000_000
EVENT_ATTR = "resourceSpans[0].scopeSpans[0].spans[0].events[0].attributes[0].value"


def nested(kind: str, levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"stringValue": "x"}
    for _ in range(levels):
        if kind == "array":
            value = {"arrayValue": {"values": [value]}}
        else:
            value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    return value


def request(n: int, where: str = "span", value: Any = None) -> dict[str, Any]:
    """A one-span request (span id n); `value` as its attribute "deep" at `where`."""
    span: dict[str, Any] = {
        "traceId": f"{n:032x}",
        "spanId": f"{n:016x}",
        "name": "op",
        "kind": 1,
        "startTimeUnixNano": str(T0 + n),
        "endTimeUnixNano": str(T0 + n + 1000),
        "attributes": [{"key": "fine", "value": {"stringValue": "yes"}}],
    }
    resource = {
        "attributes": [
            {"key": "wandb.entity", "value": {"stringValue": "e"}},
            {"key": "wandb.project", "value": {"stringValue": "p"}},
        ]
    }
    scope: dict[str, Any] = {"name": "s"}
    if value is not None:
        pair = {"key": "deep", "value": value}
        if where == "span":
            span["attributes"].append(pair)
        elif where == "resource":
            resource["attributes"].append(pair)
        elif where == "scope":
            scope["attributes"] = [pair]
        elif where == "event":
            span["events"] = [{"timeUnixNano": str(T0 + n), "name": "e", "attributes": [pair]}]
        else:
            span["links"] = [{"traceId": "ab" * 16, "spanId": "cd" * 8, "attributes": [pair]}]
    scope_spans = [{"scope": scope, "spans": [span]}]
    return {"resourceSpans": [{"resource": resource, "scopeSpans": scope_spans}]}


def refusal(value: Any) -> str | None:
    """tracecli's verdict on a line: the field path it refuses, or None."""
    for item in spans_of_request(Location("f.jsonl", 1), value):
        if isinstance(item, Unread):
            return item.diagnostic.field
    return None


def cases() -> list[tuple[str, str, int, bool]]:
    """(where, kind, levels, weave takes it): each boundary and one past it."""
    out = []
    for (where, kind), most in WEAVE_TAKES.items():
        out += [(where, kind, most, True), (where, kind, most + 1, False)]
    return out


def test_values_nested_past_protobuf_are_refused_with_the_attribute() -> None:
    for where, kind, levels, takes in cases():
        field = refusal(request(1, where, nested(kind, levels)))
        if takes:
            assert field is None, (where, kind, levels)
            continue
        assert field is not None, (where, kind, levels)
        attr = {"span": "spans[0].attributes[1]", "resource": "resource.attributes[2]",
                "scope": "scope.attributes[0]", "event": "spans[0].events[0].attributes[0]",
                "link": "spans[0].links[0].attributes[0]"}[where]  # fmt: skip
        assert field.endswith(f"{attr}.value"), field


def write_file(path: Path, deep: dict[str, Any], base: int = 0) -> Path:
    """Three lines: a fine span, `deep`, a fine span (span ids base + 1, 2, 3)."""
    lines = (request(base + 1), deep, request(base + 3))
    path.write_bytes(b"".join(orjson.dumps(v) + b"\n" for v in lines))
    return path


def test_validate_refuses_the_span_in_one_line_and_reads_the_others(tmp_path: Path) -> None:
    path = write_file(tmp_path / "deep.jsonl", request(2, "span", nested("array", 48)))
    r = run_cli("validate", str(path), cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = [x for x in (r.stdout + r.stderr).splitlines() if ": error:" in x]
    assert len(lines) == 1, r.stdout + r.stderr
    assert lines[0].startswith(f"{path}:2: error: ")
    assert "spans[0].attributes[1].value: 48 arrays" in lines[0]
    assert "weave's server" in lines[0] and "400" in lines[0]
    assert "2 calls: 1 error" in r.stdout + r.stderr


@pytest.mark.slow  # starts weave-ref
def test_the_verdicts_are_weave_refs(weave_ref_server: ServerHandle, tmp_path: Path) -> None:
    with httpx.Client(base_url=weave_ref_server.url, trust_env=False, timeout=60) as c:
        for n, (where, kind, levels, takes) in enumerate(cases(), start=10):
            value = request(n, where, nested(kind, levels))
            headers = {"content-type": "application/x-protobuf"}
            got = c.post("/otel/v1/traces", content=encode_request(value), headers=headers)
            assert got.status_code == (200 if takes else 400), (where, kind, levels, got.text)
            assert (refusal(value) is None) == takes, (where, kind, levels)

    # every mode refuses the span before sending (one line naming it), the others go
    url = weave_ref_server.url
    for base, mode in ((100, "otel"), (200, "auto"), (300, "batch")):
        deep = request(base + 2, "event", nested("kvlist", 32))
        path = write_file(tmp_path / f"deep-{mode}.jsonl", deep, base)
        r = run_cli("upload", "--server", url, "--mode", mode, str(path), cwd=tmp_path)
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"{path}:2: error: {EVENT_ATTR}" in r.stdout + r.stderr, r.stdout + r.stderr
        ids = {c["id"] for c in read_back(url, "e/p")}
        assert {f"{base + 1:016x}", f"{base + 3:016x}"} <= ids, mode
        assert f"{base + 2:016x}" not in ids, mode

    path = write_file(tmp_path / "deep.jsonl", request(2, "event", nested("kvlist", 32)))
    field = f"{path}:2: error: {EVENT_ATTR}"

    db = tmp_path / "t.db"
    r = run_cli("upload", "--db", str(db), str(path), cwd=tmp_path)
    assert r.returncode == 1 and field in r.stdout + r.stderr, r.stdout + r.stderr
    with sqlite3.connect(db) as con:
        stored = {row[0] for row in con.execute("select id from calls")}
    assert stored == {f"{1:016x}", f"{3:016x}"}

    out = tmp_path / "calls.jsonl"
    r = run_cli("convert", "--to", "weave", str(path), "-o", str(out), cwd=tmp_path)
    assert r.returncode == 1 and field in r.stdout + r.stderr, r.stdout + r.stderr
    assert [orjson.loads(x)["id"] for x in out.read_bytes().splitlines()] == [
        f"{1:016x}",
        f"{3:016x}",
    ]
