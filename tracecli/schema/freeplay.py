"""Freeplay completion request models (placeholder: the Freeplay issue fills this in).

Importing this module registers `check_completion` with `tracecli.records`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tracecli import records


def check_completion(value: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    if not isinstance(value.get("messages"), list) or not value.get("messages"):
        yield ("messages", "freeplay.messages", "must be a non-empty list of messages")
    if not isinstance(value.get("session_id"), str):
        yield ("session_id", "schema.missing", "required field is missing")


records.set_freeplay_check(check_completion)
