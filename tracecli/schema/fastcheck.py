"""A fast yes for the common case: is this call body certainly valid?

The pydantic models are the truth, but running them costs ~8 µs a record, and validating a
1 GB file should cost about what parsing it does. Nearly every record in a real file is
the happy path: known keys, plain types, ids and timestamps in their canonical form. These
functions answer "certainly valid (no error, no warning)" for exactly that case with
`type(...) is` checks, and "don't know" (None) for anything else, which then goes through
the models and `rules.py` for the real answer and its diagnostics.

The contract, held by a hypothesis test: a body gets facts here only when the full check
(`records.check_call`) reports nothing at all for it. So the fast path may be too cautious
but never too lenient; when in doubt, return None.

On success they return the facts the cross-record checks need (`Facts`), the times as the
(validated, canonical) strings.
Strings that repeat (projects, trace ids, parent ids, the id of an end after its start)
are remembered once checked: a set lookup is ~15x cheaper than the regex.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any, NamedTuple, cast

from tracecli.schema.fields import COMPLETED_FIELDS, ENDED_FIELDS, STARTED_FIELDS, USAGE_FIELDS
from tracecli.schema.rules import (
    INT64_MAX,
    MAX_DISPLAY_NAME,
    MAX_OP_NAME,
    OP_REF_PREFIX,
    OP_REF_RE,
    STATUSES,
)


class Facts(NamedTuple):
    """A valid call record as the cross-record checks judge it: what `validate`'s blocks
    send on for each record (`tracecli.check.entries`), and what upload encodes by.

    Built here for nearly every record of a file, so positionally with `tuple.__new__`
    (`new_facts`): a named tuple's own constructor is a Python function that costs about
    twice as much. Even so, one costs ~4x a plain tuple to build and free, and its fields
    ~2.5x to read, which is why the block's loop reads few of them (measured: named facts
    cost a serial `validate` ~3.5% more instructions than plain tuples did). The
    ids are as read (checked here, so a str; typed as the dict gives them); the times are
    the canonical strings as written here, epoch seconds or None from the full check
    (`check.facts.call_facts`), and epoch seconds once a block has settled them.
    """

    line: int
    kind: str  # "start", "end", "complete" or "freeplay"
    call_id: Any
    trace_id: Any
    parent_id: Any
    started: Any
    ended: Any


# tuple.__new__ typed for Facts: one from a tuple of its fields in order, at C speed
new_facts = cast(Callable[[type[Facts], tuple[Any, ...]], Facts], tuple.__new__)

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_call_id_re = re.compile(rf"(?:{_UUID}|[0-9a-f]{{16}})\Z").match
_trace_id_re = re.compile(rf"(?:{_UUID}|[0-9a-f]{{32}})\Z").match
_project_re = re.compile(r"[^/]+/[^/]+\Z").match
_run_id_re = re.compile(r"[^/]+/[^/]+/[^/]+\Z").match
# The canonical RFC 3339 form with an explicit zone: what loggers write, and a subset of
# what pydantic accepts; fromisoformat then rejects impossible dates (Feb 30, 24:00).
_datetime_re = re.compile(
    r"[12][0-9]{3}-[01][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-5][0-9]:[0-5][0-9]"
    r"(?:\.[0-9]{1,6})?(?:Z|[+-][01][0-9]:[0-5][0-9])\Z",
    re.ASCII,
).match
_fromiso = datetime.datetime.fromisoformat


# the models' fields by name (schema/fields.py): the models themselves are not imported
START_KEYS = frozenset(STARTED_FIELDS)
END_KEYS = frozenset(ENDED_FIELDS) | {"trace_id", "is_eval"}
COMPLETE_KEYS = frozenset(COMPLETED_FIELDS)
FLAT_START_KEYS = START_KEYS | {"type"}
FLAT_END_KEYS = END_KEYS | {"type"}
FLAT_COMPLETE_KEYS = COMPLETE_KEYS | {"type"}
_USAGE_KEYS = frozenset(USAGE_FIELDS)

_CACHE_MAX = 8192
_ok_call_ids: set[str] = set()
_ok_trace_ids: set[str] = set()
_ok_projects: set[str] = set()
_ok_ops: set[str] = set()
_ok_runs: set[str] = set()
# "YYYY-MM-DDTHH:MM:" of times already seen valid: the rest of a time is checked alone
_minutes: set[str] = set()
_tail = re.compile(r"[0-5][0-9](?:\.[0-9]{1,6})?(?:Z|[+-][01][0-9]:[0-5][0-9])\Z", re.ASCII).match


def _remember(cache: set[str], value: str) -> bool:
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache.add(value)
    return True


# The caches only ever hold strings that passed, so `v in cache` vouches for type and
# format at once; an unhashable v (a list, a dict) raises TypeError, which the public
# functions turn into "don't know".
def _new_call_id(v: Any) -> bool:
    return type(v) is str and _call_id_re(v) is not None and _remember(_ok_call_ids, v)


def _new_trace_id(v: Any) -> bool:
    return type(v) is str and _trace_id_re(v) is not None and _remember(_ok_trace_ids, v)


def _new_project(v: Any) -> bool:
    return type(v) is str and _project_re(v) is not None and _remember(_ok_projects, v)


def _new_op(v: Any) -> bool:
    # What the SDK writes is a reference (weave:///entity/project/op/name:digest): with no
    # length limit, but a form the server must be able to parse (rules.check_call).
    if type(v) is not str:
        return False
    if v.startswith(OP_REF_PREFIX):
        ok = OP_REF_RE.match(v) is not None
    else:
        ok = 0 < len(v) <= MAX_OP_NAME
    return ok and _remember(_ok_ops, v)


def _new_run(v: Any) -> bool:
    return type(v) is str and _run_id_re(v) is not None and _remember(_ok_runs, v)


def _str_keys(d: dict[Any, Any]) -> bool:
    for k in d:  # noqa: SIM110 - a plain loop is twice as fast as all() over a generator
        if type(k) is not str:
            return False
    return True


def _when(v: Any) -> str | None:
    """`v` when it is certainly a valid time in the canonical form, else None.

    Times in a file share their minute with many others: once a minute has been checked
    in full (date, hour and minute in range), the next times in it only need their
    seconds and zone looked at. The string is kept as it is: `blocks` compares the two
    halves of a call as strings when their layout allows, and parses only otherwise.
    """
    try:
        known = v[:17] in _minutes
    except TypeError:
        return None
    if known and _tail(v, 17) is not None:
        checked: str = v  # a string: its slice was a known minute
        return checked
    return _when_slow(v)


def _when_slow(v: Any) -> str | None:
    if type(v) is not str or _datetime_re(v) is None:
        return None
    try:
        _fromiso(v)
    except ValueError:
        return None
    if len(_minutes) >= _CACHE_MAX:
        _minutes.clear()
    _minutes.add(v[:17])
    return v


def same_layout(a: str, b: str) -> bool:
    """Whether two time strings as written compare as strings the way their instants do.

    They must share one layout: length, date-time separator and zone, "Z" or the same
    "+HH:MM"/"-HH:MM" (with one offset, local times order as their instants; with the
    same length and zone, the fractions have as many digits). Files from one writer
    nearly always do, whatever the style: so pairing compares two strings instead of
    parsing both. Asked only of times `_when` vouched for, or that compare as before.
    """
    if len(a) != len(b) or len(a) < 20 or a[10] != b[10]:
        return False
    z = a[-1]
    if z == "Z":
        return b[-1] == "Z"
    return a[-6] in "+-" and a[-6:] == b[-6:]


def _usage(usage: Any) -> bool:
    if type(usage) is not dict:
        return False
    for model, counts in usage.items():
        if type(model) is not str or type(counts) is not dict:
            return False
        for k, v in counts.items():
            if type(k) is not str:
                return False
            if k in _USAGE_KEYS and v is not None and type(v) is not int:
                return False
    return True


def _summary(s: Any) -> bool:
    if type(s) is not dict:
        return False
    if not s:
        return True
    for k, v in s.items():
        if k == "usage":
            if not _usage(v):
                return False
        elif k == "status_counts":
            if type(v) is not dict:
                return False
            for status, n in v.items():
                if status not in STATUSES or type(n) is not int:
                    return False
        elif type(k) is not str:
            return False
    return True


def _start_part(g: Any, json: bool) -> str | None:
    """Check what a start and a completed call share; their started_at, or None.

    `json`: the body was decoded from JSON, so every object key is a string already.
    Raises TypeError for some unhashable values (the callers catch it).
    """
    v = g("op_name")
    if v not in _ok_ops and not _new_op(v):
        return None
    v = g("parent_id")
    if v is not None and v not in _ok_call_ids and not _new_call_id(v):
        return None
    v = g("attributes")
    if type(v) is not dict or not (json or _str_keys(v)):
        return None
    v = g("inputs")
    if type(v) is not dict or not (json or _str_keys(v)):
        return None
    v = g("display_name")
    if v is not None and (type(v) is not str or not 0 < len(v) <= MAX_DISPLAY_NAME):
        return None
    v = g("thread_id")
    if v is not None and type(v) is not str:
        return None
    v = g("turn_id")
    if v is not None and type(v) is not str:
        return None
    v = g("otel_dump")
    if v is not None and (type(v) is not dict or not (json or _str_keys(v))):
        return None
    v = g("wb_user_id")
    if v is not None and type(v) is not str:
        return None
    v = g("wb_run_id")
    if v is not None and v not in _ok_runs and not _new_run(v):
        return None
    v = g("wb_run_step")
    if v is not None and (type(v) is not int or not 0 <= v <= INT64_MAX):
        return None
    return _when(g("started_at"))


def _end_part(g: Any) -> str | None:
    """Check what an end and a completed call share; their ended_at, or None."""
    v = g("exception")
    if v is not None and type(v) is not str:
        return None
    if not _summary(g("summary")):
        return None
    v = g("wb_run_step_end")
    if v is not None and (type(v) is not int or not 0 <= v <= INT64_MAX):
        return None
    return _when(g("ended_at"))


def _project_and_id(g: Any) -> bool:
    """The project and the call id, which every kind of call body holds."""
    v = g("project_id")
    if v not in _ok_projects and not _new_project(v):
        return False
    v = g("id")
    return v in _ok_call_ids or _new_call_id(v)


def _start_ok(g: Any, json: bool) -> str | None:
    """What a start and a completed call share, ids included; their started_at, or None."""
    if not _project_and_id(g):
        return None
    v = g("trace_id")
    if v not in _ok_trace_ids and not _new_trace_id(v):
        return None
    return _start_part(g, json)


def _start(g: Any, json: bool, line: int) -> Facts | None:
    started = _start_ok(g, json)
    if started is None:
        return None
    return new_facts(Facts, (line, "start", g("id"), g("trace_id"), g("parent_id"), started, None))


def _end(g: Any, json: bool, line: int) -> Facts | None:
    if not _project_and_id(g):
        return None
    started = g("started_at")
    if started is not None:
        started = _when(started)
        if started is None:
            return None
    v = g("trace_id")  # the weave SDK writes it (and is_eval) on ends
    if v is not None and v not in _ok_trace_ids and not _new_trace_id(v):
        return None
    v = g("is_eval")
    if v is not None and type(v) is not bool:
        return None
    ended = _end_part(g)
    return (
        None
        if ended is None
        else new_facts(Facts, (line, "end", g("id"), None, None, started, ended))
    )


def _complete(g: Any, json: bool, line: int) -> Facts | None:
    started = _start_ok(g, json)
    ended = None if started is None else _end_part(g)
    if ended is None:
        return None
    return new_facts(
        Facts, (line, "complete", g("id"), g("trace_id"), g("parent_id"), started, ended)
    )


def _facts(
    part: Callable[[Any, bool, int], Facts | None],
    d: dict[str, Any],
    keys: frozenset[str],
    json: bool,
    line: int,
) -> Facts | None:
    """Run one kind's check under the contract all three keep.

    A key outside `keys`, or a TypeError from an unhashable value met in a cache lookup,
    means "don't know" (None), never an error: the models then give the real answer.
    """
    if not keys.issuperset(d):
        return None
    try:
        return part(d.get, json, line)
    except TypeError:
        return None


def start_facts(
    d: dict[str, Any], keys: frozenset[str] = START_KEYS, json: bool = False, line: int = 0
) -> Facts | None:
    """Facts of a certainly valid start body, else None.

    `keys`: the keys `d` may hold (a flat record also holds its "type"); `json`: `d` was
    decoded from JSON (its keys are strings: a YAML mapping's need not be).
    """
    return _facts(_start, d, keys, json, line)


def end_facts(
    d: dict[str, Any], keys: frozenset[str] = END_KEYS, json: bool = False, line: int = 0
) -> Facts | None:
    """Facts of a certainly valid end body, else None (arguments as for start_facts)."""
    return _facts(_end, d, keys, json, line)


def complete_facts(
    d: dict[str, Any], keys: frozenset[str] = COMPLETE_KEYS, json: bool = False, line: int = 0
) -> Facts | None:
    """Facts of a certainly valid completed call, else None (arguments as for start_facts)."""
    return _facts(_complete, d, keys, json, line)


FAST = {"start": start_facts, "end": end_facts, "complete": complete_facts}


def fast_ok(kind: str, data: Any) -> bool:
    """True only when the call body `data` of this kind has no error and no warning."""
    check = FAST.get(kind)
    return check is not None and type(data) is dict and check(data) is not None
