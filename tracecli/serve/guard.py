"""What `tracecli serve` does before any routing, as a pure-ASGI wrapper: the API key
(401), the declared body size (413), and one log line per request (never a header, so
never the key)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

OPEN_PATHS = frozenset({"/health", "/openapi.json", "/docs", "/redoc", "/server_info"})


def auth_ok(header: bytes | None, api_key: str) -> bool:
    """`Basic base64(<any user>:KEY)` (the SDK sends user `api`) or `Bearer KEY`."""
    if not header:
        return False
    scheme, _, value = header.decode("latin-1").partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        given = value.strip()
    elif scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        given = decoded.partition(":")[2]
    else:
        return False
    return hmac.compare_digest(given.encode(), api_key.encode())


class Guard:
    """Pure-ASGI wrapper: 401 without the key, 413 on a declared size over the limit, and
    one log line per request (never a header, so never the key)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_key: str | None,
        max_body_bytes: int,
        log: Callable[[str], None] | None,
    ) -> None:
        self.app, self.api_key, self.max_body_bytes, self.log = app, api_key, max_body_bytes, log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status: int | str = 500
        headers = dict(scope.get("headers") or ())
        path = scope["path"]

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        length = headers.get(b"content-length", b"")
        try:
            if (
                self.api_key
                and path not in OPEN_PATHS
                and not auth_ok(headers.get(b"authorization"), self.api_key)
            ):
                await _send_json(
                    send_wrapper, 401, {"reason": "Unauthorized"}, {"WWW-Authenticate": "Basic"}
                )
            elif length.isdigit() and int(length) > self.max_body_bytes:
                await _send_json(send_wrapper, 413, {"reason": "Request too large"})
            else:
                await self.app(scope, receive, send_wrapper)
        except asyncio.CancelledError:
            status = "cancelled at shutdown"
            raise
        finally:
            if self.log is not None:
                client = scope.get("client")
                who = f"{client[0]}:{client[1]}" if client else "-"
                ms = (time.perf_counter() - t0) * 1000
                self.log(f'{who} "{scope["method"]} {path}" {status} {ms:.1f}ms')


async def _send_json(
    send: Send, status: int, content: Any, headers: Mapping[str, str] | None = None
) -> None:
    body = orjson.dumps(content)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
