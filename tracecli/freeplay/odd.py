"""What a Weave call read exactly holds that reaches Freeplay other than as written.

The Freeplay path reads lines as validate and a Weave upload do (`wire.wideints`): integers
beyond 64 bits stay exact and are sent with their own digits; `NaN`, `Infinity` and numbers
beyond a double (`1e400`), which are not JSON, are read rather than refused and sent as
null (`wire.encode.dumps`), as a Weave upload sends them. Such a value is said as a warning
naming the file, line and field, the way a Weave upload says it, in Freeplay's words.
A Freeplay record's own fields are judged by the Freeplay checks (a non-finite number there
is their error), not here.
"""

from __future__ import annotations

from typing import Any

from tracecli.diagnostics import Diagnostic, Location, Severity
from tracecli.wire.wideints import odd_values

_SURROGATE = (
    "holds a lone UTF-16 surrogate (an escape like \\ud800 with no pair), which is not text: "
    "sent as written, and Freeplay may store it changed"
)


def odd_warnings(loc: Location, value: Any) -> list[Diagnostic]:
    """Warnings for the non-finite numbers and lone surrogates of a Weave record read by
    `exact_loads` (the same fields a Weave upload warns about)."""
    out = []
    for odd in odd_values(value):
        if odd.code == "non-finite":
            text = odd.message.partition(" is not a JSON number")[0]
            msg = f"{text} is not a JSON number: sent to Freeplay as null (or left out)"
        else:
            msg = _SURROGATE
        out.append(Diagnostic.at(loc, odd.code, msg, odd.field, Severity.WARNING))
    return out
