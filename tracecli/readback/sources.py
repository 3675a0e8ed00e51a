"""Where `tail` and `export` read calls from: a Weave server (`/calls/stream_query`, through
the one HTTP client) or the embedded store, both answering the same query with the same
CallSchema dicts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Unpack

from tracecli.config.secret import SecretStr
from tracecli.config.settings import Settings
from tracecli.diagnostics import TracecliError
from tracecli.store.db import Store
from tracecli.store.exact_json import loads_exact
from tracecli.store.query import QueryError, Selection
from tracecli.targets.endpoint import endpoint
from tracecli.targets.outcome import config_error, network_message, redirect_error

if TYPE_CHECKING:
    import httpx


class TailError(TracecliError):
    """A server or store problem: one line, exit 2. `transient` ones are retried by --follow."""

    exit_code = 2

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class CallSource(Protocol):
    description: str

    def query(self, project_id: str, **selection: Unpack[Selection]) -> list[dict[str, Any]]: ...

    def projects(self) -> list[str] | None:
        """Projects the source can list (most recent first), or None if it cannot."""
        ...

    def close(self) -> None: ...


class StoreSource:
    def __init__(self, path: str) -> None:
        self.store = Store(path, create=False)
        self.description = f"the trace store {path}"

    def query(self, project_id: str, **selection: Unpack[Selection]) -> list[dict[str, Any]]:
        try:
            return list(self.store.query(project_id, **selection))
        except QueryError as exc:
            raise TailError(str(exc)) from None

    def projects(self) -> list[str] | None:
        return self.store.projects()

    def close(self) -> None:
        self.store.close()


class ServerSource:
    """A Weave server's `/calls/stream_query`, through the client every command opens
    (`tracecli.targets.transport.http_client`): --ca-bundle honoured, no key over plain
    http to another host without --allow-insecure, the key masked in every message."""

    def __init__(
        self,
        url: str,
        api_key: SecretStr | None,
        *,
        ca_bundle: str | Path | None = None,
        allow_insecure: bool = False,
    ) -> None:
        server = endpoint(url, api_key, allow_insecure=allow_insecure)
        self.url = server.base_url
        self.host = server.host
        self.redact = server.redact
        self.description = server.base_url
        self.has_key = server.key is not None
        # start-up: `tail` of the store (the usual one) needs no HTTP client
        from tracecli.targets.transport import http_client

        self.client = http_client(server, ca_bundle=ca_bundle, timeout=30.0, connect_timeout=5.0)

    def failure(self, exc: httpx.HTTPError, doing: str) -> TracecliError:
        """What a request that got no answer tells the user: a certificate or URL problem
        is a usage error (exit 2, retrying cannot help); network trouble is transient."""
        import httpx  # the client's: imported with it

        fatal = config_error(exc, self.host, self.redact)
        if fatal is not None:
            return fatal
        if isinstance(exc, httpx.TimeoutException):
            return TailError(f"{self.url} did not answer in time", transient=True)
        return TailError(f"{doing}: {network_message(exc, self.redact)}", transient=True)

    def no_redirect(self, r: httpx.Response) -> None:
        """Raise for a redirect: the client follows none (it would carry the key elsewhere),
        and its empty body is no answer (read as one, it said "no calls", and `export`
        wrote an empty file with exit 0)."""
        if 300 <= r.status_code < 400:
            raise redirect_error(r.status_code, r.headers, str(r.url), self.host, self.redact)

    def _auth_error(self, status: int) -> TailError:
        """A 401/403: with no key sent, the server requires one; else it refused ours."""
        if not self.has_key:
            return TailError(
                f"{self.url} requires an API key (HTTP {status}): pass --api-key, set "
                "WANDB_API_KEY, or add the host to ~/.netrc"
            )
        return TailError(
            f"{self.url} refused the API key (HTTP {status}): check --api-key, "
            "WANDB_API_KEY or ~/.netrc"
        )

    def query(self, project_id: str, **selection: Unpack[Selection]) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"project_id": project_id}
        body.update((k, v) for k, v in selection.items() if v is not None)
        if not body.get("offset"):
            body.pop("offset", None)  # 0, the default: not sent
        import httpx  # the client's: imported with it

        try:
            r = self.client.post(
                "/calls/stream_query", json=body, headers={"Accept": "application/jsonl"}
            )
        except httpx.HTTPError as exc:
            raise self.failure(exc, f"cannot reach {self.url}") from None
        if r.status_code in (401, 403):
            raise self._auth_error(r.status_code)
        self.no_redirect(r)
        if r.status_code >= 400:
            raise TailError(
                f"{self.url} answered HTTP {r.status_code} to /calls/stream_query: "
                + self.redact(_reason(r)),
                transient=r.status_code >= 500 or r.status_code == 429,
            )
        calls = []
        for n, line in enumerate(r.content.splitlines(), 1):
            if not line.strip():
                continue
            try:
                calls.append(loads_exact(line))  # integers beyond 64 bits stay exact
            except ValueError:
                raise TailError(f"{self.url} sent a line that is not JSON (line {n})") from None
        return calls

    def projects(self) -> list[str] | None:
        """What `tracecli serve` holds (its own GET /tracecli/projects, the most recently
        active first); None from any other server: a Weave server cannot list projects."""
        import httpx  # the client's: imported with it

        try:
            r = self.client.get("/tracecli/projects")
        except httpx.HTTPError as exc:
            failure = self.failure(exc, f"cannot reach {self.url}")
            if isinstance(failure, TailError):
                failure.transient = False
            raise failure from None
        if r.status_code in (401, 403):
            raise self._auth_error(r.status_code)
        try:
            projects = r.json()["projects"] if r.status_code == 200 else None
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(projects, list) or not all(isinstance(p, str) for p in projects):
            return None
        return projects

    def close(self) -> None:
        self.client.close()


def _reason(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text.strip()[:200] or r.reason_phrase
    if isinstance(body, dict):
        if isinstance(reason := body.get("reason"), str):
            return reason
        detail = body.get("detail")
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            first = detail[0]
            loc = ".".join(str(p) for p in first.get("loc", []) if p != "body")
            return f"{loc}: {first.get('msg')}" if loc else str(first.get("msg"))
        if detail:
            return str(detail)
    return str(body)[:200]


def open_source(settings: Settings) -> CallSource:
    """Where `tail` and `export` read: the Weave server of `settings` with its key (exit 2
    for a remote server without one), else the embedded store."""
    target = settings.weave_target()
    if target.server is None:
        assert target.db is not None
        return StoreSource(str(target.db))
    return ServerSource(
        target.server,
        target.api_key,
        ca_bundle=settings.ca_bundle,
        allow_insecure=settings.allow_insecure,
    )
