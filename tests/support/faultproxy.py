"""A fault-injecting HTTP reverse proxy on 127.0.0.1, for chaos tests against real servers.

It sits in front of any backend (`tracecli serve`, weave's reference server) and, with a
seeded RNG, answers a fraction of write requests with 500/503, with 429 + Retry-After, or
*forwards* the request and then drops the client connection without replying (the server
stored it: a re-send must be harmless), and answers 413 above a size. It counts what it
forwarded per call id, so tests can count re-sends exactly as the server saw them.

Real sockets, real HTTP/1.1 with keep-alive (asyncio streams in a background thread);
accepted sockets get TCP_NODELAY (see ../shared/tools/bench/README.md, "Nagle").

    with FaultProxy("http://127.0.0.1:6345", Faults(p_5xx=0.2, seed=1)) as proxy:
        ... upload to proxy.url ...
        proxy.stats.injected, proxy.sends("call-id"), proxy.duplicates()

Also runnable by hand: `python tests/support/faultproxy.py --backend URL --port 7000 --p-5xx 0.2`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import socket
import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import httpx
import orjson

READ_ROUTES = ("stream_query", "/calls/query", "query_stats", "/call/read", "/health")
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "content-encoding",
        "host",
        "accept-encoding",
    }
)


@dataclass
class Faults:
    """Fractions of *write* requests (POSTs outside the read routes) to fault; the rest pass."""

    p_5xx: float = 0.0  # answer 500 or 503 (not forwarded)
    p_429: float = 0.0  # answer 429 with Retry-After (not forwarded)
    retry_after: str = "0"  # the Retry-After value sent with 429 (and 503)
    p_drop: float = 0.0  # forward, wait for the backend's answer, then close without replying
    p_drop_before: float = 0.0  # close without forwarding (request lost in transit)
    max_bytes: int | None = None  # 413 when the body is larger (not forwarded)
    seed: int = 0
    latency: float = 0.0  # seconds added before forwarding each write request (slow server)
    # call id → (status, reason): a request carrying one is refused, not forwarded, the way a
    # server refuses a whole batch for one bad item (422 names the items, FastAPI-style)
    refuse: dict[str, tuple[int, str]] = field(default_factory=dict)
    # the n-th write requests that would be forwarded (1-based) are dropped after the
    # backend answered, whatever the dice say: a chaos test always sees the re-send case
    drop_nth: tuple[int, ...] = ()
    # the n-th write requests under max_bytes (1-based) → the status to answer them with (429
    # or 5xx), whatever the dice say: a chaos test always sees every kind of fault
    inject_nth: dict[int, int] = field(default_factory=dict)
    # the n-th write requests (counted as for drop_nth) → (content type, body) answered with
    # 200 *without* forwarding: a gateway or a web page that says "OK" and stored nothing
    fake_ok_nth: dict[int, tuple[str, bytes]] = field(default_factory=dict)
    # the n-th write requests are forwarded, then answered with the backend's head and half
    # of its body before the connection is closed (an answer cut half-way)
    cut_nth: tuple[int, ...] = ()
    # the n-th write requests are forwarded and never answered (the connection stays open
    # until the proxy stops): an answer that never comes
    hang_nth: tuple[int, ...] = ()
    # a *read* request (stream_query, call/read...) whose body holds this text is answered
    # 503 (not forwarded), `fail_reads` times: a reader that fails half-way through its pages
    fail_read_matching: bytes = b""
    fail_reads: int = 0


@dataclass
class Stats:
    requests: int = 0  # requests received
    forwarded: int = 0  # requests the backend saw
    injected: Counter[int] = field(default_factory=Counter)  # status → count (5xx, 429, 413)
    dropped_after: int = 0  # forwarded, then the client connection was closed
    dropped_before: int = 0
    backend_status: Counter[int] = field(default_factory=Counter)
    connections: int = 0
    refused: int = 0  # requests refused for carrying a call id of Faults.refuse


# The chaos tests' mix (test_chaos, test_otel_faults): 20% 5xx, 5% 429 with a zero
# Retry-After, 5% of the connections dropped after the backend stored the request.
CHAOS = {"p_5xx": 0.20, "p_429": 0.05, "retry_after": "0", "p_drop": 0.05}
# Backoff shortened through the environment so those tests stay bounded in time.
FAST = {"TRACECLI_RETRY_BASE_DELAY": "0.02", "TRACECLI_RETRY_MAX_DELAY": "0.25"}


def call_ids(path: str, body: bytes) -> list[tuple[str, str]]:
    """(kind, call id) for every call in a Weave write body: kind is start, end or complete."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    out: list[tuple[str, str]] = []
    if not isinstance(doc, dict):
        return out
    if isinstance(doc.get("batch"), list):
        for item in doc["batch"]:
            if not isinstance(item, dict):
                continue
            if "mode" in item and isinstance(item.get("req"), dict):
                mode = item["mode"]
                obj = item["req"].get(mode)
                if isinstance(obj, dict) and obj.get("id") is not None:
                    out.append((str(mode), str(obj["id"])))
            elif item.get("id") is not None:
                out.append(("complete", str(item["id"])))
        return out
    for kind in ("start", "end"):
        obj = doc.get(kind)
        if isinstance(obj, dict) and obj.get("id") is not None:
            out.append((kind, str(obj["id"])))
    return out


