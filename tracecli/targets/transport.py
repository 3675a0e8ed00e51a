"""One HTTP client for a trace server: auth, TLS, keep-alive, and the retry policy applied.

Callers hand it a ready body and get back an `Outcome` that is already final: transient
faults were retried per `tracecli.targets.retry.decide` (backoff with full jitter, Retry-After
honoured, per-request deadline), so the caller only has to handle success, "split this chunk",
"reject these records", or "gave up". Auth failures raise `AuthError` instead, because no
other request can succeed either and the user must fix the key.

Thread-safe: the upload runs `concurrency` requests at once through the one pooled client.
The key is sent only in the Authorization header: logs, outcomes and exception messages pass
through the endpoint's `Redactor` (targets/endpoint.py), which knows its raw and base64 forms.
What is checked before a request is in endpoint.py, what a request came to in outcome.py, the
outage watch in outage.py, the retry bookkeeping shared by a server's requests in
attempts.py; this module alone opens an HTTP client.
"""

from __future__ import annotations

import logging
import random
import ssl
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Literal, TypedDict

import httpx

from tracecli import __version__
from tracecli.config.fields import MAX_OUTAGE, MAX_RETRY_TIME
from tracecli.config.per_target import is_loopback
from tracecli.config.secret import SecretStr
from tracecli.diagnostics import UsageError
from tracecli.targets.attempts import Attempts
from tracecli.targets.endpoint import (
    DEFAULT_KEY_HINT,
    AuthError,
    Endpoint,
    TransportConfigError,
    auth_header,
    endpoint,
    ssl_context,
)
from tracecli.targets.outage import OutageWatch
from tracecli.targets.outcome import (
    ALREADY_STORED,
    AckCheck,
    Outcome,
    Recheck,
    RequestFailed,
    RetryEvent,
    auth_error,
    config_error,
    network_message,
    outcome_of,
    redirect_error,
)
from tracecli.targets.retry import Action, Backoff, Decision

# Names callers outside targets/ import from here (their home is endpoint.py or outcome.py).
__all__ = ["Transport", "http_client"]

log = logging.getLogger("tracecli.targets.transport")

RETRY_ID_HEADER = "x-weave-retry-id"  # same value on every attempt of one logical request
ATTEMPT_HEADER = "x-tracecli-attempt"


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
    loopback = is_loopback(server.base_url)
    verify: ssl.SSLContext | bool = ssl_context(ca_bundle)
    if verify is True and loopback and server.base_url.startswith("http://"):
        # plain HTTP to this machine (no redirects, no proxy) never opens TLS: a context
        # that trusts no CA instead of the system's, whose loading costs ~25 ms a run
        verify = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return httpx.Client(
        base_url=server.base_url,
        headers=headers,
        verify=verify,
        timeout=httpx.Timeout(timeout, connect=connect_timeout, pool=None),
        limits=httpx.Limits(
            max_connections=concurrency,
            max_keepalive_connections=concurrency,
            keepalive_expiry=30.0,
        ),
        follow_redirects=False,
        # Environment proxies are for the outside world, never for a server on this host.
        trust_env=not loopback,
    )


class TransportOptions(TypedDict, total=False):
    """How a target's Transport sends, retries, times out and verifies TLS (the arguments
    of Transport's, by the same names): what an upload's options set, for either target."""

    concurrency: int
    timeout: float
    max_retry_time: float
    max_outage: float | None
    ca_bundle: str | Path | None
    allow_insecure: bool
    on_retry: Callable[[RetryEvent], None] | None


