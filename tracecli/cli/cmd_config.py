"""`tracecli config show` and `tracecli login`: the settings a command would use, and where
each came from; storing a key where tracecli (and the W&B tools) will find it.

The settings and the login client are imported when a command runs, not with this module:
`tracecli --help` builds every command, and needs neither."""

from __future__ import annotations

import getpass
import json
import sys
import unicodedata
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from tracecli.cli import options as opt
from tracecli.cli.common import command, say, stderr_console, stderr_lines, write_stdout
from tracecli.cli.root import app
from tracecli.cli.safe import safe_text
from tracecli.config.fields import shown_url
from tracecli.config.secret import SecretStr

if TYPE_CHECKING:
    from tracecli.config.settings import Settings

config_app = typer.Typer(
    name="config",
    help="Show the resolved settings and where each came from.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(config_app, name="config")


class Target(StrEnum):
    weave = "weave"
    freeplay = "freeplay"
    local = "local"


class LoginTarget(StrEnum):
    weave = "weave"
    freeplay = "freeplay"


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _cells(text: str) -> int:
    """Columns `text` takes on a terminal: wide (CJK) characters two, combining marks none
    (a path under a Japanese folder kept the table's columns), without importing Rich."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def render_settings(settings: Settings) -> str:
    """Three aligned columns, name / value / source: for people, not for parsing."""
    from tracecli.config.settings import NAMES

    rows = [
        (
            name,
            safe_text(_text(settings.value_for_display(name))),
            safe_text(settings.origin(name)),
        )
        for name in NAMES
    ]
    wn = max(len(n) for n, _, _ in rows)
    wv = max(_cells(v) for _, v, _ in rows)
    lines = [f"{n:<{wn}}  {v}{' ' * (wv - _cells(v))}  {s}".rstrip() for n, v, s in rows]
    lines.append("")
    files = ", ".join(safe_text(p) for p in settings.files)
    lines.append("files: " + (files or "none found"))
    return "\n".join(lines)


@command(config_app, "show")
def show(
    profile: opt.Profile = None,
    target: Annotated[
        Target | None,
        typer.Option("--target", help="Target to resolve for (default: from the settings)."),
    ] = None,
    server: opt.Server = None,
    project: opt.Project = None,
    db: opt.Db = None,
    output: opt.Format = opt.OutputFormat.text,
) -> None:
    """Print the resolved settings and where each came from (flag, env, file:line, netrc,
    default). API keys are masked. --server, --project and --db show what a command given
    them would use (which key, for instance).

    Examples:
      tracecli config show
          what upload and tail would use, and where it came from
      tracecli config show --profile ci --format json

    Exit codes:
      0    settings shown
      2    a configuration error (the line says which file)
    """
    values = {
        "target": target.value if target else None,
        "server": server,
        "project": project,
        "db": db,
    }
    from tracecli.config.settings import load_settings

    settings = load_settings(values, profile=profile)
    for warning in settings.warnings:
        say(stderr_console(), f"tracecli: warning: {warning}")
    if output is opt.OutputFormat.json:
        write_stdout(json.dumps(settings.to_dict(), indent=2))
    else:
        write_stdout(render_settings(settings))


def read_key(prompt: str) -> str:
    """Without echo on a terminal; the first line of stdin otherwise (`... | tracecli login`)."""
    if sys.stdin is not None and sys.stdin.isatty():
        try:
            return getpass.getpass(prompt, stream=sys.stderr)
        except KeyboardInterrupt:
            # the prompt's line is ended, and what happened said, as every command says it
            sys.stderr.write("\n")
            say(stderr_lines(), "tracecli: interrupted; nothing was stored")
            raise typer.Exit(130) from None
    line = sys.stdin.readline() if sys.stdin is not None else ""
    return line.strip()


@command(app, "login", short_help="Check an API key against its server and store it.")
def login_cmd(
    target: Annotated[
        LoginTarget | None,
        typer.Option(
            "--target", help="weave or freeplay (default: from the settings, else weave)."
        ),
    ] = None,
    server: Annotated[
        str | None,
        opt.valued(
            "--server",
            metavar="URL",
            help="Server to log in to (default: from the settings, else W&B's cloud for "
            "weave, Freeplay's API for freeplay).",
        ),
    ] = None,
    profile: opt.Profile = None,
    relogin: Annotated[
        bool, typer.Option("--relogin", help="Replace a key that is already stored.")
    ] = False,
    verify: Annotated[
        bool,
        typer.Option("--verify/--no-verify", help="Check the key against the server first."),
    ] = True,
    ca_bundle: opt.CaBundle = None,
    allow_insecure: opt.AllowInsecure = False,
) -> None:
    """Ask for an API key (without echo; or read it from stdin), check it against the server,
    and store it: Weave keys in ~/.netrc (as `wandb login` does), Freeplay keys in the user
    config. Never in the project's tracecli.yaml.

    Examples:
      tracecli login
          W&B's cloud, as wandb login
      tracecli login --server https://weave.example.com
          a Weave server of your own
      echo $FREEPLAY_KEY | tracecli login --target freeplay
          a key from stdin

    Exit codes:
      0    key checked and stored (or already stored)
      2    wrong key, unreachable server or usage
    """
    from tracecli.config.settings import load_settings
    from tracecli.targets.login import LoginError, login, stored_key_location

    values = {
        "target": target.value if target else None,
        "server": server,
        "ca_bundle": ca_bundle,
        "allow_insecure": True if allow_insecure else None,
    }
    settings = load_settings(values, profile=profile)
    if settings.target == "local" and target is None and server is None:
        # No target configured: `tracecli login` means W&B's cloud, as `wandb login` does.
        settings = load_settings({**values, "target": "weave"}, profile=profile)
    if settings.target == "local":
        raise LoginError(
            "nothing to log in to: the embedded store needs no key; "
            "pass --server URL (Weave) or --target freeplay"
        )
    console = stderr_console()
    if not relogin:
        where = stored_key_location(settings)
        if where is not None:
            say(
                console,
                f"tracecli: already logged in to {shown_url(settings.server or '')} "
                f"(key in {where}); "
                "pass --relogin to replace it",
            )
            return
    name = "W&B" if settings.target == "weave" else "Freeplay"
    key = read_key(f"{name} API key for {shown_url(settings.server or '')} (input hidden): ")
    if not key:
        raise LoginError("no key given (type it at the prompt, or pipe it on stdin)")
    result = login(settings, SecretStr(key), verify=verify)
    say(console, f"tracecli: {result.message()}")
