"""The compact forms of tracecli.packing: bit fields, the record codec, columns, the bitmap."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracecli.packing import BitFields, Bitmap, RecordCodec, join_column, split_column

KINDS = ("start", "end", "complete")
REC = BitFields(kind=KINDS, line=40, src=20)


@given(st.sampled_from(KINDS), st.integers(0, 2**40 - 1), st.integers(0, 2**20 - 1))
def test_bit_fields_give_back_what_they_packed(kind: str, line: int, src: int) -> None:
    packed = REC.pack(kind, line, src)
    assert 0 <= packed < 2**64
    assert REC.unpack(packed) == (kind, line, src)
    assert REC["line"].get(packed) == line == (packed >> REC["line"].shift) & REC["line"].mask
    assert REC["src"].get(packed) == src


def test_bit_fields_refuse_a_value_that_would_spill_into_its_neighbour() -> None:
    with pytest.raises(ValueError, match="bit field line: 1099511627776 does not fit"):
        REC.pack("end", 2**40, 0)
    with pytest.raises(ValueError, match="bit field src: -1 does not fit"):
        REC.pack("end", 0, -1)
    with pytest.raises(ValueError, match="bit field kind: 'middle' does not fit"):
        REC.pack("middle", 0, 0)


def test_bit_fields_must_fit_their_integer() -> None:
    assert BitFields(bits=63, line=40, path=23)["path"].shift == 40
    with pytest.raises(ValueError, match="64 bits, more than 63"):
        BitFields(bits=63, line=40, path=24)
    with pytest.raises(ValueError, match="not positive"):
        BitFields(line=0)


def test_the_record_codec_gives_back_integers_and_strings() -> None:
    codec = RecordCodec("BIQ", 3)
    blob = codec.pack(7, 2**32 - 1, 2**40, b"project", b"", "é".encode())
    assert blob[0] == 7  # the head first: its first integer can be read without unpacking
    assert codec.unpack(blob) == (7, 2**32 - 1, 2**40, b"project", b"", "é".encode())
    assert len(blob) == codec.head.size + 7 + 2


def test_a_column_of_strings_travels_as_one() -> None:
    assert split_column(join_column(["a", "", "c"])) == ["a", "", "c"]


def test_the_bitmap_counts_and_stores_by_block() -> None:
    b = Bitmap()
    assert b.add([3, 9, 3, Bitmap.block_bits + 1]) == {0, 1}
    assert len(b) == 3 and 9 in b and 4 not in b and -1 not in b and "3" not in b
    assert list(b) == [3, 9, Bitmap.block_bits + 1]
    assert b.count_upto(8) == 1 and b.count_upto(9) == 2 and b.count_upto(-1) == 0
    copy = Bitmap()
    copy.load_block(1, b.block(1))
    copy.load_block(0, b.block(0))
    assert list(copy) == list(b) and len(copy) == 3
    with pytest.raises(ValueError):
        b.add([-1])


def test_a_packer_takes_the_fields_in_the_order_asked() -> None:
    pack = REC.packer("src", "line", "kind")
    assert pack(2, 7, "end") == REC.pack("end", 7, 2)
    assert REC.unpacker("src", "line", "kind")(REC.pack("end", 7, 2)) == (2, 7, "end")
    with pytest.raises(ValueError, match="bit field line: -3 does not fit"):
        pack(2, -3, "end")
    with pytest.raises(ValueError, match="give each once"):
        REC.packer("src", "line")
