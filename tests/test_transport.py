"""The transport against real HTTP servers on 127.0.0.1.

A small scripted HTTP/1.1 server (real sockets, asyncio) plays the answers a test needs in
order (503 then 200, a dropped connection, a slow answer...); the weave reference server
checks the same against weave's own error bodies when its venv exists.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from tests.support.faultproxy import _read_request, _write_response
from tracecli.diagnostics import UsageError
from tracecli.targets.endpoint import AuthError, TransportConfigError
from tracecli.targets.outcome import RequestFailed, RetryEvent
from tracecli.targets.retry import Action, Backoff
from tracecli.targets.transport import ATTEMPT_HEADER, RETRY_ID_HEADER, Transport

KEY = "sk-test-transport-5f2a9c1e7b3d"
FAST = Backoff(0.01, 0.05)


@dataclass
class Answer:
    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    drop: bool = False  # close the connection instead of answering
    raw: bytes | None = None  # body bytes as they are (not JSON)
    cut: bool = False  # promise a longer body than is sent, then close


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    conn: int


class ScriptServer:
    """Answers requests with the scripted answers in order, then 200 {}."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.script: list[Answer] = []
        self.seen: list[Seen] = []
        self.ssl = ssl_context
        self.port = 0
        self._conns = 0
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl else 'http'}://127.0.0.1:{self.port}"

    def play(self, *answers: Answer) -> ScriptServer:
        with self._lock:
            self.script.extend(answers)
        return self

    def __enter__(self) -> ScriptServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.ssl)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._conns += 1
            conn = self._conns
        try:
            while True:
                try:
                    req = await _read_request(reader)
                except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
                    return
                if req is None:
                    return
                with self._lock:
                    self.seen.append(Seen(req.method, req.path, req.headers, req.body, conn))
                    answer = self.script.pop(0) if self.script else Answer()
                    self.active += 1
                    self.max_active = max(self.max_active, self.active)
                try:
                    if answer.delay:
                        await asyncio.sleep(answer.delay)
                    if answer.drop:
                        return
                    if answer.cut:
                        part = answer.raw or b"{"
                        head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(part) + 1000}\r\n\r\n"
                        writer.write(head.encode() + part)
                        await writer.drain()
                        return
                    body = answer.raw if answer.raw is not None else orjson.dumps(answer.body)
                    ctype = "text/plain" if answer.raw is not None else "application/json"
                    headers = [("content-type", ctype), *answer.headers.items()]
                    await _write_response(writer, answer.status, headers, body, False)
                finally:
                    with self._lock:
                        self.active -= 1
        finally:
            with contextlib.suppress(Exception):
                writer.close()


@pytest.fixture
def server():
    with ScriptServer() as s:
        yield s


def transport(url: str, **kw: Any) -> Transport:
    kw.setdefault("api_key", SecretStr(KEY))
    kw.setdefault("backoff", FAST)
    return Transport(url, **kw)


BODY = b'{"batch": []}'


def test_ok_sends_basic_auth_and_json(server):
    with transport(server.url) as t:
        out = t.post("/call/upsert_batch", BODY)
    assert out.ok and out.status == 200 and out.retries == 0 and out.body == {}
    seen = server.seen[0]
    assert seen.method == "POST" and seen.path == "/call/upsert_batch" and seen.body == BODY
    assert seen.headers["authorization"] == "Basic " + base64.b64encode(
        f"api:{KEY}".encode()
    ).decode("ascii")
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["user-agent"].startswith("tracecli/")
    assert seen.headers[RETRY_ID_HEADER]


def test_bearer_scheme(server):
    with transport(server.url, auth_scheme="bearer") as t:
        t.post("/x", BODY)
    assert server.seen[0].headers["authorization"] == f"Bearer {KEY}"


def test_no_key_no_header(server):
    with transport(server.url, api_key=None) as t:
        t.post("/x", BODY)
    assert "authorization" not in server.seen[0].headers


