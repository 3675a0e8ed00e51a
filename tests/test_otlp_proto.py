"""`--mode otel`'s hand-written OTLP protobuf, read back by the real protobuf library.

The judge is protobuf itself, in the weave-ref venv (opentelemetry-proto and protobuf, the
pair weave's server parses requests with): a request tracecli encodes must decode to the
message protobuf's JSON parser makes of the same OTLP/JSON (ids hex, as weave's route reads
them), and be the very bytes protobuf writes for it. Inputs: the OpenTelemetry SDK's files
(tests/otel_fixtures, four seeds, with and without content) and hand-made spans for each
field and value type. The chunk body (spans of one resource and scope put together again)
and the answers (partial success, error status) are checked the same way.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.otel_kit import read_lines
from tests.support.servers import weave_ref_python
from tracecli.wire.otel import OtelChunk, otel_chunk, partial_success
from tracecli.wire.otlp_answers import read_response, read_status_message
from tracecli.wire.otlp_proto import encode_request, request_spans, varint
from tracecli.wire.otlp_values import EncodeError

FIXTURES = Path(__file__).parent / "otel_fixtures"
T0 = 1_772_445_245_000_000_000

# Runs in the weave-ref venv: each stdin line {"json": request, "proto": hex} → one line
# {"same_bytes", "same_dict", "got"} (protobuf's reading of tracecli's bytes as a dict).
JUDGE = r"""
import base64, json, sys
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
IDS = {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}
def ids(v):
    if isinstance(v, dict):
        return {k: base64.b64encode(bytes.fromhex(x)).decode()
                if k in IDS and isinstance(x, str) else ids(x) for k, x in v.items()}
    return [ids(x) for x in v] if isinstance(v, list) else v
for line in sys.stdin:
    case = json.loads(line)
    mine = bytes.fromhex(case["proto"])
    want = ExportTraceServiceRequest()
    if case["json"] is not None:
        json_format.ParseDict(ids(case["json"]), want, ignore_unknown_fields=True)
    got = ExportTraceServiceRequest.FromString(mine)
    print(json.dumps({
        "same_bytes": want.SerializeToString() == mine,
        "same_dict": json_format.MessageToDict(want) == json_format.MessageToDict(got),
        "got": json_format.MessageToDict(got, preserving_proto_field_name=True),
    }))
