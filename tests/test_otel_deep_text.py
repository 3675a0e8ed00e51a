"""JSON text in an OTLP string attribute nested deep enough that weave's server, which loads
it as JSON, stores a call it cannot read back (a warning), or fails to store it (an error).

weave loads an attribute string that starts with `[` or `{` as JSON; text nested N levels
lies N + 2 levels deep in the call's `otel_dump` (`otel_dump.attributes.<key>`, one more
per dot of the key). The limits are those of a Weave JSONL record
(`tracecli.wire.wideints.deep_fields`), applied to the converted call. Measured on
weave-ref (weave 0.52.42): `input.value` text of 252 levels reads back, 253 does not
(the call's `otel_dump`: 255 levels, 256);
`calls/complete` fails (500) from 487 levels, `/otel/v1/traces` from about 492.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.servers import ServerHandle
from tests.support.uploadkit import read_back, run_cli
from tracecli.diagnostics import Location
from tracecli.otel.read import SpanAt, spans_of_request
from tracecli.otel.to_weave import span_to_call
from tracecli.wire.wideints import READ_DEPTH, READ_DEPTH_DEFAULT, STORE_DEPTH, depth

pytest_plugins = ["tests.support.servers"]

T0 = 1_772_445_245_000_000_000
SPAN = "resourceSpans[0].scopeSpans[0].spans[0]"


def text(levels: int) -> str:
    return "[" * levels + "]" * levels


def request(
    n: int, deep: dict[str, Any] | None = None, where: str = "span", project: str = "p"
) -> dict[str, Any]:
    """A one-span request (span id n) of project e/`project`; `deep`: an extra attribute at
    `where`."""
    span: dict[str, Any] = {
        "traceId": f"{n:032x}", "spanId": f"{n:016x}", "name": "op", "kind": 1,
        "startTimeUnixNano": str(T0 + n), "endTimeUnixNano": str(T0 + n + 1000),
        "attributes": [{"key": "fine", "value": {"stringValue": "yes"}}],
    }  # fmt: skip
    resource: dict[str, Any] = {"attributes": [
        {"key": "wandb.entity", "value": {"stringValue": "e"}},
        {"key": "wandb.project", "value": {"stringValue": project}},
    ]}  # fmt: skip
    if deep is not None:
        if where == "span":
            span["attributes"].append(deep)
        elif where == "resource":
            resource["attributes"].append(deep)
        else:
            span["events"] = [{"timeUnixNano": str(T0 + n), "name": "e", "attributes": [deep]}]
    scope_spans = [{"scope": {"name": "s"}, "spans": [span]}]
    return {"resourceSpans": [{"resource": resource, "scopeSpans": scope_spans}]}


def attr(key: str, levels: int) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": text(levels)}}


def write(path: Path, *values: dict[str, Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(v) + b"\n" for v in values))
    return path


def dump_levels(value: dict[str, Any]) -> int:
    (item,) = spans_of_request(Location("f", 1), value)
    assert isinstance(item, SpanAt)
    return depth(span_to_call(item.span, "e/p")["otel_dump"])[0]


def test_the_calls_nesting_is_the_texts_plus_where_it_lies() -> None:
    assert dump_levels(request(1, attr("deep", 300))) == 302
    assert dump_levels(request(1, attr("input.value", 300))) == 303


def diagnostics(path: Path, tmp_path: Path, *args: str) -> tuple[int, list[dict[str, Any]]]:
    r = run_cli(*args, str(path), "-f", "json", cwd=tmp_path)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, orjson.loads(r.stdout)["diagnostics"]


# the call's otel_dump: past it, stored but not read back
LIMIT = READ_DEPTH.get("otel_dump", READ_DEPTH_DEFAULT)
FIELD = f"{SPAN}.attributes[1].value"


def test_validate_warns_past_the_read_limit_and_refuses_past_the_store_limit(
    tmp_path: Path,
) -> None:
    warn, error = LIMIT - 1, STORE_DEPTH - 1  # text levels: the call's otel_dump is 2 deeper
    path = write(tmp_path / "deep.jsonl",
                 request(1, attr("deep", warn - 1)),  # read back: nothing said
                 request(2, attr("deep", warn)),
                 request(3, attr("gen_ai.input.messages", error + 1)),
                 request(4, attr("deep", warn), "resource"),
                 request(5, attr("deep", warn), "event"))  # fmt: skip
    code, said = diagnostics(path, tmp_path, "validate")
    got = [(d["line"], d["severity"], d["field"]) for d in said]
    assert got == [
        (2, "warning", FIELD),
        (3, "error", FIELD),
        (4, "warning", "resourceSpans[0].resource.attributes"),
        (5, "warning", f"{SPAN}.events[0].attributes"),
    ], said
    assert code == 1
    assert "cannot read the project back" in said[0]["message"]
    assert "otel_dump.attributes.deep" in said[0]["message"]
    assert "fails (500)" in said[1]["message"]


def test_convert_writes_the_warned_call_and_leaves_out_the_refused_one(tmp_path: Path) -> None:
    path = write(tmp_path / "deep.jsonl", request(1, attr("input.value", LIMIT)),
                 request(2, attr("input.value", STORE_DEPTH)), request(3))  # fmt: skip
    out = tmp_path / "calls.jsonl"
    r = run_cli("convert", str(path), "--to", "weave", "-o", str(out), cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert [orjson.loads(x)["id"] for x in out.read_bytes().splitlines()] == [
        f"{1:016x}", f"{3:016x}"]  # fmt: skip
    assert f"deep.jsonl:1: warning: {FIELD}" in r.stderr, r.stderr
    assert f"deep.jsonl:2: error: {FIELD}" in r.stderr, r.stderr


def upload(path: Path, url: str, project: str, tmp_path: Path, *more: str) -> dict[str, Any]:
    r = run_cli("upload", str(path), "--server", url, "--api-key", "x", "-p", project,
                "-f", "json", *more, cwd=tmp_path)  # fmt: skip
    assert r.stdout, r.stderr
    report: dict[str, Any] = orjson.loads(r.stdout)
    assert r.returncode == 1 and (report["uploaded"], report["rejected"]) == (2, 1), report
    said = [(d["line"], d["severity"], d["field"]) for d in report["diagnostics"]]
    assert said == [(1, "warning", FIELD), (2, "error", FIELD)], report
    return report


def deep_file(path: Path, base: int) -> Path:
    """A span weave's server stores but cannot read back, one it fails on, a fine one."""
    return write(path, request(base + 1, attr("deep", LIMIT)),
                 request(base + 2, attr("deep", STORE_DEPTH)), request(base + 3))  # fmt: skip


