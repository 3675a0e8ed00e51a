"""A Weave call's time without a zone, said as it matters for Freeplay.

`validate` warns of such a time (`time-no-zone`) for weave's sake: weave's server stores it
as written, but may then fail to read the project back. Converted for Freeplay, the time is
read as UTC (as `tracecli serve` reads it) and sent with its offset, which Freeplay stores
without a word: the warning says that instead, with the time Freeplay gets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from tracecli.diagnostics import Diagnostic
from tracecli.freeplay.convert import iso_time
from tracecli.schema.freeplay import NO_ZONE


def for_freeplay(d: Diagnostic, call: Mapping[str, Any]) -> Diagnostic:
    """`d` for a Weave record converted for Freeplay: its `time-no-zone` warning (field
    `started_at`/`ended_at`, maybe under a shape's prefix) says how the time is read."""
    if d.code != NO_ZONE:
        return d
    value = call.get(d.field.rpartition(".")[2])
    sent = iso_time(value)
    if not isinstance(value, str) or sent is None:
        return d
    return dataclasses.replace(
        d,
        message=(
            f"{value!r} has no time zone: read as UTC for Freeplay ({sent}); write it with "
            "a 'Z' (or its offset) to say so"
        ),
    )