"""


def judge(cases: list[tuple[Any, bytes]]) -> list[dict[str, Any]]:
    """Protobuf's verdict on each (OTLP/JSON request or None, tracecli's bytes)."""
    python = weave_ref_python()
    stdin = b"".join(orjson.dumps({"json": j, "proto": p.hex()}) + b"\n" for j, p in cases)
    r = subprocess.run(
        [str(python), "-c", JUDGE], input=stdin, capture_output=True, timeout=120, check=False
    )
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return [orjson.loads(line) for line in r.stdout.splitlines()]


def _kv(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


EDGE_ATTRIBUTES = [
    _kv("s", {"stringValue": "héllo ✓"}),
    _kv("empty", {"stringValue": ""}),
    _kv("no", {"boolValue": False}),
    _kv("yes", {"boolValue": True}),
    _kv("zero", {"intValue": "0"}),
    _kv("neg", {"intValue": "-1"}),
    _kv("min", {"intValue": str(-(2**63))}),
    _kv("max", {"intValue": str(2**63 - 1)}),
    _kv("num", {"intValue": 42}),
    _kv("flt-int", {"intValue": 7.0}),
    _kv("d", {"doubleValue": 1.5}),
    _kv("d0", {"doubleValue": 0}),
    _kv("dneg0", {"doubleValue": -0.0}),
    _kv("nan", {"doubleValue": "NaN"}),
    _kv("inf", {"doubleValue": "Infinity"}),
    _kv("ninf", {"doubleValue": "-Infinity"}),
    _kv("big", {"doubleValue": 1e308}),
    _kv("b", {"bytesValue": _b64(b"\x00\xff\x80bytes")}),
    _kv("b-empty", {"bytesValue": ""}),
    _kv(
        "arr",
        {
            "arrayValue": {
                "values": [
                    {"intValue": "-5"},
                    {"stringValue": "x"},
                    {"arrayValue": {"values": [{"boolValue": True}]}},
                    {"kvlistValue": {"values": [_kv("k", {"doubleValue": 2.5})]}},
                ]
            }
        },
    ),
    _kv("arr-empty", {"arrayValue": {}}),
    _kv(
        "kv",
        {
            "kvlistValue": {
                "values": [
                    _kv(
                        "inner",
                        {"kvlistValue": {"values": [_kv("deep", {"bytesValue": _b64(b"\x01")})]}},
                    )
                ]
            }
        },
    ),
    _kv("kv-empty", {"kvlistValue": {"values": []}}),
    _kv("", {"stringValue": "empty key"}),
    _kv("unset", {}),
    {"key": "no-value"},
    _kv("ünïcode-key", {"stringValue": "ascii"}),
]


def _span(**fields: Any) -> dict[str, Any]:
    base = {
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "name": "edge",
        "startTimeUnixNano": str(T0),
        "endTimeUnixNano": str(T0 + 1),
    }
    return {**base, **fields}


def _request(*spans: dict[str, Any], **rs: Any) -> dict[str, Any]:
    return {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": list(spans)}], **rs}]}


EDGE_REQUESTS: list[dict[str, Any]] = [
    _request(_span(attributes=EDGE_ATTRIBUTES)),
    _request(_span(parentSpanId="", kind=0, status={})),  # no parent, defaults
    _request(
        _span(
            parentSpanId="00f067aa0ba902b7",
            kind="SPAN_KIND_CLIENT",
            traceState="k=v",
            flags=257,
            droppedAttributesCount=3,
            droppedEventsCount=4,
            droppedLinksCount=5,
            status={"code": 2, "message": "boom"},
            events=[
                {
                    "timeUnixNano": str(T0 + 5),
                    "name": "exception",
                    "attributes": EDGE_ATTRIBUTES,
                    "droppedAttributesCount": 1,
                },
                {"name": "no time"},
                {},
            ],
            links=[
                {
                    "traceId": "0af7651916cd43dd8448eb211c80319c",
                    "spanId": "00f067aa0ba902b7",
                    "traceState": "a=b",
                    "flags": 1,
                    "droppedAttributesCount": 2,
                    "attributes": [_kv("l", {"intValue": "-9"})],
                },
                {},
            ],
        )
    ),
    _request(_span(status={"code": "STATUS_CODE_ERROR", "message": ""}, kind=5)),
    # the proto field names, as protobuf's JSON parser also takes them
    {
        "resource_spans": [
            {
                "resource": {
                    "attributes": [{"key": "k", "value": {"int_value": "-3"}}],
                    "dropped_attributes_count": 2,
                },
                "schema_url": "https://r",
                "scope_spans": [
                    {
                        "scope": {"name": "sc", "version": "1.0", "dropped_attributes_count": 1},
                        "schema_url": "https://s",
                        "spans": [
                            {
                                "trace_id": "0AF7651916CD43DD8448EB211C80319C",
                                "span_id": "B7AD6B7169203331",
                                "parent_span_id": "00f067aa0ba902b7",
                                "name": "snake",
                                "start_time_unix_nano": T0,
                                "end_time_unix_nano": str(2**64 - 1),
                                "trace_state": "x",
                                "dropped_events_count": 1,
                                "attributes": [
                                    {
                                        "key": "a",
                                        "value": {
                                            "array_value": {
                                                "values": [
                                                    {"bytes_value": _b64(b"z")},
                                                    {"double_value": "-Infinity"},
                                                ]
                                            }
                                        },
                                    }
                                ],
                            }
                        ],
                    }
                ],
            }
        ]
    },
    # a resource and scope with everything, unknown fields (ignored), nulls (absent)
    {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [_kv("service.name", {"stringValue": "svc"})],
                    "entityRefs": [
                        {
                            "schemaUrl": "u",
                            "type": "service",
                            "idKeys": ["service.name"],
                            "descriptionKeys": ["d"],
                        }
                    ],
                    "somethingNew": 1,
                },
                "schemaUrl": "https://opentelemetry.io/schemas/1.30.0",
                "scopeSpans": [
                    {
                        "scope": {"name": "a", "attributes": [_kv("x", {"boolValue": False})]},
                        "spans": [
                            _span(name=None, traceState=None, events=None, futureField={"a": 1})
                        ],
                    },
                    {"scope": None, "spans": []},
                    {
                        "spans": [
                            _span(
                                spanId="b7ad6b7169203332",
                                attributes=[
                                    {"key": "k", "value": {"stringValue": "v", "unknownValue": 1}}
                                ],
                            )
                        ]
                    },
                ],
            },
            {"scopeSpans": []},
        ]
    },
]


def test_varint_is_protobufs() -> None:
    assert varint(0) == b"\x00"
    assert varint(1) == b"\x01"
    assert varint(300) == b"\xac\x02"
    assert varint(-1) == b"\xff" * 9 + b"\x01"  # int64 -1: ten bytes, two's complement
    assert len(varint(-(2**63))) == 10
    assert varint(2**64 - 1) == b"\xff" * 9 + b"\x01"


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.jsonl*")))
def test_sdk_files_encode_as_protobuf_writes_them(name: str) -> None:
    requests = [orjson.loads(line) for line in read_lines(FIXTURES / name)]
    verdicts = judge([(r, encode_request(r)) for r in requests])
    assert len(verdicts) == len(requests)
    for n, v in enumerate(verdicts):
        assert v["same_dict"] and v["same_bytes"], f"{name} line {n + 1}"


def test_edge_spans_encode_as_protobuf_writes_them() -> None:
    verdicts = judge([(r, encode_request(r)) for r in EDGE_REQUESTS])
    for n, v in enumerate(verdicts):
        assert v["same_dict"] and v["same_bytes"], f"edge request {n}: {v['got']}"
    first = verdicts[0]["got"]["resource_spans"][0]["scope_spans"][0]["spans"][0]
    attrs = {kv.get("key", ""): kv.get("value") for kv in first["attributes"]}
    assert attrs["neg"] == {"int_value": "-1"} and attrs["min"] == {"int_value": str(-(2**63))}
    assert attrs["nan"] == {"double_value": "NaN"} and attrs["ninf"] == {
        "double_value": "-Infinity"
    }
    assert attrs["empty"] == {"string_value": ""} and attrs["no"] == {"bool_value": False}
    assert attrs["b"] == {"bytes_value": _b64(b"\x00\xff\x80bytes")}
    assert attrs["arr-empty"] == {"array_value": {}} and attrs["unset"] == {}
    second = verdicts[1]["got"]["resource_spans"][0]["scope_spans"][0]["spans"][0]
    assert "parent_span_id" not in second and "status" in second


def _one_span_items(lines: list[bytes], project: str) -> list[dict[str, Any]]:
    """Every span of the lines as upload's items carry it: a one-span request."""
    items = []
    for line in lines:
        for rs in orjson.loads(line)["resourceSpans"]:
            shell = {k: v for k, v in rs.items() if k != "scopeSpans"}
            for ss in rs["scopeSpans"]:
                sshell = {k: v for k, v in ss.items() if k != "spans"}
                for span in ss["spans"]:
                    scoped = {**shell, "scopeSpans": [{**sshell, "spans": [span]}]}
                    request = {"resourceSpans": [scoped]}
                    items.append({"project": project, "request": request})
    return items


