"""Wire bytes for the Weave write routes, built by joining bytes encoded once per record.

Upload is bound by the client's CPU, and most of it would go to encoding: each record is
encoded with orjson exactly once, right after it is validated, and every body after that
(an upsert_batch item, a completed call, a whole request) is made by joining those bytes.
A completed call is its start's bytes with the end's fields appended: the object's closing
brace is cut and the end's fields follow, which is what `{**start, **end_fields}` would
encode to, without decoding or encoding either again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import orjson

from tracecli.schema.weave import END_FIELDS

END_KEYS = frozenset(END_FIELDS)
MiB = 1024 * 1024
SERVER_MAX_BYTES = 32 * MiB  # what the Weave server (and its SDK) accept in one request

_dumps = orjson.dumps


class EncodeError(ValueError):
    """A record holds a value JSON cannot carry (a YAML binary or set, a huge integer)."""


def dumps(value: Any) -> bytes:
    try:
        return _dumps(value)
    except orjson.JSONEncodeError as exc:
        raise EncodeError(f"cannot be sent as JSON: {exc}") from None


def split_end(data: dict[str, Any]) -> tuple[bytes, bytes]:
    """An end body as (its other fields, its END_FIELDS), each an encoded object.

    The second part is what an end adds to its start to make a completed call; the two
    joined (`join_objects`) are the whole end, for the upsert_batch and /call/end routes.
    """
    keys = list(data)
    if keys[:2] == ["project_id", "id"] and END_KEYS.issuperset(keys[2:]):
        # The usual order (project_id, id, then the end's fields): encode once and cut.
        head = dumps({"project_id": data["project_id"], "id": data["id"]})
        whole = dumps(data)
        return head, b"{" + whole[len(head) :] if len(whole) > len(head) else b"{}"
    rest: dict[str, Any] = {}
    tail: dict[str, Any] = {}
    for k, v in data.items():
        if k in END_KEYS:
            tail[k] = v
        else:
            rest[k] = v
    return dumps(rest), dumps(tail)


def join_objects(a: bytes, b: bytes) -> bytes:
    """`{...a}` and `{...b}` → `{...a, ...b}` (neither may repeat a key of the other)."""
    if len(b) <= 2:
        return a
    if len(a) <= 2:
        return b
    return a[:-1] + b"," + b[1:]


def complete_from(start: bytes, start_clash: bool, end_tail: bytes) -> bytes:
    """A CompletedCallSchemaForInsert from a start body and an end's END_FIELDS.

    `start_clash` says the start itself carries an end field (an unknown key there); then
    the slow path merges dicts so the end's value wins exactly as `{**start, **end}` does.
    """
    if not start_clash:
        return join_objects(start, end_tail)
    merged = orjson.loads(start)
    merged.update(orjson.loads(end_tail))
    return _dumps(merged)


def split_complete(body: bytes) -> tuple[bytes, bytes, bytes]:
    """A completed call as (start body, end's other fields, end's END_FIELDS), for the routes
    that take halves (upsert_batch, /call/start + /call/end)."""
    data = orjson.loads(body)
    start = {k: v for k, v in data.items() if k not in END_KEYS}
    end_rest = {"project_id": data.get("project_id"), "id": data.get("id")}
    end_tail = {k: data[k] for k in END_FIELDS if k in data}
    return _dumps(start), _dumps(end_rest), _dumps(end_tail)


def batch_start(start: bytes) -> bytes:
    return b'{"mode":"start","req":{"start":' + start + b"}}"


def batch_end(end: bytes) -> bytes:
    return b'{"mode":"end","req":{"end":' + end + b"}}"


def single_start(start: bytes) -> bytes:
    return b'{"start":' + start + b"}"


def single_end(end: bytes) -> bytes:
    return b'{"end":' + end + b"}"


def batch_body(items: Iterable[bytes]) -> bytes:
    """The body of calls/complete and call/upsert_batch: `{"batch": [items]}`."""
    return b'{"batch":[' + b",".join(items) + b"]}"


BATCH_OVERHEAD = len(b'{"batch":[]}')


def complete_route(project_id: str) -> str:
    """`/v2/{entity}/{project}/calls/complete`, each part quoted for the URL path."""
    entity, _, project = project_id.partition("/")
    return f"/v2/{quote(entity, safe='')}/{quote(project, safe='')}/calls/complete"


UPSERT_BATCH = "/call/upsert_batch"
CALL_START = "/call/start"
CALL_END = "/call/end"
