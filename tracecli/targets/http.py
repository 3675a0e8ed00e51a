"""What the Weave and Freeplay targets share: one `Transport`, read the same way.

The sender asks every target for its counters, a status for the progress line, when the
server stopped answering, and to stop; for the two HTTP targets that is their transport's
answer, written once here.
"""

from __future__ import annotations

from tracecli.targets.transport import Transport


class HttpTarget:
    """A target that sends through one `Transport` (`self.transport`)."""

    transport: Transport
    name: str
    concurrency: int

    def __init__(self, transport: Transport, concurrency: int) -> None:
        self.transport = transport
        self.name = transport.base_url
        self.concurrency = concurrency

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
