"""Shared option aliases, consoles and the one place known errors become an exit code."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from tracecli.diagnostics import TracecliError

F = TypeVar("F", bound=Callable[..., Any])


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


def stderr_console() -> Console:
    """Diagnostics and progress go to stderr, so stdout stays data (`| jq` works)."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def write_stdout(text: str) -> None:
    """Plain data to stdout, never wrapped or styled by Rich."""
    try:
        sys.stdout.write(text)
        if not text.endswith("\n"):
            sys.stdout.write("\n")
        sys.stdout.flush()
    except BrokenPipeError:
        raise  # handle_errors: the reader went away
    except OSError as exc:
        # `> /dev/full`, a closed terminal: one line on stderr, and nothing left to
        # flush at exit (which would print a traceback of its own)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise TracecliError(f"cannot write to stdout: {exc.strerror or exc}", 2) from None


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one line on stderr and return the Exit to raise."""
    stderr_console().print(f"tracecli: error: {message}", markup=False, highlight=False)
    return typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Known errors become one line on stderr and their exit code; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TracecliError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except BrokenPipeError:
            # `tracecli ... | head`: the reader went away; that is not an error of ours.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(0) from None

    return wrapper  # type: ignore[return-value]


# Reusable option aliases, so every command spells the same option the same way.
FormatOpt = Annotated[
    OutputFormat,
    typer.Option("--format", "-f", help="Output format: text for people, json for tools."),
]
ServerOpt = Annotated[
    str | None,
    typer.Option(
        "--server",
        help="Trace server base URL (default: $WF_TRACE_SERVER_URL; none: the embedded store).",
        show_default=False,
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        help="API key (default: $WANDB_API_KEY or ~/.netrc). Never printed.",
        show_default=False,
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Embedded store file (default: $TRACECLI_DB or the user data dir).",
        show_default=False,
    ),
]
ProjectOpt = Annotated[
    str | None,
    typer.Option("--project", "-p", help="Project as entity/project.", show_default=False),
]


def _complete_profile(incomplete: str) -> list[str]:
    """Shell completion for --profile: the profile names the config files define."""
    from tracecli.config import available_profiles

    try:
        return [name for name in available_profiles() if name.startswith(incomplete)]
    except TracecliError:
        return []  # a broken config file: complete nothing rather than print an error


ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="Named profile of tracecli.yaml or the user config (default: $TRACECLI_PROFILE).",
        show_default=False,
        autocompletion=_complete_profile,
    ),
]
