"""Writing the user config: `tracecli login --target freeplay` stores its key there.

The file is edited as text at the places its YAML nodes name, not re-dumped, so the user's
comments and layout survive a login. Only shapes the edit cannot follow (a flow-style or
empty `credentials:`) fall back to re-writing the file from its data.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tracecli.config.files import ConfigError, load_config_file
from tracecli.config.netrc_file import write_private


def _entry(host: str, key: str, indent: int) -> str:
    return f"{' ' * indent}{json.dumps(host)}: {json.dumps(key)}\n"


def set_credential_text(text: str, host: str, key: str) -> str:
    """`text` with `credentials.<host>` set to `key`."""
    host = host.lower()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader) if text.strip() else None
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from None
    if root is None:
        sep = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{sep}credentials:\n{_entry(host, key, 2)}"
    if not isinstance(root, yaml.MappingNode):
        raise ValueError("must be a mapping of settings")
    for key_node, value_node in root.value:
        if key_node.value != "credentials":
            continue
        if isinstance(value_node, yaml.MappingNode) and not value_node.flow_style:
            for host_node, secret_node in value_node.value:
                if str(host_node.value).lower() == host:
                    start, end = secret_node.start_mark.index, secret_node.end_mark.index
                    return text[:start] + json.dumps(key) + text[end:]
            first = value_node.value[0][0].start_mark
            at = first.index - first.column
            return text[:at] + _entry(host, key, first.column) + text[at:]
        return _rewrite(text, host, key)
    sep = "" if text.endswith("\n") else "\n"
    return f"{text}{sep}credentials:\n{_entry(host, key, 2)}"


def _rewrite(text: str, host: str, key: str) -> str:
    data = yaml.safe_load(text) or {}
    creds = data.get("credentials")
    data["credentials"] = {**(creds if isinstance(creds, dict) else {}), host: key}
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def store_credential(path: Path, host: str, key: str) -> Path:
    """Save a key for `host` in the user config at `path` (mode 0600)."""
    try:
        old = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, f"cannot read: {exc}") from None
    if old.strip():
        load_config_file(path, "user")  # refuse to edit a file that is already invalid
    try:
        new = set_credential_text(old, host, key)
    except ValueError as exc:
        raise ConfigError(path, None, str(exc)) from None
    write_private(path, new)
    return path
