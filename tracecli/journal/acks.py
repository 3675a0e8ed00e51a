"""`AckSet`: a compact set of line numbers (a bitmap stored in blocks): the journal's
acknowledged lines of a file, read by the runs to skip what an earlier run stored."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

BLOCK_LINES = 1 << 13  # lines per stored bitmap block (1 KiB: an ack rewrites little)


class AckSet:
    """A compact set of line numbers (a growable bitmap): `line in acks`, `len(acks)`."""

    __slots__ = ("_bits", "_count")

    def __init__(self) -> None:
        self._bits = bytearray()
        self._count = 0

    def __contains__(self, line: object) -> bool:
        if not isinstance(line, int) or line < 0:
            return False
        i = line >> 3
        return i < len(self._bits) and bool(self._bits[i] & (1 << (line & 7)))

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[int]:
        for i, byte in enumerate(self._bits):
            if byte:
                for bit in range(8):
                    if byte & (1 << bit):
                        yield (i << 3) | bit

    def __repr__(self) -> str:
        return f"AckSet({self._count} lines)"

    def add(self, lines: Iterable[int]) -> set[int]:
        """Add lines; return the blocks whose bits changed."""
        touched: set[int] = set()
        bits = self._bits
        for line in lines:
            if line < 0:
                raise ValueError(f"line numbers are non-negative, got {line}")
            i, mask = line >> 3, 1 << (line & 7)
            if i >= len(bits):
                bits.extend(bytes(max(i + 1 - len(bits), len(bits) // 2)))
            if not bits[i] & mask:
                bits[i] |= mask
                self._count += 1
                touched.add(line // BLOCK_LINES)
        return touched

    def count_upto(self, line: int) -> int:
        """How many of the lines 0..`line` are in the set (C-speed on the bitmap)."""
        if line < 0:
            return 0
        full, rest = divmod(line + 1, 8)
        n = int.from_bytes(self._bits[:full], "little").bit_count()
        if rest and full < len(self._bits):
            n += (self._bits[full] & ((1 << rest) - 1)).bit_count()
        return n

    def block(self, n: int) -> bytes:
        size = BLOCK_LINES // 8
        return bytes(self._bits[n * size : (n + 1) * size]).rstrip(b"\0")

    def load_block(self, n: int, data: bytes) -> None:
        size = BLOCK_LINES // 8
        start = n * size
        if len(self._bits) < start + len(data):
            self._bits.extend(bytes(start + len(data) - len(self._bits)))
        old = int.from_bytes(self._bits[start : start + len(data)], "little").bit_count()
        self._bits[start : start + len(data)] = data
        self._count += int.from_bytes(data, "little").bit_count() - old
