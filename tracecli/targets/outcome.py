"""What one logical request came to, after any retries (`Outcome`), and the words for it:
the server's own reason, the items a 422 names, a network failure, a refused key; every
text masked by the endpoint's `Redactor`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urljoin, urlsplit, urlunsplit

import orjson

from tracecli.diagnostics import TracecliError
from tracecli.targets.endpoint import AuthError, TransportConfigError
from tracecli.targets.redact import Redactor
from tracecli.targets.retry import Action, classify_error

if TYPE_CHECKING:
    import httpx

TEXT_LIMIT = 8192  # the part of an answer's text an Outcome keeps


class AlreadyStored:
    """What a recheck returns when the server holds everything the request carried."""

    def __repr__(self) -> str:
        return "ALREADY_STORED"


ALREADY_STORED = AlreadyStored()
Recheck = Callable[[], "bytes | AlreadyStored | None"]
# Why a 2xx answer is no acknowledgement: (stop the upload, why), or None (see not_acknowledged)
AckCheck = Callable[["Outcome"], "tuple[bool, str] | None"]


class RequestFailed(TracecliError):
    """A read request (tail, queries) got a final non-2xx answer."""


class RetryEvent(NamedTuple):
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
    body: Any = None  # parsed JSON, when the answer was JSON; the bytes of a protobuf one
    text: str = ""  # the answer's text (first 8 KiB), secrets masked
    reason: str = ""  # the server's message, or what went wrong; secrets masked
    retries: int = 0
    elapsed: float = 0.0
    error: str | None = None  # the last network error, when no response came
    # GIVE_UP because the server asked (Retry-After) to wait longer than --max-retry-time
    # had left: e.g. "600 s (Retry-After), longer than --max-retry-time (300 s)"
    asked: str = ""

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
    return f"HTTP {status} {phrase(status)}".strip()


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


def phrase(status: int) -> str:
    import httpx  # start-up: the store never asks (its client imported it already)

    return httpx.codes.get_reason_phrase(status)  # "" for a code httpx does not know


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
    if "does not speak TLS" in what:
        return TransportConfigError(
            f"cannot talk to {host}: {detail}; a server of plain HTTP has a URL that "
            "starts with http://, not https://"
        )
    return TransportConfigError(f"cannot talk to {host}: {detail}")


def redirect_error(
    status: int, headers: Mapping[str, str], url: str, host: str, redact: Redactor, then: str = ""
) -> TransportConfigError:
    """The usage error (exit 2) for a redirect: tracecli follows none (it would carry the key
    and the calls elsewhere), and a redirect refuses no record, it says the URL is wrong (http
    that moved to https, a moved path). Where it points is shown without userinfo or query
    (either may hold a secret), resolved against `url`, the request's."""
    where = ""
    location = (headers.get("location") or headers.get("Location") or "").strip()
    if location:
        try:
            parts = urlsplit(urljoin(url, location))
        except ValueError:
            parts = None
        if parts is not None and parts.scheme in ("http", "https"):
            netloc = parts.netloc.rpartition("@")[2]
            where = " to " + redact(urlunsplit((parts.scheme, netloc, parts.path, "", "")))
    return TransportConfigError(
        f"{host} answered HTTP {status} {phrase(status)}{where}: tracecli follows no redirect "
        "(it would take the API key and the calls elsewhere); check the server URL "
        f"(--server){then}"
    )


def no_route_error(outcome: Outcome, url: str) -> TransportConfigError | None:
    """The usage error (exit 2) for a refusal that is no Weave server's word on the calls,
    so that no record is rejected by it: a 404/405 without weave's `{"reason": ...}` (a web
    server's for a route it lacks: FastAPI's `{"detail": "Not Found"}`, a page, `tracecli
    serve` without `/otel/v1/traces`), or a 400/409/422 that is a page or plain text (a proxy's:
    nginx's "plain HTTP request was sent to HTTPS port"; weave's server answers JSON). Every
    request would get the same. None for any other answer."""
    status, body = outcome.status, outcome.body
    if status is None or isinstance(body, bytes):
        return None  # a protobuf answer is an OTLP server's own word on the spans
    if status in (404, 405):
        if isinstance(body, dict) and isinstance(body.get("reason"), str):
            return None
        plain = {"", phrase(status).lower(), f"http {status} {phrase(status)}".lower()}
        said = f" ({outcome.reason})" if outcome.reason.lower() not in plain else ""
        what = f"{said}: the server has no such route"
    elif status in (400, 409, 422) and body is None and outcome.text.strip():
        if _json_scalar(outcome.text):
            return None
        ctype = outcome.headers.get("content-type", "").split(";")[0].strip()
        what = f" with {ctype or 'a body of no content type'}, not a trace server's answer"
    else:
        return None
    return TransportConfigError(
        f"{url} answered HTTP {status} {phrase(status)}{what}; check the server URL "
        "(--server) and --mode; nothing was counted as stored or rejected"
    )


