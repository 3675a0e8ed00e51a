"""The Typer app (`app`): the root group, its commands by name, each built on first use.

Each command lives in its own module as a thin wrapper over a library function, and
registers itself here.

Command modules are imported when their command is used, not at start-up: importing all
of them (upload pulls in httpx, convert the Freeplay models) cost more than `validate`
of a small file does. `COMMANDS` names the module of each command; `--help`, completion
and an unknown command's suggestions still see every command, and build each one (its
short help) only when they list it. The console script (`main`, in `__init__.py`) comes
here for every command line but the plainest `validate` (cli/validate_run.py).
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from tracecli import __version__
from tracecli.cli import coerce
from tracecli.cli.common import PROG, fail, known_error_code, stdout_failed

# command → the module that registers it, in the order `--help` lists them: the order
# people use them in
COMMANDS: dict[str, str] = {
    "validate": "tracecli.cli.cmd_validate",
    "upload": "tracecli.cli.cmd_upload",
    "tail": "tracecli.cli.cmd_tail",
    "serve": "tracecli.cli.cmd_serve",
    "convert": "tracecli.cli.cmd_convert",
    "export": "tracecli.cli.cmd_export",
    "login": "tracecli.cli.cmd_config",
    "config": "tracecli.cli.cmd_config",
    "schema": "tracecli.cli.cmd_schema",
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

    def built(self, name: str) -> Any:
        """The command `name` if it was built, else None (building nothing)."""
        return self._built.get(name)


class _LazyGroup(TyperGroup):
    """The root group, with `_LazyCommands` for its commands."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # commands whose module was imported before are built by Typer here: tidy them too
        self.commands = _LazyCommands({n: _tidy(c) for n, c in self.commands.items()})

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        coerce.install_on(self)  # --version and the completion options, which Typer adds last
        return list(super().parse_args(ctx, args))

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # names only: Typer's version builds every command

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Click's list of the commands and their short help, without building the commands
        not built yet: Typer would read every parameter of every command for it (~70M
        instructions for `tracecli --help`, more than the rest of it). A command made of
        what its module registered (`_listed`) gives the same short help."""
        lazy = self.commands
        if not isinstance(lazy, _LazyCommands):  # replaced by a caller: as Click lists them
            super().format_commands(ctx, formatter)
            return
        self.commands = {n: lazy.built(n) or _listed(n) for n in lazy}
        try:
            super().format_commands(ctx, formatter)
        finally:
            self.commands = lazy

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Click's main, with its usage errors in tracecli's one-line form.

        Click prints a usage error as three lines (usage, a hint, `Error: ...`) and Typer's
        enum parsing words it as pydantic does (`Value error, 'x' is not one of ...`); every
        other tracecli error is `tracecli: error: ...` on one line, exit 2, so these are too.
        """
        standalone = kwargs.pop("standalone_mode", True)
        kwargs.setdefault("prog_name", PROG)
        kwargs["standalone_mode"] = False  # its errors come here, to be worded as ours
        try:
            rv = super().main(*args, **kwargs)
        except typer.Exit as exc:  # raised outside a command's invocation
            if not standalone:
                raise
            sys.exit(exc.exit_code)
        except typer.Abort:
            if not standalone:
                raise
            print(f"{PROG}: aborted", file=sys.stderr)
            sys.exit(1)
        except OSError as exc:  # `--help`/`--version` to a stdout that fails
            if not standalone or isinstance(exc, BrokenPipeError) or not _in_clicks_echo(exc):
                raise
            raise SystemExit(known_error_code(stdout_failed(exc))) from None
        except typer.TyperException as exc:  # Click's UsageError and its kin
            if not standalone:
                raise
            if type(exc).__name__ == "NoArgsIsHelpError":  # `tracecli upload`: its help
                exc.show()  # type: ignore[attr-defined]
                sys.exit(2)
            raise SystemExit(fail(usage_message(exc), 2).exit_code) from None
        if not standalone:
            return rv
        # non-standalone Click returns a command's typer.Exit code; commands return None
        sys.exit(rv if isinstance(rv, int) else 0)


