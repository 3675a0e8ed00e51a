"""`tracecli validate PATH...`: check trace files without sending anything.

The run is cli/validate_run.py's, which the console script also calls without Typer for
plain command lines; the checks are imported when the command runs, not with this module:
`tracecli --help` builds every command, and needs none of them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from tracecli.cli import options as opt
from tracecli.cli.common import command
from tracecli.cli.render import ReportFormat
from tracecli.cli.root import app
from tracecli.cli.validate_run import DEFAULT_MAX_ERRORS, run_validate

__all__ = ["DEFAULT_MAX_ERRORS", "validate"]


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
    code = run_validate(
        paths, fmt=fmt, strict=strict, max_errors=max_errors, stdin_format=input_format.value
    )
    raise typer.Exit(code)
