"""A Weave trace server over HTTP, through the shared retrying `Transport`."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import replace
from urllib.parse import urlsplit

from pydantic import SecretStr

from tracecli.config.settings import is_loopback
from tracecli.diagnostics import UsageError
from tracecli.targets.reconcile import ItemKey, Stored, by_project, parse_stored, stored_query
from tracecli.targets.retry import Action
from tracecli.targets.transport import (
    ALREADY_STORED,
    AlreadyStored,
    Outcome,
    Recheck,
    RetryEvent,
    Transport,
)
from tracecli.wire.otel import (
    is_otel_route,
    otel_body,
    otel_items,
    partial_message,
    rejected_spans,
    route_project,
)

STREAM_QUERY = "/calls/stream_query"
QUERY_IDS = 1000  # call ids per look-up


class WeaveHttpTarget:
    def __init__(
        self,
        server: str,
        *,
        api_key: SecretStr | None,
        concurrency: int = 4,
        timeout: float = 120.0,
        max_retry_time: float = 300.0,
        max_outage: float | None = 60.0,
        ca_bundle: str | None = None,
        allow_insecure: bool = False,
        on_retry: object = None,
    ) -> None:
        self.transport = Transport(
            server,
            api_key=api_key,
            concurrency=concurrency,
            timeout=timeout,
            max_retry_time=max_retry_time,
            max_outage=max_outage,
            ca_bundle=ca_bundle,
            allow_insecure=allow_insecure,
            on_retry=on_retry,  # type: ignore[arg-type]
        )
        self.name = self.transport.base_url
        self.concurrency = concurrency

    def check_reachable(self, timeout: float = 10.0) -> None:
        """Fail fast (exit 2) when nothing listens at the server's address, before any file is
        read: otherwise the first chunk would retry for --max-retry-time before saying so."""
        parts = urlsplit(self.name)
        if not is_loopback(self.name) and any(
            os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")
        ):
            return  # the proxy is what we would connect to; let the first request tell
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((host, port), timeout=timeout):
                pass
        except OSError as exc:
            what = exc.strerror or type(exc).__name__
            raise UsageError(f"cannot reach the server {self.name}: {what}") from None

    def post(
        self, route: str, body: bytes, *, can_split: bool = True, recheck: Recheck | None = None
    ) -> Outcome:
        if is_otel_route(route):
            return self._post_otel(route, body, can_split)
        return self.transport.post(route, body, can_split=can_split, recheck=recheck)

    def _post_otel(self, route: str, body: bytes, can_split: bool) -> Outcome:
        """`--mode otel`: the chunk's spans as one OTLP/JSON ExportTraceServiceRequest to
        `/otel/v1/traces`, the project in the `project_id` header. A partial success names
        no span: the ones the server does not hold afterwards are the rejected ones
        (`Outcome.body["rejected_items"]`, item index → reason, for the sender)."""
        path, project = route_project(route)
        items = otel_items(body)
        request, keys = otel_body(items)

        def recheck() -> bytes | AlreadyStored | None:
            """After a 500: weave's SQLite server may have stored some spans, and fails on
            a span id sent again; send only the spans it does not hold."""
            stored = self.stored_calls(ItemKey("complete", p, sid) for p, sid in keys)
            if stored is None:
                return None
            left = [it for it, key in zip(items, keys, strict=True) if key not in stored]
            if not left:
                return ALREADY_STORED
            return otel_body(left)[0] if len(left) < len(items) else None

        out = self.transport.post(
            path, request, can_split=can_split, headers={"project_id": project}, recheck=recheck
        )
        if out.action is not Action.OK or not rejected_spans(out.body):
            return out
        reason = partial_message(out.body)
        stored = self.stored_calls(ItemKey("complete", p, sid) for p, sid in keys)
        if stored is None:  # cannot tell which: every span of the request is in doubt
            named = dict.fromkeys(range(len(keys)), reason)
        else:
            named = {n: reason for n, (p, sid) in enumerate(keys) if (p, sid) not in stored}
        return replace(out, body={**out.body, "rejected_items": named})

    def stored_calls(self, keys: Iterable[ItemKey]) -> Stored | None:
        """Which of these calls the server holds, and whether each has ended; None when the
        server cannot say (then the request is retried as it was)."""
        found: dict[tuple[str, str], bool] = {}
        for project, ids in by_project(keys).items():
            for i in range(0, len(ids), QUERY_IDS):
                part = ids[i : i + QUERY_IDS]
                lines = self.transport.post_lines_once(STREAM_QUERY, stored_query(project, part))
                if lines is None:
                    return None
                found.update(parse_stored(lines))
        return found

    def stats(self) -> tuple[int, int, int]:
        t = self.transport
        return t.requests, t.retries, t.bytes_sent

    def status(self) -> str:
        """What requests are waiting for (a retry, an outage), for the progress line."""
        return self.transport.status()

    @property
    def unreachable_since(self) -> float | None:
        """When the server stopped answering, once it is taken as down (--max-outage)."""
        return self.transport.unreachable_since

    def cancel(self) -> None:
        self.transport.cancel()

    def close(self) -> None:
        self.transport.close()


__all__ = ["RetryEvent", "WeaveHttpTarget"]
