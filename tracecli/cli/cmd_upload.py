"""`tracecli upload`: options in, `tracecli.upload.api.upload` called, its report rendered.

Progress and the summary are for people and go to stderr (Rich, only on a terminal);
`--format json` puts the report on stdout as one object for tools. Exit codes: 0 all
stored, 1 records rejected or not sent, 2 usage/auth/config, 130 interrupted (resumable).

The upload pipeline, the settings and Rich are imported when the command runs, not with
this module: `tracecli --help` builds every command, and needs none of them.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import typer

from tracecli.cli import options as opt
from tracecli.cli.common import (
    PlainConsole,
    command,
    on_screen,
    say,
    stderr_console,
    stderr_lines,
    write_stdout,
)
from tracecli.cli.diagnostic_printer import MAX_PRINTED_DIAGNOSTICS, DiagnosticPrinter
from tracecli.cli.root import app
from tracecli.cli.safe import safe_text

if TYPE_CHECKING:
    from rich.console import Console

    from tracecli.cli.progress import LiveProgress, PlainProgress
    from tracecli.config.per_target import WeaveTarget
    from tracecli.config.settings import Settings
    from tracecli.targets.outcome import RetryEvent
    from tracecli.upload.api import UploadOptions, UploadReport


@command(
    app,
    "upload",
    short_help="Validate and upload trace files to Weave, Freeplay or the store.",
)
def upload_command(
    paths: opt.Paths,
    server: opt.Server = None,
    target_name: opt.UploadTarget = None,
    project: opt.UploadProject = None,
    mode: opt.Mode = None,
    chunk_size: opt.ChunkSize = None,
    chunk_bytes: opt.ChunkBytes = None,
    concurrency: opt.Concurrency = None,
    dry_run: opt.DryRun = False,
    strict: opt.Strict = False,
    rejected: opt.Rejected = None,
    max_retry_time: opt.MaxRetryTime = None,
    max_outage: opt.MaxOutage = None,
    restart: opt.Restart = False,
    follow: opt.Follow = False,
    flush_interval: opt.FlushInterval = None,
    poll: opt.Poll = False,
    pair_wait: opt.PairWait = None,
    api_key: opt.ApiKey = None,
    ca_bundle: opt.CaBundle = None,
    allow_insecure: opt.AllowInsecure = False,
    db: opt.Db = None,
    input_format: opt.InputFormat = opt.StdinFormat.jsonl,
    profile: opt.Profile = None,
    quiet: opt.Quiet = False,
    verbose: opt.Verbose = False,
    output: opt.Format = opt.OutputFormat.text,
) -> None:
    """Validate trace files and upload their calls to a Weave server or the embedded store.

    Examples:
      tracecli upload traces/ --server https://trace.wandb.ai -p acme/agents
          every trace file under traces/ to W&B Weave
      tracecli upload run.jsonl
          into the embedded store (see it with tracecli tail)
      tracecli upload run.jsonl --dry-run
          check and count, send nothing

    Exit codes:
      0    every call stored
      1    records rejected (see the rejected-records file) or not sent
      2    usage or configuration error (bad option or setting, no key, no server)
      130  Ctrl-C (143: SIGTERM): run the same command again to resume
    """
    from tracecli.config.settings import load_settings

    settings = load_settings(
        {
            "target": target_name.value if target_name is not None else None,
            "server": server,
            "project": project,
            "api_key": api_key,
            "db": db,
            "mode": mode.value if mode is not None else None,
            "chunk_size": chunk_size,
            "chunk_bytes": chunk_bytes,
            "concurrency": concurrency,
            "max_retry_time": max_retry_time,
            "max_outage": max_outage,
            "flush_interval": flush_interval,
            "pair_wait": pair_wait,
            "poll": poll or None,
            "rejected": rejected,
            "ca_bundle": ca_bundle,
            "allow_insecure": allow_insecure or None,
        },
        profile=profile,
    )
    err = stderr_console() if follow else stderr_lines()  # (follow's status line: Rich)
    target = _destination(settings, dry_run, err)
    shown = DiagnosticPrinter(err, quiet=quiet, limit=None if verbose else MAX_PRINTED_DIAGNOSTICS)
    retries = _RetryPrinter(err) if verbose else None
    opts = _options(settings, target, dry_run, strict, restart, input_format, retries, shown)
    json_out = output is opt.OutputFormat.json
    if follow:
        raise typer.Exit(_follow(paths, opts, err, settings, shown, quiet=quiet, json_out=json_out))
    code = _upload_once(paths, opts, err, shown, settings, quiet=quiet, json_out=json_out)
    raise typer.Exit(code)


def _destination(
    settings: Settings, dry_run: bool, err: Console | PlainConsole
) -> WeaveTarget | None:
    """Weave's server and key (None for Freeplay, whose run resolves them), checked before
    anything is read: a remote server without a key, or Freeplay without one (unless
    nothing is sent), is exit 2 naming every way to give it. Then the settings' warnings."""
    target = None
    if settings.target != "freeplay":
        target = settings.weave_target()
    elif not dry_run:
        settings.require_api_key()
    for w in settings.warnings:
        say(err, f"tracecli: warning: {w}")
    return target