def _merged(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The request a chunk of items stands for: the spans of one resource and scope
    together, resources and scopes in the order first met (what the JSON body was)."""
    resources: dict[bytes, dict[str, Any]] = {}
    scopes: dict[tuple[bytes, bytes], list[Any]] = {}
    for item in items:
        for rs in item["request"]["resourceSpans"]:
            shell = {k: v for k, v in rs.items() if k != "scopeSpans"}
            rkey = orjson.dumps(shell, option=orjson.OPT_SORT_KEYS)
            resource = resources.setdefault(rkey, {**shell, "scopeSpans": []})
            for ss in rs["scopeSpans"]:
                sshell = {k: v for k, v in ss.items() if k != "spans"}
                skey = (rkey, orjson.dumps(sshell, option=orjson.OPT_SORT_KEYS))
                if skey not in scopes:
                    scopes[skey] = []
                    resource["scopeSpans"].append({**sshell, "spans": scopes[skey]})
                scopes[skey].extend(ss["spans"])
    return {"resourceSpans": list(resources.values())}


def test_a_chunk_is_one_request_with_its_spans_regrouped() -> None:
    lines = read_lines(FIXTURES / "agent-seed2.jsonl.gz") + read_lines(
        FIXTURES / "conventions.jsonl"
    )
    items = _one_span_items(lines, "acme/x")
    chunk = otel_chunk(items)
    assert not chunk.refused and len(chunk.keys) == len(items)
    first = items[0]["request"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert chunk.keys[0] == ("acme/x", first["spanId"])
    every = chunk.sendable()
    some = every[1::3]
    cases = [
        (_merged(items), chunk.body(every)),
        (_merged([items[n] for n in some]), chunk.body(some)),
    ]
    verdicts = judge(cases)
    assert all(v["same_dict"] and v["same_bytes"] for v in verdicts)


def test_what_cannot_be_encoded_names_its_field_and_refuses_only_its_item() -> None:
    bad_int = _request(_span(attributes=[_kv("n", {"intValue": "12a"})]))
    with pytest.raises(EncodeError) as err:
        request_spans(bad_int)
    field = "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.intValue"
    assert err.value.field == field
    for bad in (
        _span(droppedEventsCount="many"),
        _span(droppedLinksCount=-1),
        _span(spanId="xyz"),
        _span(attributes=[_kv("two", {"stringValue": "a", "boolValue": True})]),
        _span(attributes=[_kv("big", {"intValue": str(2**63)})]),
        _span(events=[None]),
        _span(name="\ud800"),
    ):
        with pytest.raises(EncodeError):
            request_spans(_request(bad))
    good = {"project": "acme/x", "request": _request(_span())}
    chunk: OtelChunk = otel_chunk([good, {"project": "acme/x", "request": bad_int}, good])
    assert list(chunk.refused) == [1] and "intValue" in chunk.refused[1]
    assert chunk.sendable() == [0, 2]


ANSWERS = r"""
import sys
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from google.rpc.status_pb2 import Status
res = ExportTraceServiceResponse()
res.partial_success.rejected_spans = 300
res.partial_success.error_message = "spans refusés"
empty = ExportTraceServiceResponse().SerializeToString()
status = Status(code=3, message="bad span").SerializeToString()
sys.stdout.write("|".join(b.hex() for b in (res.SerializeToString(), empty, status)))
"""


def test_protobuf_answers_are_read() -> None:
    python = weave_ref_python()
    r = subprocess.run(
        [str(python), "-c", ANSWERS], capture_output=True, timeout=60, check=True, text=True
    )
    partial, empty, status = (bytes.fromhex(x) for x in r.stdout.split("|"))
    got = read_response(partial)
    assert got is not None and got.rejected_spans == 300 and got.error_message == "spans refusés"
    assert partial_success(partial) == got
    assert partial_success(empty) is None and read_response(empty) == (0, "")
    assert read_status_message(status) == "bad span"
    assert read_status_message(b"\xff") is None  # not a message: no words from it
    json_answer = {"partialSuccess": {"rejectedSpans": "2", "errorMessage": "no"}}
    assert partial_success(json_answer) == (2, "no")
    assert partial_success({}) is None and partial_success(None) is None
