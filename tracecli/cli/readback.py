"""Where `tail` and `export` read: resolved once, as every command resolves its settings."""

from __future__ import annotations

from tracecli.cli.common import stderr_console, warn
from tracecli.config.settings import Settings, load_settings
from tracecli.diagnostics import UsageError


def readback_settings(
    server: str | None,
    db: str | None,
    api_key: str | None,
    project: str | None,
    ca_bundle: str | None,
    allow_insecure: bool,
    profile: str | None,
) -> Settings:
    """Server, key, store, project and TLS options (flags > env > files), its warnings
    printed; an explicit --db wins over $WF_TRACE_SERVER_URL. The arguments in the order
    both commands declare their options."""
    if server and db:
        raise UsageError("use --server or --db, not both")
    settings = load_settings(
        {
            "target": "local" if db and not server else None,
            "server": server,
            "api_key": api_key,
            "db": db,
            "project": project,
            "ca_bundle": ca_bundle,
            "allow_insecure": allow_insecure or None,
        },
        profile=profile,
    )
    err = stderr_console()
    for warning in settings.warnings:
        warn(err, warning)
    return settings
