"""Server, key and project, per target: the variables each target reads, and the rules.

A W&B variable means nothing to Freeplay, so which environment variables name the server,
the key and the project depends on the target. `resolve_weave` and its helpers are the first,
flag-and-environment-only API (for a library caller without config files); `server`,
`api_key` and `check_project` are the same rules inside `load_settings`, with the files.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from tracecli.config import netrc_file
from tracecli.config.fields import BadValue, parse_secret, parse_url, shown_url, url_key
from tracecli.config.files import ConfigFile, display_path
from tracecli.config.paths import default_db
from tracecli.config.resolver import Found, Origin, Resolver
from tracecli.config.secret import SecretStr
from tracecli.diagnostics import UsageError

DEFAULT_WEAVE_SERVER = "https://trace.wandb.ai"
DEFAULT_FREEPLAY_BASE = "https://app.freeplay.ai/api"
WANDB_CLOUD_HOSTS = ("trace.wandb.ai", "api.wandb.ai")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

# Variables that depend on the target: a W&B variable means nothing to Freeplay.
SERVER_ENV = {"weave": ("WF_TRACE_SERVER_URL",), "freeplay": ("FREEPLAY_API_BASE",)}
KEY_ENV = {"weave": "WANDB_API_KEY", "freeplay": "FREEPLAY_API_KEY"}
PROJECT_ENV = {"freeplay": ("FREEPLAY_PROJECT_ID",)}


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def weave_server(flag: str | None) -> str | None:
    """The Weave server to talk to, or None for the embedded store."""
    url = flag or os.environ.get("WF_TRACE_SERVER_URL") or None
    if url is None:
        return None
    try:
        return parse_url(url)
    except BadValue:
        raise UsageError(f"server URL must be http(s)://host[:port], got {url!r}") from None


def netrc_password(host: str) -> str | None:
    """The password of ~/.netrc's entry for `host` (the `wandb login` convention)."""
    try:
        return netrc_file.lookup(host)
    except netrc_file.NetrcError:
        return None


def netrc_hosts(server: str) -> tuple[str, ...]:
    """Machines to look up for a server: its host, then api.wandb.ai for W&B's cloud,
    which is where `wandb login` writes the key."""
    host = (urlsplit(server).hostname or "").lower()
    extra = tuple(h for h in WANDB_CLOUD_HOSTS if host in WANDB_CLOUD_HOSTS and h != host)
    return (host, *extra)


def weave_api_key(flag: str | None, server: str) -> SecretStr | None:
    """--api-key > WANDB_API_KEY > ~/.netrc (the server's host, then api.wandb.ai for W&B)."""
    if flag:
        return SecretStr(flag)
    env = os.environ.get("WANDB_API_KEY")
    if env:
        return SecretStr(env)
    for candidate in netrc_hosts(server):
        pw = netrc_password(candidate)
        if pw:
            return SecretStr(pw)
    return url_key(server)


class WeaveTarget(NamedTuple):
    """Where Weave calls go: a server with its key, or the embedded store."""

    server: str | None
    api_key: SecretStr | None
    db: Path | None = None


def missing_key(server: str) -> UsageError:
    return UsageError(
        f"no API key for {shown_url(server)}: pass --api-key, set WANDB_API_KEY, "
        "run `tracecli login`, or add the host to ~/.netrc (wandb login)"
    )


def weave_destination(
    server: str | None, key: SecretStr | None, db: Path | None = None
) -> WeaveTarget:
    """The one rule of both resolutions (the library's `resolve_weave`, the commands'
    `Settings.weave_target`): no server is the store at `db`; a server that is not this
    machine needs a key (exit 2 naming every way to give one)."""
    if server is None:
        return WeaveTarget(None, None, db if db is not None else default_db())
    if key is None and not is_loopback(server) and url_key(server) is None:
        raise missing_key(server)
    return WeaveTarget(server, key, None)


def resolve_weave(
    server_flag: str | None, key_flag: str | None, db_flag: str | None = None
) -> WeaveTarget:
    """For a library caller (no config files): --server or WF_TRACE_SERVER_URL, its key
    (--api-key, WANDB_API_KEY, ~/.netrc), else the store at `db_flag` or its default."""
    server = weave_server(server_flag)
    key = weave_api_key(key_flag, server) if server is not None else None
    return weave_destination(server, key, Path(db_flag) if db_flag else None)


