"""`tracecli serve`: the embedded store over the Weave trace-server routes."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from tracecli.cli import options as opt
from tracecli.cli.common import handle_errors, say, stderr_console
from tracecli.cli.root import app
from tracecli.cli.safe import safe_text


@app.command(
    "serve",
    epilog=(
        "Routes: POST /call/start, /call/end, /call/upsert_batch, "
        "/v2/{entity}/{project}/calls/complete, /calls/stream_query, /calls/delete, and the "
        "object, table, file and feedback routes the weave SDK uses, answered as weave's own "
        "server answers them; GET /health; /openapi.json; any other route is a JSON 404. "
        "Example: tracecli "
        "serve --port 6345, then tracecli upload FILE --server http://127.0.0.1:6345 "
        "--project me/demo, or a weave program with WF_TRACE_SERVER_URL and WANDB_BASE_URL "
        "set to http://127.0.0.1:6345."
    ),
)
@handle_errors
def serve_cmd(
    db: opt.Db = None,
    host: Annotated[
        str, typer.Option("--host", help="Interface to listen on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="TCP port (0: any free port).")
    ] = 6345,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            help=(
                "Require this key (HTTP Basic api:KEY or Bearer KEY); "
                "default $TRACECLI_SERVE_API_KEY, else no auth. Never printed."
            ),
            show_default=False,
        ),
    ] = None,
    profile: opt.Profile = None,
) -> None:
    """Serve the embedded trace store over the Weave trace-server HTTP API.

    The store is the one upload and tail use: --db, $TRACECLI_DB, `db` in tracecli.yaml or
    the user config, else the default file. One log line per request goes to stderr; Ctrl-C
    stops it cleanly (exit 0).
    """
    from tracecli.config.settings import load_settings
    from tracecli.serve.listen import serve

    settings = load_settings({"db": db}, profile=profile)
    for warning in settings.warnings:
        say(stderr_console(), f"tracecli: warning: {warning}")  # a path: made safe
    key = api_key or os.environ.get("TRACECLI_SERVE_API_KEY") or None
    serve(str(settings.db), host=host, port=port, api_key=key, log=_log_line)


def _log_line(line: str) -> None:
    """One line of the server's log on stderr, made safe: a request's path is a client's
    text (`POST /%c2%9b2J`), shown escaped, never acted on by the terminal."""
    sys.stderr.write(safe_text(line) + "\n")
    sys.stderr.flush()
