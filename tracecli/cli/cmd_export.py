"""`tracecli export`: every call of a project as JSON lines, from a server or the store."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import IO, Annotated, cast

import typer

from tracecli.cli import options as opt
from tracecli.cli.common import command, say, stderr_console, writing_stdout
from tracecli.cli.output_file import output_sink
from tracecli.cli.root import app
from tracecli.cli.safe import safe_json_bytes
from tracecli.cli.validate_run import terminate_as_interrupt
from tracecli.diagnostics import TracecliError


class _SafeLines:
    """stdout for the export's JSON lines, with the characters a terminal acts on (C1
    controls, bidi overrides) written as `\\uXXXX` escapes, as every JSON output of
    tracecli: the same values, inert on a screen. A file (-o) gets the lines as read."""

    def write(self, data: bytes) -> int:
        return sys.stdout.buffer.write(safe_json_bytes(data))


@command(
    app,
    "export",
    short_help="Write every call of a project as JSON lines, to upload elsewhere.",
)
def export_cmd(
    server: opt.Server = None,
    db: opt.Db = None,
    project: opt.Project = None,
    output: Annotated[
        Path | None,
        opt.valued("--output", "-o", help="File to write (default: stdout)."),
    ] = None,
    api_key: opt.ApiKey = None,
    ca_bundle: opt.CaBundle = None,
    allow_insecure: opt.AllowInsecure = False,
    profile: opt.Profile = None,
) -> None:
    """Write every call of a project, oldest first, one JSON object a line.

    Each line is a call as /calls/stream_query returns it (from --server or
    $WF_TRACE_SERVER_URL, else the embedded store); `tracecli upload FILE` sends the file
    to another server. Project: --project, else as `tracecli tail` picks it.

    Examples:
      tracecli export -p acme/agents -o agents.jsonl
          the store's calls, to a file
      tracecli export --server http://127.0.0.1:8000 -p acme/agents | gzip > a.gz
          a server's calls, compressed

    Exit codes:
      0    every call of the project written
      2    usage or configuration error (bad option or setting, no key, no server)
      130  interrupted (Ctrl-C): -o FILE is not written (an earlier one is kept)
      143  stopped by SIGTERM: the same
    """
    from tracecli.cli.readback import readback_settings
    from tracecli.readback.export import export_project
    from tracecli.readback.sources import open_source
    from tracecli.readback.tail import resolve_project

    settings = readback_settings(server, db, api_key, project, ca_bundle, allow_insecure, profile)
    err = stderr_console()
    source = open_source(settings)  # exit 2: a remote server without a key
    got, previous = terminate_as_interrupt()  # SIGTERM stops it as Ctrl-C does
    try:
        name, note = resolve_project(source, settings.project)
        if note:
            say(err, f"tracecli: {note}")
        if output is None:
            with writing_stdout():
                result = export_project(source, name, cast("IO[bytes]", _SafeLines()))
                sys.stdout.buffer.flush()
        else:
            try:
                # whole or not at all: an interrupted export leaves no part of the project
                with output_sink(str(output)) as out:
                    result = export_project(source, name, out)
            except OSError as exc:
                raise TracecliError(f"cannot write {output}: {exc.strerror or exc}", 2) from None
    except KeyboardInterrupt:
        where = f"; {output} was not written" if output is not None else ""
        say(err, f"tracecli: interrupted{where}")
        raise typer.Exit(128 + (got[0] if got else signal.SIGINT)) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        source.close()
    where = f" to {output}" if output else ""
    say(err, f"tracecli: exported {result.calls} calls of {name}{where}")
