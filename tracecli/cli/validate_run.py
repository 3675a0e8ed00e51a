"""`tracecli validate`'s run, without Typer: the command (cmd_validate.py) calls it, and so
does the console script for the plainest command lines, before Typer is imported.

`validate` of a small file is the run people make most often (a hook, a CI step, a test),
and on one Typer's import and the building of its command cost a third of the run.
`quick_validate` takes only the command lines whose meaning cannot differ from what the
app makes of them: `validate`, then paths and at most one each of `--strict`,
`--format/-f VALUE`, `--max-errors N` and `--input-format VALUE`, each value written out
as one of those the option accepts; anything else (help, a `--opt=value`, an unknown
option, a value the app would refuse, completion) goes to the app, which words its
errors. The run and its errors are the same code either way (`run_validate`,
`known_error_code`).
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any, Literal

from tracecli.cli.common import PROG, known_error_code, say, stderr_console, write_stdout
from tracecli.cli.safe import safe_text
from tracecli.diagnostics import TracecliError

if TYPE_CHECKING:
    from tracecli.cli.render import ReportFormat
    from tracecli.upload.validate import Progress as ValidateProgress
    from tracecli.upload.validate import ValidationReport

# the library's DEFAULT_MAX_ERRORS (tracecli/upload/validate.py), which the help shows;
# tests/test_startup.py holds the two equal
DEFAULT_MAX_ERRORS = 200
_PROGRESS_MIN_BYTES = 32 << 20  # smaller inputs finish before a bar would be of use

# the options quick_validate takes: flag → (the run's keyword, the values it accepts;
# None: a count, digits only). The command's own (cmd_validate.py: render.ReportFormat) and
# those of the shared options it uses (options.py: StdinFormat), which tests hold the same;
# written out, so that a command line that is not `validate` imports neither module
_FORMATS = frozenset(("text", "json", "github"))
QUICK_VALUED: dict[str, tuple[str, frozenset[str] | None]] = {
    "--format": ("fmt", _FORMATS),
    "-f": ("fmt", _FORMATS),
    "--max-errors": ("max_errors", None),
    "--input-format": ("stdin_format", frozenset(("jsonl", "yaml"))),
}


def summary_line(report: ValidationReport) -> str:
    from tracecli.cli.render import plural

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


def run_validate(
    paths: list[str],
    *,
    fmt: ReportFormat | str,
    strict: bool,
    max_errors: int,
    stdin_format: Literal["jsonl", "yaml"],
) -> int:
    """Validate `paths`, print the report on stdout; the exit code (0 all valid, 1 errors,
    128 + the signal when interrupted by Ctrl-C or SIGTERM)."""
    from tracecli.cli.render import render
    from tracecli.upload.validate import validate_paths

    got, previous = terminate_as_interrupt()
    try:
        with _ProgressDisplay() as on_progress:
            report = validate_paths(
                paths,
                strict=strict,
                stdin_format=stdin_format,
                max_errors=max_errors,
                on_progress=on_progress,
            )
    except KeyboardInterrupt:
        say(stderr_console(), "tracecli: interrupted")
        return 128 + (got[0] if got else signal.SIGINT)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    counts = {k: v for k, v in report.to_dict().items() if k != "diagnostics"}
    write_stdout(render(fmt, report.diagnostics, counts, summary_line(report)))
    return 0 if report.ok else 1


def quick_args(args: list[str]) -> dict[str, Any] | None:
    """`run_validate`'s arguments for a plain `validate` command line (`args` without
    the program name), or None when the app should read it: also for shell completion,
    and on Windows, where Click expands wildcards in the arguments itself."""
    if not args or args[0] != "validate" or f"_{PROG.upper()}_COMPLETE" in os.environ:
        return None
    if os.name == "nt":
        return None
    got: dict[str, Any] = {
        "paths": [],
        "fmt": "text",
        "strict": False,
        "max_errors": DEFAULT_MAX_ERRORS,
        "stdin_format": "jsonl",
    }
    seen: set[str] = set()
    rest = iter(args[1:])
    for arg in rest:
        if arg == "-" or not arg.startswith("-"):
            got["paths"].append(arg)
            continue
        if arg == "--strict" and arg not in seen:
            seen.add(arg)
            got["strict"] = True
            continue
        key, accepted = QUICK_VALUED.get(arg, ("", None))
        value = next(rest, None)
        if not key or key in seen or value is None:
            return None
        if accepted is None and not (value.isascii() and value.isdigit()):
            return None
        if accepted is not None and value not in accepted:
            return None
        seen.add(key)
        got[key] = int(value) if accepted is None else value
    return got if got["paths"] else None


def quick_validate(args: list[str]) -> int | None:
    """Run a plain `validate` command line without Typer; its exit code, or None when the
    app should run it. Errors end it as the app's `handle_errors` and Click's main would:
    a known error is one line and its code, Ctrl-C outside the run 130, end of input
    `tracecli: aborted` (1)."""
    quick = quick_args(args)
    if quick is None:
        return None
    try:
        try:
            return run_validate(**quick)
        except (TracecliError, BrokenPipeError) as exc:
            return known_error_code(exc)
    except KeyboardInterrupt:
        return 130
    except EOFError:
        print(file=sys.stderr)
        print(f"{PROG}: aborted", file=sys.stderr)
        return 1
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        from typer._click.utils import PacifyFlushWrapper  # as Click's main leaves them

        sys.stdout = PacifyFlushWrapper(sys.stdout)
        sys.stderr = PacifyFlushWrapper(sys.stderr)
        return 1


def terminate_as_interrupt() -> tuple[list[int], Any]:
    """SIGTERM (a CI job cancelled, systemd, Kubernetes) stops validate (and convert) as
    Ctrl-C does;
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
