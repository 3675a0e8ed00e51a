"""The rules a server address and its key meet before any request is made: http(s) only, a
key in the URL taken when none is given, never a key over plain http to another host without
--allow-insecure, TLS with --ca-bundle's CAs, and a quick look that something listens."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlsplit

from tracecli.config.fields import strip_userinfo
from tracecli.config.per_target import is_loopback
from tracecli.config.secret import SecretStr
from tracecli.diagnostics import UsageError
from tracecli.targets.redact import Redactor

if TYPE_CHECKING:
    import ssl

DEFAULT_KEY_HINT = "pass --api-key, set WANDB_API_KEY, or add the host to ~/.netrc"


class AuthError(UsageError):
    """The server refused the key (401/403): the whole upload stops, exit 2."""


class TransportConfigError(UsageError):
    """Talking to the server cannot work as configured (TLS, URL, plain-http key): exit 2."""


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


def auth_header(api_key: str, scheme: Literal["basic", "bearer"]) -> str:
    if scheme == "bearer":
        return f"Bearer {api_key}"
    return "Basic " + base64.b64encode(f"api:{api_key}".encode()).decode("ascii")


def ssl_context(ca_bundle: str | Path | None) -> ssl.SSLContext | bool:
    if ca_bundle is None:
        return True
    import ssl  # start-up: only a client with --ca-bundle comes here (httpx imported it)

    path = Path(ca_bundle)
    try:
        return ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        raise TransportConfigError(
            f"--ca-bundle {path}: cannot load certificates ({exc.__class__.__name__}: "
            f"{getattr(exc, 'strerror', None) or exc})"
        ) from None


def check_listening(url: str, what: str, timeout: float = 10.0) -> None:
    """Fail fast (exit 2) when nothing listens at the server's address, before any file is
    read: otherwise the first request would retry for --max-retry-time before saying so.
    Through a proxy the proxy is what answers, so the first request tells instead. `what`
    names the server in the message ("the server URL", "Freeplay at URL")."""
    if not is_loopback(url) and any(
        os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")
    ):
        return
    import socket  # start-up: an upload to the store or a dry run checks no server

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            pass
    except OSError as exc:
        raise UsageError(f"cannot reach {what}: {exc.strerror or type(exc).__name__}") from None