def _follow(
    paths: list[str],
    opts: UploadOptions,
    err: Console | PlainConsole,
    settings: Settings,
    shown: DiagnosticPrinter,
    *,
    quiet: bool,
    json_out: bool,
) -> int:
    """`upload --follow` (cli/follow_view.py, imported only then); its exit code."""
    from tracecli.cli.follow_view import run_follow

    assert not isinstance(err, PlainConsole)  # a follow's status line is Rich's

    code = run_follow(paths, opts, err, settings, quiet=quiet, json_status=json_out)
    shown.close()
    return code


def _upload_once(
    paths: list[str],
    opts: UploadOptions,
    err: Console | PlainConsole,
    shown: DiagnosticPrinter,
    settings: Settings,
    *,
    quiet: bool,
    json_out: bool,
) -> int:
    """One upload with its progress, then its report (JSON on stdout, or the summary for
    people on stderr) and why it stopped, if it did; its exit code."""
    pair_wait = settings.pair_wait  # (for a pipe left open: upload/stdin_live.py)
    live = not quiet and on_screen(err)
    report = _upload_with_progress(
        paths, opts, err, shown, quiet=quiet, live=live, pair_wait=pair_wait
    )
    if json_out:
        write_stdout(json.dumps(report_json(report)))
    elif not quiet:
        render_summary(report, err, rich_table=live)
    _say_why_stopped(report, err)
    return report.exit_code


def _options(
    settings: Settings,
    target: WeaveTarget | None,
    dry_run: bool,
    strict: bool,
    restart: bool,
    input_format: opt.StdinFormat,
    retries: _RetryPrinter | None,
    shown: DiagnosticPrinter,
) -> UploadOptions:
    """The library's options from the settings (Weave's server and key already resolved
    into `resolved`; Freeplay's resolved by its run) and the flags that are not settings."""
    from tracecli.upload.api import UploadOptions

    freeplay = settings.target == "freeplay"
    return UploadOptions(
        resolved=target,
        target="freeplay" if freeplay else "weave",
        server=settings.server if freeplay else None,
        api_key=settings.api_key if freeplay else None,
        project=settings.project,
        mode=settings.mode,  # type: ignore[arg-type]
        chunk_size=settings.chunk_size,
        chunk_bytes=settings.chunk_bytes,
        concurrency=settings.concurrency,
        dry_run=dry_run,
        strict=strict,
        rejected=settings.rejected,
        max_retry_time=settings.max_retry_time,
        max_outage=settings.max_outage,
        restart=restart,
        ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None,
        allow_insecure=settings.allow_insecure,
        input_format=input_format.value,
        on_retry=retries,
        on_diagnostic=shown,
    )


