"""One lookup of a setting: the flag, then the environment, then the file layers.

`Origin` says where a value came from, for `config show` and for error messages; a bad
value is a UsageError that names that place (`--chunk-size`, `TRACECLI_CHUNK_SIZE`,
`tracecli.yaml:3`), whichever it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

from tracecli.config.fields import FIELDS, BadValue
from tracecli.config.files import ConfigFile, Entry
from tracecli.diagnostics import UsageError

OriginKind = Literal["flag", "env", "file", "netrc", "url", "default"]


class Origin(NamedTuple):
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


Found = tuple[Any, Origin]
Layers = list[tuple[ConfigFile, dict[str, Entry]]]


class Resolver(NamedTuple):
    """One resolution: flags, environment and file layers, consulted key by key."""

    cli: Mapping[str, Any]
    env: Mapping[str, str]
    layers: Layers

    def parse(self, name: str, raw: Any, where: str) -> Any:
        try:
            return FIELDS[name].parse(raw)
        except BadValue as exc:
            raise UsageError(f"{where}: {exc}") from None

    def flag(self, name: str) -> Found | None:
        """The flag's value; a setting that shares another's flag (`Field.flag_of`:
        `--max-outage` sets `follow_max_outage` too) reads that one's."""
        field = FIELDS[name]
        given = self.cli.get(field.flag_of or name)
        if given is None:
            return None
        return self.parse(name, given, field.flag), Origin("flag", field.flag)

    def environ(self, name: str, names: tuple[str, ...]) -> Found | None:
        for var in names:
            raw = self.env.get(var)
            if raw is not None and raw.strip():
                return self.parse(name, raw, var), Origin("env", var)
        return None

    def files(self, name: str) -> Found | None:
        for cfg, section in self.layers:
            if name in section:
                return section[name].value, Origin("file", cfg.where(section[name].line))
        return None

    def get(self, name: str, env_names: tuple[str, ...] = ()) -> Found | None:
        return (
            self.flag(name)
            or self.environ(name, (*FIELDS[name].env, *env_names))
            or self.files(name)
        )
