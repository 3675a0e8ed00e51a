"""Where upload's requests go: a Weave server, the embedded store, or nowhere (--dry-run).

Every target takes the same thing, a route and a ready JSON body, and answers with the
transport's `Outcome`, so the chunking, splitting and acknowledging in `tracecli.upload.api`
are one code path whichever target is behind it (and the embedded store is tested by the
same tests as a server).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from tracecli.targets.outcome import Outcome, Recheck
from tracecli.targets.reconcile import ItemKey, Stored
from tracecli.targets.retry import Action
from tracecli.wire.encode import CALL_END, CALL_START, UPSERT_BATCH


class Target(Protocol):
    """A place calls are written to. `post` is thread-safe and never raises for a refused
    request (only for AuthError/TransportConfigError, which stop the whole upload)."""

    name: str  # shown to the user: the server URL or the store's path
    concurrency: int  # how many requests may usefully be in flight

    def post(self, route: str, body: bytes, *, can_split: bool = True) -> Outcome: ...

    def stats(self) -> tuple[int, int, int]:
        """(HTTP requests made including retries, retries, bytes sent)."""
        ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class ChecksStored(Protocol):
    """A target that can say which calls it already holds, so that a request the server
    failed after storing part of it is re-sent without those (see `tracecli.targets.reconcile`)."""

    def post(
        self, route: str, body: bytes, *, can_split: bool = True, recheck: Recheck | None = None
    ) -> Outcome: ...

    def stored_calls(self, keys: Iterable[ItemKey]) -> Stored | None: ...


def endpoint_label(route: str) -> str:
    """The route without its project: what the summary counts per endpoint."""
    if route.endswith("/calls/complete"):
        return "calls/complete"
    route = route.partition("#")[0]  # an OTel route key carries its project after "#"
    return {UPSERT_BATCH: "call/upsert_batch", CALL_START: "call/start", CALL_END: "call/end"}.get(
        route, route.lstrip("/")
    )


class CountingTarget:
    """A target that sends nothing over the network (the store, --dry-run): one request at
    a time, none retried, counted under a lock as the sender's threads post."""

    concurrency = 1

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self.requests = 0
        self.bytes_sent = 0

    def _counted(self, body: bytes) -> None:
        """Count one request; the caller holds `self._lock`."""
        self.requests += 1
        self.bytes_sent += len(body)

    def stats(self) -> tuple[int, int, int]:
        return self.requests, 0, self.bytes_sent

    def cancel(self) -> None:
        pass

    def close(self) -> None:
        pass


class DryRunTarget(CountingTarget):
    """Accepts everything and sends nothing; counts what would have been sent."""

    def post(self, route: str, body: bytes, *, can_split: bool = True) -> Outcome:
        with self._lock:
            self._counted(body)
        return Outcome(Action.OK, 200, body={})
