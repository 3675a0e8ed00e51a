"""The Typer app. Only this package imports Typer and Rich; each command lives in its own
module as a thin wrapper over a library function, and registers itself here."""

from __future__ import annotations

import typer

from tracecli import __version__

app = typer.Typer(
    name="tracecli",
    help="Validate LLM trace files and upload them to W&B Weave, Freeplay or a local store.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tracecli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """tracecli: move LLM trace records from files into trace servers."""


def _register() -> None:
    # Imported for their side effect of adding commands to `app`.
    from tracecli.cli import (  # noqa: F401
        cmd_config,
        cmd_convert,
        cmd_schema,
        cmd_serve,
        cmd_tail,
        cmd_upload,
        cmd_validate,
    )


_register()


def main() -> None:
    app()