# ---------------------------------------------------------------------------------------
# The same rules inside `load_settings`, where files and the login store count too.


def server(r: Resolver, target: str) -> Found:
    """The target's server: none for the store, else flag > its variables > files >
    its default."""
    if target == "local":
        if r.flag("server") is not None:
            raise UsageError("--server does not apply to the local target (the embedded store)")
        return None, Origin("default", "not used by the local target")
    if target == "weave":
        found = r.get("server", SERVER_ENV["weave"])
        return found or (DEFAULT_WEAVE_SERVER, Origin("default"))
    return _freeplay_server(r) or (DEFAULT_FREEPLAY_BASE, Origin("default"))


def _freeplay_server(r: Resolver) -> Found | None:
    found = r.flag("server") or r.environ("server", SERVER_ENV["freeplay"])
    if found is None and r.env.get("FREEPLAY_API_URL", "").strip():
        # The Freeplay CLI's variable names the host without /api.
        url = r.parse("server", r.env["FREEPLAY_API_URL"], "FREEPLAY_API_URL")
        found = (url if url.endswith("/api") else url + "/api", Origin("env", "FREEPLAY_API_URL"))
    return found or r.files("server")


def check_project(target: str, project: str | None, origin: Origin) -> None:
    """Freeplay's project is a UUID, Weave's an entity/project: exit 2 naming the place."""
    if project is None:
        return
    if target == "freeplay":
        try:
            uuid.UUID(project)
        except ValueError:
            raise UsageError(
                f"{origin}: project must be a Freeplay project id (a UUID), got {project!r}"
            ) from None
        return
    entity, sep, name = project.partition("/")
    if not (sep and entity and name and "/" not in name):
        raise UsageError(f"{origin}: project must be entity/project, got {project!r}")


def api_key(
    r: Resolver,
    target: str,
    server: str | None,
    cfgs: list[ConfigFile],
    warnings: list[str],
) -> tuple[SecretStr | None, Origin]:
    """--api-key > the target's variable > a file's api_key / api_key_env > the login store."""
    if target == "local" or server is None:
        return None, Origin("default", "not needed by the embedded store")
    found = r.flag("api_key")
    if found is not None:
        return found
    var = KEY_ENV[target]
    if r.env.get(var, "").strip():
        return r.parse("api_key", r.env[var], var), Origin("env", var)
    found = _file_key(r, warnings)
    if found is not None:
        return found
    if target == "weave":
        found = _netrc_key(server, warnings)
        if found is not None:
            return found
    else:
        host = (urlsplit(server).hostname or "").lower()
        for cfg in cfgs:
            if cfg.kind == "user" and host in cfg.credentials:
                entry = cfg.credentials[host]
                return entry.value, Origin("file", f"{cfg.where(entry.line)} (credentials)")
    # last, as requests take it: a key in the URL, when no other is given
    in_url = url_key(server)
    return in_url, Origin("url", "the server URL") if in_url else Origin("default", "none")


def _file_key(r: Resolver, warnings: list[str]) -> Found | None:
    """A file's api_key, or the variable its api_key_env names (a warning when unset)."""
    for cfg, section in r.layers:
        if "api_key" in section:
            return section["api_key"].value, Origin("file", cfg.where(section["api_key"].line))
        if "api_key_env" in section:
            named = section["api_key_env"]
            where = cfg.where(named.line)
            if r.env.get(named.value, "").strip():
                key = r.parse("api_key", r.env[named.value], named.value)
                return key, Origin("env", f"{named.value} (api_key_env at {where})")
            warnings.append(f"{where}: api_key_env names {named.value}, which is not set")
    return None


def _netrc_key(server: str, warnings: list[str]) -> Found | None:
    """The key `wandb login` stored in ~/.netrc; a warning when others can read the file."""
    for host in netrc_hosts(server):
        try:
            password = netrc_file.lookup(host)
        except netrc_file.NetrcError as exc:
            warnings.append(f"cannot read the API key from {exc}")
            return None
        if password:
            path = netrc_file.netrc_path()
            where = f"{display_path(path)} (machine {host})"
            with contextlib.suppress(OSError):
                if os.name == "posix" and path.stat().st_mode & 0o077:
                    warnings.append(
                        f"{display_path(path)} holds an API key and others can read it "
                        f"(mode {path.stat().st_mode & 0o777:o}): chmod 600 {path}"
                    )
            return parse_secret(password), Origin("netrc", where)
    return None
