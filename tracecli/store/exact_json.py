"""JSON as weave's server reads and writes it: integers of any size exact, a lone surrogate
escape kept, NaN and Infinity read as null; orjson first, since every body and row goes
through here, and Python's json only for what orjson cannot do."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

# Integers orjson reads exactly have at most 19 digits (2**63); a run of 19 digits is looked
# for at C speed (digits mapped to "0", then one find), as every body and row is searched.
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= i <= 0x39 else i for i in range(256))
_RUN = b"0" * 19


def may_hold_wide_ints(data: bytes | str) -> bool:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    return raw.translate(_DIGITS_AS_ZERO).find(_RUN) >= 0


def _finite_or_none(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


class TooDeep(ValueError):
    """JSON nested deeper than Python's json can read (weave's server: a 400)."""


def loads_exact(data: bytes | str) -> Any:
    """JSON as weave's server reads it: integers of any size exact (orjson reads those beyond
    64 bits as floats), a lone surrogate escape kept, and NaN, Infinity or 1e400 read as null
    (what weave's server answers for them). orjson first: this runs on every body and row."""
    if not may_hold_wide_ints(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(data, parse_constant=lambda _: None, parse_float=_finite_or_none)
    except RecursionError:
        raise TooDeep("JSON nested too deeply to read") from None


def dumps_exact(value: Any) -> bytes:
    """JSON bytes of what loads_exact read: orjson, or Python's json for what orjson refuses
    (integers beyond 64 bits, lone surrogates, nesting beyond orjson's 254 levels)."""
    try:
        return orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        try:
            return text.encode()
        except UnicodeEncodeError:  # a lone surrogate: keep it as its escape in a value,
            value = _keys_without_surrogates(value)  # and read a key as weave's server does
            return json.dumps(value, separators=(",", ":")).encode()


def _weave_key(key: str) -> str:
    # its UTF-8 bytes read back with errors replaced: one U+FFFD per byte of a surrogate
    return key.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _keys_without_surrogates(value: Any) -> Any:
    """Lone surrogates in object keys replaced by U+FFFDs, which is how weave's server answers
    such a key (it keeps a value's, and then cannot answer for the project; serve keeps the
    value's as its escape). Runs only on the rare rows Python's json had to write."""
    if isinstance(value, dict):
        return {
            _weave_key(k) if isinstance(k, str) else k: _keys_without_surrogates(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_keys_without_surrogates(v) for v in value]
    return value
