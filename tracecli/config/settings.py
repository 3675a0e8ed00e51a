"""Resolved settings: flags > environment > tracecli.yaml > user config > login store > defaults.

`load_settings` gives one `Settings` object that says, for every value, where it came from
(`config show` prints that, and error messages name it), so "why is it uploading there?"
has an answer. Secrets are `SecretStr` so they never print by accident.

A selected profile's section beats the top-level settings of both files: `--profile prod`
must not be overridden by a development server at the top of the project's tracecli.yaml.
Within the same level, the project's file beats the user's.

The lookup of one key (flag, environment, files) is `tracecli.config.resolver`; the server,
key and project rules of each target are `tracecli.config.per_target`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from tracecli.config import per_target
from tracecli.config.fields import FIELDS, shown_url
from tracecli.config.files import (
    ConfigFile,
    display_path,
    find_project_file,
    load_config_file,
)
from tracecli.config.paths import config_dir, data_dir
from tracecli.config.per_target import (
    DEFAULT_WEAVE_SERVER,
    PROJECT_ENV,
    SERVER_ENV,
    WeaveTarget,
    missing_key,
    weave_destination,
)
from tracecli.config.resolver import Found, Layers, Origin, Resolver
from tracecli.config.secret import SecretStr
from tracecli.diagnostics import UsageError


def user_config_path() -> Path:
    return config_dir() / "config.yaml"


class Settings(NamedTuple):
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
    yaml_quiet: float
    poll: bool
    rejected: Path
    ca_bundle: Path | None
    allow_insecure: bool
    origins: Mapping[str, Origin] = MappingProxyType({})
    files: tuple[Path, ...] = ()
    warnings: tuple[str, ...] = ()

    def origin(self, name: str) -> Origin:
        return self.origins.get(name, Origin("default"))

    def require_api_key(self) -> SecretStr:
        """The key, or the usage error that says every way to provide one."""
        if self.api_key is not None:
            return self.api_key
        if self.target == "freeplay":
            raise UsageError(
                f"no API key for {shown_url(self.server or '')}: pass --api-key, set "
                "FREEPLAY_API_KEY, "
                "or run `tracecli login --target freeplay`"
            )
        raise missing_key(self.server or DEFAULT_WEAVE_SERVER)

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
        if name == "server" and isinstance(value, str):
            return shown_url(value)  # a key in the URL is a key
        return value

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: each value (secrets masked) with its source, plus the files read."""
        return {
            "settings": {
                name: {"value": self.value_for_display(name), "source": str(self.origin(name))}
                for name in NAMES
            },
            "files": [str(p) for p in self.files],
            "warnings": list(self.warnings),
        }


# the settings proper, as `config show` lists them (the fields before `origins`)
NAMES = Settings._fields[: Settings._fields.index("origins")]


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


def _layers(name: str | None, origin: Origin, cfgs: list[ConfigFile]) -> Layers:
    """The file layers, first wins: the profile's sections (when one is picked), then the
    top level of each file. A profile no file defines is a usage error."""
    layers: Layers = []
    if name is not None:
        layers = [(cfg, cfg.profiles[name]) for cfg in cfgs if name in cfg.profiles]
        if not layers:
            known = sorted({p for cfg in cfgs for p in cfg.profiles})
            if not cfgs:
                raise UsageError(
                    f"profile {name!r} (from {origin}) is not defined: no config file "
                    f"found (tracecli.yaml here or in a parent folder, or "
                    f"{display_path(user_config_path())})"
                )
            where = ", ".join(display_path(cfg.path) for cfg in cfgs)
            raise UsageError(
                f"profile {name!r} (from {origin}) is not defined in {where}; "
                + (f"known profiles: {', '.join(known)}" if known else "no profiles are defined")
            )
    return layers + [(cfg, cfg.top) for cfg in cfgs]


def _target(r: Resolver) -> Found:
    """The target first: it decides which variables name the server, project and key."""
    found = r.get("target")
    if found is not None:
        return found
    server_hint = r.get("server", SERVER_ENV["weave"])
    if server_hint:
        return "weave", Origin("default", "a server is set")
    return "local", Origin("default", "no server set: the embedded store")


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
    r = Resolver(cli, env, _layers(name, profile_origin, cfgs))
    found: dict[str, Found] = {"profile": (name, profile_origin), "target": _target(r)}
    target = found["target"][0]
    found["server"] = per_target.server(r, target)
    project = r.get("project", PROJECT_ENV.get(target, ()))
    found["project"] = project or (None, Origin("default"))
    per_target.check_project(target, *found["project"])
    found["api_key"] = per_target.api_key(r, target, found["server"][0], cfgs, warnings)
    defaults = {"db": data_dir() / "traces.db"}
    for key in FIELDS:
        if key not in found and key != "api_key_env":
            default = defaults.get(key, FIELDS[key].default)
            found[key] = r.get(key) or (default, Origin("default"))
    return Settings(
        **{k: found[k][0] for k in NAMES},
        origins={k: origin for k, (_, origin) in found.items()},
        files=tuple(cfg.path for cfg in cfgs),
        warnings=tuple(warnings),
    )
