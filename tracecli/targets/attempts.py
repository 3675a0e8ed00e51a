"""What one server's retried requests share between attempts, apart from the HTTP itself.

`Transport` (transport.py, the one module that opens an HTTP client) sends; this module
keeps what must be one per server across its concurrent requests: the retry policy
(`retry.decide`) drawn from one random source, the backoff sleep that Ctrl-C and an outage
cut short, the counters the upload report shows, the final word on a request that ends
retrying, and the debug log of every attempt.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tracecli.targets.outage import OutageWatch
from tracecli.targets.outcome import Outcome, RetryEvent
from tracecli.targets.retry import Action, Backoff, Decision, decide

log = logging.getLogger("tracecli.targets.transport")


@dataclass(kw_only=True, eq=False)
class Attempts:
    """The shared state of one server's requests; thread-safe."""

    base_url: str
    watch: OutageWatch
    max_retry_time: float
    backoff: Backoff
    on_retry: Callable[[RetryEvent], None] | None
    rng: random.Random
    stop: threading.Event = field(default_factory=threading.Event)  # Ctrl-C: stop waiting
    requests: int = 0  # HTTP requests actually made (attempts)
    retries: int = 0
    bytes_sent: int = 0
    _rng_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stats_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def count(self, nbytes: int) -> None:
        with self._stats_lock:
            self.requests += 1
            self.bytes_sent += nbytes

    def log_attempt(
        self, method: str, path: str, attempt: int, t0: float, result: str, size: int = -1
    ) -> None:
        sent = f" ({size} bytes)" if size >= 0 else ""
        ms = (time.monotonic() - t0) * 1000
        log.debug(
            "%s %s%s%s attempt %d: %s (%.0f ms)",
            method,
            self.base_url,
            path,
            sent,
            attempt,
            result,
            ms,
        )

    def decide(
        self,
        status: int | None,
        error: BaseException | None,
        attempt: int,
        start: float,
        headers: Mapping[str, str] | None,
        can_split: bool,
    ) -> Decision:
        with self._rng_lock:
            return decide(
                status,
                error,
                attempt,
                time.monotonic() - start,
                headers,
                self.max_retry_time,
                self.rng,
                backoff=self.backoff,
                can_split=can_split,
            )

    def again(
        self,
        decision: Decision,
        method: str,
        path: str,
        attempt: int,
        status: int | None,
        error: BaseException | None,
        start: float,
        reason: str = "",
    ) -> bool:
        """True when the request should be sent again (after sleeping the backoff)."""
        if decision.action is not Action.RETRY or self.stop.is_set() or self.watch.down.is_set():
            return False
        why = reason or decision.reason
        event = RetryEvent(
            method, path, attempt, status, why, decision.delay, time.monotonic() - start
        )
        log.debug(
            "retrying %s %s%s in %.2f s (attempt %d failed: %s)",
            method,
            self.base_url,
            path,
            decision.delay,
            attempt,
            why,
        )
        with self._stats_lock:
            self.retries += 1
        self.watch.retrying(attempt, status, error, decision.delay)
        if self.on_retry is not None:
            self.on_retry(event)
        return self._sleep(decision.delay)

    def _sleep(self, delay: float) -> bool:
        """The backoff; False when it was cut short: Ctrl-C, or the server taken as down
        by another request (no use waiting out a 30 s backoff to learn it again)."""
        deadline = time.monotonic() + delay
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return not self.watch.down.is_set()
            if self.stop.wait(min(left, 0.25)) or self.watch.due():
                return False

    def final(self, last: Outcome, decision: Decision, attempt: int, start: float) -> Outcome:
        """`last` made the request's final outcome: retries counted, and a retry that will
        not happen told apart (given up, server down, or interrupted)."""
        last.retries = attempt - 1
        last.elapsed = time.monotonic() - start
        if decision.action is Action.GIVE_UP:
            last.action = Action.GIVE_UP
            tried = f"gave up after {attempt} attempts in {last.elapsed:.0f} s"
            if decision.asked is not None:
                last.asked = asked_too_long(decision.asked, decision.left, self.max_retry_time)
                tried = f"the server asked to wait {last.asked}"
            last.reason = f"{last.reason} ({tried})"
        elif (
            decision.action is Action.RETRY and not self.stop.is_set() and self.watch.down.is_set()
        ):
            last.action = Action.UNREACHABLE  # the server is down: not retried any more
            last.reason = f"{self.watch.status()} ({last.reason})"
        elif decision.action is Action.RETRY:  # interrupted during the wait
            last.action = Action.CANCELLED
        return last


def asked_too_long(asked: float, left: float, max_retry_time: float) -> str:
    """Why a request the server asked to wait for was not retried: its Retry-After is
    longer than --max-retry-time (or than what a request's earlier retries left of it)."""
    what = f"{asked:.0f} s (Retry-After), longer than"
    if asked > max_retry_time:
        return f"{what} --max-retry-time ({max_retry_time:.0f} s)"
    return f"{what} the {left:.0f} s left of --max-retry-time ({max_retry_time:.0f} s)"