def _upload_with_progress(
    paths: list[str],
    opts: UploadOptions,
    err: Console | PlainConsole,
    shown: DiagnosticPrinter,
    *,
    quiet: bool,
    live: bool,
    pair_wait: float,
) -> UploadReport:
    """Run the upload with a progress display on stderr: a live line on a terminal, a
    plain line now and then elsewhere, none with --quiet."""
    from tracecli.cli.progress import LiveProgress, PlainProgress, plain_every
    from tracecli.upload.api import upload

    display: LiveProgress | PlainProgress | None = None
    if live:
        assert not isinstance(err, PlainConsole)  # live: a terminal
        display = LiveProgress(err)
        shown.console = display.progress.console  # diagnostics print above the line
    elif not quiet:
        display = PlainProgress(err, plain_every())

    def run(on_progress: Any = None) -> UploadReport:
        if len(paths) == 1 and not os.path.isfile(paths[0]):  # stdin, a FIFO? (else no import)
            from tracecli.upload.stdin_live import upload_stdin
            from tracecli.upload.stdin_spool import live_source

            piped = live_source(paths, opts)
            if piped is not None:  # a pipe: sent as it comes (upload/stdin_live.py)
                return upload_stdin(upload, opts, on_progress, pair_wait, piped)
        return upload(paths, opts, on_progress)

    try:
        if display is None:
            return run()
        try:
            return run(display.update)
        finally:
            display.stop()
    finally:
        shown.close()


def _say_why_stopped(report: UploadReport, err: Console | PlainConsole) -> None:
    from tracecli.upload.api import RESUME_HINT

    if report.interrupted:
        say(err, f"tracecli: interrupted; {report.resume_note or RESUME_HINT}")
    elif report.halted:
        say(err, f"tracecli: error: {report.halted}")
    elif report.gave_up:
        say(err, f"tracecli: error: {report.gave_up}")
    elif report.strict_blocked:
        say(err, "tracecli: error: --strict: nothing was sent because some records have errors")


class _RetryPrinter:
    def __init__(self, console: Console | PlainConsole) -> None:
        self.console = console

    def __call__(self, ev: RetryEvent) -> None:
        what = f"HTTP {ev.status}" if ev.status else ev.reason
        say(
            self.console,
            f"tracecli: retry {ev.method} {ev.path} (attempt {ev.attempt} failed: {what}) "
            f"in {ev.delay:.1f} s",
        )


# A dry run sends nothing: its counts are what would go, and are named so
_DRY_RUN_KEYS = {
    "uploaded": "would_upload",
    "ends_uploaded": "would_upload_ends",
    "records_uploaded": "would_upload_records",
    "requests": "would_send_requests",
    "bytes_sent": "would_send_bytes",
}


def report_json(report: UploadReport) -> dict[str, Any]:
    """The report for `--format json`; a dry run's counts of what would be sent are named
    `would_*` (`"uploaded": 44` would say 44 calls were stored when none were)."""
    doc = report.to_dict()
    if not report.dry_run:
        return doc
    return {_DRY_RUN_KEYS.get(k, k): v for k, v in doc.items()}