class Transport(AbstractContextManager["Transport", None]):
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
        acknowledges: AckCheck | None = None,
    ) -> None:
        if concurrency < 1:
            raise UsageError(f"concurrency must be at least 1, got {concurrency}")
        server = endpoint(base_url, api_key, allow_insecure=allow_insecure)
        self.redact = server.redact
        self.base_url = server.base_url
        self.host = server.host
        self.has_key = server.key is not None
        self.key_hint = key_hint
        self._acknowledges = acknowledges  # a 2xx that is no acknowledgement (the target's rule)
        self._watch = OutageWatch(self.base_url, max_outage)
        self._tries = Attempts(
            base_url=self.base_url,
            watch=self._watch,
            max_retry_time=max_retry_time,
            backoff=backoff or Backoff.from_env(),
            on_retry=on_retry,
            rng=rng or random.Random(),
        )
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
        self._tries.stop.set()

    @property
    def cancelled(self) -> bool:
        return self._tries.stop.is_set()

    @property
    def requests(self) -> int:
        """HTTP requests actually made (attempts, retries included)."""
        return self._tries.requests

    @property
    def retries(self) -> int:
        return self._tries.retries

    @property
    def bytes_sent(self) -> int:
        return self._tries.bytes_sent

    @property
    def on_retry(self) -> Callable[[RetryEvent], None] | None:
        """Told before each backoff sleep; may be set after the transport is made (a
        progress display that exists only once the run has started)."""
        return self._tries.on_retry

    @on_retry.setter
    def on_retry(self, fn: Callable[[RetryEvent], None] | None) -> None:
        self._tries.on_retry = fn

    # -- health ---------------------------------------------------------------------------
    @property
    def unreachable_since(self) -> float | None:
        """Wall-clock time since which no request was answered, once that lasted
        `max_outage` seconds (the server is taken as down); None until then."""
        return self._watch.unreachable_since

    def status(self) -> str:
        """A few words on what the requests are waiting for, for a progress line: e.g.
        `server unreachable (connection refused); retry 5 in 8 s`; "" when all is well."""
        return self._watch.status()

    def _unreachable(self) -> Outcome:
        return Outcome(Action.UNREACHABLE, None, reason=self.status() or "server unreachable")

    def close(self) -> None:
        self._client.close()

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
        self._tries.count(len(body))
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
            if self._tries.stop.is_set():
                raise RequestFailed("interrupted")
            hdrs[RETRY_ID_HEADER] = retry_id
            request = self._client.build_request("POST", path, content=body, headers=hdrs)
            self._tries.count(len(body))
            try:
                response = self._client.send(request, stream=True)
            except httpx.HTTPError as exc:
                decision = self._tries.decide(None, exc, attempt, start, None, False)
                if decision.action is Action.FATAL:
                    raise self._fatal(exc, decision) from None
                if self._tries.again(decision, "POST", path, attempt, None, exc, start):
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
                decision = self._tries.decide(
                    response.status_code, None, attempt, start, response.headers, False
                )
            finally:
                response.close()
            if decision.action is Action.AUTH:
                raise self._auth_error(outcome)
            if 300 <= response.status_code < 400:
                raise redirect_error(
                    response.status_code,
                    response.headers,
                    str(response.url),
                    self.host,
                    self.redact,
                )
            if self._tries.again(decision, "POST", path, attempt, outcome.status, None, start):
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
        """One logical request: sent, and sent again as the retry policy says, until its
        outcome is final."""
        hdrs = dict(headers or {})
        hdrs[RETRY_ID_HEADER] = str(uuid.uuid4())
        start = time.monotonic()
        if self._tries.stop.is_set():
            return Outcome(Action.CANCELLED, None, reason="interrupted before sending")
        if self._watch.down.is_set():
            return self._unreachable()
        attempt = 0
        while True:
            attempt += 1
            if attempt > 1:
                hdrs[ATTEMPT_HEADER] = str(attempt)
            t0 = time.monotonic()
            self._tries.count(len(content or b""))
            try:
                response = self._client.request(
                    method, path, content=content, headers=hdrs, params=params
                )
            except httpx.HTTPError as exc:
                err = self._network_message(exc)
                self._watch.no_answer()
                self._tries.log_attempt(method, path, attempt, t0, err)
                decision = self._tries.decide(None, exc, attempt, start, None, can_split)
                if decision.action is Action.FATAL:
                    raise self._fatal(exc, decision) from None
                if self._tries.again(decision, method, path, attempt, None, exc, start, err):
                    continue
                last = Outcome(decision.action, None, reason=err, error=err)
                return self._tries.final(last, decision, attempt, start)
            status = response.status_code
            self._tries.log_attempt(
                method, path, attempt, t0, f"HTTP {status}", len(content or b"")
            )
            self._watch.answered(status)
            decision = self._tries.decide(status, None, attempt, start, response.headers, can_split)
            last = self._outcome(response, decision.action, attempt - 1, start)
            if decision.action is Action.AUTH:
                raise self._auth_error(last)
            if 300 <= status < 400:
                url, said = str(response.url), "; nothing was counted as stored or rejected"
                raise redirect_error(status, response.headers, url, self.host, self.redact, said)
            if decision.action is Action.OK and self._acknowledges is not None:
                why = self._acknowledges(last)
                if why is not None:
                    decision = self._not_stored(last, why, attempt, start, can_split)
            if (
                recheck is not None
                and status == 500
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
            if self._tries.again(decision, method, path, attempt, status, None, start, last.reason):
                continue
            return self._tries.final(last, decision, attempt, start)

    def _outcome(
        self, response: httpx.Response, action: Action, retries: int, start: float
    ) -> Outcome:
        return outcome_of(response, action, retries, time.monotonic() - start, self.redact)

    def _not_stored(
        self, last: Outcome, why: tuple[bool, str], attempt: int, start: float, can_split: bool
    ) -> Decision:
        """A 2xx that acknowledges nothing (see `outcome.not_acknowledged`): a page stops the
        upload (exit 2, what was not stored is unsent); an error is retried as a 502."""
        fatal, what = why
        said = f"{self.host} answered HTTP {last.status} with {what}"
        if fatal:
            raise TransportConfigError(
                f"{said}: check the server URL; nothing was counted as stored"
            )
        decision = self._tries.decide(502, None, attempt, start, last.headers, can_split)
        last.action, last.reason = decision.action, self.redact(f"HTTP {last.status} with {what}")
        return decision

    # -- errors ---------------------------------------------------------------------------
    def _network_message(self, exc: BaseException) -> str:
        return network_message(exc, self.redact)

    def _auth_error(self, outcome: Outcome) -> AuthError:
        return auth_error(outcome, self.host, has_key=self.has_key, key_hint=self.key_hint)

    def _fatal(self, exc: BaseException, decision: Decision) -> TransportConfigError:
        return config_error(exc, self.host, self.redact) or TransportConfigError(
            f"cannot talk to {self.host}: {self._network_message(exc)}"
        )
