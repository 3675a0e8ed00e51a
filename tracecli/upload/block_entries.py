"""The entries of an upload block (see `tracecli.upload.blocks`), apart from the code that
makes them: upload's reading process, its quick path and its OTLP mapping read them too.

The entries are named tuples built positionally: they cross the process boundary by the
thousand, and a tuple is what pickles and builds cheapest (a keyword call costs about
three times as much per entry).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple, TypeAlias, cast

from tracecli.diagnostics import Severity

Warning3 = tuple[str, str, str]  # (field, code, message)
Diag4 = tuple[str, str, Severity, str]  # (field, code, severity, message)


class Ok(NamedTuple):
    """A valid record, encoded. kind "start" (body; flag: it holds an end field), "end"
    (body: its fields other than END_FIELDS, tail: its END_FIELDS; flag: it has fields a
    completed call drops) or "complete" (body). `orig`: the project_id as read when
    --project replaced it."""

    line: int
    kind: str
    shape: str
    call_id: str
    project: str
    trace_id: Any
    parent_id: Any
    started: Any
    ended: Any
    body: bytes
    tail: bytes
    flag: bool
    orig: str | None
    warnings: tuple[Warning3, ...]


class Bad(NamedTuple):
    """A record with errors: the value read (or the text of a line that is not JSON), its
    diagnostics, the call id if one is seen (its other half is refused with it)."""

    line: int
    original: Any
    diags: tuple[Diag4, ...]
    refused_id: str | None


class FreeplayRecord(NamedTuple):
    """A Freeplay completion (not a Weave call)."""

    line: int
    value: Any


class Pair(NamedTuple):
    """A start and its end in the same block, both valid with no warning: the facts the
    cross-record checks need, then each half's encoded parts. Flat rather than two `Ok`s:
    nearly every call of a real file travels as one of these, and each object more costs
    a call ~1 µs to pickle and unpickle (3 µs per record with two nested `Ok`s, measured)."""

    line: int
    call_id: str
    project: str
    trace_id: Any
    parent_id: Any
    started: Any
    ended: Any
    end_line: int
    start_shape: str
    start_body: bytes
    start_flag: bool
    start_orig: str | None
    end_shape: str
    end_body: bytes
    end_tail: bytes
    end_flag: bool
    end_orig: str | None


Entry: TypeAlias = "Ok | Bad | FreeplayRecord | Pair"
TYPES = (Ok, Bad, FreeplayRecord, Pair)
CODE = {t: i for i, t in enumerate(TYPES)}
# C-speed constructors from a tuple of the fields in order, for the per-record path: a
# named tuple's own constructor is a Python function (17 fields: ~550 against ~240 ns)
new_ok = cast(Callable[[tuple[Any, ...]], Ok], partial(tuple.__new__, Ok))
new_pair = cast(Callable[[tuple[Any, ...]], Pair], partial(tuple.__new__, Pair))
