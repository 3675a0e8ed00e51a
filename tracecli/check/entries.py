"""`validate`'s entries: what a block of records tells the cross-record checks.

`validate` checks records in blocks (`tracecli.upload.validate_blocks`), in worker
processes when the input is big, and `CrossChecker.feed_block` takes what each block
found, in input order, with lines relative to the block: one entry per record or problem.

- `Facts` (from `tracecli.schema.fastcheck`): a valid record;
- `Refused`: a record that failed its schema, by the call id it seems to carry (its other
  half must not be blamed for what this one lacks);
- `Diag`: a diagnostic of one record;
- `TimeOrder`: a call that ended before it started (compared in the block).

Each is a named tuple that starts with `line` and `kind` (a tag, the same at the same
place in every entry, so any entry says what it is). `Facts`, one per valid record, is
built positionally at C speed (see its docstring); the others are rare, built by the
functions below. They cross the process boundary by the thousand, so they travel as
plain tuples with a type code each (`to_rows` / `from_rows`), as upload's entries do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeAlias, cast

from tracecli.diagnostics import Severity
from tracecli.schema.fastcheck import Facts

__all__ = [
    "Diag",
    "Entry",
    "Refused",
    "TimeOrder",
    "diag_entry",
    "from_rows",
    "refused_entry",
    "time_entry",
    "to_rows",
]


class Refused(NamedTuple):
    """A record that failed its schema, with the call id it seems to carry."""

    line: int
    kind: str  # "refused"
    call_id: str


class Diag(NamedTuple):
    """A diagnostic of the record at `line` (a `Diagnostic` without its path: the block
    does not know where it starts in its file)."""

    line: int
    kind: str  # "diag"
    field: str
    code: str
    severity: Severity
    message: str


class TimeOrder(NamedTuple):
    """A call ended before it started: at the end's `line`, with the start's line (0 when
    both times are in one record) and both times as read (strings or epoch seconds)."""

    line: int
    kind: str  # "time"
    start_line: int
    started: Any
    ended: Any


Entry: TypeAlias = "Facts | Refused | Diag | TimeOrder"
_TYPES = (Facts, Refused, Diag, TimeOrder)
_CODE = {t: i for i, t in enumerate(_TYPES)}


def diag_entry(line: int, field: str, code: str, severity: Severity, message: str) -> Diag:
    """A `Diag` (its kind filled in)."""
    return Diag(line, "diag", field, code, severity, message)


def refused_entry(line: int, call_id: str) -> Refused:
    """A `Refused` (its kind filled in)."""
    return Refused(line, "refused", call_id)


def time_entry(line: int, start_line: int, started: Any, ended: Any) -> TimeOrder:
    """A `TimeOrder` (its kind filled in)."""
    return TimeOrder(line, "time", start_line, started, ended)


def to_rows(entries: list[Entry]) -> tuple[bytes, list[tuple[Any, ...]]]:
    """Entries as a type code each and plain tuples, to pickle: a named tuple pickles as
    a Python call both ways (~1.5 µs an entry); these take C paths only."""
    return bytes(map(_CODE.__getitem__, map(type, entries))), list(map(tuple, entries))


def from_rows(codes: bytes, rows: list[tuple[Any, ...]]) -> list[Entry]:
    """The entries `to_rows` took, rebuilt at C speed."""
    new = cast(Callable[[type, tuple[Any, ...]], Entry], tuple.__new__)
    return list(map(new, map(_TYPES.__getitem__, codes), rows))
