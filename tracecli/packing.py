"""Compact forms of records held by the thousand or sent between processes.

Queued chunks, open halves waiting for their other half, where every call was first read,
a file's acknowledged lines: as Python objects (a few small ones per record) they would
cost several times their size and pin memory pools that the reading loop's short-lived
objects then fragment; sent from a worker as tuples, pickling them would cost more than
the work. Each such place declares its layout here, once:

- `BitFields`: named unsigned integer fields in one int (an `array("Q")` slot);
- `RecordCodec`: integers and byte strings in one bytes object;
- `join_column` / `split_column`: a column of strings as one string;
- `Bitmap`: a set of small non-negative integers (line numbers) as bits, in blocks.

`BitFields` and `RecordCodec` write their `pack` and `unpack` once, when declared (as
`collections.namedtuple` does), from the declared numbers alone: they run once per record,
where a loop over the fields would cost three times the packing itself.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple


def _compile(src: str, env: dict[str, Any]) -> Callable[..., Any]:
    """The function `f` defined by `src`, written here from integers and generated names
    only (no declared name or value enters the source)."""
    exec(src, env)
    f: Callable[..., Any] = env["f"]
    return f


class BitField(NamedTuple):
    """One field of a `BitFields`: its value is `(packed >> shift) & mask`."""

    name: str
    shift: int
    width: int
    mask: int
    names: tuple[str, ...] | None  # the strings it holds (stored as their index), or None

    def get(self, packed: int) -> int:
        return (packed >> self.shift) & self.mask


class BitFields:
    """Named fields in one unsigned integer, the first in the lowest bits.

    `BitFields(kind=("start", "end"), line=40, src=20)`: a field is a width in bits, or
    the tuple of strings it holds (stored as their index, in as few bits as they need).
    The widths must fit in `bits` (64 for an `array("Q")` slot, 63 for a signed "q").
    `pack("end", 7, 2)` takes the values in the declared order and checks each against
    its field (a value too big would spill silently into its neighbour); `unpack` gives
    them back, strings for a tuple field (`packer` and `unpacker` take them in another
    order). A loop that packs millions may use a field's `shift` and `mask` directly,
    its values' bounds checked once before the loop.
    """

    __slots__ = ("bits", "fields", "pack", "unpack")

    def __init__(self, bits: int = 64, **widths: int | tuple[str, ...]) -> None:
        fields: list[BitField] = []
        shift = 0
        for name, w in widths.items():
            names = w if isinstance(w, tuple) else None
            width = w if isinstance(w, int) else max(1, (len(w) - 1).bit_length())
            if width < 1:
                raise ValueError(f"bit field {name}: width {width} is not positive")
            fields.append(BitField(name, shift, width, (1 << width) - 1, names))
            shift += width
        if shift > bits:
            raise ValueError(f"bit fields take {shift} bits, more than {bits}")
        self.bits = bits
        self.fields = {f.name: f for f in fields}
        self.pack: Callable[..., int] = self.packer()
        self.unpack: Callable[[int], tuple[Any, ...]] = self.unpacker()

    def __getitem__(self, name: str) -> BitField:
        return self.fields[name]

    def _order(self, names: tuple[str, ...]) -> list[BitField]:
        if not names:
            return list(self.fields.values())
        if sorted(names) != sorted(self.fields):
            raise ValueError(f"bit fields {sorted(self.fields)}: give each once, got {names}")
        return [self.fields[n] for n in names]

    def packer(self, *names: str) -> Callable[..., int]:
        """`pack` with its arguments in this order of the fields (default: as declared),
        as fast as `pack`: for a caller whose signature lists the fields otherwise."""
        fields = self._order(names)
        env: dict[str, Any] = {"bad": self._bad, "fields": fields}
        args = ", ".join(f"a{i}" for i in range(len(fields)))
        checks, terms = [], []
        for i, f in enumerate(fields):
            if f.names is not None:  # an unknown string fails the lookup
                env[f"c{i}"] = {s: j for j, s in enumerate(f.names)}
                terms.append(f"c{i}[a{i}] << {f.shift}")
            else:
                checks.append(f"0 <= a{i} <= {f.mask}")
                terms.append(f"a{i} << {f.shift}")
        return _compile(
            f"def f({args}):\n"
            f"    try:\n"
            f"        if {' and '.join(checks) or 'True'}:\n"
            f"            return {' | '.join(terms)}\n"
            f"    except KeyError:\n"
            f"        pass\n"
            f"    raise bad(fields, ({args},))\n",
            env,
        )

    def unpacker(self, *names: str) -> Callable[[int], tuple[Any, ...]]:
        """`unpack` giving the fields in this order (default: as declared)."""
        fields = self._order(names)
        env: dict[str, Any] = {}
        outs = []
        for i, f in enumerate(fields):
            get = f"n >> {f.shift} & {f.mask}" if f.shift else f"n & {f.mask}"
            if f.names is not None:
                env[f"k{i}"] = f.names
                get = f"k{i}[{get}]"
            outs.append(get)
        return _compile(f"def f(n):\n    return ({', '.join(outs)},)\n", env)

    @staticmethod
    def _bad(fields: list[BitField], values: tuple[Any, ...]) -> ValueError:
        for f, v in zip(fields, values, strict=True):
            ok = v in f.names if f.names is not None else 0 <= v <= f.mask
            if not ok:
                return ValueError(f"bit field {f.name}: {v!r} does not fit")
        return ValueError(f"bit fields: {values!r} do not fit")  # pragma: no cover


class RecordCodec:
    """Integers and byte strings in one bytes object: a `struct` head (the integers, then
    each string's length as 4 bytes), then the strings.

    `RecordCodec("BBIQ", 3)`: four integers of those `struct` codes (little-endian,
    unaligned) and three byte strings; `pack(i0, i1, i2, i3, b0, b1, b2)` gives the bytes,
    `unpack(blob)` the same seven values. The head comes first: a reader may look at its
    first integer without unpacking (a "B" first is `blob[0]`).
    """

    __slots__ = ("head", "pack", "unpack")

    def __init__(self, ints: str, strings: int) -> None:
        self.head = struct.Struct(f"<{ints}{'I' * strings}")
        n = len(struct.unpack(f"<{ints}", bytes(struct.calcsize(f"<{ints}"))))
        a = [f"a{i}" for i in range(n)]
        b = [f"b{i}" for i in range(strings)]
        ends = [str(self.head.size)] + [f"e{i}" for i in range(strings)]
        env: dict[str, Any] = {"head": self.head.pack, "head_of": self.head.unpack_from}
        lens = ", ".join(f"len({x})" for x in b)
        self.pack: Callable[..., bytes] = _compile(
            f"def f({', '.join(a + b)}):\n"
            f"    return b''.join((head({', '.join(a)}, {lens}), {', '.join(b)}))\n",
            env,
        )
        sums = "".join(f"    e{i} = {ends[i]} + n{i}\n" for i in range(strings))
        slices = ", ".join(f"blob[{ends[i]}:e{i}]" for i in range(strings))
        ns = ", ".join(f"n{i}" for i in range(strings))
        self.unpack: Callable[[bytes], tuple[Any, ...]] = _compile(
            f"def f(blob):\n"
            f"    {', '.join(a)}, {ns} = head_of(blob)\n"
            f"{sums}"
            f"    return ({', '.join(a)}, {slices})\n",
            env,
        )


def join_column(strings: Iterable[str]) -> str:
    """A column of strings as one (none of them may hold a newline)."""
    return "\n".join(strings)


def split_column(joined: str) -> list[str]:
    """The strings `join_column` joined."""
    return joined.split("\n")


_NOT_FULL = re.compile(b"[^\xff]")  # a byte of a bitmap with a number missing
_DIGITS = bytes.maketrans(b"\x00\x01", b"01")  # presence bytes as binary digits
_DENSE = 4  # `Bitmap.add` sets bits as one integer while the span is at most this per number


class Bitmap:
    """A set of small non-negative integers as a growable bitmap: `n in b`, `len(b)`.

    Stored, and reloaded, in blocks of `block_bits` bits (`block`, `load_block`): a change
    rewrites only the blocks it touched.
    """

    __slots__ = ("_bits", "_count")

    block_bits = 1 << 13

    def __init__(self) -> None:
        self._bits = bytearray()
        self._count = 0

    def __contains__(self, n: object) -> bool:
        if not isinstance(n, int) or n < 0:
            return False
        i = n >> 3
        return i < len(self._bits) and bool(self._bits[i] & (1 << (n & 7)))

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[int]:
        for i, byte in enumerate(self._bits):
            if byte:
                for bit in range(8):
                    if byte & (1 << bit):
                        yield (i << 3) | bit

    def add(self, numbers: Iterable[int]) -> set[int]:
        """Add numbers; return the blocks whose bits changed.

        An upload adds the lines of each acknowledged request, about a thousand that sit
        close together: those set their bits as one integer (built at C speed from the
        numbers' presence over their span); numbers spread far apart, one at a time."""
        nums = numbers if isinstance(numbers, (list, tuple)) else list(numbers)
        if not nums:
            return set()
        lo, hi = min(nums), max(nums)
        if lo < 0:
            raise ValueError(f"a bitmap holds non-negative numbers, got {lo}")
        if hi - lo > _DENSE * len(nums) + 64:
            return self._add_each(nums)
        bits = self._bits
        i0, i1 = lo >> 3, (hi >> 3) + 1
        if i1 > len(bits):
            bits.extend(bytes(max(i1 - len(bits), len(bits) // 2)))
        first = i0 << 3  # bit 0 of `mask` is this number
        present = set(nums).__contains__
        flags = bytes(map(present, range(first, i1 << 3)))  # b"\x00" / b"\x01" per number
        mask = int(flags[::-1].translate(_DIGITS), 2)
        old = int.from_bytes(bits[i0:i1], "little")
        new = mask & ~old
        if not new:
            return set()
        self._count += new.bit_count()
        bits[i0:i1] = (old | mask).to_bytes(i1 - i0, "little")
        per_block = self.block_bits
        touched: set[int] = set()
        for b in range(lo // per_block, hi // per_block + 1):
            start = max(b * per_block - first, 0)
            if new >> start & ((1 << (per_block - (start + first) % per_block)) - 1):
                touched.add(b)
        return touched

    def _add_each(self, numbers: Iterable[int]) -> set[int]:
        touched: set[int] = set()
        bits = self._bits
        per_block = self.block_bits
        for n in numbers:
            if n < 0:
                raise ValueError(f"a bitmap holds non-negative numbers, got {n}")
            i, mask = n >> 3, 1 << (n & 7)
            if i >= len(bits):
                bits.extend(bytes(max(i + 1 - len(bits), len(bits) // 2)))
            if not bits[i] & mask:
                bits[i] |= mask
                self._count += 1
                touched.add(n // per_block)
        return touched

    def count_upto(self, n: int) -> int:
        """How many of 0..`n` are in the set (C-speed on the bitmap)."""
        if n < 0:
            return 0
        full, rest = divmod(n + 1, 8)
        count = int.from_bytes(self._bits[:full], "little").bit_count()
        if rest and full < len(self._bits):
            count += (self._bits[full] & ((1 << rest) - 1)).bit_count()
        return count

    def union(self, other: Bitmap) -> Bitmap:
        """A new bitmap of the numbers in either (at C speed)."""
        size = max(len(self._bits), len(other._bits))
        both = int.from_bytes(self._bits, "little") | int.from_bytes(other._bits, "little")
        out = Bitmap()
        out._bits = bytearray(both.to_bytes(size, "little"))
        out._count = both.bit_count()
        return out

    def next_missing(self, n: int) -> int:
        """The least number at or above `n` (>= 0) not in the set: a search of the bytes
        (C speed), not a test per number."""
        bits = self._bits
        i = n >> 3
        if i >= len(bits):
            return n
        byte = bits[i] | ((1 << (n & 7)) - 1)  # the numbers below n count as present
        if byte == 0xFF:
            found = _NOT_FULL.search(bits, i + 1)
            if found is None:
                return len(bits) << 3
            i = found.start()
            byte = bits[i]
        return (i << 3) | ((~byte & (byte + 1)).bit_length() - 1)

    def block(self, i: int) -> bytes:
        """Block `i`'s bytes, without its trailing zero bytes."""
        size = self.block_bits // 8
        return bytes(self._bits[i * size : (i + 1) * size]).rstrip(b"\0")

    def load_block(self, i: int, data: bytes) -> None:
        """Set block `i` to `data` (as `block` gave it)."""
        size = self.block_bits // 8
        start = i * size
        if len(self._bits) < start + len(data):
            self._bits.extend(bytes(start + len(data) - len(self._bits)))
        old = int.from_bytes(self._bits[start : start + len(data)], "little").bit_count()
        self._bits[start : start + len(data)] = data
        self._count += int.from_bytes(data, "little").bit_count() - old
