"""`check.pairpack`: a block's pairs packed in C (`pack_columns`, which the bulk loop
feeds with its columns, and `pack_halves`) come back as the pairs they were."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tracecli.check.pairpack import NO_PARENT, Pair, pack_columns, pack_halves, unpack_pairs
from tracecli.schema.fastcheck import Facts

_ID = st.text("0123456789abcdef-", min_size=1, max_size=12)
_TIME = st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:01.5Z", "2026-01-02T00:00:00Z"])
_HALF = st.tuples(
    st.integers(1, 5000),
    _ID,
    _ID,
    st.none() | _ID,
    _TIME,
    _TIME,
    st.integers(1, 5000),
    st.booleans(),
)


@given(st.lists(_HALF, max_size=20))
def test_packed_pairs_come_back_whole(halves: list[tuple]) -> None:
    facts = [
        (Facts(line, "start", cid, tid, pid, st_, None), en, end, bad)
        for line, cid, tid, pid, st_, en, end, bad in halves
    ]
    want = [
        Pair(line, cid, tid, pid, st_, en, end, bad)
        for line, cid, tid, pid, st_, en, end, bad in halves
    ]
    packed = pack_halves(facts)
    assert unpack_pairs(packed) == want
    if not halves:
        assert packed is None
        return
    assert packed is not None
    assert list(packed.parent_hashes) == [NO_PARENT if h[3] is None else hash(h[3]) for h in halves]
    assert list(packed.id_hashes) == [hash(h[1]) for h in halves]
    # the bulk loop's way in: the starts as columns, whether each ended first from a map
    starts = [tuple(f[0]) for f in facts]
    columns = tuple(zip(*starts, strict=True))
    ends = [h[5] for h in halves]
    again = pack_columns(columns, ends, [h[6] for h in halves], iter([h[7] for h in halves]))
    assert again == packed
