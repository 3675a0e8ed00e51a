"""The rows of a `calls/complete` request body, read without building its JSON values.

Why: an upload to the embedded store hands the store the very bytes a server would get,
and reading them back (`orjson.loads`, then each JSON field encoded again) was over a
quarter of the store's work per call. msgspec decodes the body into a struct whose free-form fields
(inputs, output, attributes, summary, otel_dump) stay their JSON text (`msgspec.Raw`), and
that text is already what the store writes: upload encodes every record with orjson
(`tracecli.wire.encode.dumps`), whose text orjson reads and writes back byte for byte.

So this path takes only bodies where that holds, and answers None for anything else, which
then goes the general way (`store.rows` on the decoded body) and gets exactly what it got
before: a body with a `\\u` escape (a lone surrogate, or text Python's json wrote), a run of
19 digits in a free-form or integer field (an integer orjson cannot hold), a field nested
250 deep or more (Python's json wrote the record), an unknown key, a value of another type
than the usual one, a missing field, or a time not already in the store's form.
"""

from __future__ import annotations

import datetime
import itertools
import operator
from typing import Any

import msgspec

from tracecli.store.exact_json import may_hold_wide_ints
from tracecli.store.rows import already_utc
from tracecli.store.summary_ints import ODD_COUNT
from tracecli.store.tables import COMPLETE_COLUMNS, COMPLETE_COLUMNS_NULLS_LAST

_NULL = msgspec.Raw(b"null")
_FREE_FORM = ("attributes", "inputs", "otel_dump", "output", "summary")
# The columns of the rows this path answers: the usually-NULL ones last, so that a batch
# drops them with a slice of each row (store.upserts).
ROW_COLUMNS = COMPLETE_COLUMNS_NULLS_LAST
# A field of this many bytes or more may be nested deep enough that orjson refused the
# record (255 levels) and Python's json wrote it: its brackets are counted.
_DEEP_BYTES = 500
_DEEP_BRACKETS = 250


