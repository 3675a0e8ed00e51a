"""One HTTP client for a trace server: auth, TLS, keep-alive, and the retry policy applied.

Callers hand it a ready body and get back an `Outcome` that is already final: transient
faults were retried per `tracecli.targets.retry.decide` (backoff with full jitter, Retry-After
honoured, per-request deadline), so the caller only has to handle success, "split this chunk",
"reject these records", or "gave up". Auth failures raise `AuthError` instead, because no
other request can succeed either and the user must fix the key.

Thread-safe: the upload runs `concurrency` requests at once through the one pooled client.
The key never leaves this module except in the Authorization header: logs, outcomes and
exception messages pass through a `Redactor` that knows its raw and base64 forms.
"""

from __future__ import annotations

import base64
import logging
import os
import random
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import httpx
import orjson
from pydantic import SecretStr

from tracecli import __version__
from tracecli.config.fields import MAX_OUTAGE, MAX_RETRY_TIME
from tracecli.config.settings import is_loopback
from tracecli.diagnostics import TracecliError, UsageError
from tracecli.targets.redact import Redactor, strip_userinfo
from tracecli.targets.retry import (
    Action,
    Backoff,
    Decision,
    classify_error,
    decide,
    no_answer_reason,
)

log = logging.getLogger("tracecli.targets.transport")

RETRY_ID_HEADER = "x-weave-retry-id"  # same value on every attempt of one logical request
ATTEMPT_HEADER = "x-tracecli-attempt"
_TEXT_LIMIT = 8192
DEFAULT_KEY_HINT = "pass --api-key, set WANDB_API_KEY, or add the host to ~/.netrc"


class AuthError(UsageError):
    """The server refused the key (401/403): the whole upload stops, exit 2."""


class TransportConfigError(UsageError):
    """Talking to the server cannot work as configured (TLS, URL, plain-http key): exit 2."""


class AlreadyStored:
    """What a recheck returns when the server holds everything the request carried."""

    def __repr__(self) -> str:
        return "ALREADY_STORED"


ALREADY_STORED = AlreadyStored()
Recheck = Callable[[], "bytes | AlreadyStored | None"]


class RequestFailed(TracecliError):
    """A read request (tail, queries) got a final non-2xx answer."""


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """What `on_retry` is told before each backoff sleep (for progress and --verbose)."""

    method: str
    path: str
    attempt: int  # the attempt that failed (1 = first)
    status: int | None
    reason: str  # server's message or the network error, secrets masked
    delay: float
    elapsed: float


@dataclass(slots=True)
class Outcome:
    """The final answer to one logical request, after any retries."""

    action: Action
    status: int | None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None  # parsed JSON, when the answer was JSON
    text: str = ""  # the answer's text (first 8 KiB), secrets masked
    reason: str = ""  # the server's message, or what went wrong; secrets masked
    retries: int = 0
    elapsed: float = 0.0
    error: str | None = None  # the last network error, when no response came

    @property
    def ok(self) -> bool:
        return self.action is Action.OK

    @property
    def item_errors(self) -> dict[int, str]:
        """Batch item index → message, when a 422 says which items are wrong (FastAPI)."""
        return item_errors(self.body)


