"""What an upload block's loop needs to read its lines with the typed decoder first.

upload checks each record before it encodes it. The fast path (`fastpath.fast_body`)
walks the orjson value in Python; validate reads most lines with msgspec's typed
`Struct`s instead (`schema.typed`: the checks in C, free-form fields skipped), and
`blocks.prepare_lines` does the same for the checking part: a line the typed decoder
vouches for has the facts `fast_body` would find in its orjson value, in the shape its
decoder reads, so orjson decodes it only to encode its body (the bytes sent stay orjson's
re-encoding of the values as read, exactly as before). A line it does not vouch for goes
the way it always went (`lines.decoded`, the fast path, the full check).

Beyond validate's byte checks (`typed_lines`), a line is kept off the typed path wherever
`lines.decoded` would not hand its value to the fast path as read: a line that may hold a
wide integer (orjson reads it as a float; the exact reader's value is sent) and a line
with brackets enough to nest deep (its depth is measured on the value).
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from tracecli.inputs.streams import BOM
from tracecli.schema.typed import SHAPES
from tracecli.upload.typed_lines import BlockBytes, block_bytes

__all__ = ["DECODER_SHAPES", "TypedBlock", "typed_block"]

# a decoder -> its shape, as `parse_record` names them (and `fast_body` returns them)
DECODER_SHAPES: Final[dict[Any, str]] = {decode: shape for shape, decode in SHAPES.items()}
# a superset of `wideints.may_hold_wide_ints`'s runs (20 digits, or 19 after a "-"), in
# the block as `block_bytes` translates it (its digits read "0" there too): one search
_RUN = b"0" * 19


class TypedBlock(NamedTuple):
    """One search of a block, for its loop (see `typed_lines.line_clear`)."""

    seen: BlockBytes
    clear: bool  # no line needs `line_clear`
    wide: bool  # some line may hold a wide integer: each asks `may_hold_wide_ints`
    at: int  # where the block's first line starts in it (after a BOM)


def typed_block(data: bytes, at_start: bool) -> TypedBlock:
    """Search a block (of whole lines) once for what keeps its lines off the typed path."""
    seen = block_bytes(data)
    t = seen.translated
    wide = t.find(_RUN) >= 0
    clear = not (seen.refs or seen.text or seen.numbers)
    return TypedBlock(seen, clear, wide, 3 if at_start and data.startswith(BOM) else 0)
