"""`tracecli serve` answers as weave's own server (weave-ref) to the same raw requests: bodies
sent without a JSON content type (what `curl -d` sends), over real sockets, so the headers
are exactly those written here."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import orjson
import pytest

from tests.support.servers import ServerHandle, make_call, start_all, start_serve, start_weave_ref

pytestmark = [pytest.mark.weave_ref]
PROJECT = "acme/ctype"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerHandle]]:
    root = tmp_path_factory.mktemp("ctype")
    ref, serve = start_all(
        partial(start_weave_ref, root / "ref"), partial(start_serve, root / "serve")
    )
    try:
        yield {"weave-ref": ref, "serve": serve}
    finally:
        ref.stop()
        serve.stop()


def raw_post(url: str, path: str, body: bytes, content_type: str | None) -> tuple[int, bytes]:
    """POST with exactly these headers (no client adds a content type of its own)."""
    host, port = url.removeprefix("http://").split(":")
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    head += "Connection: close\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(head.encode() + body)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


CONTENT_TYPES = [
    "application/x-www-form-urlencoded",  # curl -d
    "text/plain",
    "application/jsonl",
    "application/json; charset=utf-8",
    "application/vnd.api+json",
    "APPLICATION/JSON",
]


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
@pytest.mark.parametrize("route", ["/calls/query_stats", "/call/start", "/calls/stream_query"])
def test_a_body_without_a_json_content_type_is_refused_as_weave_does(
    pair: dict[str, ServerHandle], tmp_path: Path, route: str, content_type: str | None
) -> None:
    """weave's server reads a body as JSON only when its content type says JSON: any other
    is a 422 `model_attributes_type` (serve stored such a call, and answered)."""
    if route == "/call/start":
        call = make_call(PROJECT, call_id=str(uuid.uuid4()), duration=None)
        body = orjson.dumps({"start": call})
    else:
        body = orjson.dumps({"project_id": PROJECT, "limit": 1})
    got = {name: raw_post(server.url, route, body, content_type) for name, server in pair.items()}
    statuses = {name: status for name, (status, _) in got.items()}
    assert statuses["serve"] == statuses["weave-ref"], (statuses, got)
    if statuses["weave-ref"] == 422:
        assert orjson.loads(got["serve"][1]) == orjson.loads(got["weave-ref"][1])


def test_a_body_without_a_content_type_is_read_as_json_as_the_weave_sdk_052_needs(
    pair: dict[str, ServerHandle],
) -> None:
    """The weave SDK 0.52 posts calls/complete, upsert_batch and table/create with no content
    type (httpx `data=bytes`): its server read them as JSON. weave-ref's newer FastAPI
    refuses them (422); serve reads them as that SDK's server did."""
    call = make_call(PROJECT, call_id=str(uuid.uuid4()))
    body = orjson.dumps({"batch": [call]})
    status, _ = raw_post(pair["serve"].url, f"/v2/{PROJECT}/calls/complete", body, None)
    assert status == 200
    status, _ = raw_post(pair["weave-ref"].url, f"/v2/{PROJECT}/calls/complete", body, None)
    assert status == 422  # if this changes, serve can follow weave-ref here


def test_an_empty_body_without_a_content_type_is_missing_as_weave_says(
    pair: dict[str, ServerHandle],
) -> None:
    got = {name: raw_post(s.url, "/call/start", b"", None) for name, s in pair.items()}
    assert got["serve"][0] == got["weave-ref"][0] == 422
    assert orjson.loads(got["serve"][1]) == orjson.loads(got["weave-ref"][1])
