"""Resolved settings: flags > environment > tracecli.yaml > user config > login store > defaults.

`load_settings` gives one `Settings` object that says, for every value, where it came from
(`config show` prints that, and error messages name it), so "why is it uploading there?"
has an answer. Secrets are `SecretStr` so they never print by accident.

A selected profile's section beats the top-level settings of both files: `--profile prod`
must not be overridden by a development server at the top of the project's tracecli.yaml.
Within the same level, the project's file beats the user's.

The small functions at the top (`resolve_weave`, `weave_server`, `weave_api_key`) are the
first, flag-and-environment-only API, kept for the commands that use it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import SecretStr

from tracecli.config import netrc_file
from tracecli.config.fields import FIELDS, BadValue, parse_secret, parse_url
from tracecli.config.files import (
    ConfigFile,
    Entry,
    display_path,
    find_project_file,
    load_config_file,
)
from tracecli.config.paths import config_dir, data_dir, default_db
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
    return None


@dataclass(frozen=True)
class WeaveTarget:
    """Where Weave calls go: a server with its key, or the embedded store."""

    server: str | None
    api_key: SecretStr | None
    db: Path | None = None


def _missing_key(server: str) -> UsageError:
    return UsageError(
        f"no API key for {server}: pass --api-key, set WANDB_API_KEY, "
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
    if key is None and not is_loopback(server):
        raise _missing_key(server)
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
# Settings: every value with the place it came from.

OriginKind = Literal["flag", "env", "file", "netrc", "default"]


@dataclass(frozen=True)
class Origin:
    """Where a value came from, as `config show` and error messages name it."""

    kind: OriginKind
    where: str = ""

    def __str__(self) -> str:
        if self.kind == "flag":
            return self.where
        if self.kind == "env":
            return f"env {self.where}"
        if self.kind == "default":
            return f"default ({self.where})" if self.where else "default"
        return self.where


def user_config_path() -> Path:
    return config_dir() / "config.yaml"


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know about where and how to send, resolved once."""

    profile: str | None
    target: str
    server: str | None
    project: str | None
    api_key: SecretStr | None
    db: Path
    mode: str
    chunk_size: int
    chunk_bytes: int
    concurrency: int
    max_retry_time: float
    max_outage: float
    flush_interval: float
    pair_wait: float
    follow_status_every: float
    follow_max_outage: float | None
    poll: bool
    rejected: Path
    ca_bundle: Path | None
    allow_insecure: bool
    origins: Mapping[str, Origin] = field(default_factory=dict)
    files: tuple[Path, ...] = ()
    warnings: tuple[str, ...] = ()

    NAMES = (
        "profile", "target", "server", "project", "api_key", "db", "mode", "chunk_size",
        "chunk_bytes", "concurrency", "max_retry_time", "max_outage", "flush_interval",
        "pair_wait", "follow_status_every", "follow_max_outage", "poll", "rejected", "ca_bundle",
        "allow_insecure",
    )  # fmt: skip

    def origin(self, name: str) -> Origin:
        return self.origins.get(name, Origin("default"))

    def require_api_key(self) -> SecretStr:
        """The key, or the usage error that says every way to provide one."""
        if self.api_key is not None:
            return self.api_key
        if self.target == "freeplay":
            raise UsageError(
                f"no API key for {self.server}: pass --api-key, set FREEPLAY_API_KEY, "
                "or run `tracecli login --target freeplay`"
            )
        raise _missing_key(self.server or DEFAULT_WEAVE_SERVER)

    def weave_target(self) -> WeaveTarget:
        """The Weave destination; a remote server without a key is a usage error (exit 2)."""
        if self.target == "freeplay":
            raise UsageError("this command speaks Weave; the selected target is freeplay")
        server = None if self.target == "local" else self.server
        return weave_destination(server, self.api_key, self.db)

    def value_for_display(self, name: str) -> Any:
        value = getattr(self, name)
        if isinstance(value, SecretStr):
            return "**********"
        if isinstance(value, Path):
            return str(value)
        return value

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: each value (secrets masked) with its source, plus the files read."""
        return {
            "settings": {
                name: {"value": self.value_for_display(name), "source": str(self.origin(name))}
                for name in self.NAMES
            },
            "files": [str(p) for p in self.files],
            "warnings": list(self.warnings),
        }


class _Resolver:
    """One resolution: flags, environment and file layers, consulted key by key."""

    def __init__(
        self,
        cli: Mapping[str, Any],
        env: Mapping[str, str],
        layers: list[tuple[ConfigFile, dict[str, Entry]]],
    ) -> None:
        self.cli = cli
        self.env = env
        self.layers = layers

    def parse(self, name: str, raw: Any, where: str) -> Any:
        try:
            return FIELDS[name].parse(raw)
        except BadValue as exc:
            raise UsageError(f"{where}: {exc}") from None

    def flag(self, name: str) -> tuple[Any, Origin] | None:
        if self.cli.get(name) is None:
            return None
        flag = FIELDS[name].flag
        return self.parse(name, self.cli[name], flag), Origin("flag", flag)

    def environ(self, name: str, names: tuple[str, ...]) -> tuple[Any, Origin] | None:
        for var in names:
            raw = self.env.get(var)
            if raw is not None and raw.strip():
                return self.parse(name, raw, var), Origin("env", var)
        return None

    def files(self, name: str) -> tuple[Any, Origin] | None:
        for cfg, section in self.layers:
            if name in section:
                return section[name].value, Origin("file", cfg.where(section[name].line))
        return None

    def get(self, name: str, env_names: tuple[str, ...] = ()) -> tuple[Any, Origin] | None:
        return (
            self.flag(name)
            or self.environ(name, (*FIELDS[name].env, *env_names))
            or self.files(name)
        )


def _config_files(cwd: Path | None = None) -> list[ConfigFile]:
    """The project's tracecli.yaml (nearest parent) and the user config, those that exist."""
    project_path = find_project_file(cwd or Path.cwd())
    found = (
        load_config_file(project_path, "project") if project_path else None,
        load_config_file(user_config_path(), "user"),
    )
    return [cfg for cfg in found if cfg is not None]