def test_transient_errors_are_retried_with_the_same_retry_id(server):
    server.play(
        Answer(503, {"reason": "busy"}),
        Answer(500),
        Answer(429, headers={"retry-after": "0"}),
        Answer(502, raw=b"bad gateway"),
        Answer(504),
        Answer(408),
    )
    events: list[RetryEvent] = []
    with transport(server.url, on_retry=events.append) as t:
        out = t.post("/call/upsert_batch", BODY)
        assert t.retries == 6 and t.requests == 7
    assert out.ok and out.retries == 6
    assert [e.status for e in events] == [503, 500, 429, 502, 504, 408]
    assert events[0].reason == "busy" and events[3].reason == "bad gateway"
    assert [e.attempt for e in events] == [1, 2, 3, 4, 5, 6]
    ids = {s.headers[RETRY_ID_HEADER] for s in server.seen}
    assert len(ids) == 1
    assert [s.headers.get(ATTEMPT_HEADER) for s in server.seen] == [None, *map(str, range(2, 8))]
    # keep-alive: every attempt on one connection
    assert {s.conn for s in server.seen} == {1}


def test_retry_after_ms_is_waited(server):
    server.play(Answer(429, headers={"retry-after-ms": "300"}))
    with transport(server.url) as t:
        t0 = time.monotonic()
        out = t.post("/x", BODY)
        took = time.monotonic() - t0
    assert out.ok and out.retries == 1
    assert took >= 0.3


def test_dropped_connection_is_retried(server):
    server.play(Answer(drop=True), Answer(drop=True))
    with transport(server.url) as t:
        out = t.post("/x", BODY)
    assert out.ok and out.retries == 2
    assert len(server.seen) == 3


def test_read_timeout_is_retried(server):
    server.play(Answer(delay=1.0))
    with transport(server.url, timeout=0.2) as t:
        out = t.post("/x", BODY)
    assert out.ok and out.retries == 1


def test_connection_refused_gives_up_after_max_retry_time():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    events: list[RetryEvent] = []
    with transport(f"http://127.0.0.1:{port}", max_retry_time=0.5, on_retry=events.append) as t:
        t0 = time.monotonic()
        out = t.post("/x", BODY)
        took = time.monotonic() - t0
    assert out.action is Action.GIVE_UP and not out.ok
    assert out.status is None and out.error and "cannot connect" in out.error
    assert "gave up after" in out.reason
    assert len(events) >= 2 and out.retries == len(events)
    assert took < 5


def test_retry_after_beyond_the_deadline_gives_up_at_once(server):
    server.play(Answer(429, {"reason": "slow down"}, headers={"retry-after": "3600"}))
    with transport(server.url, max_retry_time=10) as t:
        t0 = time.monotonic()
        out = t.post("/x", BODY)
    assert time.monotonic() - t0 < 2
    assert out.action is Action.GIVE_UP and out.status == 429
    assert out.reason.startswith("slow down")
    assert len(server.seen) == 1


@pytest.mark.parametrize("status", [400, 404, 409, 422, 413])
def test_content_refusals_are_returned_not_retried(server, status):
    server.play(Answer(status, {"reason": "no"}))
    with transport(server.url) as t:
        out = t.post("/x", BODY)
        assert out.action is Action.SPLIT and out.reason == "no" and out.status == status
    server.play(Answer(status, {"reason": "no"}))
    with transport(server.url) as t:
        assert t.post("/x", BODY, can_split=False).action is Action.REJECT
    assert len(server.seen) == 2


def test_422_details_name_the_items(server):
    detail = [
        {"loc": ["body", "batch", 1, "req", "start", "id"], "msg": "bad id", "type": "x"},
        {"loc": ["body", "batch", 3, "op_name"], "msg": "too long", "type": "x"},
    ]
    server.play(Answer(422, {"detail": detail}))
    with transport(server.url) as t:
        out = t.post("/x", BODY)
    assert out.item_errors == {1: "req.start.id: bad id", 3: "op_name: too long"}
    assert out.reason == "body.batch.1.req.start.id: bad id; body.batch.3.op_name: too long"


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_raises_at_once_without_the_key(server, status):
    server.play(Answer(status, {"detail": "Invalid API key"}), Answer(200))
    with transport(server.url) as t, pytest.raises(AuthError) as info:
        t.post("/x", BODY)
    err = info.value
    assert isinstance(err, UsageError) and err.exit_code == 2
    msg = str(err)
    assert "127.0.0.1" in msg and "Invalid API key" in msg
    assert ("refused the API key" in msg) if status == 401 else ("refused access" in msg)
    assert KEY not in msg and base64.b64encode(f"api:{KEY}".encode()).decode() not in msg
    assert len(server.seen) == 1  # nothing more sent


