"""`tracecli validate PATH...`: check trace files without sending anything.

The checks are imported when the command runs, not with this module: `tracecli --help`
builds every command, and needs none of them.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tracecli.cli import app
from tracecli.cli import options as opt
from tracecli.cli.common import command, say, stderr_console, write_stdout
from tracecli.cli.render import ReportFormat, plural, render
from tracecli.cli.safe import safe_text

if TYPE_CHECKING:
    from tracecli.upload.validate import Progress as ValidateProgress
    from tracecli.upload.validate import ValidationReport

# the library's DEFAULT_MAX_ERRORS (tracecli/upload/validate.py), which the help shows;
# tests/test_startup.py holds the two equal
DEFAULT_MAX_ERRORS = 200
_PROGRESS_MIN_BYTES = 32 << 20  # smaller inputs finish before a bar would be of use


def summary_line(report: ValidationReport) -> str:
    text = (
        f"{plural(report.files, 'file')}, {plural(report.records, 'record')}, "
        f"{plural(report.calls, 'call')}: {plural(report.errors, 'error')}, "
        f"{plural(report.warnings, 'warning')}"
    )
    if report.strict and report.errors:
        text += " (--strict: warnings count as errors)"
    if report.unlisted:
        text += f"; {report.unlisted} more not listed (--max-errors 0 lists all)"
    return text


@command(
    app,
    "validate",
    short_help="Check trace files without sending anything; exit 1 on any error.",
)
def validate(
    paths: opt.Paths,
    fmt: Annotated[
        ReportFormat,
        typer.Option(
            "--format",
            "-f",
            help="text: one line per problem; json: one object on stdout; github: "
            "annotations for GitHub Actions.",
        ),
    ] = ReportFormat.text,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Treat warnings as errors (exit 1, ok false)."),
    ] = False,
    max_errors: Annotated[
        int,
        typer.Option(
            "--max-errors",
            min=0,
            metavar="N",
            help="List at most N errors (and N warnings); the counts stay exact. 0: all.",
        ),
    ] = DEFAULT_MAX_ERRORS,
    input_format: opt.InputFormat = opt.StdinFormat.jsonl,
) -> None:
    """Check trace files record by record and across records; exit 1 on any error.

    Every problem is one line naming the file, the line and the field. Starts and ends
    are paired across all the inputs, as an upload of the same paths would pair them.

    Examples:
      tracecli validate traces/
          every trace file under traces/
      tracecli validate run.jsonl --format github
          annotations on a pull request

    Exit codes:
      0    every record valid
      1    errors found (or warnings, with --strict)
      2    usage or configuration error (bad option or setting, no key, no server)
      130  interrupted (Ctrl-C)
    """
    from tracecli.upload.validate import validate_paths

    got, previous = _terminate_as_interrupt()
    try:
        with _ProgressDisplay() as on_progress:
            report = validate_paths(
                paths,
                strict=strict,
                stdin_format=input_format.value,
                max_errors=max_errors,
                on_progress=on_progress,
            )
    except KeyboardInterrupt:
        say(stderr_console(), "tracecli: interrupted")
        raise typer.Exit(128 + (got[0] if got else signal.SIGINT)) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    counts = {k: v for k, v in report.to_dict().items() if k != "diagnostics"}
    write_stdout(render(fmt, report.diagnostics, counts, summary_line(report)))
    raise typer.Exit(0 if report.ok else 1)


def _terminate_as_interrupt() -> tuple[list[int], Any]:
    """SIGTERM (a CI job cancelled, systemd, Kubernetes) stops validate as Ctrl-C does;
    the list gets the signal's number, for the exit code (128 + it: 143). Also returns
    the handler to put back (None off the main thread, where none can be set)."""
    got: list[int] = []

    def handler(signum: int, frame: object) -> None:
        got.append(signum)
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        return got, None
    return got, signal.signal(signal.SIGTERM, handler)


class _ProgressDisplay:
    """A byte-progress bar on stderr for big inputs, only when stderr is a terminal.

    One bar per big file; small files (and pipes, CI logs) get none: stdout stays the
    report and stderr stays quiet.
    """

    def __init__(self, terminal: bool | None = None) -> None:
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.bar: Any = None
        self.task: Any = None
        self.path: str | None = None

    def __enter__(self) -> _ProgressDisplay | None:
        return self if self.terminal else None

    def __call__(self, p: ValidateProgress) -> None:
        if p.bytes_total is None or p.bytes_total < _PROGRESS_MIN_BYTES:
            return
        if self.bar is None:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("{task.description}", markup=False),  # a file name is data
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                console=stderr_console(),
                transient=True,
            )
            self.bar.start()
        if p.path != self.path:
            self.path = p.path
            self.task = self.bar.add_task(safe_text(p.path), total=p.bytes_total)
        self.bar.update(self.task, completed=p.bytes_done)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
