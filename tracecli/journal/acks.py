"""`AckSet`: a compact set of line numbers (a bitmap stored in blocks): the journal's
acknowledged lines of a file, read by the runs to skip what an earlier run stored."""

from __future__ import annotations

from tracecli.packing import Bitmap

BLOCK_LINES = 1 << 13  # lines per stored bitmap block (1 KiB: an ack rewrites little)


class AckSet(Bitmap):
    """A compact set of line numbers (a growable bitmap): `line in acks`, `len(acks)`;
    stored by the journal in blocks of `BLOCK_LINES` (`block`, `load_block`)."""

    __slots__ = ()

    block_bits = BLOCK_LINES

    def __repr__(self) -> str:
        return f"AckSet({len(self)} lines)"
