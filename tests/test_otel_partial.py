"""`--mode otel` when the server takes a request but rejects some of its spans.

weave's own server answers `partialSuccess.rejectedSpans` only for spans tracecli's OTLP
checks refuse before sending (both `a` and `a.b`), so its answer cannot be provoked through
tracecli. A small real OTLP server on 127.0.0.1 stands in for a Weave deployment that
rejects more: it reads each request with the real protobuf library (the weave-ref venv's
opentelemetry-proto), stores every span but those named "reject me", answers with the count
(as OTLP does, without saying which) in protobuf or in JSON, refuses a request holding a
span named "bad request" with a 400 and a protobuf `google.rpc.Status`, and answers
`/calls/stream_query` from what it stored.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.servers import free_port, weave_ref_python
from tests.support.uploadkit import run_cli

pytestmark = pytest.mark.slow  # an upload through a refusing server: out of the fast loop

T0 = 1_772_445_245_000_000_000

SERVER = r"""
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest, ExportTraceServiceResponse)

port, answer_as = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
calls, posts = {}, [0]

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self, body, ctype="application/json"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with lock:
            self._answer(json.dumps({"calls": sorted(calls), "posts": posts[0]}).encode())

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/calls/stream_query":
            with lock:
                ids = json.loads(raw)["filter"]["call_ids"]
                rows = [calls[i] for i in ids if i in calls]
            self._answer(b"".join(json.dumps(r).encode() + b"\n" for r in rows),
                         "application/jsonl")
            return
        assert self.headers["Content-Type"] == "application/x-protobuf"
        request = ExportTraceServiceRequest.FromString(raw)
        names = {s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans}
        if "bad request" in names:  # refused whole, as OTLP/HTTP says: a google.rpc.Status
            why = "a span named 'bad request' is refused"
            body = Status(code=3, message=why).SerializeToString()
            self.send_response(400)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        project = self.headers["project_id"]
        rejected = 0
        with lock:
            posts[0] += 1
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        if span.name == "reject me":
                            rejected += 1
                            continue
                        sid = span.span_id.hex()
                        calls[sid] = {"id": sid, "project_id": project, "ended_at": "x"}
        res = ExportTraceServiceResponse()
        if rejected:
            res.partial_success.rejected_spans = rejected
            res.partial_success.error_message = "span names may not say so"
        if answer_as == "json":
            self._answer(json.dumps(json_format.MessageToDict(res)).encode())
        else:
            self._answer(res.SerializeToString(), "application/x-protobuf")

ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


class Stand:
    """The stand-in server: its address and what it stored."""

    def __init__(self, url: str) -> None:
        self.url = url

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(self.url + "/state", timeout=10).json()
        return data


@pytest.fixture(params=["protobuf", "json"])
def otlp_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stand]:
    python = weave_ref_python()
    port = free_port()
    script = tmp_path / "otlp_stand_in.py"
    script.write_text(SERVER)
    proc = subprocess.Popen(
        [str(python), str(script), str(port), request.param], stderr=sys.stderr.fileno()
    )
    stand = Stand(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                stand.state()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the stand-in OTLP server did not start") from None
                time.sleep(0.1)
        yield stand
    finally:
        proc.kill()
        proc.wait(10)


def test_spans_the_server_rejects_go_to_the_rejected_file(
    otlp_server: Stand, tmp_path: Path
) -> None:
    url = otlp_server.url
    spans = [
        {"traceId": "ab" * 16, "spanId": f"{n + 1:016x}",
         "name": "reject me" if n % 4 == 1 else "ok",
         "startTimeUnixNano": str(T0 + n), "endTimeUnixNano": str(T0 + n + 1000)}
        for n in range(12)
    ]  # fmt: skip
    lines = [
        orjson.dumps({"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": spans[i:i+4]}]}]})
        for i in range(0, 12, 4)
    ]  # fmt: skip
    src = tmp_path / "spans.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    args = ("upload", str(src), "--server", url, "--api-key", "x", "-p", "acme/partial",
            "--mode", "otel", "--chunk-size", "5", "-f", "json")  # fmt: skip
    r = run_cli(*args, cwd=tmp_path)
    report = orjson.loads(r.stdout)
    assert r.returncode == 1, report
    assert report["uploaded"] == 9 and report["rejected"] == 3, report
    state = otlp_server.state()
    assert state["calls"] == sorted(s["spanId"] for s in spans if s["name"] == "ok")
    rejected = [orjson.loads(x) for x in (tmp_path / "tracecli-rejected.jsonl").read_bytes()
                .splitlines()]  # fmt: skip
    names = [r["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"] for r in rejected]
    assert names == ["reject me"] * 3
    assert all("span names may not say so" in r["_tracecli"]["reason"] for r in rejected)
    # the lines with a rejected span are not journaled: they are sent again, the others not
    posts = state["posts"]
    again = orjson.loads(run_cli(*args, cwd=tmp_path).stdout)
    assert again["rejected"] == 3 and again["skipped"] == 0, again
    assert otlp_server.state()["posts"] > posts


def test_a_span_not_encodable_or_refused_whole_goes_alone_to_the_rejected_file(
    otlp_server: Stand, tmp_path: Path
) -> None:
    """A field the OTLP checks do not read, holding what protobuf cannot carry, and a
    request the server refuses with a protobuf status: only that span is rejected, with
    its field path or the server's own words."""
    spans = [
        {"traceId": "cd" * 16, "spanId": f"{n + 1:016x}", "name": f"ok {n}",
         "startTimeUnixNano": str(T0 + n), "endTimeUnixNano": str(T0 + n + 1000)}
        for n in range(6)
    ]  # fmt: skip
    spans[1]["droppedEventsCount"] = "many"
    spans[4]["name"] = "bad request"
    line = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": spans}]}]}
    src = tmp_path / "spans.jsonl"
    src.write_bytes(orjson.dumps(line) + b"\n")
    r = run_cli("upload", str(src), "--server", otlp_server.url, "--api-key", "x",
                "-p", "acme/enc", "--mode", "otel", "-f", "json", cwd=tmp_path)  # fmt: skip
    report = orjson.loads(r.stdout)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert report["uploaded"] == 4 and report["rejected"] == 2, report
    assert otlp_server.state()["calls"] == sorted(
        s["spanId"] for n, s in enumerate(spans) if n not in (1, 4)
    )
    rejected = [orjson.loads(x) for x in (tmp_path / "tracecli-rejected.jsonl").read_bytes()
                .splitlines()]  # fmt: skip
    why = {r["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"]: r["_tracecli"]["reason"]
           for r in rejected}  # fmt: skip
    assert "droppedEventsCount" in why[spans[1]["spanId"]], why
    said = why[spans[4]["spanId"]]
    assert "a span named 'bad request' is refused" in said, why
    assert said.isprintable(), said  # the message read out of the status, not its bytes