def test_auth_failure_without_a_key_says_one_is_needed(server):
    server.play(Answer(401))
    with transport(server.url, api_key=None) as t, pytest.raises(AuthError, match="requires an"):
        t.post("/x", BODY)


def test_server_echoing_the_key_is_masked(server):
    b64 = base64.b64encode(f"api:{KEY}".encode()).decode()
    server.play(Answer(400, {"reason": f"bad header Basic {b64} for key {KEY}"}))
    with transport(server.url) as t:
        out = t.post("/x", BODY)
    assert KEY not in out.reason and b64 not in out.reason and KEY not in out.text
    assert "***" in out.reason


def test_other_statuses_reject(server):
    server.play(Answer(405, {"detail": "Method Not Allowed"}))
    with transport(server.url) as t:
        out = t.post("/x", BODY)
    assert out.action is Action.REJECT and out.reason == "Method Not Allowed"


def test_plain_http_key_to_a_remote_host_is_refused():
    with pytest.raises(TransportConfigError, match=r"plain http to trace\.example\.com"):
        transport("http://trace.example.com")
    # allowed when the user says so, or without a key, or over https, or on loopback
    for url, kw in [
        ("http://trace.example.com", {"allow_insecure": True}),
        ("http://trace.example.com", {"api_key": None}),
        ("https://trace.example.com", {}),
        ("http://localhost:8080", {}),
        ("http://127.0.0.5:8080", {}),
    ]:
        transport(url, **kw).close()


def test_bad_url_is_a_usage_error():
    with pytest.raises(TransportConfigError):
        transport("ftp://example.com")
    with pytest.raises(UsageError):
        transport("http://127.0.0.1:1", concurrency=0)


def test_userinfo_is_taken_out_of_the_url(server):
    url = server.url.replace("http://", f"http://api:{KEY}@")
    with transport(url, api_key=None) as t:
        assert t.base_url == server.url and KEY not in t.base_url
        t.post("/x", BODY)
    assert server.seen[0].headers["authorization"].startswith("Basic ")


def test_cancel_ends_a_backoff_promptly(server):
    server.play(Answer(503, headers={"retry-after": "30"}))
    with transport(server.url, max_retry_time=60) as t:
        result: list[Any] = []
        th = threading.Thread(target=lambda: result.append(t.post("/x", BODY)))
        th.start()
        while not server.seen:
            time.sleep(0.01)
        time.sleep(0.1)
        t0 = time.monotonic()
        t.cancel()
        th.join(5)
        assert time.monotonic() - t0 < 2
        assert result[0].action is Action.CANCELLED and not result[0].ok
        assert t.post("/x", BODY).action is Action.CANCELLED  # nothing new is sent
    assert len(server.seen) == 1


