"""What to do after each attempt to send a chunk: a pure function, so it is tested exhaustively.

The policy is the one the best log shippers use: retry what may succeed later (overload,
restarts, flaky networks) with exponential backoff and *full* jitter, so that many clients
(or our own parallel requests) do not retry in lockstep; honour the server's `Retry-After`;
never retry what the server refused for its content (that would fail forever): split the
chunk to find the refused records instead; and stop everything on an auth failure, because
every other request would fail the same way.

Deadline rule: a chunk may be retried for `max_retry_time` seconds after its first attempt.
A backoff that would cross the deadline is shortened so one last attempt lands on it; but a
`Retry-After` that would cross it gives up at once, since trying earlier than the server asked
would only be refused again (and hammering a rate-limited server is rude).
"""

from __future__ import annotations

import math
import os
import random
import re
import time
from collections.abc import Mapping
from enum import StrEnum
from typing import NamedTuple, Protocol

BASE_DELAY = 0.5  # seconds before the first retry, at most (full jitter draws in [0, base])
MAX_DELAY = 30.0  # cap of one backoff

# Tests shorten the backoff through these; production keeps the defaults above.
ENV_BASE_DELAY = "TRACECLI_RETRY_BASE_DELAY"
ENV_MAX_DELAY = "TRACECLI_RETRY_MAX_DELAY"

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
SPLIT_STATUSES = frozenset({413, 400, 404, 409, 422})
AUTH_STATUSES = frozenset({401, 403})
# 5xx that say "this will never work here", not "try later".
FINAL_5XX = frozenset({501, 505, 506, 508, 510, 511})


class Action(StrEnum):
    OK = "ok"  # 2xx: the server stored it
    RETRY = "retry"  # send the same request again after `delay`
    SPLIT = "split"  # refused for its content (or size): split to find the refused records
    REJECT = "reject"  # refused and cannot be split further (or not worth splitting)
    AUTH = "auth"  # 401/403: stop the whole upload, the key is wrong
    GIVE_UP = "give_up"  # retryable, but the retry time is used up
    FATAL = "fatal"  # a local/configuration failure (TLS, bad URL): stop, exit 2
    CANCELLED = "cancelled"  # (transport only) interrupted before it was acknowledged
    # (transport only) no answer from the server for --max-outage seconds, on any request:
    # it is down or unreachable; the upload stops and what was not sent is the next run's
    UNREACHABLE = "unreachable"


class Decision(NamedTuple):
    action: Action
    delay: float = 0.0
    reason: str = ""
    # GIVE_UP for a Retry-After longer than the retry time left: the wait the server asked
    # for, and the time --max-retry-time had left (the stop line says so, not "retried")
    asked: float | None = None
    left: float = 0.0

    @property
    def retry(self) -> bool:
        return self.action is Action.RETRY


class Rng(Protocol):
    def uniform(self, a: float, b: float) -> float: ...


class Backoff(NamedTuple):
    """Backoff bounds; `from_env` lets tests shrink them without touching production code."""

    base: float = BASE_DELAY
    cap: float = MAX_DELAY

    @classmethod
    def from_env(cls) -> Backoff:
        return cls(
            base=_env_float(ENV_BASE_DELAY, BASE_DELAY),
            cap=_env_float(ENV_MAX_DELAY, MAX_DELAY),
        )


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if math.isfinite(value) and value >= 0 else default


