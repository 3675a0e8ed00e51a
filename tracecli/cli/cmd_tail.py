"""`tracecli tail`: the latest calls of a project, from a Weave server or the embedded store.

The readers (HTTP client, store) and the settings are imported when the command runs, not
with this module: `tracecli --help` builds every command, and needs none of them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer

from tracecli.cli import options as opt
from tracecli.cli.common import (
    command,
    env_columns,
    on_screen,
    say,
    stderr_console,
    stdout_console,
    write_stdout,
    writing_stdout,
)
from tracecli.cli.root import app
from tracecli.cli.safe import safe_text
from tracecli.readback.rows import ID_SHOWN, row_of

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from tracecli.readback.sources import CallSource
    from tracecli.readback.tail import Follower, TailRequest

STATUS_STYLES = {
    "success": "green",
    "error": "bold red",
    "child error": "red",
    "running": "yellow",
}


class Column(NamedTuple):
    """One column of the table: the index of its cell in `row_of`, its header, its width
    (0: op or exception, which share what the terminal has left) and its alignment."""

    cell: int
    header: str
    width: int
    right: bool = False


_STARTED = Column(0, "started (UTC)", 19)
_TIME = Column(0, "started", 8)  # HH:MM:SS, when the date does not fit
_OP = Column(1, "op", 0)
_STATUS = Column(2, "status", 11)
_STATUS_NARROW = Column(2, "status", 9)  # "child error" is written "child err"
_DURATION = Column(3, "duration", 8, right=True)
_TOKENS = Column(4, "tokens", 7, right=True)
_ID = Column(5, "id", ID_SHOWN)
_EXCEPTION = Column(6, "exception", 0)

# Layouts from the widest down: the first whose fixed columns leave op and exception at
# least _SHARED_MIN cells between them is used. Less useful columns go first: the date,
# then tokens and duration; the time, op, status and id stay (the id is what --id takes).
_LAYOUTS: tuple[tuple[Column, ...], ...] = (
    (_STARTED, _OP, _STATUS, _DURATION, _TOKENS, _ID, _EXCEPTION),
    (_TIME, _OP, _STATUS_NARROW, _DURATION, _TOKENS, _ID, _EXCEPTION),
    (_TIME, _OP, _STATUS_NARROW, _ID, _EXCEPTION),
    (_TIME, _OP, _STATUS_NARROW, _ID),
)
_SHARED_MIN = 30
_OP_MAX = 40
_OP_MIN = 10
_WIDE = 140  # from here on, two spaces between columns (one below: the cells need it)


class Layout(NamedTuple):
    columns: tuple[Column, ...]
    widths: tuple[int, ...]
    gap: int  # spaces between columns


def layout(width: int, rows: list[tuple[str, ...]] | None = None) -> Layout:
    """The columns and their widths for a terminal `width` columns wide: rows never wrap.

    The op gets half of what the fixed columns leave (at most 40), the exception the rest.
    Given the first `rows` (not when following: the rows to come are unknown), each takes
    what the other does not need — a table of errors gives the exception the room — and a
    table with no exception at all has no exception column: the op names show whole. The
    layout is fixed at the first table, so later rows line up under its header."""
    from rich.cells import cell_len

    width = max(width, 20)
    gap = 2 if width >= _WIDE else 1
    for columns in _LAYOUTS:
        fixed = sum(c.width for c in columns) + gap * (len(columns) - 1)
        left = width - fixed
        shared = [c for c in columns if c.width == 0]
        if left >= _SHARED_MIN * len(shared) // 2 or columns is _LAYOUTS[-1]:
            break
    op_need = max((cell_len(safe_text(r[1])) for r in rows), default=0) if rows else 0
    if rows and _EXCEPTION in columns and not any(r[6] for r in rows):
        columns = tuple(c for c in columns if c is not _EXCEPTION)
        left += gap  # the exception's gap too
        shared = [_OP]
        rest = {1: max(_OP_MIN, min(left, op_need))}
    elif len(shared) == 2:
        op = max(_OP_MIN, min(_OP_MAX, left // 2))
        if rows:
            exc_need = max(len(_EXCEPTION.header), *(cell_len(safe_text(r[6])) for r in rows))
            spare = left - op - exc_need
            if op_need > op and spare > 0:
                op = min(_OP_MAX, op + min(spare, op_need - op))
            elif op_need < op:
                op = max(_OP_MIN, op_need)  # the exception takes the rest
        rest = {1: op, 6: max(1, left - op)}
    else:
        rest = {1: max(_OP_MIN, left)}
    return Layout(columns, tuple(c.width or rest[c.cell] for c in columns), gap)


def _cell(text: str, width: int, right: bool) -> Text:
    """`text` made safe and cut or padded to exactly `width` cells (wide characters count
    two); a cut ends with an ellipsis."""
    from rich.cells import cell_len
    from rich.text import Text

    cell = Text(safe_text(text), no_wrap=True, end="")
    size = cell_len(cell.plain)
    if size > width:
        cell.truncate(width, overflow="ellipsis")
    elif right:
        cell = Text(" " * (width - size)) + cell
    else:
        cell.pad_right(width - size)
    return cell


def render_row(cells: tuple[str, ...], lay: Layout, *, header: bool = False) -> Text:
    """One line of the table: each cell safe and fitted, the status coloured."""
    from rich.text import Text

    line = Text(no_wrap=True, end="")
    last = len(lay.columns) - 1
    for i, (column, width) in enumerate(zip(lay.columns, lay.widths, strict=True)):
        text = column.header if header else cells[column.cell]
        if not header and column is _TIME:
            text = text[-8:]  # the time of "YYYY-MM-DD HH:MM:SS"
        style = STATUS_STYLES.get(text, "") if not header and column.cell == 2 else ""
        if column is _STATUS_NARROW and text == "child error":
            text = "child err"
        cell = _cell(text, width, column.right and not header)
        if style:
            cell.stylize(style, 0, len(text))  # the word, not its padding
        line += cell
        if i < last:
            line += " " * lay.gap
    line.rstrip()
    if header:
        line.stylize("bold")
    return line


def render_rows(
    console: Console, calls: list[dict[str, Any]], header: bool, lay: Layout | None = None
) -> str:
    """The table as text for `console`: its width (or the layout `lay` of an earlier
    table), its colours (none when colour is off)."""
    rows = [row_of(call) for call in calls]
    lay = lay or layout(console.width, rows)
    lines = [render_row((), lay, header=True)] if header else []
    lines += [render_row(row, lay) for row in rows]
    with console.capture() as captured:
        for line in lines:
            console.print(line, no_wrap=True, overflow="crop", crop=True, soft_wrap=False)
    return "".join(part.rstrip() + "\n" for part in captured.get().splitlines())


class _Printer:
    def __init__(self, fmt: opt.OutputFormat, follow: bool = False) -> None:
        self.fmt = fmt
        self.follow = follow
        self.out = stdout_console()
        if not on_screen(self.out) and env_columns() is None:
            self.out.width = 200  # a file or a pipe: whole rows, not a squeezed 80 columns
        self.layout: Layout | None = None  # the first table's, kept for the rows after it
        self.width = 0  # the terminal's width that layout is for

    def calls(self, calls: list[dict[str, Any]]) -> None:
        if not calls:
            return
        if self.fmt is opt.OutputFormat.json:
            from tracecli.store.exact_json import dumps_exact

            # dumps_exact: integers beyond 64 bits are printed exactly (orjson refuses them)
            write_stdout("\n".join(dumps_exact(c).decode() for c in calls))
            return
        width = self.out.width  # a terminal's, read again each time: it may be resized
        first = self.layout is None or width != self.width
        if first:
            self.width = width
            # following, the rows to come are unknown: the op keeps its half
            rows = None if self.follow else [row_of(c) for c in calls]
            self.layout = layout(width, rows)
        with writing_stdout():
            self.out.file.write(render_rows(self.out, calls, header=first, lay=self.layout))
            self.out.file.flush()


def _follow(source: CallSource, follower: Follower, printer: _Printer, interval: float) -> None:
    from tracecli.readback.sources import TailError
    from tracecli.readback.tail import TailEvent

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
                say(err, f"tracecli: warning: {exc} (retrying)")
            failing = True
            continue
        if failing:
            say(err, f"tracecli: reconnected to {source.description}")
            failing = False
        printer.calls([e.call for e in events])


MAX_LIMIT = 10**9  # far more than a table can show; beyond 2**63 SQLite fails
MAX_INTERVAL = 86400.0  # a day: time.sleep overflows on the clock's type far beyond it
Limit = Annotated[
    int,
    typer.Option(
        "-n",
        "--limit",
        min=0,
        max=MAX_LIMIT,
        metavar="N",
        help="How many of the latest calls to show.",
    ),
]
FollowCalls = Annotated[
    bool,
    typer.Option(
        "--follow",
        "-f",
        "-F",
        help="Keep polling; print calls as they start and as they finish (Ctrl-C stops). "
        "A project with no calls yet is waited for.",
    ),
]
Interval = Annotated[
    float,
    typer.Option(
        "--interval",
        min=0.1,
        max=MAX_INTERVAL,
        metavar="SECONDS",
        help="Seconds between polls with --follow.",
    ),
]
Op = Annotated[str | None, opt.valued("--op", metavar="NAME", help="Only calls of this op_name.")]
Trace = Annotated[
    str | None,
    opt.valued(
        "--trace",
        metavar="ID",
        help="Only calls of this trace: its id, or a unique prefix or suffix of it.",
    ),
]
CallId = Annotated[
    str | None,
    opt.valued(
        "--id",
        metavar="ID",
        help="Only this call: its id, or a unique prefix or suffix (the table's id column).",
    ),
]
Errors = Annotated[bool, typer.Option("--errors", help="Only calls that raised (status error).")]
TailFormat = Annotated[
    opt.OutputFormat,
    typer.Option("--format", help="text: a table for people; json: one call per line, as stored."),
]


@command(app, "tail", short_help="Show the latest calls of a project; -f to follow.")
def tail_cmd(
    server: opt.Server = None,
    db: opt.Db = None,
    project: opt.Project = None,
    limit: Limit = 20,
    follow: FollowCalls = False,
    interval: Interval = 1.0,
    op: Op = None,
    trace: Trace = None,
    call_id: CallId = None,
    errors: Errors = False,
    fmt: TailFormat = opt.OutputFormat.text,
    api_key: opt.ApiKey = None,
    ca_bundle: opt.CaBundle = None,
    allow_insecure: opt.AllowInsecure = False,
    profile: opt.Profile = None,
) -> None:
    """Show the latest calls of a project, oldest first (newest at the bottom).

    Reads a Weave server's /calls/stream_query with --server (or $WF_TRACE_SERVER_URL),
    else the embedded store. Without --project: the store's only project, or its most
    recently active one (a note on stderr says which), likewise from `tracecli serve`; a
    Weave server cannot list its projects, so there --project is required. The table fits
    the terminal: narrower terminals drop the date, then duration and tokens.

    Examples:
      tracecli tail -p acme/agents -n 50
          the 50 latest calls of acme/agents
      tracecli tail -f --errors
          follow: calls as they start and finish, errors only
      tracecli tail --id 3f9c81d2 --format json
          one call, by the id the table shows

    Exit codes:
      0    calls shown (or none yet); --follow stopped with Ctrl-C
      2    usage or configuration error (bad option or setting, no key, no server)
      130  interrupted (Ctrl-C) without --follow
    """
    from tracecli.cli.readback import readback_settings
    from tracecli.readback.sources import open_source
    from tracecli.readback.tail import TailRequest, resolve_project
    from tracecli.readback.tail_ids import resolve_id

    settings = readback_settings(server, db, api_key, project, ca_bundle, allow_insecure, profile)
    source = open_source(settings)  # exit 2: a remote server without a key
    try:
        name, note = resolve_project(source, settings.project, wait=follow)
        if note:
            say(stderr_console(), f"tracecli: {note}")
        if trace:
            trace = resolve_id(source, name, trace, "trace_id")
        if call_id:
            call_id = resolve_id(source, name, call_id, "id")
        req = TailRequest(name, limit=limit, op=op, trace=trace, errors=errors, call_id=call_id)
        _show(source, req, _Printer(fmt, follow), interval, say_none=note is None)
    finally:
        source.close()


def _show(
    source: CallSource, req: TailRequest, printer: _Printer, interval: float, say_none: bool
) -> None:
    """The latest calls, then (following) the calls as they start and finish; Ctrl-C ends a
    follow with exit 0, a plain tail with 130. An empty table says why on stderr."""
    from tracecli.readback.tail import Follower

    follower = Follower(source, req)
    try:
        calls = follower.snapshot()
        if not calls and printer.fmt is opt.OutputFormat.text and req.limit > 0 and say_none:
            what = "match" if (req.op or req.trace or req.errors or req.call_id) else "yet"
            say(stderr_console(), f"tracecli: no calls {what} in {req.project}")
        printer.calls(calls)
        if printer.follow:
            _follow(source, follower, printer, interval)
    except KeyboardInterrupt:
        raise typer.Exit(0 if printer.follow else 130) from None