class FaultProxy:
    def __init__(
        self,
        backend: str,
        faults: Faults | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.backend = backend.rstrip("/")
        self.ssl = ssl_context
        self.faults = faults or Faults()
        self.host = host
        self.port = port
        self.stats = Stats()
        self.forwarded_ids: Counter[tuple[str, str]] = Counter()
        self._rng = random.Random(self.faults.seed)
        self._writes_forwarded = 0
        self._writes_seen = 0  # write requests under max_bytes, for Faults.inject_nth
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._client: httpx.AsyncClient | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}"

    # -- control --------------------------------------------------------------------------
    def configure(self, **changes: Any) -> None:
        """Change fault fractions at run time (e.g. stop faulting before verification)."""
        with self._lock:
            for k, v in changes.items():
                if not hasattr(self.faults, k):
                    raise AttributeError(k)
                setattr(self.faults, k, v)
            if "seed" in changes:
                self._rng = random.Random(changes["seed"])

    def reset(self) -> None:
        with self._lock:
            self.stats = Stats()
            self.forwarded_ids = Counter()

    def sends(self, call_id: str, kind: str | None = None) -> int:
        """How many times the backend received this call id (of this kind, or of any)."""
        with self._lock:
            if kind is not None:
                return self.forwarded_ids[(kind, call_id)]
            return sum(n for (k, i), n in self.forwarded_ids.items() if i == call_id)

    def duplicates(self) -> int:
        """Extra sends: for every (kind, id) the backend saw n > 1 times, n - 1."""
        with self._lock:
            return sum(n - 1 for n in self.forwarded_ids.values() if n > 1)

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name="faultproxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        if self._error is not None:
            raise RuntimeError(f"fault proxy failed to start: {self._error}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the event loop -------------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._client = httpx.AsyncClient(
            base_url=self.backend,
            timeout=httpx.Timeout(120.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
            trust_env=False,
        )
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=1 << 20, reuse_address=True, ssl=self.ssl
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            await self._client.aclose()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self.stats.connections += 1
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                keep = await self._serve_one(request, writer)
                if not keep:
                    break
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ssl.SSLError,
            asyncio.CancelledError,  # the proxy is stopping
        ):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
                await writer.wait_closed()

    async def _serve_one(self, req: _Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must be closed."""
        with self._lock:
            self.stats.requests += 1
            f = self.faults
            faultable = req.method == "POST" and not any(r in req.path for r in READ_ROUTES)
            roll = self._rng.random() if faultable else 1.0
            pick503 = self._rng.random() < 0.5
        close = req.headers.get("connection", "").lower() == "close"
        if req.method == "POST" and not faultable and self._read_fault(req):
            return await self._inject(writer, 503, close)
        if faultable and f.max_bytes is not None and len(req.body) > f.max_bytes:
            return await self._inject(writer, 413, close, reason="Request too large")
        if faultable and f.refuse:
            refused = self._refused(req)
            if refused is not None:
                status, body = refused
                with self._lock:
                    self.stats.refused += 1
                headers = [("content-type", "application/json")]
                await _write_response(writer, status, headers, orjson.dumps(body), close)
                return not close
        if faultable and f.inject_nth:
            with self._lock:
                self._writes_seen += 1
                forced = f.inject_nth.get(self._writes_seen)
            if forced is not None:
                return await self._inject(writer, forced, close, retry_after=forced != 500)
        edge = f.p_5xx
        if roll < edge:
            status = 503 if pick503 else 500
            return await self._inject(writer, status, close, retry_after=pick503)
        edge += f.p_429
        if roll < edge:
            return await self._inject(writer, 429, close, retry_after=True)
        edge += f.p_drop_before
        if roll < edge:
            with self._lock:
                self.stats.dropped_before += 1
            return False
        drop_after = roll < edge + f.p_drop
        nth = 0
        if faultable and (f.drop_nth or f.fake_ok_nth or f.cut_nth or f.hang_nth):
            with self._lock:
                self._writes_forwarded += 1
                nth = self._writes_forwarded
                drop_after = drop_after or nth in f.drop_nth
        if nth in f.fake_ok_nth:
            ctype, fake = f.fake_ok_nth[nth]
            with self._lock:
                self.stats.injected[200] += 1
            await _write_response(writer, 200, [("content-type", ctype)], fake, close)
            return not close
        if faultable and f.latency > 0:
            await asyncio.sleep(f.latency)
        status, headers, body = await self._forward(req)
        if drop_after:
            with self._lock:
                self.stats.dropped_after += 1
            return False
        if nth and nth in f.hang_nth:
            assert self._stopped is not None
            await self._stopped.wait()
            return False
        if nth and nth in f.cut_nth:
            await _write_response(writer, status, headers, body, close, cut=max(1, len(body) // 2))
            return False
        await _write_response(writer, status, headers, body, close)
        return not close

    def _refused(self, req: _Request) -> tuple[int, dict[str, Any]] | None:
        """The answer for a request that carries refused ids, or None."""
        items = call_ids(req.path, req.body)
        bad = [(i, self.faults.refuse[cid]) for i, (_, cid) in enumerate(items)
               if cid in self.faults.refuse]  # fmt: skip
        if not bad:
            return None
        status = bad[0][1][0]
        # "{authorization}" in a reason echoes the request's header (a careless server)
        auth = req.headers.get("authorization", "")
        if status == 422:
            detail = [
                {
                    "loc": ["body", "batch", i, "id"],
                    "msg": reason.replace("{authorization}", auth),
                    "type": "value_error",
                }
                for i, (_, reason) in bad
            ]
            return 422, {"detail": detail}
        return status, {"reason": bad[0][1][1].replace("{authorization}", auth)}

    def _read_fault(self, req: _Request) -> bool:
        """Whether this read request is one of Faults.fail_reads to answer 503."""
        with self._lock:
            f = self.faults
            if (
                f.fail_reads <= 0
                or not f.fail_read_matching
                or f.fail_read_matching not in req.body
            ):
                return False
            f.fail_reads -= 1
            return True

    async def _inject(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        close: bool,
        *,
        retry_after: bool = False,
        reason: str = "injected by faultproxy",
    ) -> bool:
        with self._lock:
            self.stats.injected[status] += 1
        headers = [("content-type", "application/json")]
        if retry_after:
            headers.append(("retry-after", self.faults.retry_after))
        body = orjson.dumps({"reason": reason})
        await _write_response(writer, status, headers, body, close)
        return not close

    async def _forward(self, req: _Request) -> tuple[int, list[tuple[str, str]], bytes]:
        assert self._client is not None
        headers = [(k, v) for k, v in req.headers.items() if k not in HOP_BY_HOP]
        headers.append(("accept-encoding", "identity"))
        ids = call_ids(req.path, req.body) if req.method == "POST" and req.body else []
        try:
            resp = await self._client.request(
                req.method, req.path, content=req.body or None, headers=headers
            )
        except httpx.HTTPError as exc:
            body = orjson.dumps({"reason": f"faultproxy: backend unreachable: {exc!r}"})
            return 502, [("content-type", "application/json")], body
        with self._lock:
            self.stats.forwarded += 1
            self.stats.backend_status[resp.status_code] += 1
            self.forwarded_ids.update(ids)
        out = [(k, v) for k, v in resp.headers.multi_items() if k.lower() not in HOP_BY_HOP]
        return resp.status_code, out, resp.content


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
    return _Request(method, target, headers, body)


async def _write_response(
    writer: asyncio.StreamWriter,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    close: bool,
    cut: int | None = None,
) -> None:
    """One answer; `cut` sends only that many bytes of the body (Content-Length says all)."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    head = [f"HTTP/1.1 {status} {phrase}"]
    head += [f"{k}: {v}" for k, v in headers]
    head.append(f"content-length: {len(body)}")
    head.append("connection: close" if close else "connection: keep-alive")
    sent = body if cut is None else body[:cut]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + sent)
    await writer.drain()


def main() -> None:
    p = argparse.ArgumentParser(description="fault-injecting reverse proxy for tracecli tests")
    p.add_argument("--backend", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--p-5xx", type=float, default=0.0)
    p.add_argument("--p-429", type=float, default=0.0)
    p.add_argument("--retry-after", default="0")
    p.add_argument("--p-drop", type=float, default=0.0)
    p.add_argument("--max-bytes", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latency", type=float, default=0.0)
    a = p.parse_args()
    faults = Faults(a.p_5xx, a.p_429, a.retry_after, a.p_drop, 0.0, a.max_bytes, a.seed, a.latency)
    proxy = FaultProxy(a.backend, faults, port=a.port).start()
    print(f"faultproxy on {proxy.url} -> {proxy.backend}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        proxy.stop()
        print(proxy.stats, f"duplicates={proxy.duplicates()}")


if __name__ == "__main__":
    main()
