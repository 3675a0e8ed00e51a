"""The options of `tracecli upload`, declared once as annotated types (the command's
signature stays a list of names; the help text and defaults live here)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from tracecli.config.fields import MAX_CHUNK_BYTES, shown_default


class Mode(StrEnum):
    auto = "auto"
    complete = "complete"
    batch = "batch"
    single = "single"
    otel = "otel"


class Target(StrEnum):
    weave = "weave"
    local = "local"
    freeplay = "freeplay"


TargetOpt = Annotated[
    Target | None,
    typer.Option(
        "--target",
        help="weave (a Weave server), local (the embedded store) or freeplay "
        "(completions and traces; Weave calls are converted). Default: weave when a "
        "server is set, else local.",
        show_default=False,
    ),
]
UploadProjectOpt = Annotated[
    str | None,
    typer.Option(
        "--project",
        "-p",
        metavar="ENTITY/PROJECT",
        help="Weave: upload into this entity/project (rewrites every record's "
        "project_id). Freeplay: the project id (records may name their own).",
        show_default=False,
    ),
]
ModeOpt = Annotated[
    Mode | None,
    typer.Option(
        "--mode",
        help="auto: completed calls via calls/complete, unpaired halves via "
        "call/upsert_batch; complete; batch (start/end items); single (/call/start, "
        "/call/end); otel (OpenTelemetry files only: the spans unchanged to the server's "
        "/otel/v1/traces). Default: auto.",
        show_default=False,
    ),
]
ChunkSizeOpt = Annotated[
    str | None,
    typer.Option(
        "--chunk-size",
        metavar="N",
        help=f"Records per request (default {shown_default('chunk_size')}).",
        show_default=False,
    ),
]
ChunkBytesOpt = Annotated[
    str | None,
    typer.Option(
        "--chunk-bytes",
        metavar="SIZE",
        help=f"Bytes per request, e.g. 10MiB (default {shown_default('chunk_bytes')}, "
        f"at most {MAX_CHUNK_BYTES // (1024 * 1024)}MiB).",
        show_default=False,
    ),
]
ConcurrencyOpt = Annotated[
    str | None,
    typer.Option(
        "--concurrency",
        metavar="N",
        help=f"Requests in flight (default {shown_default('concurrency')}).",
        show_default=False,
    ),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Do everything except sending; say what would go.")
]
StrictOpt = Annotated[
    bool,
    typer.Option("--strict", help="Send nothing if any record has an error; warnings are errors."),
]
RejectedOpt = Annotated[
    str | None,
    typer.Option(
        "--rejected",
        metavar="FILE",
        help="Rejected-records file (default ./tracecli-rejected.jsonl).",
        show_default=False,
    ),
]
MaxRetryTimeOpt = Annotated[
    str | None,
    typer.Option(
        "--max-retry-time",
        metavar="SECONDS",
        help="Seconds to keep retrying one request, e.g. 300 or 5m "
        f"(default {shown_default('max_retry_time')}).",
        show_default=False,
    ),
]
MaxOutageOpt = Annotated[
    str | None,
    typer.Option(
        "--max-outage",
        help="Stop when the server has answered no request for this long, e.g. 60 or "
        f"2m (default {shown_default('max_outage')}); the same command resumes.",
        show_default=False,
    ),
]
RestartOpt = Annotated[
    bool, typer.Option("--restart", help="Ignore what earlier runs uploaded; send all again.")
]
FollowOpt = Annotated[
    bool,
    typer.Option(
        "--follow",
        help="Keep shipping the files (and new files matching quoted globs or in the "
        "directories) as they grow; stop with SIGTERM (exit 0) or Ctrl-C. See "
        "docs/follow.md.",
    ),
]
FlushIntervalOpt = Annotated[
    str | None,
    typer.Option(
        "--flush-interval",
        metavar="SECONDS",
        help="--follow: the longest time between two looks at the inputs; file events "
        f"wake it sooner (default {shown_default('flush_interval')}).",
        show_default=False,
    ),
]
PollOpt = Annotated[
    bool,
    typer.Option(
        "--poll",
        help="--follow: look every --flush-interval only, without file events (for "
        "network filesystems).",
    ),
]
PairWaitOpt = Annotated[
    str | None,
    typer.Option(
        "--pair-wait",
        metavar="SECONDS",
        help="--follow: how long a start waits for its end before it goes as a running "
        "call (--mode auto) or is reported as having no end (--mode complete, Freeplay) "
        f"(default {shown_default('pair_wait')}; 0: no wait).",
        show_default=False,
    ),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress, no summary; errors only.")
]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Say each retry and every diagnostic.")
]
