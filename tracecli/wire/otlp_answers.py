"""The answers of an OTLP/HTTP receiver to a protobuf request, read without a protobuf
library: an ExportTraceServiceResponse (its partial success) or, for a failure, a
google.rpc.Status (its message)."""

from __future__ import annotations

from typing import Any, NamedTuple

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def _fields(raw: bytes) -> dict[int, list[int | bytes]]:
    """A message's fields (number → values): varints as ints, length-delimited as bytes,
    fixed ones as ints. Raises ValueError on bytes that are not a message."""
    out: dict[int, list[int | bytes]] = {}
    i, n = 0, len(raw)

    def read_varint() -> int:
        nonlocal i
        shift = result = 0
        while True:
            if i >= n or shift > 63:
                raise ValueError("truncated varint")
            b = raw[i]
            i += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    while i < n:
        key = read_varint()
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == _VARINT:
            value = read_varint()
        elif wire == _LEN:
            size = read_varint()
            if i + size > n:
                raise ValueError("truncated field")
            value, i = raw[i : i + size], i + size
        elif wire in (_I64, _I32):
            size = 8 if wire == _I64 else 4
            if i + size > n:
                raise ValueError("truncated field")
            value, i = int.from_bytes(raw[i : i + size], "little"), i + size
        else:
            raise ValueError(f"wire type {wire} not supported")
        out.setdefault(number, []).append(value)
    return out


class PartialSuccess(NamedTuple):
    rejected_spans: int
    error_message: str


def _last(fields: dict[int, list[int | bytes]], number: int, kind: type) -> Any:
    values = [v for v in fields.get(number, []) if isinstance(v, kind)]
    return values[-1] if values else None


def read_response(raw: bytes) -> PartialSuccess | None:
    """An ExportTraceServiceResponse's partial_success (None: not such a message)."""
    try:
        partial = _last(_fields(raw), 1, bytes)
        fields = _fields(partial) if partial is not None else {}
    except ValueError:
        return None
    rejected = _last(fields, 1, int) or 0
    if rejected >= 1 << 63:
        rejected -= 1 << 64  # int64
    message = _last(fields, 2, bytes) or b""
    return PartialSuccess(rejected, message.decode("utf-8", "replace"))


def read_status_message(raw: bytes) -> str | None:
    """The message of a google.rpc.Status (what an OTLP/HTTP server answers a failed
    protobuf request with); None when the bytes are not one."""
    try:
        message = _last(_fields(raw), 2, bytes)
    except ValueError:
        return None
    return None if message is None else message.decode("utf-8", "replace")