def test_concurrency_bounds_connections(server):
    server.play(*[Answer(delay=0.05) for _ in range(16)])
    with transport(server.url, concurrency=2) as t:
        threads = [threading.Thread(target=t.post, args=("/x", BODY)) for _ in range(16)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert len(server.seen) == 16
    assert server.max_active <= 2
    assert len({s.conn for s in server.seen}) <= 2  # pooled, kept alive


def test_iter_lines_streams_and_retries_before_the_answer(server):
    lines = b'{"id": "a"}\n\n{"id": "b"}\n'
    server.play(Answer(503), Answer(200, raw=lines))
    with transport(server.url) as t:
        got = list(t.iter_lines("/calls/stream_query", b"{}"))
    assert [orjson.loads(x)["id"] for x in got] == ["a", "b"]
    assert server.seen[1].headers["accept"] == "application/jsonl"


def test_iter_lines_failures(server):
    server.play(Answer(404, {"reason": "no such project"}), Answer(401))
    with transport(server.url) as t:
        with pytest.raises(RequestFailed, match="no such project"):
            list(t.iter_lines("/calls/stream_query", b"{}"))
        with pytest.raises(AuthError):
            list(t.iter_lines("/calls/stream_query", b"{}"))


def test_get(server):
    server.play(Answer(200, {"status": "ok"}))
    with transport(server.url) as t:
        assert t.get("/health").body == {"status": "ok"}


def test_debug_logs_carry_no_secret(server, caplog):
    server.play(Answer(503), Answer(401, {"reason": f"bad key {KEY}"}))
    url = server.url.replace("http://", f"http://api:{KEY}@")
    caplog.set_level(logging.DEBUG)
    with transport(url, api_key=None) as t, pytest.raises(AuthError) as info:
        t.post("/x", BODY)
    text = caplog.text + str(info.value)
    assert "retrying POST" in caplog.text and "HTTP 503" in caplog.text
    b64 = base64.b64encode(f"api:{KEY}".encode()).decode()
    assert KEY not in text and b64 not in text


# -- TLS -----------------------------------------------------------------------------------


@pytest.fixture
def tls_server(certs: Path):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certs / "srv.pem", certs / "srv.key")
    with ScriptServer(ctx) as s:
        yield s


def test_tls_with_a_private_ca_bundle(tls_server, certs):
    with transport(tls_server.url, ca_bundle=certs / "ca.pem") as t:
        assert t.post("/x", BODY).ok


def test_tls_verification_is_on_by_default(tls_server):
    with transport(tls_server.url) as t, pytest.raises(TransportConfigError) as info:
        t.post("/x", BODY)
    msg = str(info.value)
    assert "certificate" in msg and "--ca-bundle" in msg and KEY not in msg
    assert info.value.exit_code == 2


def test_unreadable_ca_bundle(tmp_path):
    with pytest.raises(TransportConfigError, match="--ca-bundle"):
        transport("https://127.0.0.1:1", ca_bundle=tmp_path / "missing.pem")


def test_echoed_key_is_masked_in_the_parsed_body_and_item_errors(server):
    b64 = base64.b64encode(f"api:{KEY}".encode()).decode()
    detail = [{"loc": ["body", "batch", 0, "id"], "msg": f"echo Basic {b64}", "type": "x"}]
    server.play(Answer(422, {"detail": detail}))
    # a server that escapes '/' in JSON strings: the raw text does not hold the key as is
    slashy = "sk-with/slash-0123456789"
    escaped = orjson.dumps({"reason": f"key {slashy}"}).replace(b"/", b"\\/")
    server.play(Answer(400, raw=escaped))
    with transport(server.url) as t:
        out = t.post("/x", BODY)
        assert b64 not in orjson.dumps(out.body).decode()
        assert out.item_errors == {0: "id: echo Basic ***"}
    with transport(server.url, api_key=SecretStr(slashy)) as t:
        out = t.post("/x", BODY)
        assert out.body == {"reason": "key ***"} and slashy not in out.reason
        assert "with\\/slash" not in out.text and "***" in out.text


def test_auth_message_does_not_repeat_the_phrase(server):
    server.play(Answer(401, {"detail": "Unauthorized"}))
    with transport(server.url) as t, pytest.raises(AuthError) as info:
        t.post("/x", BODY)
    assert "(HTTP 401 Unauthorized)" in str(info.value)


def test_iter_lines_cut_off_mid_answer(server):
    # promises 1000 bytes, sends a few, then closes
    server.play(Answer(200, raw=b'{"id": "a"}\n', cut=True))
    with transport(server.url) as t, pytest.raises(RequestFailed, match="cut off"):
        list(t.iter_lines("/calls/stream_query", b"{}"))


def test_iter_lines_tls_failure_is_a_config_error(tls_server):
    with transport(tls_server.url) as t, pytest.raises(TransportConfigError, match="--ca-bundle"):
        list(t.iter_lines("/calls/stream_query", b"{}"))
