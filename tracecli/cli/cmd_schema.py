"""`tracecli schema`: the JSON Schema of a record shape, for editors and other tools."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from tracecli.cli.common import command, write_stdout
from tracecli.cli.root import app


class Shape(StrEnum):
    any = "any"
    flat = "flat"
    batch = "batch"
    request = "request"
    complete = "complete"
    freeplay = "freeplay"


@command(app, "schema", short_help="Print the JSON Schema of a trace record, for editors.")
def schema(
    shape: Annotated[
        Shape,
        typer.Option(
            "--shape",
            help="Record shape: any (each record told apart as validate does), flat, batch, "
            "request, complete or freeplay.",
        ),
    ] = Shape.any,
    allow_list: Annotated[
        bool,
        typer.Option(
            "--list",
            help="Accept a list of records too: what a YAML trace file holds (for editors).",
        ),
    ] = False,
) -> None:
    """Print the JSON Schema (draft 2020-12) of a trace record on stdout.

    Save it and point your editor at it, e.g. `tracecli schema --list > trace.schema.json`.

    Examples:
      tracecli schema --list > trace.schema.json
          for an editor (YAML lists too)
      tracecli schema --shape complete
          one shape only

    Exit codes:
      0    the schema is printed
      2    usage or configuration error (bad option or setting, no key, no server)
    """
    from tracecli.schema.json_schema import record_schema  # pydantic: only when asked

    write_stdout(json.dumps(record_schema(shape.value, allow_list=allow_list), indent=2))