def backoff_delay(attempt: int, rng: Rng = random, backoff: Backoff = Backoff()) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))] (AWS architecture blog)."""
    exp = min(max(attempt, 1) - 1, 62)  # no float overflow for absurd attempt counts
    ceiling = min(backoff.cap, backoff.base * (2.0**exp))
    return rng.uniform(0.0, ceiling) if ceiling > 0 else 0.0


def retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms`, else `Retry-After` (seconds or
    an HTTP date). None when absent or unparseable; never negative."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    ms = lower.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return max(value, 0.0)
    raw = lower.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        pass
    else:
        return max(value, 0.0) if math.isfinite(value) else None
    import email.utils  # start-up: an HTTP date here is rare (most servers send seconds)

    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


def classify_error(error: BaseException) -> tuple[bool, str]:
    """(retryable, short description) for an exception raised while sending.

    Network trouble is retried; a certificate or URL problem is not (it would fail the same
    way every time and needs the user to act).
    """
    import socket  # start-up: as httpx; an upload to the store or a dry run needs neither
    import ssl

    import httpx  # start-up: only what a client raised comes here, so it is imported

    cause = _root_cause(error)
    if isinstance(cause, ssl.SSLCertVerificationError) or (
        isinstance(cause, ssl.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(cause)
    ):
        return False, "TLS certificate verification failed"
    if isinstance(cause, ssl.SSLError) and _PLAIN_HTTP_REPLY.search(str(cause)):
        # the handshake got a plain-HTTP answer: the same on every try
        return False, "the server does not speak TLS (https) at this address"
    if isinstance(error, httpx.TimeoutException):
        kind = {
            httpx.ConnectTimeout: "connect timeout",
            httpx.ReadTimeout: "read timeout",
            httpx.WriteTimeout: "write timeout",
            httpx.PoolTimeout: "connection pool timeout",
        }.get(type(error), "timeout")
        return True, kind
    if isinstance(error, httpx.RemoteProtocolError):
        return True, "connection closed by the server before its response"
    if isinstance(error, httpx.ConnectError):
        return True, "cannot connect"
    if isinstance(error, httpx.ReadError | httpx.WriteError | httpx.NetworkError):
        return True, "connection lost"
    if isinstance(error, httpx.ProxyError):
        return True, "proxy error"
    if isinstance(error, httpx.UnsupportedProtocol | httpx.InvalidURL | httpx.LocalProtocolError):
        return False, "invalid request or URL"
    if isinstance(error, ConnectionError | TimeoutError | socket.timeout):
        return True, "connection lost"
    if isinstance(error, ssl.SSLError):
        return True, "TLS error"
    if isinstance(error, OSError):
        return True, "network error"
    return False, type(error).__name__


# What OpenSSL says when a TLS handshake is answered by a plain-HTTP server (1.1/3.0; 3.2+)
_PLAIN_HTTP_REPLY = re.compile(r"WRONG_VERSION_NUMBER|RECORD_LAYER_FAILURE|HTTP_REQUEST", re.I)


def no_answer_reason(error: BaseException) -> str:
    """Why no answer came, in a few words for the progress line: the OS's words when it
    has them ("connection refused", "connection reset by peer"), else the kind of fault."""
    cause = _root_cause(error)
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    return classify_error(error)[1]


def _root_cause(error: BaseException) -> BaseException:
    seen: set[int] = set()
    cur = error
    while id(cur) not in seen:
        cause = cur.__cause__ or cur.__context__
        if cause is None:
            break
        seen.add(id(cur))
        cur = cause
    return cur


def decide(
    status: int | None,
    error: BaseException | None,
    attempt: int,
    elapsed: float,
    headers: Mapping[str, str] | None,
    max_retry_time: float,
    rng: Rng = random,
    *,
    backoff: Backoff = Backoff(),
    can_split: bool = True,
    now: float | None = None,
) -> Decision:
    """The decision after `attempt` attempts (1 = the first) of one request.

    `elapsed` is the time since the first attempt started; `status` is None when `error`
    says why no response came. `can_split=False` (a one-record chunk) turns SPLIT into
    REJECT. Pure apart from `rng` (and the clock for an HTTP-date Retry-After unless `now`).
    """
    if status is not None and 200 <= status < 300:
        return Decision(Action.OK)
    if status is None:
        if error is None:
            return Decision(Action.FATAL, reason="no response and no error")
        retryable, what = classify_error(error)
        if not retryable:
            return Decision(Action.FATAL, reason=what)
        return _retry(what, attempt, elapsed, None, max_retry_time, rng, backoff, now)
    if status in AUTH_STATUSES:
        return Decision(Action.AUTH, reason=f"HTTP {status}")
    if status in SPLIT_STATUSES:
        return Decision(Action.SPLIT if can_split else Action.REJECT, reason=f"HTTP {status}")
    if status in RETRY_STATUSES or (500 <= status < 600 and status not in FINAL_5XX):
        what = f"HTTP {status}"
        return _retry(what, attempt, elapsed, headers, max_retry_time, rng, backoff, now)
    # Any other 4xx, a redirect (we do not follow them with a body), 1xx, 501...: retrying or
    # splitting would not change the answer.
    return Decision(Action.REJECT, reason=f"HTTP {status}")


def _retry(
    what: str,
    attempt: int,
    elapsed: float,
    headers: Mapping[str, str] | None,
    max_retry_time: float,
    rng: Rng,
    backoff: Backoff,
    now: float | None,
) -> Decision:
    remaining = max_retry_time - elapsed
    if not remaining > 0:  # also catches NaN
        return Decision(Action.GIVE_UP, reason=f"{what}; gave up after {elapsed:.0f} s of retries")
    delay = backoff_delay(attempt, rng, backoff)
    asked = retry_after(headers, now)
    if asked is not None and asked > delay:
        if asked > remaining:
            return Decision(
                Action.GIVE_UP,
                reason=f"{what}; the server asked to wait {asked:.0f} s, "
                f"beyond the retry time left ({remaining:.0f} s)",
                asked=asked,
                left=remaining,
            )
        delay = asked
    return Decision(Action.RETRY, delay=min(delay, remaining), reason=what)
