"""`tracecli convert`: options in, `tracecli.upload.convert.convert` called, its report rendered.

Converted records are data: JSONL on stdout, or in the `-o` file (written to a temporary file
beside it and renamed into place, so a failed run never leaves half a file). Diagnostics and
the summary go to stderr. Exit codes: 0 every record converted, 1 some could not be (each is
named by file, line and field), 2 usage.

The conversions (the Freeplay models, the OpenTelemetry mapping) are imported when the
command runs, not with this module: `tracecli --help` builds every command.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from enum import StrEnum
from typing import IO, TYPE_CHECKING, Annotated, Any, NamedTuple

import typer

from tracecli.cli import options as opt
from tracecli.cli.common import command, say, stderr_console, write_stdout
from tracecli.cli.diagnostic_printer import MAX_PRINTED_DIAGNOSTICS, DiagnosticPrinter
from tracecli.cli.output_file import output_sink
from tracecli.cli.root import app
from tracecli.cli.safe import safe_json_bytes
from tracecli.cli.validate_run import terminate_as_interrupt
from tracecli.diagnostics import UsageError

if TYPE_CHECKING:
    from tracecli.upload.convert import ConvertReport


class Backend(StrEnum):
    freeplay = "freeplay"
    weave = "weave"


To = Annotated[
    Backend,
    typer.Option(
        "--to",
        help="The backend whose records to write: freeplay (completions and traces, as "
        "`upload --target freeplay` sends them); weave (OpenTelemetry OTLP/JSON files → "
        "Weave completed calls, as Weave's /otel/v1/traces stores them).",
    ),
]
OutputFile = Annotated[
    str | None,
    opt.valued("--output", "-o", metavar="FILE", help="Write the records here instead of stdout."),
]
Strict = Annotated[
    bool, typer.Option("--strict", help="Treat warnings as errors (the record is left out).")
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No summary; errors only.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Print every diagnostic.")]
SpanProject = Annotated[
    str | None,
    opt.valued(
        "--project",
        "-p",
        help="--to weave: entity/project for spans whose resource has no "
        "wandb.entity/wandb.project attributes.",
    ),
]


class _Converted(NamedTuple):
    """What a conversion reports: its JSON report, its summary for people, its exit code."""

    report: dict[str, Any]
    summary: list[str]
    exit_code: int


@command(
    app,
    "convert",
    short_help="Convert trace files for another backend (Weave calls to Freeplay).",
)
def convert_command(
    paths: opt.Paths,
    to: To,
    output_file: OutputFile = None,
    strict: Strict = False,
    input_format: opt.InputFormat = opt.StdinFormat.jsonl,
    quiet: Quiet = False,
    verbose: Verbose = False,
    fmt: opt.Format = opt.OutputFormat.text,
    project: SpanProject = None,
) -> None:
    """Convert trace files for another backend without sending them (Weave calls → Freeplay,
    OpenTelemetry spans → Weave calls).

    Examples:
      tracecli convert run.jsonl --to freeplay -o freeplay.jsonl
      tracecli convert traces/ --to freeplay | jq -c .
          records on stdout

    Exit codes:
      0    every record converted
      1    some records could not be (each is named by file, line and field)
      2    usage or configuration error (bad option or setting, no key, no server)
      130  interrupted (Ctrl-C): no output file is left behind
      143  stopped by SIGTERM: the same
    """
    if project is not None and to is not Backend.weave:
        raise UsageError("--project applies to --to weave (OpenTelemetry spans)")
    if fmt is opt.OutputFormat.json and output_file is None:
        raise UsageError("--format json puts the report on stdout: give the records -o FILE")
    err = stderr_console()
    limit = None if verbose else MAX_PRINTED_DIAGNOSTICS
    show = DiagnosticPrinter(err, quiet=quiet, limit=limit, rejected_file=False)
    got, previous = terminate_as_interrupt()  # SIGTERM stops it as Ctrl-C does
    try:
        with output_sink(output_file, mode=0o600) as out:
            # records on a terminal or pipe are escaped; a file gets them as they are
            write = _safe_writer(out) if output_file in (None, "-") else out.write
            done = _convert(
                paths,
                write,
                to,
                input_format,
                project=project,
                strict=strict,
                show=show,
                output_file=output_file,
            )
    except KeyboardInterrupt:
        # the temporary file is gone (output_sink); the output file, if any, is as it was
        where = f"; {output_file} was not written" if output_file not in (None, "-") else ""
        say(err, f"tracecli: interrupted{where}")
        raise typer.Exit(128 + (got[0] if got else signal.SIGINT)) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    show.close()
    if fmt is opt.OutputFormat.json:
        write_stdout(json.dumps(done.report))
    elif not quiet:
        for line in done.summary:
            say(err, line)
    raise typer.Exit(done.exit_code)


def _convert(
    paths: list[str],
    write: Callable[[bytes], object],
    to: Backend,
    input_format: opt.StdinFormat,
    *,
    project: str | None,
    strict: bool,
    show: DiagnosticPrinter,
    output_file: str | None,
) -> _Converted:
    """Either conversion (`--to weave`: OpenTelemetry spans; else Weave calls), its report
    in one shape."""
    if to is Backend.weave:
        from tracecli.upload.otlp_convert import convert_spans

        otel = convert_spans(paths, write, project=project, strict=strict, on_diagnostic=show)
        summary = otel.summary_lines(output_file or "stdout")
        return _Converted(otel.to_dict(), summary, otel.exit_code)
    from tracecli.upload.convert import convert

    report = convert(
        paths,
        write,
        to=to.value,
        input_format=input_format.value,
        strict=strict,
        on_diagnostic=show,
    )
    return _Converted(report.to_dict(), summary_lines(report, output_file), report.exit_code)


def summary_lines(report: ConvertReport, output_file: str | None) -> list[str]:
    where = output_file or "stdout"
    lines = [
        f"converted {report.records:,} input records from {report.files} file(s) into "
        f"{report.written:,} {report.to} records ({report.completions:,} completions, "
        f"{report.traces:,} traces) → {where}",
    ]
    if report.converted_calls or report.passed_through:
        lines.append(
            f"  {report.converted_calls:,} from Weave calls, "
            f"{report.passed_through:,} {report.to} records copied as they were"
        )
    if report.not_converted:
        lines.append(f"  {report.not_converted:,} input records left out (see the errors above)")
    if report.warnings:
        lines.append(f"  {report.warnings:,} warnings")
    return lines


def _safe_writer(out: IO[bytes]) -> Callable[[bytes], object]:
    """Records for stdout (a terminal, a pipe): the JSON characters a terminal could act on
    (C1 controls, bidi overrides) written as \\u escapes; the same JSON for a parser."""

    def write(data: bytes) -> object:
        return out.write(safe_json_bytes(data))

    return write
