"""What an upload block's loop needs to read its lines with the typed decoder first.

upload checks each record before it encodes it. The fast path (`fastpath.fast_body`)
walks the orjson value in Python; validate reads most lines with msgspec's typed
`Struct`s instead (`schema.typed`: the checks in C, free-form fields skipped), and
`blocks.prepare_lines` does the same for the checking part: a line the typed decoder
vouches for has the facts `fast_body` would find in its orjson value, in the shape its
decoder reads, so orjson decodes it only to encode its body (the bytes sent stay orjson's
re-encoding of the values as read, exactly as before). A line it does not vouch for goes
the way it always went (`lines.decoded`, the fast path, the full check).

Where msgspec and orjson read a line differently (see `schema.typed`), upload needs fewer
searches than validate (`typed_lines.block_bytes`), because orjson reads every line it
sends: a number beyond a double or bytes that are not UTF-8 inside a free-form field
(skipped by msgspec) make orjson refuse the line, which then goes the old way. What is
left to look for: an integer beyond 64 bits (msgspec reads it exactly, orjson as a float:
the line goes the old way, which reads it exactly), a string that may be a reference (the
fast path does not look inside values: `lines.plain_refs`), and brackets enough to nest
deep (the depth is measured on the value).
"""

from __future__ import annotations

import re
from typing import Any, Final, NamedTuple

from tracecli.schema.typed import SHAPES
from tracecli.upload.lines import REF_START, escaped_letter

__all__ = ["DECODER_SHAPES", "OPENER", "TypedBlock", "call_body", "typed_block"]

# a decoder -> its shape, as `parse_record` names them (and `fast_body` returns them)
DECODER_SHAPES: Final[dict[Any, str]] = {decode: shape for shape, decode in SHAPES.items()}


# digits read "0" (`wideints.may_hold_wide_ints`' table) and "[" reads "{": one translate
# of the block serves the wide-integer search and a line's count of openers (one count of
# "{" in its range, not a count of each bracket in the line: ~1.1k instructions a record)
_BLOCK_TABLE = bytes(0x30 if 0x30 <= i <= 0x39 else 0x7B if i == 0x5B else i for i in range(256))
_RUN, _NEG_RUN = b"0" * 20, b"-" + b"0" * 19  # as `may_hold_wide_ints` searches
OPENER = b"{"  # "[" and "{" in the translated block
_bare_weave = re.compile(REF_START[1:]).search


class TypedBlock(NamedTuple):
    """One search of a block, for its loop."""

    refs: bool  # some line may hold a reference: each asks `plain_refs`
    wide: bool  # some line may hold a wide integer: each asks `may_hold_wide_ints`
    translated: bytes  # the block through _BLOCK_TABLE: count OPENER in a line's range


def typed_block(data: bytes) -> TypedBlock:
    """Search a block (of whole lines) once for what keeps its lines off the typed path.
    `refs` as `lines.block_may_ref` would answer it for each line (a line holds a `"weave`
    only where the block does; `plain_refs` counts only quoted ones); `wide` as
    `may_hold_wide_ints(data)` answers (its table, with "[" as "{" besides)."""
    # `weave` looked for first without its quote, by `re` (a tight loop over the bytes for
    # the first one, a rare "w"), the quoted form only from there, as `typed_lines.block_bytes`
    # does: a `find` of `"weave` (a two-way search) branches at nearly every byte
    bare = _bare_weave(data)
    refs = (bare is not None and data.find(REF_START, max(bare.start() - 1, 0)) >= 0) or (
        escaped_letter(data) is not None
    )
    t = data.translate(_BLOCK_TABLE)
    return TypedBlock(refs, t.find(_RUN) >= 0 or t.find(_NEG_RUN) >= 0, t)


def call_body(value: dict[str, Any], shape: str) -> dict[str, Any]:
    """The call body of a record of `shape` the typed decoder vouched for, as orjson read
    it (a flat record's "type" taken out: the value is the caller's, see `blocks.prepare`)."""
    if shape == "flat":
        del value["type"]
        return value
    if shape == "complete":
        return value
    if shape == "batch":
        body: dict[str, Any] = value["req"][value["mode"]]
        return body
    return value["start"] if "start" in value else value["end"]  # type: ignore[no-any-return]
