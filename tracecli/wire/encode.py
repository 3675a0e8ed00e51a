"""Wire bytes for the Weave write routes, built by joining bytes encoded once per record.

Upload is bound by the client's CPU, and most of it would go to encoding: each record is
encoded with orjson exactly once, right after it is validated, and every body after that
(an upsert_batch item, a completed call, a whole request) is made by joining those bytes.
A completed call is its start's bytes with the end's fields appended: the object's closing
brace is cut and the end's fields follow, which is what `{**start, **end_fields}` would
encode to, without decoding or encoding either again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import orjson

from tracecli.config.fields import MAX_CHUNK_BYTES
from tracecli.schema.fields import END_FIELDS
from tracecli.wire.wideints import NonFinite, exact_loads, may_hold_wide_ints, null_non_finite

END_KEYS = frozenset(END_FIELDS)
MiB = 1024 * 1024
SERVER_MAX_BYTES = MAX_CHUNK_BYTES  # what the Weave server (and its SDK) accept in one request

_dumps = orjson.dumps


class EncodeError(ValueError):
    """A record holds a value JSON cannot carry (a YAML binary or set)."""


def dumps(value: Any) -> bytes:
    """A call body as sent. orjson first (the common case, fast); what it cannot write
    (an integer beyond 64 bits, a value nested past 254 levels, a lone surrogate, a
    `NonFinite`) is written by Python's json, as weave's own server would read it back:
    integers with their own digits, `NonFinite` numbers as null (what that server stores)."""
    try:
        return _dumps(value)
    except orjson.JSONEncodeError:
        return _dumps_slow(value)


def _null(value: Any) -> None:
    if type(value) is NonFinite:
        return None
    raise TypeError


def _dumps_slow(value: Any) -> bytes:
    try:
        return _dumps(value, default=_null)
    except orjson.JSONEncodeError:
        pass
    try:
        text = json.dumps(
            null_non_finite(value), separators=(",", ":"), allow_nan=False, ensure_ascii=True
        )
    except (TypeError, ValueError, RecursionError) as exc:
        raise EncodeError(f"cannot be sent as JSON: {exc}") from None
    return text.encode("ascii")


def loads(data: bytes) -> Any:
    """Bytes made by `dumps`, read back exactly (wide integers, lone surrogates included)."""
    if may_hold_wide_ints(data):
        return exact_loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return exact_loads(data)


# What weave's server computes into `summary.weave` when a call is read (a
# `/calls/stream_query` answer holds them): stored, they are only overridden on reading,
# cost storage, and a stored `costs` can break the read (a 500). A dumped project is sent
# back without them, so that the server stores what it stored the first time.
COMPUTED_SUMMARY_KEYS = frozenset(
    {"status", "trace_name", "latency_ms", "display_name", "costs", "feedback"}
)


def without_computed(summary: dict[str, Any]) -> dict[str, Any]:
    """`summary` without the keys of `summary.weave` the server computes (a new dict)."""
    weave = summary.get("weave")
    if type(weave) is not dict:
        return summary
    rest = {k: v for k, v in weave.items() if k not in COMPUTED_SUMMARY_KEYS}
    out = {k: v for k, v in summary.items() if k != "weave"}
    if rest:
        out["weave"] = rest
    return out


def split_end(data: dict[str, Any]) -> tuple[bytes, bytes]:
    """An end body as (its other fields, its END_FIELDS), each an encoded object.

    The second part is what an end adds to its start to make a completed call; the two
    joined (`join_objects`) are the whole end, for the upsert_batch and /call/end routes.
    """
    keys = list(data)
    if keys[:2] == ["project_id", "id"] and END_KEYS.issuperset(keys[2:]):
        # The usual order (project_id, id, then the end's fields): encode once and cut.
        pid, cid = data["project_id"], data["id"]
        whole = dumps(data)
        if type(pid) is str and type(cid) is str:
            cut = cut_end(whole, pid, cid)
            if cut is not None:
                return cut
        head = dumps({"project_id": pid, "id": cid})
        if whole.startswith(head[:-1]):  # not so when Python's json wrote `whole`
            return head, b"{" + whole[len(head) :] if len(whole) > len(head) else b"{}"
    rest: dict[str, Any] = {}
    tail: dict[str, Any] = {}
    for k, v in data.items():
        if k in END_KEYS:
            tail[k] = v
        else:
            rest[k] = v
    return dumps(rest), dumps(tail)


def cut_end(whole: bytes, pid: str, cid: str) -> tuple[bytes, bytes] | None:
    """An end body encoded whole with project_id `pid` and id `cid` first, then only its
    END_FIELDS, cut as `split_end` splits it; None when its head is not as written.

    The head as written when neither string needs an escape. `whole` starts with it only
    then: the first character that needs one (or any text of Python's json, which escapes
    all but ASCII) makes the two differ inside that string."""
    open_ = f'{{"project_id":"{pid}","id":"{cid}"'.encode("utf-8", "surrogatepass")
    if not whole.startswith(open_):
        return None
    n = len(open_)
    return open_ + b"}", b"{" + whole[n + 1 :] if len(whole) > n + 1 else b"{}"


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
    merged = loads(start)
    merged.update(loads(end_tail))
    return dumps(merged)


def split_complete(body: bytes) -> tuple[bytes, bytes, bytes]:
    """A completed call as (start body, end's other fields, end's END_FIELDS), for the routes
    that take halves (upsert_batch, /call/start + /call/end)."""
    data = loads(body)
    start = {k: v for k, v in data.items() if k not in END_KEYS}
    end_rest = {"project_id": data.get("project_id"), "id": data.get("id")}
    end_tail = {k: data[k] for k in END_FIELDS if k in data}
    return dumps(start), dumps(end_rest), dumps(end_tail)


def batch_start(start: bytes) -> bytes:
    return b'{"mode":"start","req":{"start":' + start + b"}}"


def batch_end(end: bytes) -> bytes:
    return b'{"mode":"end","req":{"end":' + end + b"}}"


def single_start(start: bytes) -> bytes:
    return b'{"start":' + start + b"}"


def single_end(end: bytes) -> bytes:
    return b'{"end":' + end + b"}"


_BATCH_OPEN, _BATCH_CLOSE = b'{"batch":[', b"]}"


def batch_body(items: Iterable[bytes]) -> bytes:
    """The body of calls/complete and call/upsert_batch: `{"batch": [items]}`.

    One copy of the items (a request's ~1 MB): the opening joined to the first item and
    the closing to the last, then one `join`; `open + join + close` copied the joined
    items twice more, in a sender thread that holds the reading process's lock."""
    parts = items if isinstance(items, list) else list(items)
    if len(parts) < 2:
        return _BATCH_OPEN + b"".join(parts) + _BATCH_CLOSE
    return b",".join([_BATCH_OPEN + parts[0], *parts[1:-1], parts[-1] + _BATCH_CLOSE])


BATCH_OVERHEAD = len(b'{"batch":[]}')


def complete_route(project_id: str) -> str:
    """`/v2/{entity}/{project}/calls/complete`, each part quoted for the URL path."""
    entity, _, project = project_id.partition("/")
    return f"/v2/{quote(entity, safe='')}/{quote(project, safe='')}/calls/complete"


UPSERT_BATCH = "/call/upsert_batch"
CALL_START = "/call/start"
CALL_END = "/call/end"
