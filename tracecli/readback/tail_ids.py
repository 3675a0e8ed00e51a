"""`tail --id` and `--trace` take what the table shows: a unique prefix or suffix of an id.

The table shows the last characters of each call id (time-ordered ids share their start),
and people copy ids from logs whole or in part. A fragment is looked up on the server with
the query language both the embedded store and Weave servers speak (`$contains` on the
field), then kept only where it starts or ends the id; one id is the answer, none or
several is a usage error that says so (never a filter that silently matches nothing).
"""

from __future__ import annotations

from typing import Any, Literal

from tracecli.diagnostics import UsageError
from tracecli.readback.sources import CallSource
from tracecli.readback.tail import and_more

FULL_ID_LEN = 32  # a UUID without dashes: taken as it is, no look-up
_LOOKUP_LIMIT = 200  # calls read to find the ids a fragment names

Field = Literal["id", "trace_id"]
_WHAT = {"id": ("--id", "call id"), "trace_id": ("--trace", "trace id")}


def _contains(field: Field, fragment: str) -> dict[str, Any]:
    return {
        "$expr": {"$contains": {"input": {"$getField": field}, "substr": {"$literal": fragment}}}
    }


def matching_ids(values: list[str], fragment: str) -> list[str]:
    """The distinct `values` that start or end with `fragment`, in first-seen order."""
    out: dict[str, None] = {}
    for value in values:
        if value.startswith(fragment) or value.endswith(fragment):
            out.setdefault(value, None)
    return list(out)


def resolve_id(source: CallSource, project: str, fragment: str, field: Field) -> str:
    """The one id of `field` in `project` that `fragment` starts or ends; a whole id as it is.

    Raises UsageError (exit 2) when no id matches, or when several do (naming some of them,
    so the user can pick and give more characters)."""
    fragment = fragment.strip()
    option, what = _WHAT[field]
    if not fragment:
        raise UsageError(f"{option}: give an id, or its first or last characters")
    if len(fragment.replace("-", "")) >= FULL_ID_LEN:
        return fragment
    calls = source.query(project, query=_contains(field, fragment), limit=_LOOKUP_LIMIT)
    found = matching_ids([str(c.get(field) or "") for c in calls], fragment)
    if not found:
        raise UsageError(f"{option} {fragment}: no {what} in {project} starts or ends with it")
    if len(found) > 1:
        raise UsageError(
            f"{option} {fragment}: {len(found)} {what}s in {project} start or end with it "
            f"({and_more(found, 5)}); give more characters"
        )
    return found[0]
