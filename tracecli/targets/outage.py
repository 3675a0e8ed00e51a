"""The outage watch of one transport, across all its threads: since when no request has had
an answer, whether that has lasted `max_outage` (the server is then taken as down and nothing
more is tried), and what the latest retry waits for, for the progress line."""

from __future__ import annotations

import logging
import threading
import time

from tracecli.targets.retry import no_answer_reason

log = logging.getLogger("tracecli.targets.transport")


class OutageWatch:
    """Thread-safe; `down` is set once, when the server is taken as down."""

    def __init__(self, base_url: str, max_outage: float | None) -> None:
        self.base_url = base_url
        self.max_outage = max_outage
        self.down = threading.Event()  # silent for max_outage: nothing more is tried
        self._lock = threading.Lock()
        self._silent_since: float | None = None  # monotonic; None: the last attempt was answered
        self._silent_since_wall = 0.0
        self._status = ""  # what the last retry was for, for the progress line
        self._status_attempt = 0
        self._status_until = 0.0  # monotonic time of that retry

    @property
    def unreachable_since(self) -> float | None:
        """Wall-clock time since which no request was answered, once that lasted
        `max_outage` seconds (the server is taken as down); None until then."""
        return self._silent_since_wall if self.down.is_set() else None

    def status(self) -> str:
        """A few words on what the requests are waiting for, for a progress line: e.g.
        `server unreachable (connection refused); retry 5 in 8 s`; "" when all is well."""
        with self._lock:
            if self.down.is_set():
                when = time.strftime("%H:%M:%S", time.localtime(self._silent_since_wall))
                return f"server unreachable since {when}"
            if not self._status:
                return ""
            n = self._status_attempt  # the n-th retry follows the n-th failed attempt
            left = self._status_until - time.monotonic()
            if left <= 0:
                return f"{self._status}; retry {n} sent"
            return f"{self._status}; retry {n} in {left:.0f} s"

    def answered(self, status: int) -> None:
        """Any HTTP answer shows the server is there (a 5xx too: it answers)."""
        with self._lock:
            self._silent_since = None
            if 200 <= status < 300:
                self._status = ""

    def no_answer(self) -> None:
        """An attempt got no answer (connection refused, reset, timed out): the outage runs
        from this first failure since the last answer (not from when the attempt started:
        a slow answer to another request is an answer). Once no attempt has been answered
        for `max_outage` seconds since, the server is taken as down."""
        with self._lock:
            if self._silent_since is None:
                self._silent_since = time.monotonic()
                self._silent_since_wall = time.time()
        self.due()

    def due(self) -> bool:
        """Whether the server is taken as down: no answer since the first failure for
        `max_outage` seconds. Asked after each failure and during backoffs, so the stop
        comes on time, not after the next (up to 30 s) backoff."""
        if self.down.is_set():
            return True
        with self._lock:
            since = self._silent_since
            if since is None or self.max_outage is None:
                return False
            if time.monotonic() - since < self.max_outage:
                return False
            log.info("%s: no answer for %.0f s: taken as down", self.base_url, self.max_outage)
            self.down.set()
            return True

    def retrying(
        self, attempt: int, status: int | None, error: BaseException | None, delay: float
    ) -> None:
        """Attempt `attempt` failed and is retried in `delay` seconds: say why."""
        with self._lock:
            if status is None and error is not None:
                self._status = f"server unreachable ({no_answer_reason(error)})"
            elif status is not None:
                self._status = f"server answered HTTP {status}"
            self._status_attempt = attempt
            self._status_until = time.monotonic() + delay
