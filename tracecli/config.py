"""Resolved settings: flags > environment > config files > ~/.netrc > defaults.

This first version resolves the server and the keys; profiles and config files extend it
(issue "Fit the user's world"). Secrets are `SecretStr` so they never print by accident.
"""

from __future__ import annotations

import netrc
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

from tracecli.diagnostics import UsageError

DEFAULT_WEAVE_SERVER = "https://trace.wandb.ai"
WANDB_CLOUD_HOSTS = ("trace.wandb.ai", "api.wandb.ai")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def weave_server(flag: str | None) -> str | None:
    """The Weave server to talk to, or None for the embedded store."""
    url = flag or os.environ.get("WF_TRACE_SERVER_URL") or None
    if url is None:
        return None
    url = url.rstrip("/")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise UsageError(f"server URL must be http(s)://host[:port], got {url!r}")
    return url


def netrc_password(host: str) -> str | None:
    """The password of ~/.netrc's entry for `host` (the `wandb login` convention)."""
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    if not path.is_file():
        return None
    try:
        auth = netrc.netrc(str(path)).authenticators(host)
    except (netrc.NetrcParseError, OSError):
        return None
    return auth[2] if auth and auth[2] else None


def weave_api_key(flag: str | None, server: str) -> SecretStr | None:
    """--api-key > WANDB_API_KEY > ~/.netrc (the server's host, then api.wandb.ai for W&B)."""
    if flag:
        return SecretStr(flag)
    env = os.environ.get("WANDB_API_KEY")
    if env:
        return SecretStr(env)
    host = urlsplit(server).hostname or ""
    for candidate in (host, *(h for h in WANDB_CLOUD_HOSTS if host in WANDB_CLOUD_HOSTS)):
        pw = netrc_password(candidate)
        if pw:
            return SecretStr(pw)
    return None


@dataclass(frozen=True)
class WeaveTarget:
    """Where Weave calls go: a server with its key, or the embedded store."""

    server: str | None
    api_key: SecretStr | None
    db: Path | None = None


def resolve_weave(
    server_flag: str | None, key_flag: str | None, db_flag: str | None = None
) -> WeaveTarget:
    from tracecli.paths import default_db

    server = weave_server(server_flag)
    if server is None:
        return WeaveTarget(None, None, Path(db_flag) if db_flag else default_db())
    key = weave_api_key(key_flag, server)
    if key is None and not is_loopback(server):
        raise UsageError(
            f"no API key for {server}: pass --api-key, set WANDB_API_KEY, "
            "or add the host to ~/.netrc (wandb login)"
        )
    return WeaveTarget(server, key, None)
