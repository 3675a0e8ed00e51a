"""Consoles, the one way a line is said, and the one place known errors become an exit code.

Rich is imported by the first console made, not here: every command module imports this
one, and `--help` (which builds every command) prints nothing through Rich. Nor Typer:
`validate` of plain paths runs without it (cli/validate_run.py), and its errors come here.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, ParamSpec, TextIO, TypeVar

from tracecli.cli.safe import safe_json, safe_text
from tracecli.diagnostics import TracecliError

if TYPE_CHECKING:
    import typer
    from rich.console import Console

P = ParamSpec("P")
R = TypeVar("R")

PROG = "tracecli"


def stderr_console() -> Console:
    """Diagnostics and progress go to stderr, so stdout stays data (`| jq` works)."""
    from rich.console import Console

    return _fit(Console(stderr=True, highlight=False, soft_wrap=True, emoji=False))


def stdout_console() -> Console:
    from rich.console import Console

    return _fit(Console(highlight=False, soft_wrap=True, emoji=False))


def env_columns() -> int | None:
    """$COLUMNS when it is a width: a whole number above 0. Rich took `COLUMNS=0` (what a
    script's `$(tput cols)` can give without a terminal) for a width of 0 and drew nothing;
    Python's shutil.get_terminal_size ignores it, and so does tracecli."""
    raw = os.environ.get("COLUMNS", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


def _fit(console: Console) -> Console:
    """On a terminal that says TERM=dumb (or unknown), Rich draws 80x25 whatever the
    window's size and COLUMNS say: tables and the progress line then wrap on a narrower
    one. Give it the window's size (COLUMNS/LINES first, as Rich does elsewhere). A
    COLUMNS or LINES of 0 is no size (`env_columns`): the window's, or Rich's 80x25
    without one."""
    if console.width <= 0 or console.height <= 0:  # COLUMNS=0 or LINES=0: no size
        try:
            size = os.get_terminal_size(console.file.fileno())
            cols, lines = size.columns or 80, size.lines or 25
        except (AttributeError, ValueError, OSError):
            cols, lines = 80, 25
        if console.width <= 0:
            console.width = cols
        if console.height <= 0:
            console.height = lines  # Rich's live display draws nothing in 0 lines
    if not console.is_dumb_terminal:
        return console
    try:
        cols, lines = os.get_terminal_size(console.file.fileno())
    except (AttributeError, ValueError, OSError):
        return console
    env_lines = os.environ.get("LINES", "")
    cols = env_columns() or cols
    lines = int(env_lines) if env_lines.isdigit() and int(env_lines) > 0 else lines
    if cols > 0 and lines > 0:
        console.size = (cols, lines)
    return console


class PlainConsole:
    """What Rich's Console does for `say` on a stream that is no terminal (a pipe, a file,
    a CI log), without importing Rich: each line written as given, then a flush. Rich costs
    more to import and set up than a small upload spends on its file (~80M instructions).
    Made by `stderr_lines` only where Rich would write exactly the same bytes."""

    is_terminal = False
    no_color = True  # nothing is coloured off a terminal

    @property
    def file(self) -> TextIO:
        return sys.stderr

    def line(self, text: str) -> None:
        """`text` and a newline in one write, then a flush, as Rich's print without a
        terminal does (and with its hint when the stream cannot encode the text)."""
        file = sys.stderr
        try:
            file.write(text + "\n")
        except UnicodeEncodeError as error:
            error.reason = (
                f"{error.reason}\n*** You may need to add PYTHONIOENCODING=utf-8 to your "
                "environment ***"
            )
            raise
        file.flush()


def stderr_lines() -> Console | PlainConsole:
    """`stderr_console` for a command that only says lines (`say`, `say_diagnostic`): a
    `PlainConsole` when stderr is no terminal to Rich either, else Rich's Console.

    Rich's Console is kept wherever it could act differently: a terminal, TTY_COMPATIBLE
    or FORCE_COLOR set (which make Rich treat a pipe as a terminal), Jupyter/IPython
    (`get_ipython`), Windows, no stderr, or one whose `isatty` fails."""
    stream = sys.stderr
    rich_decides = (
        stream is None
        or sys.platform == "win32"
        or "TTY_COMPATIBLE" in os.environ
        or "FORCE_COLOR" in os.environ
        or hasattr(builtins, "get_ipython")
    )
    if not rich_decides:
        try:
            if not stream.isatty():
                return PlainConsole()
        except (AttributeError, ValueError):
            pass
    return stderr_console()


def on_screen(console: Console | PlainConsole) -> bool:
    """A person's screen, where a line may be redrawn in place and words wrapped at its
    width: a terminal to Rich whose stream is a terminal too (or TTY_COMPATIBLE=1 says it
    acts as one). FORCE_COLOR alone makes Rich take a pipe for an 80-column terminal, but
    it asks for colour only (force-color.org): a CI log that sets it gets coloured lines,
    never wrapped or redrawn ones."""
    if isinstance(console, PlainConsole) or not console.is_terminal:
        return False
    if os.environ.get("TTY_COMPATIBLE") == "1":
        return True
    try:
        return bool(console.file.isatty())
    except (AttributeError, ValueError):
        return False


SEVERITY_STYLES = {"error": "bold red", "warning": "yellow"}


def say(console: Console | PlainConsole, message: str, *, style: str | None = None) -> None:
    """One line for people, printed literally: no Rich markup, no emoji codes, and any
    control character of text that came from a file or a server shown escaped. The
    `tracecli: error:` / `warning:` prefix is coloured when colour is on."""
    if isinstance(console, PlainConsole):
        console.line(safe_text(message))
        return
    from rich.text import Text

    text = Text(safe_text(message), style=style or "")
    for word, word_style in SEVERITY_STYLES.items() if not console.no_color else ():
        prefix = f"tracecli: {word}:"
        if text.plain.startswith(prefix):
            text.stylize(word_style, 10, len(prefix))
    # a terminal gets words wrapped at its width; a pipe or a log gets one line
    console.print(text, soft_wrap=not on_screen(console))


def say_diagnostic(console: Console | PlainConsole, line: str, severity: str) -> None:
    """A `path:line: severity: field: message` line, literally, its severity coloured."""
    if isinstance(console, PlainConsole):
        console.line(safe_text(line))
        return
    from rich.text import Text

    text = Text(safe_text(line))
    at = text.plain.find(f": {severity}: ")
    if at >= 0 and severity in SEVERITY_STYLES and not console.no_color:
        text.stylize(SEVERITY_STYLES[severity], at + 2, at + 2 + len(severity))
    console.print(text, soft_wrap=not on_screen(console))  # as `say`


def warn(console: Console | PlainConsole, message: str) -> None:
    say(console, f"tracecli: warning: {message}")


def write_stdout(text: str) -> None:
    """Plain data to stdout, never wrapped or styled by Rich. JSON's raw C1 controls and
    bidi characters go out as `\\uXXXX` escapes (`safe_json`); text reports are made safe
    line by line by their renderers."""
    text = safe_json(text)
    try:
        sys.stdout.write(text)
        if not text.endswith("\n"):
            sys.stdout.write("\n")
        sys.stdout.flush()
    except BrokenPipeError:
        raise  # handle_errors: the reader went away
    except OSError as exc:
        raise stdout_failed(exc) from None


def stdout_failed(exc: OSError) -> TracecliError:
    """The error to raise when stdout cannot be written (`> /dev/full`, a full disk, a
    closed terminal): one line on stderr, exit 2, and nothing left to flush at exit (which
    would print a traceback of its own). A broken pipe is not this: see `handle_errors`."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return TracecliError(f"cannot write to stdout: {exc.strerror or exc}", 2)


@contextlib.contextmanager
def writing_stdout() -> Iterator[None]:
    """Around writes to stdout that are not `write_stdout`'s (tables, records as they
    come): a failed write is `stdout_failed`'s one line, not a traceback."""
    try:
        yield
    except BrokenPipeError:
        raise  # handle_errors: the reader went away
    except OSError as exc:
        raise stdout_failed(exc) from None


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one line on stderr and return the Exit to raise."""
    import typer  # the command's own module imported it already

    say(stderr_lines(), f"tracecli: error: {message}")
    return typer.Exit(code)


def known_error_code(exc: TracecliError | BrokenPipeError) -> int:
    """What a known error ends a command with: a `TracecliError` is one line on stderr
    and its exit code; a broken pipe (`tracecli ... | head`: the reader went away) is not
    an error of ours, exit 0, with nothing left for stdout to flush at exit."""
    if isinstance(exc, BrokenPipeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    say(stderr_lines(), f"tracecli: error: {exc}")
    return exc.exit_code


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Known errors become one line on stderr and their exit code; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (TracecliError, BrokenPipeError) as exc:
            import typer

            raise typer.Exit(known_error_code(exc)) from None

    return wrapper


def help_and_epilog(doc: str) -> tuple[str, str]:
    """A command's docstring as its help page: the text before `Examples:` is the help, shown
    above the options; the `Examples:` and `Exit codes:` sections are the epilog, shown after
    them as written (Click's `\\b` keeps a paragraph from being re-wrapped). The source then
    reads as the page a person sees."""
    text, sep, sections = doc.partition("\n\nExamples:\n")
    if not sep:
        raise ValueError("a command's docstring ends with its Examples: and Exit codes:")
    sections = "\b\nExamples:\n" + sections.replace("\n\nExit codes:\n", "\n\n\b\nExit codes:\n")
    return text, sections


def command(
    on: typer.Typer, name: str, *, short_help: str | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A command of `on` as every command is made: its help page from its docstring, which
    ends with its examples and exit codes (`help_and_epilog`), and its known errors become
    one line and their exit code (`handle_errors`)."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        import inspect  # Typer imported it already; the commands' modules are built with it

        text, sections = help_and_epilog(inspect.getdoc(fn) or "")
        register = on.command(name, short_help=short_help, help=text, epilog=sections)
        return register(handle_errors(fn))

    return decorate
