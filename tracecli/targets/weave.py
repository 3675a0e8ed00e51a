"""A Weave trace server over HTTP, through the shared retrying `Transport`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Unpack

from tracecli.config.fields import CONCURRENCY
from tracecli.config.secret import SecretStr
from tracecli.targets.endpoint import check_listening
from tracecli.targets.http import HttpTarget
from tracecli.targets.outcome import (
    ALREADY_STORED,
    AlreadyStored,
    Outcome,
    Recheck,
    no_route_error,
    not_acknowledged,
)
from tracecli.targets.reconcile import ItemKey, Stored, by_project, parse_stored, stored_query
from tracecli.targets.retry import Action
from tracecli.targets.transport import Transport, TransportOptions
from tracecli.wire.otel import (
    failure_message,
    is_otel_route,
    otel_chunk,
    otel_items,
    partial_success,
    route_project,
)
from tracecli.wire.otlp_proto import CONTENT_TYPE

STREAM_QUERY = "/calls/stream_query"
QUERY_IDS = 1000  # call ids per look-up


class WeaveHttpTarget(HttpTarget):
    def __init__(
        self, server: str, *, api_key: SecretStr | None, **options: Unpack[TransportOptions]
    ) -> None:
        options.setdefault("timeout", 120.0)  # a big batch may take a slow server a while
        options.setdefault("concurrency", CONCURRENCY)
        transport = Transport(server, api_key=api_key, acknowledges=not_acknowledged, **options)
        super().__init__(transport, options["concurrency"])

    def check_reachable(self, timeout: float = 10.0) -> None:
        """Fail fast (exit 2) when nothing listens at the server's address."""
        check_listening(self.name, f"the server {self.name}", timeout)

    def post(
        self, route: str, body: bytes, *, can_split: bool = True, recheck: Recheck | None = None
    ) -> Outcome:
        path = route
        if is_otel_route(route):
            path = route_project(route)[0]
            out = self._post_otel(route, body, can_split)
        else:
            out = self.transport.post(route, body, can_split=can_split, recheck=recheck)
        wrong = no_route_error(out, self.transport.base_url + path)
        if wrong is not None:
            raise wrong
        return out

    def _post_otel(self, route: str, body: bytes, can_split: bool) -> Outcome:
        """`--mode otel`: the chunk's spans as one ExportTraceServiceRequest in OTLP
        protobuf (as Weave documents its route) to `/otel/v1/traces`, the project in the
        `project_id` header. A partial success names no span: the ones the server does not
        hold afterwards are the rejected ones (`Outcome.body["rejected_items"]`, item index
        → reason, for the sender), with any span that could not be encoded."""
        path, project = route_project(route)
        chunk = otel_chunk(otel_items(body))
        keys, sendable = chunk.keys, chunk.sendable()
        if not sendable:
            return Outcome(Action.OK, None, body={"rejected_items": chunk.refused})

        def recheck() -> bytes | AlreadyStored | None:
            """After a 500: weave's SQLite server may have stored some spans, and fails on
            a span id sent again; send only the spans it does not hold."""
            stored = self.stored_calls(ItemKey("complete", *keys[n]) for n in sendable)
            if stored is None:
                return None
            left = [n for n in sendable if keys[n] not in stored]
            if not left:
                return ALREADY_STORED
            return chunk.body(left) if len(left) < len(sendable) else None

        headers = {"project_id": project, "Content-Type": CONTENT_TYPE}
        out = self.transport.post(
            path, chunk.body(sendable), can_split=can_split, headers=headers, recheck=recheck
        )
        if out.action is not Action.OK:
            said = failure_message(out.body)
            return replace(out, reason=self.transport.redact(said)) if said else out
        partial = partial_success(out.body)
        if partial is None:
            if not chunk.refused:
                return out
            return replace(out, body={"rejected_items": chunk.refused})
        reason = self.transport.redact(
            partial.error_message or "the server rejected this span (partialSuccess)"
        )
        stored = self.stored_calls(ItemKey("complete", *keys[n]) for n in sendable)
        if stored is None:  # cannot tell which: every span of the request is in doubt
            named = dict.fromkeys(sendable, reason)
        else:
            named = {n: reason for n in sendable if keys[n] not in stored}
        return replace(out, body={"rejected_items": {**chunk.refused, **named}})

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
