"""A Weave trace server over HTTP, through the shared retrying `Transport`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Unpack

from pydantic import SecretStr

from tracecli.config.fields import CONCURRENCY
from tracecli.targets.endpoint import check_listening
from tracecli.targets.http import HttpTarget
from tracecli.targets.outcome import ALREADY_STORED, AlreadyStored, Outcome, Recheck
from tracecli.targets.reconcile import ItemKey, Stored, by_project, parse_stored, stored_query
from tracecli.targets.retry import Action
from tracecli.targets.transport import Transport, TransportOptions
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


class WeaveHttpTarget(HttpTarget):
    def __init__(
        self, server: str, *, api_key: SecretStr | None, **options: Unpack[TransportOptions]
    ) -> None:
        options.setdefault("timeout", 120.0)  # a big batch may take a slow server a while
        options.setdefault("concurrency", CONCURRENCY)
        super().__init__(Transport(server, api_key=api_key, **options), options["concurrency"])

    def check_reachable(self, timeout: float = 10.0) -> None:
        """Fail fast (exit 2) when nothing listens at the server's address."""
        check_listening(self.name, f"the server {self.name}", timeout)

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


__all__ = ["WeaveHttpTarget"]
