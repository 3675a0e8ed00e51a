"""The Typer app: one module per command; the only package that imports Typer and Rich.

The app itself is in root.py (`app`, `COMMANDS`, `usage_message`; also here by name): this
module is what the console script imports first, so it imports no Typer. `main` runs the
plainest `tracecli validate PATH...` without it (cli/validate_run.py: Typer's import and
its building of the command cost a third of such a run on a small file), and every other
command line through the app.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracecli.cli.root import COMMANDS, app, usage_message

__all__ = ["COMMANDS", "NEVER_USED", "app", "main", "usage_message"]

# Modules the command line never uses that its dependencies import when they can: httpcore
# looks for trio (its async locks under trio; tracecli's client is synchronous) and httpx
# imports its own command line (Click, Pygments). Together ~60% of what a client to a
# server costs to set up. Only the console script sets these, never an importer of the
# library (None in sys.modules makes `import trio` raise ImportError, as if not installed).
NEVER_USED = ("trio", "httpx._main")


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    # A SIGTERM (a CI job cancelled) while tracecli starts ends it with exit 143, as one
    # later does, not by the signal (-15); a command's own handler replaces this one while
    # it runs. Set here, for the command line only: an importer of this module keeps its
    # own (pytest's run would take the SystemExit for a test's failure and go on).
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        with contextlib.suppress(ValueError):  # (off the main thread none can be set)
            signal.signal(signal.SIGTERM, _terminated)
    # A Ctrl-C while tracecli starts (before a command has handlers of its own) ends it as
    # one later does, exit 130, not with Python's traceback of the import it broke.
    try:
        from tracecli.cli.common import PROG
        from tracecli.cli.validate_run import quick_validate
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    for name in NEVER_USED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    code = quick_validate(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    try:
        from tracecli.cli.root import app
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    app(prog_name=PROG)


def __getattr__(name: str) -> Any:
    """`from tracecli.cli import app` (and COMMANDS, usage_message): root.py's, imported
    on first use."""
    if name in ("app", "COMMANDS", "usage_message"):
        from tracecli.cli import root

        return getattr(root, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