def summary_rows(report: UploadReport) -> list[tuple[str, str]]:
    """The summary as (label, value) rows, shared by the table and the plain text."""
    verb = "would upload" if report.dry_run else "uploaded"
    rows = [
        ("files", str(len(report.files))),
        ("records", f"{report.records:,}"),
        (f"calls {verb}", f"{report.uploaded:,}"),
    ]
    if report.ends_uploaded:
        # ends alone: their calls were started by an earlier run or are not in the inputs
        rows.append((f"ends {verb} alone", f"{report.ends_uploaded:,}"))
    for endpoint, n in sorted(report.by_endpoint.items(), key=_endpoint_order):
        reqs = report.requests_by_endpoint.get(endpoint, 0)
        plural = "" if reqs == 1 else "s"
        rows.append((f"  via {endpoint}", f"{n:,} ({reqs:,} request{plural})"))
    rows.append((f"records {verb}", f"{report.acked_records:,}"))
    rows.append(("rejected records", f"{report.rejected:,}"))
    if report.unsent:
        rows.append(("not sent (resume)", f"{report.unsent:,}"))
    rows.append(("skipped (sent before)", f"{report.skipped:,}"))
    rows.append(
        ("requests" if not report.dry_run else "requests (would send)", f"{report.requests:,}")
    )
    if report.dry_run:
        rows.append(("bytes (would send)", f"{report.bytes_sent:,}"))
    rows.append(("retries", f"{report.retried:,}"))
    rows.append(("warnings", f"{report.warnings:,}"))
    rows.append(("elapsed", format_elapsed(report.elapsed_s)))
    rows.append(("calls/s", f"{report.calls_per_s:,.0f}"))
    return rows


_ENDPOINTS = ("calls/complete", "call/upsert_batch", "call/start", "call/end")


def _endpoint_order(item: tuple[str, int]) -> tuple[int, str]:
    """Endpoints in the order a call goes through them (call/start before call/end)."""
    name = item[0]
    return (_ENDPOINTS.index(name) if name in _ENDPOINTS else len(_ENDPOINTS), name)


def format_elapsed(seconds: float) -> str:
    """Seconds for people: milliseconds under one second (a short run is not "0.0 s"),
    one decimal under a minute, then minutes and seconds."""
    ms = round(seconds * 1000)
    if ms < 1000:
        return f"{max(1, ms)} ms" if seconds > 0 else "0 ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def render_summary(
    report: UploadReport, console: Console | PlainConsole, *, rich_table: bool
) -> None:
    rows = summary_rows(report)
    if rich_table and not isinstance(console, PlainConsole):
        from rich.table import Table
        from rich.text import Text

        table = Table(show_header=False, box=None, pad_edge=False)
        # a narrow terminal wraps the value, never a label (its words were cut apart)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(justify="right", overflow="fold")
        for label, value in rows:
            table.add_row(Text(safe_text(label)), Text(safe_text(value)))  # never markup
        console.print(table)
    else:
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            say(console, f"{label:<{width}}  {value}")
    for path in report.changed_files:
        say(
            console,
            f"note: {path} changed since the last run: read again from the start "
            "(what the server already holds is not stored twice)",
        )
    if report.store_resent:
        say(
            console,
            f"note: the store {report.target} is not as the last upload left it (an older "
            "copy restored?): every call was sent again (the store keeps one of each)",
        )
    if report.rejected_file:
        say(console, f"rejected records (with reasons): {report.rejected_file}")
    elif report.stale_rejected_note:  # said once, not on every run in that folder
        say(console, f"note: {report.stale_rejected_note}")
    if report.dry_run:
        say(console, f"dry run: nothing was sent to {report.target}")
    elif (
        not report.uploaded
        and not report.ends_uploaded
        and report.skipped
        and not report.rejected
        and not report.unsent
    ):
        say(
            console,
            f"nothing new to send: {report.skipped:,} records were stored by an earlier run "
            "(--restart sends them again)",
        )
    elif report.target_kind == "store":
        say(console, f"stored in the embedded store {report.target}; see them with: tracecli tail")
    else:
        say(console, f"sent to {report.target}")
    if report.target_kind == "store" and not report.dry_run and os.environ.get("WANDB_API_KEY"):
        # a W&B user who forgot the server would otherwise think the calls went to Weave
        say(
            console,
            "note: WANDB_API_KEY is set but no server was given, so the calls went to the "
            "embedded store; pass --server https://trace.wandb.ai (or set WF_TRACE_SERVER_URL) "
            "to upload to W&B Weave",
        )
