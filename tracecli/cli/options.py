"""The options commands share, each declared once as an annotated type (a command's
signature stays a list of names; the flag, its help text and its default live here).

Commands import the module (`from tracecli.cli import options as opt`) and write
`server: opt.Server = None`, so a signature says where each option is defined.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from tracecli.config.fields import MAX_CHUNK_BYTES, shown_default
from tracecli.diagnostics import TracecliError


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


class StdinFormat(StrEnum):
    jsonl = "jsonl"
    yaml = "yaml"


def valued(*names: str, metavar: str | None = None, help: str) -> Any:
    """An option that takes a value and shows no `[default: None]`: its help says what the
    default is (a setting's default depends on the environment and the files)."""
    return typer.Option(*names, metavar=metavar, help=help, show_default=False)


def _complete_profile(incomplete: str) -> list[str]:
    """Shell completion for --profile: the profile names the config files define."""
    from tracecli.config.settings import available_profiles

    try:
        return [name for name in available_profiles() if name.startswith(incomplete)]
    except TracecliError:
        return []  # a broken config file: complete nothing rather than print an error


Paths = Annotated[
    list[str],
    typer.Argument(
        metavar="PATH",
        help="Trace files (.jsonl, .ndjson, .yaml, .yml, optionally .gz), directories "
        "(searched recursively) or - for stdin.",
        show_default=False,
    ),
]
InputFormat = Annotated[
    StdinFormat, typer.Option("--input-format", help="Format of stdin (-): jsonl or yaml.")
]
Format = Annotated[
    OutputFormat,
    typer.Option("--format", "-f", help="Output format: text for people, json for tools."),
]
Server = Annotated[
    str | None,
    valued(
        "--server",
        metavar="URL",
        help="Weave trace server base URL (default: $WF_TRACE_SERVER_URL; without one, the "
        "embedded store).",
    ),
]
ApiKey = Annotated[
    str | None,
    valued(
        "--api-key",
        metavar="KEY",
        help="API key (default: $WANDB_API_KEY or ~/.netrc). Never printed.",
    ),
]
Db = Annotated[
    str | None,
    valued(
        "--db",
        metavar="FILE",
        help="Embedded store file (default: $TRACECLI_DB or the user data dir).",
    ),
]
Project = Annotated[
    str | None,
    valued("--project", "-p", metavar="ENTITY/PROJECT", help="Project as entity/project."),
]
CaBundle = Annotated[
    str | None,
    valued("--ca-bundle", metavar="FILE", help="CA certificates for a server with a private CA."),
]
AllowInsecure = Annotated[
    bool,
    typer.Option(
        "--allow-insecure",
        help="Allow sending the key over plain http to a host that is not loopback.",
    ),
]
Profile = Annotated[
    str | None,
    typer.Option(
        "--profile",
        metavar="NAME",
        help="Named profile of tracecli.yaml or the user config (default: $TRACECLI_PROFILE).",
        show_default=False,
        autocompletion=_complete_profile,
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no summary; errors only.")]
Verbose = Annotated[
    bool, typer.Option("--verbose", "-v", help="Say each retry and every diagnostic.")
]


# The options of `tracecli upload`.


class ModeName(StrEnum):
    auto = "auto"
    complete = "complete"
    batch = "batch"
    single = "single"
    otel = "otel"


class TargetName(StrEnum):
    weave = "weave"
    local = "local"
    freeplay = "freeplay"


UploadTarget = Annotated[
    TargetName | None,
    valued(
        "--target",
        help="weave (a Weave server), local (the embedded store) or freeplay "
        "(completions and traces; Weave calls are converted). Default: weave when a "
        "server is set, else local.",
    ),
]
UploadProject = Annotated[
    str | None,
    valued(
        "--project",
        "-p",
        metavar="ENTITY/PROJECT",
        help="Weave: upload into this entity/project (rewrites every record's "
        "project_id). Freeplay: the project id (records may name their own).",
    ),
]
Mode = Annotated[
    ModeName | None,
    valued(
        "--mode",
        help="auto: completed calls via calls/complete, unpaired halves via "
        "call/upsert_batch; complete; batch (start/end items); single (/call/start, "
        "/call/end); otel (OpenTelemetry files only: the spans unchanged to the server's "
        "/otel/v1/traces). Default: auto.",
    ),
]
ChunkSize = Annotated[
    str | None,
    valued(
        "--chunk-size",
        metavar="N",
        help=f"Records per request (default {shown_default('chunk_size')}).",
    ),
]
ChunkBytes = Annotated[
    str | None,
    valued(
        "--chunk-bytes",
        metavar="SIZE",
        help=f"Bytes per request, e.g. 10MiB (default {shown_default('chunk_bytes')}, "
        f"at most {MAX_CHUNK_BYTES // (1024 * 1024)}MiB).",
    ),
]
Concurrency = Annotated[
    str | None,
    valued(
        "--concurrency",
        metavar="N",
        help=f"Requests in flight (default {shown_default('concurrency')}).",
    ),
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Do everything except sending; say what would go.")
]
Strict = Annotated[
    bool,
    typer.Option("--strict", help="Send nothing if any record has an error; warnings are errors."),
]
Rejected = Annotated[
    str | None,
    valued(
        "--rejected",
        metavar="FILE",
        help="Rejected-records file (default ./tracecli-rejected.jsonl).",
    ),
]
MaxRetryTime = Annotated[
    str | None,
    valued(
        "--max-retry-time",
        metavar="SECONDS",
        help="Seconds to keep retrying one request, e.g. 300 or 5m "
        f"(default {shown_default('max_retry_time')}).",
    ),
]
MaxOutage = Annotated[
    str | None,
    valued(
        "--max-outage",
        help="Stop when the server has answered no request for this long, e.g. 60 or "
        f"2m (default {shown_default('max_outage')}); the same command resumes.",
    ),
]
Restart = Annotated[
    bool, typer.Option("--restart", help="Ignore what earlier runs uploaded; send all again.")
]
Follow = Annotated[
    bool,
    typer.Option(
        "--follow",
        help="Keep shipping the files (and new files matching quoted globs or in the "
        "directories) as they grow; stop with SIGTERM (exit 0) or Ctrl-C. See "
        "docs/follow.md.",
    ),
]
FlushInterval = Annotated[
    str | None,
    valued(
        "--flush-interval",
        metavar="SECONDS",
        help="--follow: the longest time between two looks at the inputs; file events "
        f"wake it sooner (default {shown_default('flush_interval')}).",
    ),
]
Poll = Annotated[
    bool,
    typer.Option(
        "--poll",
        help="--follow: look every --flush-interval only, without file events (for "
        "network filesystems).",
    ),
]
PairWait = Annotated[
    str | None,
    valued(
        "--pair-wait",
        metavar="SECONDS",
        help="--follow: how long a start waits for its end before it goes as a running "
        "call (--mode auto) or is reported as having no end (--mode complete, Freeplay) "
        f"(default {shown_default('pair_wait')}; 0: no wait).",
    ),
]