def mask(value: Any, redact: Redactor) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): mask(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, redact) for v in value]
    return value


def not_acknowledged(outcome: Outcome) -> tuple[bool, str] | None:
    """Why a 2xx answer does not acknowledge the request, or None when it does.

    A gateway may answer 200 with an error object, and a wrong URL (a sign-in page, a web
    app) 200 with a page: counting either as stored would lose the calls for good, the
    journal skipping them on every later run. (True, why) when the answer is no trace
    server's at all (a page, plain text: stop, the URL is wrong); (False, why) for a JSON
    error (retried like a 5xx)."""
    body = outcome.body
    if body is None:
        if not outcome.text.strip() or _json_scalar(outcome.text):
            return None  # an empty answer, or JSON's null, true, "ok": nothing says it failed
        ctype = outcome.headers.get("content-type", "").split(";")[0].strip()
        return True, f"{ctype or 'a body of no content type'}, not a trace server's answer"
    if isinstance(body, dict) and (body.get("error") or body.get("errors")):
        return False, f"an error in its body: {outcome.reason}"
    return None


def _json_scalar(text: str) -> bool:
    """Whether `text` is JSON (a scalar: `outcome_of` parses only objects and arrays, and
    `null` parses to None), so an answer of no trace server's would not read as one."""
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def auth_error(outcome: Outcome, host: str, *, has_key: bool, key_hint: str) -> AuthError:
    """The one line for a refused key (401/403): no other request can succeed either, so
    the whole upload stops and the user is told what to fix."""
    status = outcome.status or 401
    said_phrase = phrase(status)
    reason = outcome.reason.strip()
    boring = {"", "no response", said_phrase.lower(), f"http {status} {said_phrase}".lower()}
    said = f": {reason}" if reason.lower() not in boring else ""
    if not has_key:
        return AuthError(
            f"{host} requires an API key (HTTP {status} {said_phrase}{said}); {key_hint}"
        )
    if status == 403:
        return AuthError(
            f"{host} refused access with this API key (HTTP 403 {said_phrase}{said}); "
            "check that the key may write to this project"
        )
    return AuthError(
        f"{host} refused the API key (HTTP {status} {said_phrase}{said}); check the key: {key_hint}"
    )


def outcome_of(
    response: httpx.Response, action: Action, retries: int, elapsed: float, redact: Redactor
) -> Outcome:
    """An HTTP answer as an Outcome: its JSON body parsed, its text and reason masked (a
    server may echo the key, even JSON-escaped)."""
    raw = response.content
    body: Any = None
    ctype = response.headers.get("content-type", "")
    if raw and "protobuf" in ctype:
        body = raw  # an OTLP answer: read, and masked, by the target that asked
    elif raw and ("json" in ctype or raw[:1] in (b"{", b"[")):
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        else:
            # A server may echo the key, even JSON-escaped ("\/"): callers read `body`
            # too. Without a backslash, decoded strings are substrings of the raw text.
            whole = raw.decode("utf-8", "replace")
            if redact and (redact(whole) != whole or "\\" in whole):
                body = mask(body, redact)
    text = redact(raw[:TEXT_LIMIT].decode("utf-8", "replace"))
    reason = redact(extract_reason(response.status_code, body, text))
    return Outcome(
        action,
        response.status_code,
        headers={k.lower(): v for k, v in response.headers.items()},
        body=body,
        text=text,
        reason=reason,
        retries=retries,
        elapsed=elapsed,
    )