class _Completed(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A CompletedCallSchemaForInsert as upload sends it, fields in COMPLETE_COLUMNS order."""

    project_id: str
    id: str
    trace_id: str
    op_name: str
    display_name: str | None = None
    parent_id: str | None = None
    thread_id: str | None = None
    turn_id: str | None = None
    started_at: str = ""
    attributes: msgspec.Raw = _NULL
    inputs: msgspec.Raw = _NULL
    otel_dump: msgspec.Raw = _NULL
    wb_user_id: str | None = None
    wb_run_id: str | None = None
    wb_run_step: int | None = None
    ended_at: str = ""
    exception: str | None = None
    output: msgspec.Raw = _NULL
    summary: msgspec.Raw = _NULL
    wb_run_step_end: int | None = None


assert _Completed.__struct_fields__ == COMPLETE_COLUMNS


class _Batch(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    batch: list[_Completed]


_decode = msgspec.json.Decoder(_Batch).decode
_fields = msgspec.structs.astuple
_has_escape = operator.methodcaller("find", b"\\u")
_has_backslash = operator.methodcaller("find", b"\\")  # one memchr: most bodies have none
# A row's free-form fields (attributes, inputs, otel_dump, output, summary): their text.
_free_form = operator.itemgetter(*(ROW_COLUMNS.index(c) for c in _FREE_FORM))
_chain = itertools.chain.from_iterable
# An integer field of 19 digits or more: the general path's (see completed_rows).
_WIDE = 10**18
_fromisoformat = datetime.datetime.fromisoformat
_odd_count = ODD_COUNT  # `may_need_ints` without its call


class _Other(Exception):
    """This body is not one this path takes: the general path reads it."""


def completed_rows(body: bytes) -> list[tuple[Any, ...]] | None:
    """The rows (ROW_COLUMNS order) of a `calls/complete` body, or None: read it the general
    way (`tracecli.store.rows.complete_row` on the decoded body).

    The search for a run of 19 digits (an integer beyond 64 bits) covers only the free-form
    fields' text, joined: that is where such a number changes what the general path writes
    (it re-encodes the field). Elsewhere a run of digits is inside a string (an id, a name,
    a time), which both paths store as it is, or an integer field (wb_run_step), which
    `_row` sends the general way itself from 19 digits on. Half of a body's bytes are
    outside those fields, and the search (a translate, ~9 instructions a byte) was the
    largest single cost of the path."""
    if _has_backslash(body) >= 0 and _has_escape(body) >= 0:
        return None
    try:
        calls = _decode(body).batch
        rows = [_row(c) for c in calls]
    except (msgspec.DecodeError, _Other):
        return None
    if may_hold_wide_ints("".join(filter(None, _chain(map(_free_form, rows))))):
        return None  # (a run across two fields' joint only sends it the general way)
    return rows


def _row(c: _Completed) -> tuple[Any, ...]:
    """One call's row, as `complete_row` writes it from the decoded call (see the module),
    in ROW_COLUMNS order. The usual call (both times `...SS.ffffffZ`, free-form fields
    objects shorter than _DEEP_BYTES or absent, a summary `{}`) is answered with
    `already_utc`, `_object_text` and `_text` written out, and no search of an empty
    summary: a row is built for every call stored (4% of `completed_rows`' instructions,
    callgrind). Anything else goes through those helpers, as before."""
    (
        project_id, call_id, trace_id, op_name, display_name, parent_id, thread_id, turn_id,
        started_at, attributes, inputs, otel_dump, wb_user_id, wb_run_id, wb_run_step,
        ended_at, exception, output, summary, wb_run_step_end,
    ) = _fields(c)  # fmt: skip
    if not call_id or not trace_id:  # a fresh id for "": the general path's
        raise _Other
    if (wb_run_step is not None and not -_WIDE < wb_run_step < _WIDE) or (
        wb_run_step_end is not None and not -_WIDE < wb_run_step_end < _WIDE
    ):
        raise _Other
    try:  # `already_utc` of the usual form (`...SS.ffffffZ`, a real instant), both times
        if (
            len(started_at) == 27
            and started_at[26] == "Z"
            and started_at[4:20:3] == "--T::."
            and started_at[20:26].isdigit()
            and len(ended_at) == 27
            and ended_at[26] == "Z"
            and ended_at[4:20:3] == "--T::."
            and ended_at[20:26].isdigit()
        ):
            _fromisoformat(started_at)
            _fromisoformat(ended_at)
            started, ended = started_at, ended_at
        else:
            started = already_utc(started_at)
            ended = already_utc(ended_at)
            if started is None or ended is None:
                raise _Other
    except ValueError:
        raise _Other from None
    if len(summary) > 2 and _odd_count(summary) is not None:  # (`{}`: no count to look at)
        raise _Other  # (a count weave stores as an integer, written otherwise: summary_ints)
    # `_object_text` of attributes, inputs and summary, `_text` of output, inlined for an
    # object's text shorter than _DEEP_BYTES (no brackets to count); else the helpers
    a = "{}" if attributes is _NULL else str(attributes, "utf-8")
    if a[0] != "{" or len(a) >= _DEEP_BYTES:
        a = _object_text(attributes)
    i = "{}" if inputs is _NULL else str(inputs, "utf-8")
    if i[0] != "{" or len(i) >= _DEEP_BYTES:
        i = _object_text(inputs)
    s = "{}" if summary is _NULL else str(summary, "utf-8")
    if s[0] != "{" or len(s) >= _DEEP_BYTES:
        s = _object_text(summary)
    o = None if output is _NULL else str(output, "utf-8")
    if o is not None and (o[0] == "n" or len(o) >= _DEEP_BYTES):
        o = _text(output)
    return (  # ROW_COLUMNS order
        project_id,
        call_id,
        trace_id,
        op_name,
        started,
        a,
        i,
        ended,
        s,
        o,
        parent_id,
        exception,
        display_name,
        thread_id,
        turn_id,
        wb_run_step,
        wb_run_step_end,
        wb_user_id,
        wb_run_id,
        None if otel_dump is _NULL else _text(otel_dump),  # (nearly always absent)
    )


def _text(raw: msgspec.Raw) -> str | None:
    """A JSON field as stored: its text, NULL for null (or absent: `_NULL` itself, what
    msgspec leaves in a field the call does not have, answered without decoding it)."""
    if raw is _NULL:
        return None
    text = str(raw, "utf-8")
    if text == "null":
        return None
    if len(text) >= _DEEP_BYTES and text.count("{") + text.count("[") >= _DEEP_BRACKETS:
        raise _Other
    return text


def _object_text(raw: msgspec.Raw) -> str:
    """attributes, inputs or summary as stored: `{}` for null or absent; an object's text
    (`{}` is its own text)."""
    if raw is _NULL:
        return "{}"
    text = str(raw, "utf-8")
    if text[0] != "{":  # null; or a list, string or number: the general path's rule for those
        if text == "null":
            return "{}"
        raise _Other
    if len(text) >= _DEEP_BYTES and text.count("{") + text.count("[") >= _DEEP_BRACKETS:
        raise _Other
    return text
