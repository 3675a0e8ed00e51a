"""Protobuf's wire format, written by hand: varints, tags, length-delimited fields, and a
`Writer` that appends one message's fields from a JSON object (read as protobuf's JSON
parser reads it, see tracecli.wire.otlp_values). The OTLP messages are in
tracecli.wire.otlp_proto; this is only what any message is made of.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from tracecli.wire.otlp_values import (
    UINT32,
    UINT64,
    EncodeError,
    enum_number,
    hex_bytes_of,
    json_get,
    json_int,
    json_list,
    json_object,
    under,
    utf8,
)

# wire types
VARINT, I64, LEN, I32 = 0, 1, 2, 5
PACK_D = struct.Struct("<d").pack
PACK_Q = struct.Struct("<Q").pack
PACK_I = struct.Struct("<I").pack


_BYTE = tuple(bytes((n,)) for n in range(0x80))


def varint(n: int) -> bytes:
    """An unsigned varint; a negative int32/int64 as its 64-bit two's complement (10 bytes)."""
    if 0 <= n < 0x80:
        return _BYTE[n]
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_TAGS: dict[tuple[int, int], bytes] = {}


def tag(number: int, wire: int) -> bytes:
    """A field's key (number and wire type), made once per field."""
    key = (number, wire)
    made = _TAGS.get(key)
    if made is None:
        made = _TAGS[key] = varint(number << 3 | wire)
    return made


_LEN_TAGS = tuple(varint(number << 3 | LEN) for number in range(17))  # fields 0..16


def field_len(number: int, payload: bytes) -> bytes:
    """A length-delimited field (a string, bytes or a message) of number 0..16."""
    n = len(payload)
    return _LEN_TAGS[number] + (_BYTE[n] if n < 0x80 else varint(n)) + payload


Encoder = Callable[[Any], bytes]


class Writer:
    """One message's fields, appended in field-number order by the caller; errors name the
    field relative to the message."""

    __slots__ = ("obj", "out")

    def __init__(self, obj: Any) -> None:
        self.obj = json_object(obj, "")
        self.out: list[bytes] = []

    def string(self, number: int, camel: str, snake: str) -> None:
        value = json_get(self.obj, camel, snake)
        if value is not None and value != "":
            self.out.append(field_len(number, utf8(value, camel)))

    def strings(self, number: int, camel: str, snake: str) -> None:
        for i, value in enumerate(json_list(json_get(self.obj, camel, snake), camel)):
            self.out.append(field_len(number, utf8(value, f"{camel}[{i}]")))

    def hex_bytes(self, number: int, camel: str, snake: str) -> None:
        value = json_get(self.obj, camel, snake)
        if value is not None and value != "":
            self.out.append(field_len(number, hex_bytes_of(value, camel)))

    def uint(self, number: int, camel: str, snake: str, bounds: tuple[int, int]) -> None:
        value = json_get(self.obj, camel, snake)
        if value is not None:
            n = json_int(value, camel, bounds)
            if n:
                self.out.append(tag(number, VARINT) + varint(n))

    def enum(self, number: int, camel: str, names: tuple[str, ...], prefix: str) -> None:
        value = self.obj.get(camel)
        if value is not None:
            n = enum_number(value, camel, names, prefix)
            if n:
                self.out.append(tag(number, VARINT) + varint(n))

    def fixed64(self, number: int, camel: str, snake: str) -> None:
        value = json_get(self.obj, camel, snake)
        if value is not None:
            n = json_int(value, camel, UINT64)
            if n:
                self.out.append(tag(number, I64) + PACK_Q(n))

    def fixed32(self, number: int, camel: str, snake: str) -> None:
        value = json_get(self.obj, camel, snake)
        if value is not None:
            n = json_int(value, camel, UINT32)
            if n:
                self.out.append(tag(number, I32) + PACK_I(n))

    def message(self, number: int, camel: str, snake: str, encode: Encoder) -> None:
        """A message field: written when present, even empty (it has presence)."""
        value = json_get(self.obj, camel, snake)
        if value is not None:
            try:
                self.out.append(field_len(number, encode(value)))
            except EncodeError as exc:
                raise under(camel, exc) from None

    def messages(self, number: int, camel: str, snake: str, encode: Encoder) -> None:
        append = self.out.append
        for i, value in enumerate(json_list(json_get(self.obj, camel, snake), camel)):
            try:
                if value is None:
                    raise EncodeError("", "null in a list of messages")
                append(field_len(number, encode(value)))
            except EncodeError as exc:
                raise under(f"{camel}[{i}]", exc) from None

    def bytes(self) -> bytes:
        return b"".join(self.out)
