"""`complete_facts` for the call `span_to_call` makes of a span read by type, the short way.

`tracecli.schema.fastcheck.complete_facts` vouches for any call body field by field: a
conjunction of checks of one field each. For a call our own mapping made of a typed span
most of them cannot fail (measured: ~40k of the ~370k instructions a span's mapping costs,
a sixth of it the usage row alone), so they are not run again:

- the ids: `tracecli.otel.typed` reads only lowercase hex ids of the right lengths (the
  span's id is the call's, its parent's the call's parent), which the checks' patterns take;
- `attributes`, `inputs` and `otel_dump` are objects with string keys, the summary one
  usage row of integer or null counts named by a string (`span_to_call`, whose MappingError
  refuses anything else; the counts are looked at here all the same, cheaply);
- a project and an op name pass or fail on their own: once `complete_facts` passed one, it
  passes it again (remembered here, as fastcheck remembers them);
- the other W&B fields are null (the usual span; any other call goes the full way), a
  conversation's thread and turn (any string passes) and an exception are strings or null.

The times are checked as before (an attribute may override them). Anything else gets the
full check's answer: `complete_facts` itself, so the answer is the same either way (held
by a hypothesis test).
"""

from __future__ import annotations

from typing import Any

from tracecli.schema.fastcheck import COMPLETE_KEYS, Facts, _when, complete_facts, new_facts

_PROJECTS: set[str] = set()  # projects and op names a call `complete_facts` passed held
_OPS: set[str] = set()
_MAX = 4096


def typed_call_facts(call: dict[str, Any], line: int) -> Facts | None:
    """`complete_facts(call, COMPLETE_KEYS, True, line)` of a call `span_to_call` made of a
    span `tracecli.otel.typed` read (its summary reduced to its usage)."""
    get = call.get
    if (
        get("project_id") in _PROJECTS
        and get("op_name") in _OPS
        and get("display_name") is None
        and get("wb_run_id") is None
        and get("wb_run_step") is None
        and get("wb_run_step_end") is None
        and get("wb_user_id") is None
        and type(get("attributes")) is dict
        and type(get("inputs")) is dict
        and type(get("otel_dump")) is dict
        and COMPLETE_KEYS.issuperset(call)
    ):
        started = _when(get("started_at"))
        ended = _when(get("ended_at"))
        if (
            _str_or_none(get("exception"))
            and _str_or_none(get("thread_id"))
            and _str_or_none(get("turn_id"))
            and started is not None
            and ended is not None
            and _usage_ok(call["summary"])
        ):
            ids = (get("id"), get("trace_id"), get("parent_id"))
            return new_facts(Facts, (line, "complete", *ids, started, ended))
    facts = complete_facts(call, COMPLETE_KEYS, True, line)
    if facts is not None:
        if len(_PROJECTS) >= _MAX or len(_OPS) >= _MAX:
            _PROJECTS.clear()
            _OPS.clear()
        _PROJECTS.add(call["project_id"])
        _OPS.add(call["op_name"])
    return facts


def _str_or_none(v: Any) -> bool:
    return v is None or type(v) is str


def _usage_ok(summary: Any) -> bool:
    """The summary `span_to_call` makes, reduced to its usage: one row of integer or null
    counts under a string (the model's name or "usage")."""
    if type(summary) is not dict or len(summary) != 1:
        return False
    usage = summary.get("usage")
    if type(usage) is not dict or len(usage) != 1:
        return False
    for model, row in usage.items():
        if type(model) is not str or type(row) is not dict:
            return False
        for v in row.values():
            if v is not None and type(v) is not int:
                return False
    return True