def available_profiles(cwd: Path | None = None) -> list[str]:
    """Profile names defined in either file (for shell completion and error messages)."""
    return sorted({name for cfg in _config_files(cwd) for name in cfg.profiles})


def _pick_profile(
    flag: str | None, env: Mapping[str, str], cfgs: list[ConfigFile]
) -> tuple[str | None, Origin]:
    if flag:
        return flag, Origin("flag", "--profile")
    if env.get("TRACECLI_PROFILE", "").strip():
        return env["TRACECLI_PROFILE"].strip(), Origin("env", "TRACECLI_PROFILE")
    for cfg in cfgs:
        if cfg.default_profile is not None:
            entry = cfg.default_profile
            return entry.value, Origin("file", cfg.where(entry.line))
    return None, Origin("default", "none: top-level settings only")


def load_settings(
    cli_values: Mapping[str, Any] | None = None,
    profile: str | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve every setting. `cli_values` maps setting names (`server`, `chunk_size`, ...)
    to flag values, None meaning "not given". Raises UsageError (exit 2) naming the flag,
    variable or file:line of a bad value."""
    env = os.environ if env is None else env
    cli = {k: v for k, v in (cli_values or {}).items() if v is not None}
    unknown = sorted(set(cli) - set(FIELDS))
    if unknown:
        raise ValueError(f"not settings: {', '.join(unknown)}")
    cfgs = _config_files(cwd)
    warnings = [w for cfg in cfgs for w in cfg.warnings]
    name, profile_origin = _pick_profile(profile, env, cfgs)
    layers: list[tuple[ConfigFile, dict[str, Entry]]] = []
    if name is not None:
        layers = [(cfg, cfg.profiles[name]) for cfg in cfgs if name in cfg.profiles]
        if not layers:
            known = sorted({p for cfg in cfgs for p in cfg.profiles})
            if not cfgs:
                raise UsageError(
                    f"profile {name!r} (from {profile_origin}) is not defined: no config file "
                    f"found (tracecli.yaml here or in a parent folder, or "
                    f"{display_path(user_config_path())})"
                )
            where = ", ".join(display_path(cfg.path) for cfg in cfgs)
            raise UsageError(
                f"profile {name!r} (from {profile_origin}) is not defined in {where}; "
                + (f"known profiles: {', '.join(known)}" if known else "no profiles are defined")
            )
    layers += [(cfg, cfg.top) for cfg in cfgs]
    r = _Resolver(cli, env, layers)
    values: dict[str, Any] = {"profile": name}
    origins: dict[str, Origin] = {"profile": profile_origin}

    def put(key: str, found: tuple[Any, Origin] | None, default: Any, why: str = "") -> None:
        values[key], origins[key] = found if found else (default, Origin("default", why))

    # The target first: it decides which variables name the server, the project and the key.
    found = r.get("target")
    if found is None:
        server_hint = r.get("server", SERVER_ENV["weave"])
        target = "weave" if server_hint else "local"
        why = "a server is set" if server_hint else "no server set: the embedded store"
        put("target", None, target, why)
    else:
        put("target", found, None)
    target = values["target"]

    if target == "local":
        if r.flag("server") is not None:
            raise UsageError("--server does not apply to the local target (the embedded store)")
        put("server", None, None, "not used by the local target")
    elif target == "weave":
        put("server", r.get("server", SERVER_ENV["weave"]), DEFAULT_WEAVE_SERVER)
    else:
        put("server", _freeplay_server(r), DEFAULT_FREEPLAY_BASE)

    put("project", r.get("project", PROJECT_ENV.get(target, ())), None)
    _check_project(target, values["project"], origins["project"])

    key, key_origin = _api_key(r, target, values["server"], cfgs, warnings)
    values["api_key"], origins["api_key"] = key, key_origin

    defaults = {"db": data_dir() / "traces.db"}
    for key_name in FIELDS:
        if key_name in values or key_name == "api_key_env":
            continue
        put(key_name, r.get(key_name), defaults.get(key_name, FIELDS[key_name].default))

    return Settings(
        **{k: values[k] for k in Settings.NAMES},
        origins=origins,
        files=tuple(cfg.path for cfg in cfgs),
        warnings=tuple(warnings),
    )


def _freeplay_server(r: _Resolver) -> tuple[Any, Origin] | None:
    found = r.flag("server") or r.environ("server", SERVER_ENV["freeplay"])
    if found is None and r.env.get("FREEPLAY_API_URL", "").strip():
        # The Freeplay CLI's variable names the host without /api.
        url = r.parse("server", r.env["FREEPLAY_API_URL"], "FREEPLAY_API_URL")
        found = (url if url.endswith("/api") else url + "/api", Origin("env", "FREEPLAY_API_URL"))
    return found or r.files("server")


def _check_project(target: str, project: str | None, origin: Origin) -> None:
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


def _api_key(
    r: _Resolver,
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
    if target == "weave":
        for host in netrc_hosts(server):
            try:
                password = netrc_file.lookup(host)
            except netrc_file.NetrcError as exc:
                warnings.append(f"cannot read the API key from {exc}")
                break
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
    else:
        host = (urlsplit(server).hostname or "").lower()
        for cfg in cfgs:
            if cfg.kind == "user" and host in cfg.credentials:
                entry = cfg.credentials[host]
                return entry.value, Origin("file", f"{cfg.where(entry.line)} (credentials)")
    return None, Origin("default", "none")