def extract_reason(status: int | None, body: Any, text: str) -> str:
    """The server's own words: Weave `{"reason"}`, FastAPI `{"detail"}`, Freeplay
    `{"message"}`, `{"error"}`, or the plain text."""
    if isinstance(body, dict):
        for key in ("reason", "message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
            if key == "detail" and isinstance(value, list) and value:
                return "; ".join(_detail_line(d) for d in value[:5]) + (
                    f"; and {len(value) - 5} more" if len(value) > 5 else ""
                )
            if isinstance(value, dict) and isinstance(message := value.get("message"), str):
                return message
    text = text.strip()
    if text:
        return text if len(text) <= 300 else text[:297] + "..."
    if status is None:
        return "no response"
    return f"HTTP {status} {_phrase(status)}".strip()


def _detail_line(d: Any) -> str:
    if not isinstance(d, dict):
        return str(d)
    loc = d.get("loc")
    where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
    msg = str(d.get("msg", ""))
    return f"{where}: {msg}" if where else msg


def item_errors(body: Any) -> dict[int, str]:
    """Map FastAPI 422 details whose loc is ["body", "batch", i, ...] to {i: message}."""
    if not isinstance(body, dict) or not isinstance(body.get("detail"), list):
        return {}
    out: dict[int, str] = {}
    for d in body["detail"]:
        loc = d.get("loc") if isinstance(d, dict) else None
        if not isinstance(loc, list) or len(loc) < 3 or loc[:2] != ["body", "batch"]:
            continue
        if isinstance(loc[2], int):
            rest = ".".join(str(p) for p in loc[3:])
            msg = str(d.get("msg", "invalid"))
            line = f"{rest}: {msg}" if rest else msg
            out[loc[2]] = f"{out[loc[2]]}; {line}" if loc[2] in out else line
    return out


def _phrase(status: int) -> str:
    return httpx.codes.get_reason_phrase(status)  # "" for a code httpx does not know


def auth_header(api_key: str, scheme: Literal["basic", "bearer"]) -> str:
    if scheme == "bearer":
        return f"Bearer {api_key}"
    return "Basic " + base64.b64encode(f"api:{api_key}".encode()).decode("ascii")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One server as every request to it sees it (upload, tail, export, login): its URL
    without credentials, the key to send, and the redactor that masks that key."""

    base_url: str
    host: str
    key: str | None = field(repr=False)
    redact: Redactor = field(repr=False)


def endpoint(base_url: str, api_key: SecretStr | None, *, allow_insecure: bool) -> Endpoint:
    """Check a server URL and its key before anything is sent: http(s) only; a key in the
    URL (https://api:KEY@host, the W&B convention) is taken when none is given; and a key is
    never sent over plain http to a host that is not this machine unless `allow_insecure`."""
    parts = urlsplit(base_url)
    key = api_key.get_secret_value() if api_key is not None else None
    if not key and parts.password:
        key = unquote(parts.password)
    redact = Redactor([key, parts.password, unquote(parts.password or "") or None])
    url = strip_userinfo(base_url).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TransportConfigError(f"server URL must be http(s)://host[:port], got {redact(url)!r}")
    if key and parts.scheme == "http" and not is_loopback(url) and not allow_insecure:
        raise TransportConfigError(
            f"refusing to send the API key over plain http to {parts.hostname}: "
            "use an https:// server URL, or pass --allow-insecure if this network is trusted"
        )
    return Endpoint(url, parts.hostname, key or None, redact)


def http_client(
    server: Endpoint,
    *,
    ca_bundle: str | Path | None,
    timeout: float,
    connect_timeout: float,
    concurrency: int = 1,
    auth_scheme: Literal["basic", "bearer"] = "basic",
) -> httpx.Client:
    """The one way tracecli opens an HTTP client: TLS verified (with --ca-bundle's CAs when
    given), the key in the Authorization header only, no redirects (they would carry the
    key elsewhere), no environment proxy for a server on this machine."""
    headers = {"User-Agent": f"tracecli/{__version__}"}
    if server.key:
        headers["Authorization"] = auth_header(server.key, auth_scheme)
    return httpx.Client(
        base_url=server.base_url,
        headers=headers,
        verify=_ssl_context(ca_bundle),
        timeout=httpx.Timeout(timeout, connect=connect_timeout, pool=None),
        limits=httpx.Limits(
            max_connections=concurrency,
            max_keepalive_connections=concurrency,
            keepalive_expiry=30.0,
        ),
        follow_redirects=False,
        # Environment proxies are for the outside world, never for a server on this host.
        trust_env=not is_loopback(server.base_url),
    )


def network_message(exc: BaseException, redact: Redactor) -> str:
    """A network failure in a few words, e.g. `cannot connect: [Errno 111] ...`, key masked."""
    _, what = classify_error(exc)
    detail = redact(str(exc)).strip()
    return f"{what}: {detail}" if detail and detail != what else what


def config_error(exc: BaseException, host: str, redact: Redactor) -> TransportConfigError | None:
    """The usage error (exit 2) for a failure that retrying cannot cure (a certificate that
    does not verify, a bad URL); None for network trouble worth another try."""
    retryable, what = classify_error(exc)
    if retryable:
        return None
    detail = network_message(exc, redact)
    if "certificate" in what.lower():
        return TransportConfigError(
            f"cannot talk to {host}: {detail}; if the server uses a private CA, "
            "pass its certificate with --ca-bundle FILE"
        )
    return TransportConfigError(f"cannot talk to {host}: {detail}")


def check_listening(url: str, what: str, timeout: float = 10.0) -> None:
    """Fail fast (exit 2) when nothing listens at the server's address, before any file is
    read: otherwise the first request would retry for --max-retry-time before saying so.
    Through a proxy the proxy is what answers, so the first request tells instead. `what`
    names the server in the message ("the server URL", "Freeplay at URL")."""
    if not is_loopback(url) and any(
        os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")
    ):
        return
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            pass
    except OSError as exc:
        raise UsageError(f"cannot reach {what}: {exc.strerror or type(exc).__name__}") from None


class Transport:
    """A pooled, retrying client for one server. Use as a context manager or call close()."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: SecretStr | None,
        concurrency: int = 4,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        max_retry_time: float = MAX_RETRY_TIME,
        max_outage: float | None = MAX_OUTAGE,
        ca_bundle: str | Path | None = None,
        allow_insecure: bool = False,
        on_retry: Callable[[RetryEvent], None] | None = None,
        auth_scheme: Literal["basic", "bearer"] = "basic",
        backoff: Backoff | None = None,
        key_hint: str = DEFAULT_KEY_HINT,
        rng: random.Random | None = None,
    ) -> None:
        if concurrency < 1:
            raise UsageError(f"concurrency must be at least 1, got {concurrency}")
        server = endpoint(base_url, api_key, allow_insecure=allow_insecure)
        self.redact = server.redact
        self.base_url = server.base_url
        self.host = server.host
        self.has_key = server.key is not None
        self.max_retry_time = max_retry_time
        self.max_outage = max_outage
        self.on_retry = on_retry
        self.backoff = backoff or Backoff.from_env()
        self.key_hint = key_hint
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._stop = threading.Event()
        self._stats_lock = threading.Lock()
        self.requests = 0  # HTTP requests actually made (attempts)
        self.retries = 0
        self.bytes_sent = 0
        # Outage watch, across all threads: since when no request has had an answer.
        self._health_lock = threading.Lock()
        self._silent_since: float | None = None  # monotonic; None: the last attempt was answered
        self._silent_since_wall = 0.0
        self._down = threading.Event()  # silent for max_outage: nothing more is tried
        self._status = ""  # what the last retry was for, for the progress line
        self._status_attempt = 0
        self._status_until = 0.0  # monotonic time of that retry
        self._client = http_client(
            server,
            ca_bundle=ca_bundle,
            timeout=timeout,
            connect_timeout=connect_timeout,
            concurrency=concurrency,
            auth_scheme=auth_scheme,
        )

    # -- lifecycle ------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop waiting in backoffs (Ctrl-C): requests not yet acknowledged end CANCELLED."""
        self._stop.set()

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    # -- health ---------------------------------------------------------------------------
    @property
    def unreachable_since(self) -> float | None:
        """Wall-clock time since which no request was answered, once that lasted
        `max_outage` seconds (the server is taken as down); None until then."""
        return self._silent_since_wall if self._down.is_set() else None

    def status(self) -> str:
        """A few words on what the requests are waiting for, for a progress line: e.g.
        `server unreachable (connection refused); retry 5 in 8 s`; "" when all is well."""
        with self._health_lock:
            if self._down.is_set():
                when = time.strftime("%H:%M:%S", time.localtime(self._silent_since_wall))
                return f"server unreachable since {when}"
            if not self._status:
                return ""
            n = self._status_attempt  # the n-th retry follows the n-th failed attempt
            left = self._status_until - time.monotonic()
            if left <= 0:
                return f"{self._status}; retry {n} sent"
            return f"{self._status}; retry {n} in {left:.0f} s"

    def _answered(self, status: int) -> None:
        """Any HTTP answer shows the server is there (a 5xx too: it answers)."""
        with self._health_lock:
            self._silent_since = None
            if 200 <= status < 300:
                self._status = ""

    def _no_answer(self) -> None:
        """An attempt got no answer (connection refused, reset, timed out): the outage runs
        from this first failure since the last answer (not from when the attempt started:
        a slow answer to another request is an answer). Once no attempt has been answered
        for `max_outage` seconds since, the server is taken as down."""
        with self._health_lock:
            if self._silent_since is None:
                self._silent_since = time.monotonic()
                self._silent_since_wall = time.time()
        self._outage_due()

    def _outage_due(self) -> bool:
        """Whether the server is taken as down: no answer since the first failure for
        `max_outage` seconds. Asked after each failure and during backoffs, so the stop
        comes on time, not after the next (up to 30 s) backoff."""
        if self._down.is_set():
            return True
        with self._health_lock:
            since = self._silent_since
            if since is None or self.max_outage is None:
                return False
            if time.monotonic() - since < self.max_outage:
                return False
            log.info("%s: no answer for %.0f s: taken as down", self.base_url, self.max_outage)
            self._down.set()
            return True

    def _unreachable(self) -> Outcome:
        return Outcome(Action.UNREACHABLE, None, reason=self.status() or "server unreachable")

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests -------------------------------------------------------------------------
    def post(
        self,
        path: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        can_split: bool = True,
        recheck: Recheck | None = None,
    ) -> Outcome:
        """POST `body` (JSON bytes) with retries; the final Outcome (never raises for HTTP
        or network failures, except AuthError and TransportConfigError).

        `recheck` is asked after each 500 what to send instead: a server that stored part
        of the request before failing (see `tracecli.targets.reconcile`) would fail the same way
        on every retry. It returns the new body, None to send the same again, or
        ALREADY_STORED when nothing is left to send (the outcome is then OK)."""
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        return self._request(
            "POST", path, content=body, headers=hdrs, can_split=can_split, recheck=recheck
        )

    def post_lines_once(self, path: str, body: bytes) -> list[bytes] | None:
        """POST once, no retry, and return the answer's non-empty lines; None on any
        failure. For look-ups whose caller has a fallback (the recheck after a 500)."""
        self._count(len(body))
        hdrs = {"Content-Type": "application/json", "Accept": "application/jsonl"}
        try:
            response = self._client.post(path, content=body, headers=hdrs)
        except httpx.HTTPError as exc:
            log.debug("POST %s%s: %s", self.base_url, path, self._network_message(exc))
            return None
        if not 200 <= response.status_code < 300:
            log.debug("POST %s%s: HTTP %d", self.base_url, path, response.status_code)
            return None
        return [line for line in response.content.splitlines() if line.strip()]

    def get(self, path: str, *, params: Mapping[str, str] | None = None) -> Outcome:
        return self._request("GET", path, params=params, can_split=False)

    def iter_lines(
        self, path: str, body: bytes, *, headers: Mapping[str, str] | None = None
    ) -> Iterator[bytes]:
        """POST and yield the answer's non-empty lines (JSONL streams such as
        /calls/stream_query). Retried until the answer starts; a final non-2xx raises
        RequestFailed with the server's reason."""
        hdrs = {
            "Content-Type": "application/json",
            "Accept": "application/jsonl",
            **(headers or {}),
        }
        retry_id = str(uuid.uuid4())
        start = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            if self._stop.is_set():
                raise RequestFailed("interrupted")
            hdrs[RETRY_ID_HEADER] = retry_id
            request = self._client.build_request("POST", path, content=body, headers=hdrs)
            self._count(len(body))
            try:
                response = self._client.send(request, stream=True)
            except httpx.HTTPError as exc:
                decision = self._decide(None, exc, attempt, start, None, False)
                if decision.action is Action.FATAL:
                    raise self._fatal(exc, decision) from None
                if self._after(decision, "POST", path, attempt, None, exc, start):
                    continue
                raise RequestFailed(self._network_message(exc)) from None
            try:
                if 200 <= response.status_code < 300:
                    try:
                        for line in response.iter_lines():
                            if line.strip():
                                yield line.encode("utf-8")
                    except httpx.HTTPError as exc:  # cut off mid-answer: not retried
                        raise RequestFailed(
                            f"{self.host}: the answer was cut off: {self._network_message(exc)}"
                        ) from None
                    return
                response.read()
                outcome = self._outcome(response, Action.REJECT, attempt - 1, start)
                decision = self._decide(
                    response.status_code, None, attempt, start, response.headers, False
                )
            finally:
                response.close()
            if decision.action is Action.AUTH:
                raise self._auth_error(outcome)
            if self._after(decision, "POST", path, attempt, outcome.status, None, start):
                continue
            raise RequestFailed(f"{self.host} answered HTTP {outcome.status}: {outcome.reason}")

    def _request(
        self,
        method: str,
        path: str,
        *,
        can_split: bool,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        recheck: Recheck | None = None,
    ) -> Outcome:
        hdrs = dict(headers or {})
        hdrs[RETRY_ID_HEADER] = str(uuid.uuid4())
        start = time.monotonic()
        attempt = 0
        last: Outcome | None = None
        if self._stop.is_set():
            return Outcome(Action.CANCELLED, None, reason="interrupted before sending")
        if self._down.is_set():
            return self._unreachable()
        while True:
            attempt += 1
            if attempt > 1:
                hdrs[ATTEMPT_HEADER] = str(attempt)
            t0 = time.monotonic()
            self._count(len(content or b""))
            try:
                response = self._client.request(
                    method, path, content=content, headers=hdrs, params=params
                )
            except httpx.HTTPError as exc:
                err = self._network_message(exc)
                self._no_answer()
                log.debug(
                    "%s %s%s attempt %d: %s (%.0f ms)",
                    method,
                    self.base_url,
                    path,
                    attempt,
                    err,
                    (time.monotonic() - t0) * 1000,
                )
                decision = self._decide(None, exc, attempt, start, None, can_split)
                last = Outcome(
                    decision.action,
                    None,
                    reason=err,
                    retries=attempt - 1,
                    elapsed=time.monotonic() - start,
                    error=err,
                )
                if decision.action is Action.FATAL:
                    raise self._fatal(exc, decision) from None
                if self._after(decision, method, path, attempt, None, exc, start, err):
                    continue
                return self._final(last, decision, attempt, start)
            log.debug(
                "%s %s%s (%d bytes) attempt %d: HTTP %d (%.0f ms)",
                method,
                self.base_url,
                path,
                len(content or b""),
                attempt,
                response.status_code,
                (time.monotonic() - t0) * 1000,
            )
            self._answered(response.status_code)
            decision = self._decide(
                response.status_code, None, attempt, start, response.headers, can_split
            )
            last = self._outcome(response, decision.action, attempt - 1, start)
            if decision.action is Action.AUTH:
                raise self._auth_error(last)
            if (
                recheck is not None
                and response.status_code == 500
                and decision.action in (Action.RETRY, Action.GIVE_UP)
            ):
                instead = recheck()
                if instead is ALREADY_STORED:
                    last.action = Action.OK
                    last.reason = "already stored"
                    last.retries = attempt - 1
                    return last
                if isinstance(instead, bytes):
                    content = instead
            if self._after(
                decision, method, path, attempt, response.status_code, None, start, last.reason
            ):
                continue
            return self._final(last, decision, attempt, start)

    def _final(self, last: Outcome, decision: Decision, attempt: int, start: float) -> Outcome:
        last.retries = attempt - 1
        last.elapsed = time.monotonic() - start
        if decision.action is Action.GIVE_UP:
            last.action = Action.GIVE_UP
            tried = f"gave up after {attempt} attempts in {last.elapsed:.0f} s"
            last.reason = f"{last.reason} ({tried})"
        elif decision.action is Action.RETRY and not self._stop.is_set() and self._down.is_set():
            last.action = Action.UNREACHABLE  # the server is down: not retried any more
            last.reason = f"{self.status()} ({last.reason})"
        elif decision.action is Action.RETRY:  # interrupted during the wait
            last.action = Action.CANCELLED
        return last

    def _decide(
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
                self._rng,
                backoff=self.backoff,
                can_split=can_split,
            )

    def _after(
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
        if decision.action is not Action.RETRY or self._stop.is_set() or self._down.is_set():
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
        with self._health_lock:
            if status is None and error is not None:
                self._status = f"server unreachable ({no_answer_reason(error)})"
            elif status is not None:
                self._status = f"server answered HTTP {status}"
            self._status_attempt = attempt
            self._status_until = time.monotonic() + decision.delay
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
                return not self._down.is_set()
            if self._stop.wait(min(left, 0.25)) or self._outage_due():
                return False

    def _outcome(
        self, response: httpx.Response, action: Action, retries: int, start: float
    ) -> Outcome:
        raw = response.content
        body: Any = None
        ctype = response.headers.get("content-type", "")
        if raw and ("json" in ctype or raw[:1] in (b"{", b"[")):
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = None
            else:
                # A server may echo the key, even JSON-escaped ("\/"): callers read `body`
                # too. Without a backslash, decoded strings are substrings of the raw text.
                whole = raw.decode("utf-8", "replace")
                if self.redact and (self.redact(whole) != whole or "\\" in whole):
                    body = _mask(body, self.redact)
        text = self.redact(raw[:_TEXT_LIMIT].decode("utf-8", "replace"))
        reason = self.redact(extract_reason(response.status_code, body, text))
        return Outcome(
            action,
            response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=body,
            text=text,
            reason=reason,
            retries=retries,
            elapsed=time.monotonic() - start,
        )

    def _count(self, nbytes: int) -> None:
        with self._stats_lock:
            self.requests += 1
            self.bytes_sent += nbytes

    # -- errors ---------------------------------------------------------------------------
    def _network_message(self, exc: BaseException) -> str:
        return network_message(exc, self.redact)

    def _auth_error(self, outcome: Outcome) -> AuthError:
        status = outcome.status or 401
        phrase = _phrase(status)
        reason = outcome.reason.strip()
        boring = {"", "no response", phrase.lower(), f"http {status} {phrase}".lower()}
        said = f": {reason}" if reason.lower() not in boring else ""
        if not self.has_key:
            return AuthError(
                f"{self.host} requires an API key (HTTP {status} {phrase}{said}); {self.key_hint}"
            )
        if status == 403:
            return AuthError(
                f"{self.host} refused access with this API key (HTTP 403 {phrase}{said}); "
                "check that the key may write to this project"
            )
        return AuthError(
            f"{self.host} refused the API key (HTTP {status} {phrase}{said}); "
            f"check the key: {self.key_hint}"
        )

    def _fatal(self, exc: BaseException, decision: Decision) -> TransportConfigError:
        return config_error(exc, self.host, self.redact) or TransportConfigError(
            f"cannot talk to {self.host}: {self._network_message(exc)}"
        )


def _mask(value: Any, redact: Redactor) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): _mask(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, redact) for v in value]
    return value


def _ssl_context(ca_bundle: str | Path | None) -> ssl.SSLContext | bool:
    if ca_bundle is None:
        return True
    path = Path(ca_bundle)
    try:
        return ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        raise TransportConfigError(
            f"--ca-bundle {path}: cannot load certificates ({exc.__class__.__name__}: "
            f"{getattr(exc, 'strerror', None) or exc})"
        ) from None
