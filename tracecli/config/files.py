"""Config files (`tracecli.yaml` of a project, the user's `config.yaml`) read with line numbers.

A file is composed into YAML nodes (safe loader only) rather than loaded into plain dicts, so
every value keeps the line it was written on: an unknown key or a bad value is reported as
`file:line: key: message`, the form editors and CI logs link to.

Both files have the same form:

    default_profile: staging        # used when neither --profile nor TRACECLI_PROFILE is given
    server: http://127.0.0.1:6345   # settings at the top level apply to every profile
    profiles:
      staging: {target: weave, server: https://weave.example.com, project: team/app}
    credentials:                    # user config only; written by `tracecli login`
      app.freeplay.ai: <key>
"""

from __future__ import annotations

import difflib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from tracecli.config.fields import FIELDS, FILE_ONLY_KEYS, BadValue, parse_secret
from tracecli.diagnostics import UsageError

if TYPE_CHECKING:
    import yaml

Kind = Literal["project", "user"]
PROJECT_FILE = "tracecli.yaml"
PROFILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
NO_SECRETS_HERE = (
    "API keys do not belong in the project's tracecli.yaml (it is usually committed): "
    "use `tracecli login`, WANDB_API_KEY / FREEPLAY_API_KEY, or api_key_env"
)


class ConfigError(UsageError):
    """A config file problem, always `path:line: message` (exit 2, like any usage error)."""

    def __init__(self, path: Path, line: int | None, message: str) -> None:
        where = f"{display_path(path)}:{line}" if line else display_path(path)
        super().__init__(f"{where}: {message}")


def display_path(path: Path) -> str:
    """Short but unambiguous: `~/...` below home, relative below the working directory when
    that is deeper (a project inside home); `~/.netrc`, not `.netrc`, when run from home."""
    path = Path(path)
    best: tuple[int, str] | None = None
    for base, prefix in ((Path.home(), "~/"), (Path.cwd(), "")):
        try:
            resolved = base.resolve()
            # the folder resolved, not the name: a link is named as the link
            rel = (path.parent.resolve() / path.name).relative_to(resolved)
        except (ValueError, OSError):
            continue
        depth = len(resolved.parts)
        if best is None or depth > best[0]:
            best = (depth, f"{prefix}{rel}")
    return best[1] if best else str(path)


class Entry(NamedTuple):
    """A value read from a file, with the 1-based line it is on."""

    value: Any
    line: int


@dataclass
class ConfigFile:
    path: Path
    kind: Kind
    top: dict[str, Entry] = field(default_factory=dict)
    profiles: dict[str, dict[str, Entry]] = field(default_factory=dict)
    profile_lines: dict[str, int] = field(default_factory=dict)
    default_profile: Entry | None = None
    credentials: dict[str, Entry] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def where(self, line: int) -> str:
        return f"{display_path(self.path)}:{line}"

    def has_secrets(self) -> bool:
        sections = [self.top, *self.profiles.values()]
        return bool(self.credentials) or any("api_key" in s for s in sections)


