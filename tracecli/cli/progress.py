"""The upload progress line: one row at any width, on a terminal; a plain line now and then
in a CI log.

The line is made of fields, each with a rank: when the terminal is too narrow for all of
them, the least useful go first (the bar, the records read, the byte counts, the rate, the
ETA) and the percent done, the calls sent, the elapsed time and a status (a server that
does not answer, what the next retry waits for) stay. Pure functions of a progress record,
so tests read the line without a terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from tracecli.cli.common import PlainConsole
from tracecli.cli.safe import safe_text

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import ProgressColumn
    from rich.text import Text

PLAIN_EVERY = 15.0  # seconds between plain progress lines when stderr is not a terminal
BAR_CELLS = 16


class ProgressRecord(Protocol):
    """What the core hands the display (tracecli.upload.api.Progress); `status` is optional:
    a short word from the sender on what it waits for (an unreachable server, a retry)."""

    bytes_read: int
    bytes_total: int | None
    records: int
    uploaded: int
    rejected: int
    retries: int
    elapsed: float


class Field(NamedTuple):
    rank: int  # lower stays longer
    text: str


def clock(seconds: float) -> str:
    """0:07, 12:34, 1:02:03: as `tail -f` users read a stopwatch."""
    s = max(0, int(seconds))
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


def status_of(p: Any) -> str | None:
    """The sender's status (`server unreachable (connection refused); retry 5 in 8 s`),
    when the core gives one: a `status` (or `outage`) string on the progress record."""
    for name in ("status", "outage"):
        status = getattr(p, name, None)
        if isinstance(status, str) and status:
            return safe_text(status)
    return None


def fields(p: ProgressRecord, *, elapsed: float | None = None, bar: bool = True) -> list[Field]:
    """The line's fields in display order, each ranked (lower: kept longer)."""
    elapsed = p.elapsed if elapsed is None else elapsed
    total = p.bytes_total
    frac = min(1.0, p.bytes_read / total) if total else None
    out: list[Field] = []
    if frac is not None:
        out.append(Field(0, f"{frac * 100:.0f}%"))
        if bar:
            done = round(frac * BAR_CELLS)
            out.append(Field(9, "█" * done + "░" * (BAR_CELLS - done)))
        done_size, total_size = size(p.bytes_read), size(total or 0)
        unit = total_size.rsplit(" ", 1)[-1]
        if done_size.endswith(" " + unit):  # 12.3/98.8 MB
            done_size = done_size[: -len(unit) - 1]
        out.append(Field(7, f"{done_size}/{total_size}"))
    else:
        out.append(Field(4, f"{size(p.bytes_read)} read"))
    out.append(Field(8, f"{p.records:,} records"))
    out.append(Field(2, f"{p.uploaded:,} calls sent"))
    if p.rejected:
        out.append(Field(3, f"{p.rejected:,} rejected"))
    if p.retries:
        out.append(Field(6, f"{p.retries:,} retries"))
    status = status_of(p)
    if status:
        out.append(Field(1, status))
    elif elapsed > 0.5:
        out.append(Field(5, f"{p.uploaded / elapsed:,.0f} calls/s"))
    out.append(Field(0, f"{clock(elapsed)} elapsed"))
    if frac is not None and 0 < frac < 1 and elapsed > 1 and not status:
        eta = elapsed * (1 - frac) / frac
        out.append(Field(4, f"ETA {clock(eta)}"))
    return out


def fit(parts: list[Field], width: int, sep: str = "  ") -> str:
    """The fields joined by `sep`, dropping the highest ranks first until the line fits
    `width` cells; what still does not fit is cut with an ellipsis."""
    from rich.cells import cell_len  # a terminal's line: Rich draws it anyway
    from rich.text import Text

    kept = list(parts)
    while len(kept) > 1:
        line = sep.join(f.text for f in kept)
        if cell_len(line) <= width:
            return line
        worst = max(f.rank for f in kept)
        drop = max(i for i, f in enumerate(kept) if f.rank == worst)
        del kept[drop]
    line = sep.join(f.text for f in kept)
    if cell_len(line) > width:
        text = Text(line)
        text.truncate(max(1, width), overflow="ellipsis")
        line = text.plain
    return line


def progress_line(p: ProgressRecord, width: int, *, elapsed: float | None = None) -> str:
    """The one-row progress line for a terminal `width` columns wide (the last column is
    left free: a line that fills it makes some terminals wrap)."""
    return fit(fields(p, elapsed=elapsed), max(10, width - 1))


def plain_line(p: ProgressRecord) -> str:
    """The progress line of a CI log: no bar, every field, one line."""
    return "tracecli: progress: " + ", ".join(f.text.strip() for f in fields(p, bar=False))


def _line_column(display: LiveProgress) -> ProgressColumn:
    """Rich's live display, showing `progress_line` at the console's width as it is at
    each refresh (a resized terminal gets a refitted line; the elapsed time keeps going
    between updates). Made with the display: rich.progress is for a terminal only, and
    would cost an upload without one (a CI log, a pipe) ~5 ms to import."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class _LineColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            last = display.last
            if last is None:
                return Text("")
            elapsed = last.elapsed + (time.monotonic() - display.last_at)
            width = display.progress.console.width
            line = progress_line(last, width, elapsed=elapsed)
            return Text(line, no_wrap=True, overflow="crop")

    return _LineColumn()


class LiveProgress:
    """The progress line on a terminal: redrawn in place, gone when the upload ends."""

    def __init__(self, console: Console) -> None:
        from rich.progress import Progress

        self.progress = Progress(
            _line_column(self), console=console, transient=True, refresh_per_second=4
        )
        self.last: Any = None
        self.last_at = time.monotonic()
        self.task: Any = None

    def update(self, p: ProgressRecord) -> None:
        # Started on the first update, not before upload(): its refresh thread must not
        # exist when upload forks its worker processes.
        self.last, self.last_at = p, time.monotonic()
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("upload", total=None)
        self.progress.refresh()

    def stop(self) -> None:
        if self.task is not None:
            self.progress.stop()


class PlainProgress:
    """Without a terminal (a CI log): a plain progress line every `every` seconds, so a
    long upload is seen to be alive; nothing for an upload shorter than that."""

    def __init__(self, console: Console | PlainConsole, every: float = PLAIN_EVERY) -> None:
        self.console = console
        self.every = every
        self.next_at = time.monotonic() + every

    def update(self, p: ProgressRecord) -> None:
        now = time.monotonic()
        if now < self.next_at:
            return
        self.next_at = now + self.every
        if isinstance(self.console, PlainConsole):
            self.console.line(plain_line(p))
        else:
            from rich.text import Text

            self.console.print(Text(plain_line(p)), soft_wrap=True)
        with contextlib.suppress(OSError, ValueError):
            self.console.file.flush()

    def stop(self) -> None:
        pass


def plain_every() -> float:
    """PLAIN_EVERY, or TRACECLI_PROGRESS_EVERY seconds (tests; a CI that wants more)."""
    raw = os.environ.get("TRACECLI_PROGRESS_EVERY")
    try:
        return max(0.0, float(raw)) if raw else PLAIN_EVERY
    except ValueError:
        print(f"tracecli: warning: TRACECLI_PROGRESS_EVERY={raw!r} is not seconds", file=sys.stderr)
        return PLAIN_EVERY
