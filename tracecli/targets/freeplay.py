"""Freeplay over HTTP: where the settings come from, and how one record becomes one request.

Freeplay has no batch endpoint: each completion is its own POST to
`{api_base}/v2/projects/{project_id}/sessions/{session_id}/completions`, each trace its own
POST to `.../sessions/{session_id}/traces/id/{trace_id}`, with a Bearer key. Retries (5xx,
429, connection errors) and the refusal of other 4xx are the shared `Transport`'s.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any, Unpack
from urllib.parse import urlsplit

from tracecli.config.fields import CONCURRENCY
from tracecli.config.secret import SecretStr
from tracecli.diagnostics import UsageError
from tracecli.freeplay.ids import completion_id_for
from tracecli.schema.freeplay import is_trace_record, split_record
from tracecli.targets.http import HttpTarget
from tracecli.targets.outcome import Outcome
from tracecli.targets.transport import Transport, TransportOptions
from tracecli.wire.encode import dumps

DEFAULT_API_BASE = "https://app.freeplay.ai/api"
KEY_HINT = "pass --api-key or set FREEPLAY_API_KEY"


@dataclass(frozen=True)
class FreeplaySettings:
    """Resolved Freeplay settings. `project_id` may be None when every record names its own."""

    api_base: str
    api_key: SecretStr | None
    project_id: str | None
    api_base_from: str  # "--server", "FREEPLAY_API_BASE", "FREEPLAY_API_URL" or "default"

    def require_key(self) -> SecretStr:
        if self.api_key is None:
            raise UsageError(f"no Freeplay API key for {self.api_base}: {KEY_HINT}")
        return self.api_key


def resolve_freeplay(
    server: str | None = None, api_key: str | SecretStr | None = None, project: str | None = None
) -> FreeplaySettings:
    """Flags > environment > default. The API base includes `/api`:
    --server, FREEPLAY_API_BASE, FREEPLAY_API_URL + "/api" (the Freeplay CLI's variable
    names the host alone), else https://app.freeplay.ai/api. Key: --api-key, FREEPLAY_API_KEY.
    Project: --project, FREEPLAY_PROJECT_ID (a UUID)."""
    env = os.environ
    if server:
        base, origin = server, "--server"
    elif env.get("FREEPLAY_API_BASE", "").strip():
        base, origin = env["FREEPLAY_API_BASE"].strip(), "FREEPLAY_API_BASE"
    elif env.get("FREEPLAY_API_URL", "").strip():
        url = env["FREEPLAY_API_URL"].strip().rstrip("/")
        base, origin = (url if url.endswith("/api") else url + "/api"), "FREEPLAY_API_URL"
    else:
        base, origin = DEFAULT_API_BASE, "default"
    base = base.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"{origin}: the Freeplay API base must be http(s)://host[/api], got {base!r}"
        )
    key: SecretStr | None
    if isinstance(api_key, SecretStr):
        key = api_key
    elif api_key:
        key = SecretStr(api_key)
    elif env.get("FREEPLAY_API_KEY", "").strip():
        key = SecretStr(env["FREEPLAY_API_KEY"].strip())
    else:
        key = None
    proj = project or env.get("FREEPLAY_PROJECT_ID", "").strip() or None
    if proj is not None:
        check_project_id(proj, "--project" if project else "FREEPLAY_PROJECT_ID")
    return FreeplaySettings(base, key, proj.lower() if proj else None, origin)


def check_project_id(value: str, where: str) -> None:
    try:
        uuid.UUID(value)
    except ValueError:
        raise UsageError(
            f"{where}: a Freeplay project id is a UUID (see the project's settings in "
            f"Freeplay), got {value!r}"
        ) from None
    if len(value) != 36:
        raise UsageError(f"{where}: write the project id as 8-4-4-4-12 hex digits, got {value!r}")


@dataclass(frozen=True, slots=True)
class Request:
    """One record as it goes out: the route, the body bytes, what it is, and its id."""

    path: str
    body: bytes
    kind: str  # "completions" or "traces"
    record_id: str  # completion_id or trace_id
    project: str  # the project it goes to (lower case)


def build_request(record: dict[str, Any], default_project: str | None) -> Request:
    """The request for a valid record. A completion without `completion_id` gets one derived
    from the record (and project), so a retry or a resumed run cannot record it twice."""
    params, body = split_record(record)
    project = params.get("project_id", default_project)
    if project is None:
        raise UsageError(
            "no Freeplay project: pass --project <project id>, set FREEPLAY_PROJECT_ID, "
            'or give each record a "project_id"'
        )
    project = project.lower()
    session = params["session_id"].lower()
    if is_trace_record(record):
        trace = params["trace_id"].lower()
        path = f"/v2/projects/{project}/sessions/{session}/traces/id/{trace}"
        return Request(path, dumps(body), "traces", trace, project)
    if body.get("completion_id") is None:
        body["completion_id"] = completion_id_for(record, project)
    path = f"/v2/projects/{project}/sessions/{session}/completions"
    cid = str(body["completion_id"]).lower()
    return Request(path, dumps(body), "completions", cid, project)


class FreeplayTarget(HttpTarget):
    """The shared retrying `Transport`, with Bearer auth, pointed at a Freeplay API base."""

    def __init__(self, settings: FreeplaySettings, **options: Unpack[TransportOptions]) -> None:
        self.settings = settings
        options.setdefault("concurrency", CONCURRENCY)
        transport = Transport(
            settings.api_base,
            api_key=settings.require_key(),
            auth_scheme="bearer",
            key_hint=KEY_HINT,
            **options,
        )
        super().__init__(transport, options["concurrency"])

    def post(self, route: str, body: bytes, *, can_split: bool = False) -> Outcome:
        """One record's request (`build_request`: its path is the route): the upload's
        seam, as for Weave. Never split: a Freeplay request holds one record."""
        return self.transport.post(route, body, can_split=False)


__all__ = [
    "DEFAULT_API_BASE",
    "FreeplaySettings",
    "FreeplayTarget",
    "Request",
    "build_request",
    "resolve_freeplay",
]
