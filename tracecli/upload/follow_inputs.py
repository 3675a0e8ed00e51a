"""What `upload --follow` sets up about its inputs before the first look: the watcher (and
how long it follows a file rotated away), and the quiet time of YAML files for its passes."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from tracecli.diagnostics import Diagnostic
from tracecli.inputs.settle import quiet_seconds
from tracecli.inputs.watch import AWAY_KEEP, Watcher, followable


def follow_watcher(
    paths: Iterable[str],
    on_diagnostic: Callable[[Diagnostic], None] | None,
    pair_wait: float,
    flush_interval: float,
) -> Watcher:
    """The inputs' watcher (links that loop said and left out): a file rotated away is
    followed until a start it holds no longer waits for its end, AWAY_KEEP at least."""
    keep_away = max(AWAY_KEEP, pair_wait + 2 * flush_interval + 10.0)
    return Watcher(followable(paths, on_diagnostic), keep_away)


def yaml_quiet(seconds: float, restore: Callable[[], None]) -> Callable[[], None]:
    """Make `seconds` the quiet time of YAML files for the passes of this follow (they
    read in this process, see `settle.quiet_seconds`); the undo of it and of `restore`."""
    before = quiet_seconds()
    quiet_seconds(seconds)

    def undo() -> None:
        restore()
        quiet_seconds(before)

    return undo