def find_project_file(cwd: Path | None = None) -> Path | None:
    """`tracecli.yaml` in the working directory or its nearest parent that has one."""
    start = (cwd or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        candidate = folder / PROJECT_FILE
        # a link to nothing, a link loop or a folder is this project's file all the same,
        # said unreadable (load_config_file), not passed over for a parent's or none
        if candidate.is_file() or candidate.is_symlink() or candidate.exists():
            return candidate
    return None


def load_config_file(path: Path, kind: Kind) -> ConfigFile | None:
    """The parsed file, or None when it does not exist. Raises ConfigError naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if not path.is_symlink():
            return None
        target = os.readlink(path)
        raise ConfigError(
            path, None, f"cannot read: a symbolic link to {target}, which does not exist"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(path, None, "not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read: {exc.strerror or exc}") from None
    import yaml  # start-up: most runs find no config file, and PyYAML costs ~10 ms

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(path, mark.line + 1 if mark else None, f"YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, f"YAML: {exc}") from None
    cfg = ConfigFile(path, kind)
    if root is None:
        return cfg
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(path, _line(root), "must be a mapping of settings (key: value)")
    for key, key_node, value_node in _pairs(cfg, root):
        if key == "profiles":
            _read_profiles(cfg, value_node)
        elif key == "default_profile":
            name = _construct(cfg, value_node)
            if not isinstance(name, str) or not PROFILE_NAME_RE.match(name):
                raise ConfigError(path, _line(value_node), "default_profile: must be a name")
            cfg.default_profile = Entry(name, _line(value_node))
        elif key == "credentials":
            _read_credentials(cfg, key_node, value_node)
        else:
            _read_setting(cfg, cfg.top, key, key_node, value_node)
    if kind == "user" and cfg.has_secrets():
        _check_private(cfg)
    return cfg


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _pairs(cfg: ConfigFile, node: yaml.MappingNode) -> list[tuple[str, yaml.Node, yaml.Node]]:
    import yaml

    seen: dict[str, int] = {}
    out = []
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str) or key_node.tag != "tag:yaml.org,2002:str":
            raise ConfigError(cfg.path, _line(key_node), "keys must be plain names")
        if key in seen:
            raise ConfigError(
                cfg.path, _line(key_node), f"{key}: given twice (first on line {seen[key]})"
            )
        seen[key] = _line(key_node)
        out.append((key, key_node, value_node))
    return out


def _construct(cfg: ConfigFile, node: yaml.Node) -> Any:
    import yaml

    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else _line(node)
        raise ConfigError(cfg.path, line, f"YAML: {exc.problem}") from None
    except (ValueError, KeyError, OverflowError):
        # PyYAML's constructors of `!!int abc`, `!!bool maybe`, `!!timestamp 2026-13-45`
        # raise Python's own errors, whose text quotes the value: never an API key in a log
        bad = _bad_scalar(node)
        line, tag = (
            (_line(bad), bad.tag.replace("tag:yaml.org,2002:", "!!"))
            if bad
            else (_line(node), "tagged")
        )
        raise ConfigError(cfg.path, line, f"YAML: not a valid {tag} value") from None
    finally:
        loader.dispose()


def _bad_scalar(node: yaml.Node) -> yaml.ScalarNode | None:
    """The scalar that cannot be what its tag says (`!!int abc`, or a date such as
    2026-13-45 that YAML takes for a timestamp): its tag and line name it, not its value."""
    import yaml

    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, yaml.ScalarNode):
            loader = yaml.SafeLoader("")
            try:
                loader.construct_object(item)
            except (ValueError, KeyError, OverflowError, yaml.YAMLError):
                return item
            finally:
                loader.dispose()
        elif isinstance(item, yaml.MappingNode):
            stack.extend(v for pair in reversed(item.value) for v in reversed(pair))
        elif isinstance(item, yaml.SequenceNode):
            stack.extend(reversed(item.value))
    return None


def _read_setting(
    cfg: ConfigFile, into: dict[str, Entry], key: str, key_node: yaml.Node, value_node: yaml.Node
) -> None:
    spec = FIELDS.get(key)
    if spec is None:
        known = [*FIELDS, *FILE_ONLY_KEYS] if into is cfg.top else list(FIELDS)
        hint = difflib.get_close_matches(key, known, n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else f"; known keys: {', '.join(known)}"
        raise ConfigError(cfg.path, _line(key_node), f"unknown key {key!r}{extra}")
    if cfg.kind == "project" and not spec.project_ok:
        raise ConfigError(cfg.path, _line(key_node), f"{key}: {NO_SECRETS_HERE}")
    raw = _construct(cfg, value_node)
    try:
        value = spec.parse(raw)
    except BadValue as exc:
        raise ConfigError(cfg.path, _line(value_node), f"{key}: {exc}") from None
    if spec.is_path and not value.is_absolute():
        value = cfg.path.parent / value  # relative to the file, not to wherever tracecli runs
    into[key] = Entry(value, _line(value_node))
    if "api_key" in into and "api_key_env" in into:
        raise ConfigError(cfg.path, _line(key_node), "set api_key or api_key_env, not both")


def _read_profiles(cfg: ConfigFile, node: yaml.Node) -> None:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(cfg.path, _line(node), "profiles: must be a mapping of name: settings")
    for name, name_node, body in _pairs(cfg, node):
        if not PROFILE_NAME_RE.match(name):
            raise ConfigError(cfg.path, _line(name_node), f"profile name {name!r} is not a name")
        section: dict[str, Entry] = {}
        if isinstance(body, yaml.MappingNode):
            for key, key_node, value_node in _pairs(cfg, body):
                if key in FILE_ONLY_KEYS:
                    raise ConfigError(
                        cfg.path, _line(key_node), f"{key}: belongs at the top level of the file"
                    )
                _read_setting(cfg, section, key, key_node, value_node)
        elif not (isinstance(body, yaml.ScalarNode) and body.tag.endswith(":null")):
            raise ConfigError(cfg.path, _line(body), f"profile {name!r}: must be a mapping")
        cfg.profiles[name] = section
        cfg.profile_lines[name] = _line(name_node)


def _read_credentials(cfg: ConfigFile, key_node: yaml.Node, node: yaml.Node) -> None:
    import yaml

    if cfg.kind == "project":
        raise ConfigError(cfg.path, _line(key_node), f"credentials: {NO_SECRETS_HERE}")
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(cfg.path, _line(node), "credentials: must be a mapping of host: key")
    for host, _host_node, value_node in _pairs(cfg, node):
        try:
            secret = parse_secret(_construct(cfg, value_node))
        except BadValue as exc:
            raise ConfigError(cfg.path, _line(value_node), f"credentials.{host}: {exc}") from None
        cfg.credentials[host.lower()] = Entry(secret, _line(value_node))


def _check_private(cfg: ConfigFile) -> None:
    try:
        mode = stat.S_IMODE(cfg.path.stat().st_mode)
    except OSError:
        return
    if os.name == "posix" and mode & 0o077:
        cfg.warnings.append(
            f"{display_path(cfg.path)} holds API keys but other users can read it "
            f"(mode {mode:o}): run `chmod 600 {cfg.path}`"
        )
