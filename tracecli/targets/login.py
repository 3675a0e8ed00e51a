"""`tracecli login`: check a key against its server, then store it where tracecli finds it.

Weave keys go to ~/.netrc under the machine `wandb login` uses (api.wandb.ai for W&B's
cloud, else the server's host), so tracecli and the W&B tools share one login. Freeplay keys
go to the user config's `credentials` section. Neither ever goes to a project's
tracecli.yaml, which is usually committed.

A key is checked before it is stored, with a request that needs authentication but writes
nothing: a one-row query of calls (Weave), an update of a completion that does not exist
(Freeplay). Only 401/403 mean "wrong key"; any other client error means the server got past
authentication and complained about the probe itself, which is fine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx

from tracecli.config import netrc_file
from tracecli.config.fields import strip_userinfo
from tracecli.config.files import display_path, load_config_file
from tracecli.config.per_target import WANDB_CLOUD_HOSTS
from tracecli.config.secret import SecretStr
from tracecli.config.settings import Settings, user_config_path
from tracecli.config.user_config import store_credential
from tracecli.diagnostics import TracecliError
from tracecli.targets.endpoint import endpoint
from tracecli.targets.outcome import config_error, network_message, phrase, redirect_error
from tracecli.targets.transport import http_client

NIL_UUID = "00000000-0000-4000-8000-000000000000"
PROBE_PROJECT = "tracecli/login-check"


class LoginError(TracecliError):
    exit_code = 2


@dataclass(frozen=True)
class LoginResult:
    target: str
    server: str
    host: str
    stored_in: Path | None
    checked: str
    already: bool = False

    def message(self) -> str:
        if self.already:
            return (
                f"already logged in to {self.server}: a key for {self.host} is in "
                f"{display_path(self.stored_in or Path())}; pass --relogin to replace it"
            )
        where = display_path(self.stored_in or Path())
        return f"{self.checked}; key for {self.host} saved in {where} (mode 600)"


def store_host(target: str, server: str) -> str:
    host = (urlsplit(server).hostname or "").lower()
    if target == "weave" and host in WANDB_CLOUD_HOSTS:
        return "api.wandb.ai"  # where `wandb login` writes it
    return host


def stored_key_location(settings: Settings) -> Path | None:
    """Where a key for the selected server is already stored by a login, if anywhere."""
    host = store_host(settings.target, settings.server or "")
    if settings.target == "weave":
        try:
            return netrc_file.netrc_path() if netrc_file.lookup(host) else None
        except netrc_file.NetrcError:
            return None
    cfg = load_config_file(user_config_path(), "user")
    return cfg.path if cfg is not None and host in cfg.credentials else None


def check_key(settings: Settings, key: SecretStr) -> str:
    """One authenticated request; returns what the server said, raises LoginError on 401/403
    or when the server cannot be reached. The request goes through the client every command
    opens (`tracecli.targets.transport.http_client`): --ca-bundle honoured, the key never
    sent over plain http to another host without --allow-insecure, and masked in messages."""
    server = endpoint(settings.server or "", key, allow_insecure=settings.allow_insecure)
    name = server.base_url  # without a key the URL may carry (https://api:KEY@host)
    scheme: Literal["basic", "bearer"] = "basic" if settings.target == "weave" else "bearer"
    try:
        with http_client(
            server, ca_bundle=settings.ca_bundle, timeout=15.0, connect_timeout=15.0,
            auth_scheme=scheme,
        ) as http:  # fmt: skip
            if settings.target == "weave":
                resp = http.post(
                    "/calls/stream_query",
                    json={"project_id": settings.project or PROBE_PROJECT, "limit": 1},
                    headers={"Accept": "application/jsonl"},
                )
            else:
                project = settings.project or NIL_UUID
                resp = http.post(f"/v2/projects/{project}/completions/{NIL_UUID}", json={})
    except httpx.HTTPError as exc:
        fatal = config_error(exc, server.host, server.redact)
        if fatal is not None:
            raise fatal from None
        raise LoginError(
            f"could not check the key: {name} did not answer "
            f"({network_message(exc, server.redact)}); "
            "pass --no-verify to store it without checking"
        ) from None
    status = resp.status_code
    if 300 <= status < 400:  # followed by no client of tracecli's: the key was not checked
        said = "; nothing was stored"
        raise redirect_error(status, resp.headers, str(resp.url), server.host, server.redact, said)
    if settings.target == "weave" and status in (404, 405) and not _weave_reason(resp):
        raise LoginError(
            f"could not check the key: {name} answered HTTP {status} {phrase(status)} to "
            "/calls/stream_query, "
            "which a Weave server has: check the server URL, or pass --no-verify to store "
            "the key without checking"
        )
    if status == 401:
        raise LoginError(f"{name} refused the key (401 Unauthorized): nothing was stored")
    if status == 403 and settings.project:
        raise LoginError(
            f"{name} refused the key for project {settings.project} (403 Forbidden): "
            "nothing was stored"
        )
    if status >= 500:
        raise LoginError(
            f"could not check the key: {name} answered {status}; "
            "pass --no-verify to store it without checking"
        )
    return f"{name} accepted the key"


def _weave_reason(resp: httpx.Response) -> bool:
    """Whether a Weave server's error registry answered (`{"reason": ...}`), not a web
    server without the route (FastAPI's `{"detail": "Not Found"}`, a page)."""
    try:
        body = resp.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("reason"), str)


def login(settings: Settings, key: SecretStr, *, verify: bool = True) -> LoginResult:
    """Check `key` against the selected server and store it (Weave: ~/.netrc; Freeplay: the
    user config), never in a project's tracecli.yaml."""
    if settings.target == "local":
        raise LoginError(
            "nothing to log in to: the embedded store needs no key; "
            "pass --server URL (Weave) or --target freeplay"
        )
    secret = key.get_secret_value().strip()
    if not secret or any(c.isspace() for c in secret) or secret[0] in "#\"'":
        raise LoginError("that does not look like an API key (empty, or spaces or quotes in it)")
    key = SecretStr(secret)
    server = settings.server or ""
    checked = check_key(settings, key) if verify else "key not checked"
    host = store_host(settings.target, server)
    try:
        if settings.target == "weave":
            path = netrc_file.store(host, secret)
        else:
            path = store_credential(user_config_path(), host, secret)
    except netrc_file.NetrcError as exc:
        raise LoginError(str(exc)) from None
    return LoginResult(settings.target, strip_userinfo(server), host, path, checked)
