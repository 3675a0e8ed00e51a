"""OTLP/JSON values read as protobuf's JSON parser reads them, for the protobuf encoder
(tracecli.wire.otlp_proto): each reader raises `EncodeError` naming the field.

These are the encoder's own readers, not tracecli.otel's (a higher layer, whose readers
build Python values for the mapping): here a value only needs to become its wire form.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any

_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_HEX = re.compile(r"[0-9a-fA-F]*")
_FLOAT_WORDS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
UINT32 = (0, 2**32 - 1)
UINT64 = (0, 2**64 - 1)


class EncodeError(ValueError):
    """A field that cannot be written as protobuf: `field` is its path in the request."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


# -- JSON scalars, read as protobuf's JSON parser reads them -----------------------------
def json_get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def json_int(value: Any, field: str, bounds: tuple[int, int]) -> int:
    if isinstance(value, bool):
        raise EncodeError(field, f"expected an integer, got {value!r}")
    if isinstance(value, int):
        n = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and _INT_TEXT.fullmatch(value)
    ):
        n = int(value)
    else:
        raise EncodeError(field, f"expected an integer, got {show(value)}")
    if not bounds[0] <= n <= bounds[1]:
        raise EncodeError(field, f"integer {n} out of range ({bounds[0]}..{bounds[1]})")
    return n


def json_double(value: Any, field: str) -> float:
    if isinstance(value, bool):
        raise EncodeError(field, f"expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        if value in _FLOAT_WORDS:
            return _FLOAT_WORDS[value]
        try:
            return float(value)
        except ValueError:
            pass
    raise EncodeError(field, f'expected a number (or "NaN", "Infinity"), got {show(value)}')


def utf8(value: Any, field: str) -> bytes:
    if not isinstance(value, str):
        raise EncodeError(field, f"expected a string, got {show(value)}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise EncodeError(field, "not valid UTF-8 text (a lone surrogate)") from None


def hex_bytes_of(value: Any, field: str) -> bytes:
    if not isinstance(value, str) or not _HEX.fullmatch(value) or len(value) % 2:
        raise EncodeError(field, f"expected hex digits, got {show(value)}")
    return bytes.fromhex(value)


def b64_bytes(value: Any, field: str) -> bytes:
    if not isinstance(value, str):
        raise EncodeError(field, f"expected base64 text, got {show(value)}")
    padded = value + "=" * (-len(value) % 4)
    try:
        return base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError):
        raise EncodeError(field, f"not base64: {show(value)}") from None


def enum_number(value: Any, field: str, names: tuple[str, ...], prefix: str) -> int:
    if isinstance(value, str) and value.startswith(prefix) and value[len(prefix) :] in names:
        return names.index(value[len(prefix) :])
    return json_int(value, field, INT32)


def show(value: Any, limit: int = 40) -> str:
    """A short, safe rendering of a bad value for a one-line message (never markup)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- the parts of a message ------------------------------------------------------------
def json_object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EncodeError(field, f"expected an object, got {show(value)}")
    return value


def json_list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise EncodeError(field, f"expected a list, got {show(value)}")
    return value


def under(prefix: str, exc: EncodeError) -> EncodeError:
    """A part's error, its field path put under `prefix` (paths are built only on error:
    a path per value would cost more than writing the value)."""
    if not exc.field:
        return EncodeError(prefix, exc.message)
    if not prefix:
        return exc
    sep = "" if exc.field.startswith("[") else "."
    return EncodeError(f"{prefix}{sep}{exc.field}", exc.message)
