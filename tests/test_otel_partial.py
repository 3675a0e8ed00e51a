"""`--mode otel` when the server takes a request but rejects some of its spans.

weave's own server answers `partialSuccess.rejectedSpans` only for spans tracecli's OTLP
checks refuse before sending (both `a` and `a.b`), so its answer cannot be provoked through
tracecli. A small real OTLP server on 127.0.0.1 stands in for a Weave deployment that
rejects more: it stores every span but those named "reject me", answers with the count (as
OTLP does, without saying which), and answers `/calls/stream_query` from what it stored.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

from tests.support.uploadkit import run_cli

pytestmark = pytest.mark.slow  # an upload through a refusing server: out of the fast loop

T0 = 1_772_445_245_000_000_000


class _Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: dict[str, dict[str, str]] = {}  # span id → its call
        self.posts = 0


def _handler(store: _Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/calls/stream_query":
                with store.lock:
                    rows = [store.calls[i] for i in data["filter"]["call_ids"] if i in store.calls]
                self._answer(b"".join(orjson.dumps(r) + b"\n" for r in rows), "application/jsonl")
                return
            project = self.headers["project_id"]
            rejected = 0
            with store.lock:
                store.posts += 1
                for rs in data["resourceSpans"]:
                    for ss in rs["scopeSpans"]:
                        for span in ss["spans"]:
                            if span["name"] == "reject me":
                                rejected += 1
                                continue
                            store.calls[span["spanId"]] = {
                                "id": span["spanId"], "project_id": project, "ended_at": "x",
                            }  # fmt: skip
            answer = {}
            if rejected:
                why = "span names may not say so"
                answer = {"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": why}}
            self._answer(orjson.dumps(answer))

    return Handler


@pytest.fixture
def otlp_server() -> Iterator[tuple[str, _Store]]:
    store = _Store()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(store))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", store
    finally:
        server.shutdown()
        server.server_close()


def test_spans_the_server_rejects_go_to_the_rejected_file(
    otlp_server: tuple[str, _Store], tmp_path: Path
) -> None:
    url, store = otlp_server
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
    assert sorted(store.calls) == sorted(s["spanId"] for s in spans if s["name"] == "ok")
    rejected = [orjson.loads(x) for x in (tmp_path / "tracecli-rejected.jsonl").read_bytes()
                .splitlines()]  # fmt: skip
    names = [r["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"] for r in rejected]
    assert names == ["reject me"] * 3
    assert all("span names may not say so" in r["_tracecli"]["reason"] for r in rejected)
    # the lines with a rejected span are not journaled: they are sent again, the others not
    posts = store.posts
    again = orjson.loads(run_cli(*args, cwd=tmp_path).stdout)
    assert again["rejected"] == 3 and again["skipped"] == 0 and store.posts > posts, again
