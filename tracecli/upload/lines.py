"""A block's lines decoded as weave's server reads them: one loop for validate and upload.

Both runs read a block of JSON lines the same way: orjson first (fast), the exact reader
when orjson refuses a line the server would take (NaN, lone surrogates) or reads an
integer beyond 64 bits as a float, and a look at what the server stores other than as
written (`line_extras`). `decoded` does that once; what each run does with a record (check
it, or check and encode it) is its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

import orjson

from tracecli.diagnostics import Severity
from tracecli.inputs.json_values import json_error
from tracecli.wire.wideints import (
    DEEP_BRACKETS,
    deep_fields,
    deep_message,
    exact_loads,
    is_wide,
    may_hold_wide_ints,
    may_nest_deep,
    odd_values,
)

Extra = tuple[str, str, Severity, str]  # (field, code, severity, message)
NOT_JSON: Final = object()  # `decoded`'s value for a line that is not JSON
NO_EXTRAS: list[Extra] = []  # (never appended to)
REF_START = b'"weave'  # how a JSON string that may be a weave:/// reference begins
_quoted_ref = re.compile(re.escape(REF_START)).search  # a third faster than `in`
_bare_ref = re.compile(REF_START[1:]).search
_letter_escape = re.compile(rb"\\u00(?:77|65|61|76)").search


def escaped_letter(data: bytes) -> re.Match[bytes] | None:
    """A letter of `weave` written as a \\u escape: `"\\u0077eave:///...` is the same string
    to the server. Rare, and such a line gets the full check. Most blocks hold no backslash
    at all, which one `memchr` tells."""
    return _letter_escape(data) if b"\\" in data else None


def find_ref(data: bytes) -> re.Match[bytes] | None:
    """Whether a line may hold a reference (a match) or surely holds none (None)."""
    return _quoted_ref(data) or escaped_letter(data)


def block_may_ref(data: bytes) -> re.Match[bytes] | None:
    """`find_ref` for a whole block: `weave` without its quote, a superset twice as fast to
    look for (a pattern that starts with `"` stops at every JSON string); `plain_refs` then
    counts the quoted ones exactly, line by line, in the blocks it finds."""
    return _bare_ref(data) or escaped_letter(data)


_good_refs = re.compile(rb'"weave:///[^/"\\]+/[^/"\\]+/[^"\\]').findall
_loads = orjson.loads
_JSONError = orjson.JSONDecodeError


def decoded(lines: list[bytes], data: bytes) -> Iterator[tuple[int, bytes, Any, list[Extra]]]:
    """(line number, line, value, extras) for each line of a block that is not blank.

    `lines` are the block's (`inputs.blocks.block_lines`), `data` the block itself (one
    search over it spares most lines the search for wide integers). `extras`: what the
    line holds that the server stores other than as written (`line_extras`), empty for
    nearly every line; a line that is not JSON even so has `NOT_JSON` as its value and a
    "json" error as its one extra.
    """
    wide = may_hold_wide_ints(data)
    loads, none, long_line = _loads, NO_EXTRAS, 2 * DEEP_BRACKETS  # (locals: a hot loop)
    n = 0
    for raw in lines:
        n += 1
        try:
            value = loads(raw)
        except _JSONError as exc:
            if not raw.strip():
                continue
            value = read_exact(raw)
            if value is None:
                yield n, raw, NOT_JSON, [("", "json", Severity.ERROR, json_error(raw, exc))]
            else:
                yield n, raw, value, line_extras(value, raw, True)
            continue
        if wide and may_hold_wide_ints(raw):
            v = widened(value, raw)  # orjson read an integer beyond 64 bits as a float
            if v is not None:
                yield n, raw, v, line_extras(v, raw, True)
                continue
        # as many brackets as the nesting needs, opening and closing: lines are seldom
        # this long (a check at C speed, ~2% of the loop when they are)
        if len(raw) > long_line and may_nest_deep(raw):
            yield n, raw, value, line_extras(value, raw, False)
        else:
            yield n, raw, value, none


def plain_refs(raw: bytes) -> bool:
    """Whether every string of the line that begins like a reference is one the server can
    parse (`weave:///entity/project/...`), so the fast check, which does not look inside
    values, answers as the full one would. What the SDK writes (op refs, object refs in
    inputs) stays on the fast path; anything else that merely looks like one does not."""
    return raw.count(REF_START) == len(_good_refs(raw)) and escaped_letter(raw) is None


def read_exact(raw: bytes) -> Any:
    """A line orjson refused, read as weave's server reads it (NaN, lone surrogates), or
    None when it is not JSON even so (then orjson's error is the one to report)."""
    try:
        return exact_loads(raw)
    except ValueError:  # UnicodeDecodeError and json's errors included
        return None


def widened(value: Any, raw: bytes) -> Any:
    """`value` read again with its integers exact, when the line holds one beyond what
    orjson keeps (it read it as a float); else None. Only asked of lines with 19 digits in
    a row."""
    exact = read_exact(raw)
    if exact is None:
        return None
    stack = [exact]
    while stack:
        v = stack.pop()
        if type(v) is dict:
            stack.extend(v.values())
        elif type(v) is list:
            stack.extend(v)
        elif is_wide(v):
            return exact
    return None


def internal_error(exc: BaseException) -> str:
    """What a record gets when checking it hit a bug of ours (the other records go on)."""
    return f"tracecli could not check this record ({type(exc).__name__}: {exc}); please report it"


def body_prefix(value: Any) -> tuple[dict[str, Any] | None, str]:
    """The call body inside a record of any Weave shape, and the path to it."""
    if type(value) is not dict:
        return None, ""
    if "type" in value or ("op_name" in value and "ended_at" in value):
        return value, ""
    if "mode" in value and "req" in value:
        req, mode = value.get("req"), value.get("mode")
        body = req.get(mode) if type(req) is dict and type(mode) is str else None
        return (body, f"req.{mode}.") if type(body) is dict else (None, "")
    if len(value) == 1 and ("start" in value or "end" in value):
        mode = "start" if "start" in value else "end"
        body = value[mode]
        return (body, f"{mode}.") if type(body) is dict else (None, "")
    return None, ""


def line_extras(value: Any, raw: bytes, exact: bool) -> list[Extra]:
    """What a line holds that weave's server stores other than as written, or cannot read
    back: non-finite numbers and lone surrogates (only in a line orjson refused: `exact`),
    nesting past what the server reads back (only in a line with brackets enough). Errors
    for nesting the server fails to store. Empty for nearly every line, at little cost."""
    out: list[Extra] = []
    body, prefix = body_prefix(value)
    if body is None:
        return out  # not a Weave call (a Freeplay record): its own checks judge it
    if exact:
        out.extend((o.field, o.code, Severity.WARNING, o.message) for o in odd_values(value))
    if may_nest_deep(raw):
        for d in deep_fields(body):
            sev = Severity.WARNING if d.stored else Severity.ERROR
            out.append((prefix + d.field, "depth", sev, deep_message(d)))
    return out


_ID_IN_TEXT = re.compile(
    rb'"id"\s*:\s*"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16})"'
)


def broken_id(raw: bytes) -> str | None:
    """The call id in a line that is not JSON (a truncated record, a stray comma), if any.

    Marked as refused so that the other half of the call does not also get a warning
    ("running call", "end without start") for what is one problem. The first `"id"`
    holding a call id is taken; a wrong pick only spares some other call a warning.
    """
    m = _ID_IN_TEXT.search(raw)
    return None if m is None else m.group(1).decode("ascii")
