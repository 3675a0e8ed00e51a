"""The per-record fast path that validate and upload share: the Weave shapes' happy path,
checked without building a Record (see `schema.fastcheck`).

Nearly every record of a real file is a valid start, end or completed call in one of the
four shapes `check.records.parse_record` detects (flat with a "type", a batch item
`{"mode", "req"}`, a request `{"start"}`/`{"end"}`, a bare completed call). `fast_facts`
recognises those at a fraction of the full check's cost and returns their facts; for
anything else it returns None, and the caller runs the full check, which then gives the
real answer (it never accepts what the full check refuses). validate keeps the facts;
upload also needs the call body and the shape it came in (`fast_body`), to encode it.
"""

from __future__ import annotations

from typing import Any

from tracecli.schema.fastcheck import (
    COMPLETE_KEYS,
    END_KEYS,
    FLAT_COMPLETE_KEYS,
    FLAT_END_KEYS,
    FLAT_START_KEYS,
    START_KEYS,
    Facts,
    complete_facts,
    end_facts,
    start_facts,
)


def fast_facts(v: dict[str, Any], line: int = 0, json: bool = True) -> Facts | None:
    """The facts of a record the fast path finds certainly valid, else None.

    `line`: put in the facts; `json`: the record was decoded from JSON (its keys are
    strings). May raise TypeError for an unhashable "mode" (callers fall back on the full
    check, which says what is wrong).
    """
    t = v.get("type")
    if t is not None:
        if t == "start":
            return start_facts(v, FLAT_START_KEYS, json, line)
        if t == "end":
            return end_facts(v, FLAT_END_KEYS, json, line)
        if t == "call":
            return complete_facts(v, FLAT_COMPLETE_KEYS, json, line)
        return None
    if "req" in v:
        t = v.get("mode")
        req = v["req"]
        if len(v) != 2 or type(req) is not dict or len(req) != 1 or t not in _HALVES:
            return None
        body = req.get(t)
        return _HALVES[t](body, _KEYS[t], json, line) if type(body) is dict else None
    if len(v) == 1:
        t = "start" if "start" in v else "end"
        body = v.get(t)
        return _HALVES[t](body, _KEYS[t], json, line) if type(body) is dict else None
    return complete_facts(v, COMPLETE_KEYS, json, line)


_HALVES = {"start": start_facts, "end": end_facts}
_KEYS = {"start": START_KEYS, "end": END_KEYS}


def fast_body(v: dict[str, Any]) -> tuple[Facts, str, dict[str, Any]] | None:
    """(facts, shape, call body) of a JSON record `fast_facts` finds certainly valid, else
    None. The shapes are named as `parse_record` names them; a flat record's body still
    holds its "type"."""
    try:
        facts = fast_facts(v)
    except TypeError:
        return None
    if facts is None:
        return None
    if v.get("type") is not None:
        return facts, "flat", v
    if "req" in v:
        return facts, "batch", v["req"][v["mode"]]
    if len(v) == 1:
        return facts, "request", v["start"] if "start" in v else v["end"]
    return facts, "complete", v
