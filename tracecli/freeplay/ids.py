"""Deterministic UUID v4-form ids for Freeplay, so a re-run never records anything twice.

Freeplay takes client-chosen ids (session, trace, completion) and wants UUID v4 for them;
its behaviour on a repeated `completion_id` is unknown, so tracecli never lets one record get
two ids: the id is a hash of what identifies the record, with the version and variant bits
set as in a random v4 UUID. The same input always gives the same id (retry, resume, a second
`convert`), and different inputs collide only as often as random UUIDs would.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any

import orjson

_V4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def uuid4_from(*parts: str) -> str:
    """A UUID v4-form id derived from `parts` (SHA-256, version and variant bits forced)."""
    digest = bytearray(hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x40  # version 4
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return str(uuid.UUID(bytes=bytes(digest)))


def as_uuid4(value: str, namespace: str = "weave") -> str:
    """`value` itself when it is a UUID v4 already (so ids stay recognisable across tools),
    else an id derived from it. Weave ids are often UUID v7 or OpenTelemetry hex ids."""
    low = value.lower()
    if _V4.match(low):
        return low
    return uuid4_from(namespace, value)


def completion_id_for(record: dict[str, Any], project_id: str) -> str:
    """The id of a completion record that names none: a hash of the record as written (its
    canonical JSON) and the project it goes to. Two byte-identical records in one session
    are the same completion, sent once."""
    rest = {k: v for k, v in record.items() if k not in ("completion_id", "project_id")}
    try:
        canonical = orjson.dumps(rest, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except orjson.JSONEncodeError:  # a wide integer, NaN: Python's json, exactly
        canonical = json.dumps(rest, sort_keys=True, separators=(",", ":"))
    return uuid4_from("completion", project_id.lower(), canonical)
