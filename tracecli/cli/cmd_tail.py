"""`tracecli tail`: the latest calls of a project, from a Weave server or the embedded store."""

from __future__ import annotations

import os
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tracecli.callquery import dumps_exact
from tracecli.cli import app
from tracecli.cli.common import (
    ApiKeyOpt,
    DbOpt,
    FormatOpt,
    OutputFormat,
    ProfileOpt,
    ProjectOpt,
    ServerOpt,
    handle_errors,
    stderr_console,
    stdout_console,
    write_stdout,
)
from tracecli.config import load_settings
from tracecli.diagnostics import UsageError
from tracecli.tail import (
    COLUMNS,
    CallSource,
    Follower,
    TailError,
    TailEvent,
    TailRequest,
    open_source,
    resolve_project,
    row_of,
)

# Fixed widths so that rows printed poll after poll line up under the first table's header;
# None: the op (up to 30) and the exception share what the terminal has left.
_WIDTHS = (19, None, 11, 8, 9, 8, None)
_OP_MAX, _OP_MIN, _EXC_MIN = 30, 12, 9


def _layout(width: int) -> tuple[int, ...]:
    """Column widths for a terminal `width`: the fixed columns never shrink (a cut time or
    id is useless); the op (up to 30) and the exception share the rest, at least 12 and 9."""
    left = width - sum(w for w in _WIDTHS if w) - 2 * (len(_WIDTHS) - 1)
    op = max(_OP_MIN, min(_OP_MAX, left // 2))
    exc = max(_EXC_MIN, left - op)
    return tuple(w if w else (op if i == 1 else exc) for i, w in enumerate(_WIDTHS))


def _table(calls: list[dict[str, Any]], header: bool, width: int) -> Table:
    # No box: the header's rows and the rows of later polls share one layout.
    table = Table(box=None, show_header=header, show_edge=False, pad_edge=False)
    widths = _layout(width)
    needed = sum(widths) + 2 * (len(widths) - 1)
    if needed > width:
        table.width = needed  # narrower than 80 columns: let the terminal wrap, never squeeze
    for i, (name, w) in enumerate(zip(COLUMNS, widths, strict=True)):
        last = i == len(widths) - 1
        table.add_column(
            name,
            width=None if last else w,
            min_width=None if last else w,
            max_width=w,
            no_wrap=True,
            overflow="ellipsis",
            justify="right" if name in ("duration", "tokens") else "left",
        )
    for call in calls:
        table.add_row(*row_of(call))
    return table


def render_rows(console: Console, calls: list[dict[str, Any]], header: bool) -> str:
    """The table as text for `console` (its colours, its width, or wider on a terminal too
    narrow for the fixed columns), without the blanks Rich pads the last cell with."""
    table = _table(calls, header=header, width=console.width)
    width = console.width
    console.width = max(width, table.width or 0)
    try:
        with console.capture() as captured:
            console.print(table)
    finally:
        console.width = width
    return "".join(line.rstrip() + "\n" for line in captured.get().splitlines())


class _Printer:
    def __init__(self, fmt: OutputFormat) -> None:
        self.fmt = fmt
        self.out = stdout_console()
        if not self.out.is_terminal and "COLUMNS" not in os.environ:
            self.out.width = 200  # a file or a pipe: whole rows, not a squeezed 80 columns
        self.header_shown = False

    def calls(self, calls: list[dict[str, Any]]) -> None:
        if not calls:
            return
        if self.fmt is OutputFormat.json:
            # dumps_exact: integers beyond 64 bits are printed exactly (orjson refuses them)
            write_stdout("\n".join(dumps_exact(c).decode() for c in calls))
            return
        self.out.file.write(render_rows(self.out, calls, header=not self.header_shown))
        self.out.file.flush()
        self.header_shown = True


def _follow(source: CallSource, follower: Follower, printer: _Printer, interval: float) -> None:
    err = stderr_console()
    failing = False
    while True:
        time.sleep(interval)
        try:
            events: list[TailEvent] = follower.poll()
        except TailError as exc:
            if not exc.transient:
                raise
            if not failing:
                err.print(f"tracecli: warning: {exc} (retrying)", markup=False)
            failing = True
            continue
        if failing:
            err.print(f"tracecli: reconnected to {source.description}", markup=False)
            failing = False
        printer.calls([e.call for e in events])


@app.command("tail")
@handle_errors
def tail_cmd(
    server: ServerOpt = None,
    db: DbOpt = None,
    project: ProjectOpt = None,
    limit: Annotated[
        int, typer.Option("-n", "--limit", min=0, help="How many of the latest calls to show.")
    ] = 20,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-F", help="Keep polling; print calls as they start and as they finish."
        ),
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between polls with --follow.")
    ] = 1.0,
    op: Annotated[
        str | None, typer.Option("--op", help="Only calls of this op_name.", show_default=False)
    ] = None,
    trace: Annotated[
        str | None, typer.Option("--trace", help="Only calls of this trace id.", show_default=False)
    ] = None,
    errors: Annotated[
        bool, typer.Option("--errors", help="Only calls that raised (status error).")
    ] = False,
    fmt: FormatOpt = OutputFormat.text,
    api_key: ApiKeyOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Show the latest calls of a project, oldest first (newest at the bottom).

    Reads a Weave server's /calls/stream_query with --server (or $WF_TRACE_SERVER_URL),
    else the embedded store. Without --project: the store's only project, or its most
    recently active one (a note on stderr says which), likewise from `tracecli serve`; a
    Weave server cannot list its projects, so there --project is required.
    --format json prints one call per line, as the server returns it.
    """
    if server and db:
        raise UsageError("use --server or --db, not both")
    # Server, key, store and project as every command resolves them (flags > env > files);
    # an explicit --db still wins over $WF_TRACE_SERVER_URL.
    settings = load_settings(
        {
            "target": "local" if db and not server else None,
            "server": server,
            "api_key": api_key,
            "db": db,
            "project": project,
        },
        profile=profile,
    )
    for warning in settings.warnings:
        stderr_console().print(f"tracecli: warning: {warning}", markup=False)
    target = settings.weave_target()  # exit 2: a remote server without a key
    key = target.api_key.get_secret_value() if target.api_key else None
    source = open_source(target.server, key, None if target.server else str(target.db))
    project = settings.project
    try:
        name, note = resolve_project(source, project)
        if note:
            stderr_console().print(f"tracecli: {note}", markup=False)
        req = TailRequest(name, limit=limit, op=op, trace=trace, errors=errors)
        follower = Follower(source, req)
        printer = _Printer(fmt)
        try:
            calls = follower.snapshot()
            if not calls and fmt is OutputFormat.text and limit > 0:
                what = "match" if (op or trace or errors) else "yet"
                stderr_console().print(f"tracecli: no calls {what} in {name}", markup=False)
            printer.calls(calls)
            if follow:
                _follow(source, follower, printer, interval)
        except KeyboardInterrupt:
            raise typer.Exit(0 if follow else 130) from None
    finally:
        source.close()
