"""Diagnostics printed as a command finds them (upload, convert): one line each, capped
unless --verbose, with the count of the rest at the end."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracecli.cli.common import PlainConsole, say, say_diagnostic

if TYPE_CHECKING:
    from rich.console import Console

    from tracecli.diagnostics import Diagnostic

MAX_PRINTED_DIAGNOSTICS = 50


class DiagnosticPrinter:
    """Diagnostics as they are found, one line each, at most `limit` of them (warnings
    not at all with --quiet); `close` says how many more were found. `rejected_file`: the
    command keeps refused records in a rejected-records file, said with the count."""

    def __init__(
        self,
        console: Console | PlainConsole,
        *,
        quiet: bool,
        limit: int | None,
        rejected_file: bool = True,
    ) -> None:
        self.console: Console | PlainConsole = console
        self.rejected_file = rejected_file
        self.quiet = quiet
        self.limit = limit
        self.printed = 0
        self.hidden = 0
        self.hidden_errors = 0

    def __call__(self, d: Diagnostic) -> None:
        if self.quiet and not d.is_error:
            return
        if self.limit is not None and self.printed >= self.limit:
            self.hidden += 1
            self.hidden_errors += d.is_error
            return
        self.printed += 1
        say_diagnostic(self.console, d.one_line(), d.severity.value)

    def close(self) -> None:
        if self.hidden:
            say(
                self.console,
                f"... and {self.hidden} more diagnostics (--verbose shows all"
                + (
                    "; rejected records are in the rejected file with their reasons)"
                    if self.hidden_errors and self.rejected_file
                    else ")"
                ),
            )
