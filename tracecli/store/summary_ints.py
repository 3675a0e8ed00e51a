"""A summary's counts as weave's server stores them: integers.

Weave's server reads `summary` as `SummaryInsertMap`: `usage` maps each model to an
`LLMUsageSchema` of eight `int | None` counts, `status_counts` maps each status to an `int`,
and it stores the model's dump, so a count written `1.0`, `1e2`, `-0.0`, `true` or `"7"`
is stored (and read back) as `1`, `100`, `0`, `1`, `7` (pydantic's lax int); every other
key keeps its value as written. The store does the same. (A count that is no integer,
`1.5`, is refused before the store sees it.)

`may_need_ints` is the store's body reader's quick test on a summary's JSON text: False
when no count can be other than a plain integer or null, so the text is stored as it is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

from tracecli.weave_usage import USAGE_FIELDS

USAGE_COUNTS = frozenset(USAGE_FIELDS)


@functools.cache
def _lax_int() -> Callable[[Any], int]:
    """pydantic's lax int, imported and built on first use: only an odd count needs it, and
    pydantic costs an upload to the store a third of its start-up."""
    from pydantic import TypeAdapter

    return TypeAdapter(int).validate_python


# a key that is a count (anywhere: a false alarm only costs the general path) whose value is
# not a plain integer or null
_ODD_COUNT = re.compile(
    rb'"(?:' + b"|".join(k.encode() for k in sorted(USAGE_COUNTS)) + rb"|success|error|running"
    rb'|descendant_error)"\s*:(?!\s*(?:-?\d+|null)\s*[,}])'
).search


ODD_COUNT = _ODD_COUNT  # (for a caller that runs it on every summary: no call around it)


def may_need_ints(summary_json: bytes) -> bool:
    """Whether `weave_counts` might change the summary of this JSON text (False: it won't)."""
    return _ODD_COUNT(summary_json) is not None


def _count(value: Any) -> Any:
    """pydantic's lax int of a count (weave's server reads it so: `"7.0"` and `"1_000"`
    are 7 and 1000), or the value itself when it has none."""
    from pydantic import ValidationError  # only an odd count comes here (see _lax_int)

    try:
        return _lax_int()(value)
    except ValidationError:
        return value


def _odd(value: Any) -> bool:
    return type(value) is not int and value is not None


def weave_counts(summary: Mapping[str, Any]) -> Mapping[str, Any]:
    """`summary` with its usage and status counts as weave stores them (the same object
    when nothing changes)."""
    usage, statuses = summary.get("usage"), summary.get("status_counts")
    out: dict[str, Any] | None = None
    if isinstance(usage, dict) and any(
        isinstance(counts, dict) and any(k in USAGE_COUNTS and _odd(v) for k, v in counts.items())
        for counts in usage.values()
    ):
        out = dict(summary)
        out["usage"] = {
            model: (
                {k: _count(v) if k in USAGE_COUNTS else v for k, v in counts.items()}
                if isinstance(counts, dict)
                else counts
            )
            for model, counts in usage.items()
        }
    if isinstance(statuses, dict) and any(_odd(v) for v in statuses.values()):
        out = out if out is not None else dict(summary)
        out["status_counts"] = {k: _count(v) for k, v in statuses.items()}
    return summary if out is None else out
