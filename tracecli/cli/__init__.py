"""The Typer app. Only this package imports Typer and Rich; each command lives in its own
module as a thin wrapper over a library function, and registers itself here.

Command modules are imported when their command is used, not at start-up: importing all
of them (upload pulls in httpx, convert the Freeplay models) cost more than `validate`
of a small file does. `COMMANDS` names the module of each command; `--help`, completion
and an unknown command's suggestions still see every command, and build each one (its
short help) only when they list it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer
from typer.core import TyperGroup

from tracecli import __version__

# command → the module that registers it, in the order `--help` lists them
COMMANDS: dict[str, str] = {
    "login": "tracecli.cli.cmd_config",
    "convert": "tracecli.cli.cmd_convert",
    "export": "tracecli.cli.cmd_export",
    "schema": "tracecli.cli.cmd_schema",
    "serve": "tracecli.cli.cmd_serve",
    "tail": "tracecli.cli.cmd_tail",
    "upload": "tracecli.cli.cmd_upload",
    "validate": "tracecli.cli.cmd_validate",
    "config": "tracecli.cli.cmd_config",
}


class _LazyCommands(MutableMapping[str, Any]):
    """A group's commands by name: every name known at once, each built on first access.

    A mapping (not just a `get_command` override) because Click and tests read a group's
    `commands` directly; iterating or `in` never imports anything.
    """

    def __init__(self, built: MutableMapping[str, Any]) -> None:
        self._built = dict(built)

    def __getitem__(self, name: str) -> Any:
        cmd = self._built.get(name)
        if cmd is None:
            if name not in COMMANDS:
                raise KeyError(name)
            cmd = self._built[name] = _build(name)
        return cmd

    def __setitem__(self, name: str, cmd: Any) -> None:
        self._built[name] = cmd

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (n for n in self._built if n not in COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS) + sum(1 for n in self._built if n not in COMMANDS)

    def __contains__(self, name: object) -> bool:
        return name in COMMANDS or name in self._built


class _LazyGroup(TyperGroup):
    """The root group, with `_LazyCommands` for its commands."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = _LazyCommands(self.commands)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # names only: Typer's version builds every command

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return self.commands.get(cmd_name)


def _build(name: str) -> Any:
    """Import the module of command `name` (it registers on `app`) and build its command."""
    importlib.import_module(COMMANDS[name])
    for info in app.registered_commands:
        if info.name == name:
            return typer.main.get_command_from_info(
                info,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
            )
    for group in app.registered_groups:
        if group.name == name:
            return typer.main.get_group_from_info(
                group,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
                suggest_commands=app.suggest_commands,
            )
    raise LookupError(f"{COMMANDS[name]} does not register the command {name!r}")


app = typer.Typer(
    name="tracecli",
    help="Validate LLM trace files and upload them to W&B Weave, Freeplay or a local store.",
    cls=_LazyGroup,
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


def main() -> None:
    app()