def test_upload_stores_the_warned_span_and_refuses_the_other(
    serve_server: ServerHandle, tmp_path: Path
) -> None:
    upload(deep_file(tmp_path / "deep.jsonl", 10), serve_server.url, "e/calls", tmp_path)


@pytest.mark.slow  # starts weave-ref
def test_the_verdicts_are_weave_refs(weave_ref_server: ServerHandle, tmp_path: Path) -> None:
    """Around each limit, the converted call as weave-ref takes it (`calls/complete`) and
    reads it back, against tracecli's verdict; `--mode otel` says what the other modes say."""
    url = weave_ref_server.url
    for n, levels in enumerate((LIMIT - 3, LIMIT - 2, STORE_DEPTH - 3, STORE_DEPTH - 2), 30):
        value = request(n, attr("input.value", levels), project=f"l{levels}")
        path = write(tmp_path / f"l{levels}.jsonl", value)
        code, said = diagnostics(path, tmp_path, "validate")
        r = run_cli("upload", str(path), "--server", url, "--api-key", "x", "-p",
                    f"e/l{levels}", "-f", "json", cwd=tmp_path)  # fmt: skip
        stored = orjson.loads(r.stdout)["uploaded"] if r.stdout else None
        if not said:  # stored and read back
            assert code == 0 and stored == 1 and len(read_back(url, f"e/l{levels}")) == 1
        elif said[0]["severity"] == "warning":  # stored, the project not read back
            assert stored == 1 and read_back(url, f"e/l{levels}") == [], r.stdout + r.stderr
        else:
            assert code == 1 and stored == 0, r.stdout + r.stderr
    otel = deep_file(tmp_path / "otel.jsonl", 40)
    upload(otel, url, "e/otel", tmp_path, "--mode", "otel")