def _in_clicks_echo(exc: OSError) -> bool:
    """Whether `exc` was raised by Click's `echo`: what prints `--help` and `--version`,
    outside any command (a command's own writes go through `write_stdout`). Only such a
    failed write is "cannot write to stdout"; any other OSError is not ours to word."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    frame = tb.tb_frame
    return frame.f_code.co_name == "echo" and str(frame.f_globals.get("__name__", "")).endswith(
        "click.utils"
    )


_INVALID = re.compile(r"^Invalid value for (?P<hint>.+?): (?P<why>.*)$", re.S)


def usage_message(exc: Exception) -> str:
    """One line for a Click usage error: `--mode: 'x' is not one of auto, complete, ...`,
    naming the command and where its help is."""
    text = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    text = text.replace("Value error, ", "")
    m = _INVALID.match(text)
    if m:
        hint = m.group("hint").replace("'", "").replace(" / ", "/")
        text = f"{hint}: {m.group('why')}"
    text = re.sub(r"^Missing argument '(\w+)'", lambda m: f"missing {m.group(1).upper()}", text)
    text = text.replace("No such option: ", "no such option: ").replace(
        "No such command ", "no such command "
    )
    text = re.sub(r"Input should be a valid integer.*$", "expected a whole number", text)
    text = re.sub(r"Input should be a valid number.*$", "expected a number", text)
    text = re.sub(r"\(Possible options: ([^)]*)\)", r"(did you mean \1?)", text)
    text = " ".join(text.split()).rstrip(".")
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else PROG
    return f"{text} (see {path} --help)"


def _tidy(cmd: Any) -> Any:
    """Help as a person writes it: an argument `PATH...` in the usage line and in its help
    row, not Typer's `{paths}...` and `<list[str]>` (a Python type showing through); and
    each parameter's values read without pydantic when they are plain (`coerce`)."""
    for param in getattr(cmd, "params", ()):
        if getattr(param, "param_type_name", "") == "option":
            # `--host <str>`, `--port <int range>`: a name in capitals instead; choices stay
            desc = getattr(param, "type_descriptor", None)
            if param.metavar is None and not param.is_flag and not getattr(desc, "is_choice", 0):
                param.metavar = param.name.rsplit("_", 1)[-1].upper()  # api_key: KEY
            continue
        if getattr(param, "param_type_name", "") != "argument":
            continue
        metavar = param.metavar or param.name.upper()
        piece = metavar if param.nargs == 1 else f"{metavar.removesuffix('...')}..."
        shown = piece if param.required else f"[{piece}]"
        param.get_usage_pieces = lambda ctx, shown=shown: [shown]
        param.display_type_rich = lambda ctx: ""
        param._rich_display_name = lambda piece=piece: piece
    for sub in getattr(cmd, "commands", {}).values():
        _tidy(sub)
    coerce.install_on(cmd)  # its values without pydantic when they are plain
    return cmd


def _listed(name: str) -> Any:
    """Command `name` as the list of commands shows it: its help, short help, hidden and
    deprecated flags as `_build` would give them (Click's `get_short_help_str` reads only
    those), no parameters read. Its module is imported (it registers the command); a group
    (`config`) is built whole."""
    importlib.import_module(COMMANDS[name])
    for info in app.registered_commands:
        if info.name == name and info.callback is not None and info.cls is TyperCommand:
            doc = (
                inspect.getdoc(info.callback) if info.help is None else inspect.cleandoc(info.help)
            )
            return TyperCommand(
                name,
                help=doc,
                short_help=info.short_help,
                hidden=info.hidden,
                deprecated=info.deprecated,
                rich_markup_mode=app.rich_markup_mode,
            )
    return _build(name)


def _build(name: str) -> Any:
    """Import the module of command `name` (it registers on `app`) and build its command."""
    importlib.import_module(COMMANDS[name])
    short, markup = app.pretty_exceptions_short, app.rich_markup_mode
    for info in app.registered_commands:
        if info.name == name:
            made = typer.main.get_command_from_info(
                info, pretty_exceptions_short=short, rich_markup_mode=markup
            )
            return _tidy(made)
    for group in app.registered_groups:
        if group.name == name:
            return _tidy(
                typer.main.get_group_from_info(
                    group,
                    pretty_exceptions_short=short,
                    rich_markup_mode=markup,
                    suggest_commands=app.suggest_commands,
                )
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
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="\b\nExamples:\n"
    "  tracecli validate traces/\n"
    "  tracecli upload traces/ --server https://trace.wandb.ai -p acme/agents\n"
    "  tracecli tail -f\n"
    "\n\b\nExit codes (each command's -h says which it uses):\n"
    "  0    all good\n"
    "  1    invalid input, or records rejected or not sent\n"
    "  2    usage or configuration error\n"
    "  130  interrupted (Ctrl-C): run the same command again to resume\n"
    "  143  stopped by SIGTERM: the same",
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
