"""The terminal side of `tracecli upload --follow`: flags to `FollowOptions`, and the
status — a live line on a terminal, a plain line every 30 s without one (a service's
journal), or one JSON object a line with `--format json` (for log collectors)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from rich.cells import set_cell_size
from rich.console import Console

from tracecli.cli.common import on_screen, say, write_stdout
from tracecli.cli.safe import safe_text
from tracecli.config.settings import Settings
from tracecli.upload.api import UploadOptions
from tracecli.upload.follow import FollowOptions, FollowStatus, follow
from tracecli.upload.passes import pair_wait_applies


def status_json(s: FollowStatus) -> dict[str, Any]:
    return {
        "event": "follow_status",
        "time": round(time.time(), 3),
        "files": s.files,
        "records": s.records,
        "records_per_s": round(s.records_per_s, 1),
        "calls_shipped": s.calls,
        "ends_shipped": s.ends,
        "rejected": s.rejected,
        "open_calls": s.open_calls,
        "lag_s": round(s.lag_s, 3),
        "passes": s.passes,
        "watching": s.watching,
        "outage_since": s.outage_since,
        "last_error": s.last_error,
    }


def status_line(s: FollowStatus) -> str:
    line = (
        f"following {s.files} file{'s' if s.files != 1 else ''}: {s.records_per_s:,.0f} "
        f"records/s, {s.calls:,} calls shipped, lag {s.lag_s:.1f} s, {s.open_calls} open"
    )
    if s.outage_since is not None:
        since = time.strftime("%H:%M:%S", time.localtime(s.outage_since))
        line += f"; server unreachable since {since}, retrying"
    if s.last_error:
        line += f"; last error: {s.last_error}"
    return safe_text(line)


@dataclass(slots=True)
class _View:
    """The status as the follow goes: `every` seconds between plain lines or JSON objects,
    a live line on a terminal, the outage and the no-file-events notes said once."""

    err: Console
    quiet: bool
    json: bool
    every: float
    flush_interval: float
    live: bool = field(init=False)
    watch_note_said: bool = False
    last: float = 0.0  # monotonic time of the last line or object
    outage: bool = False

    def __post_init__(self) -> None:
        self.live = not self.quiet and not self.json and on_screen(self.err)

    def __call__(self, s: FollowStatus) -> None:
        now = time.monotonic()
        if s.watch_note and not self.watch_note_said and not self.quiet:  # JSON mode too
            self.watch_note_said = True
            every = f"{self.flush_interval:g}"
            say(
                self.err,
                safe_text(
                    f"tracecli: warning: no file events: {s.watch_note}; looking at the inputs "
                    f"every {every} s instead (--flush-interval)"
                ),
            )
        if s.outage_since is not None and not self.outage and not self.json:
            say(self.err, f"tracecli: warning: {s.last_error}; retrying with backoff")
        self.outage = s.outage_since is not None
        if self.json:
            if now - self.last >= self.every or self.last == 0.0:
                self.last = now
                write_stdout(json.dumps(status_json(s)))
            return
        if self.live:
            # cut and padded in cells, not characters: a wide character (CJK in a server's
            # message or URL) would make the line wrap, and each redraw leave a row
            width = max(20, self.err.width - 1)
            sys.stderr.write("\r" + set_cell_size(status_line(s), width))
            sys.stderr.flush()
        elif not self.quiet and (now - self.last >= self.every or self.last == 0.0):
            self.last = now
            say(self.err, f"tracecli: {status_line(s)}")

    def close(self, s: FollowStatus | None) -> None:
        if self.live:
            sys.stderr.write("\n")
        if s is not None and self.json:
            write_stdout(json.dumps(status_json(s)))


def follow_options(settings: Settings) -> FollowOptions:
    """The follow settings, resolved like every other (flag > environment > files > default).
    Giving up is `follow_max_outage` (default: never, as a sidecar must outlive a server
    restart), which `--max-outage` on the command line sets as well as `max_outage`
    (`Field.flag_of`); `max_outage` from the environment or a file keeps its one meaning,
    when a pass calls the server down."""
    return FollowOptions(
        flush_interval=settings.flush_interval,
        pair_wait=settings.pair_wait,
        max_outage=settings.follow_max_outage,
        poll=settings.poll,
        yaml_quiet=settings.yaml_quiet,
    )


def run_follow(
    paths: list[str],
    opts: UploadOptions,
    err: Console,
    settings: Settings,
    *,
    quiet: bool,
    json_status: bool,
) -> int:
    fopts = follow_options(settings)
    if settings.origin("pair_wait").kind != "default" and not pair_wait_applies(opts):
        say(
            err,
            f"tracecli: warning: {settings.origin('pair_wait')}: pair_wait applies to --mode "
            f"auto and complete and to Freeplay (--mode {opts.mode} sends a start as it is "
            "read): ignored",
        )
    view = _View(
        err,
        quiet=quiet,
        json=json_status,
        every=settings.follow_status_every,
        flush_interval=fopts.flush_interval,
    )
    final: list[FollowStatus] = []

    def on_status(s: FollowStatus) -> None:
        final[:] = [s]
        view(s)

    code = 1
    try:
        code = follow(paths, opts, fopts, on_status=on_status)
    finally:
        view.close(final[0] if final else None)
    if code == 1 and final and not json_status:
        say(err, f"tracecli: error: gave up after --max-outage: {final[0].last_error}")
    elif not quiet and final and not json_status:
        say(err, f"tracecli: stopped: {status_line(final[0])}")
    return code
