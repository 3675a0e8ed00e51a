"""The quick path of upload's reading loop (`tracecli.upload.quick`) and the journal's
C-speed helpers (`Bitmap.add`/`next_missing`/`union`, `journal.prefix.settled_prefix`):
each gives what the general path (or the line-by-line loop it replaced) gives."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.quick_kit import odd_file, run_upload
from tests.support.sweeps import examples
from tracecli.journal.prefix import settled_prefix
from tracecli.packing import Bitmap


@pytest.mark.parametrize(
    "kw", [{}, {"mode": "complete"}, {"strict": True}, {"project": "other/place"}], ids=str
)
def test_quick_path_sends_what_the_general_path_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kw: dict[str, Any]
) -> None:
    path = odd_file(tmp_path / "odd.jsonl", seed=5)
    quick = run_upload(tmp_path, path, True, monkeypatch, **kw)
    general = run_upload(tmp_path, path, False, monkeypatch, **kw)
    assert quick == general
    if not kw:
        assert quick[0]["errors"] > 0 and quick[0]["uploaded"] > 200  # the odd cases ran


def _settle_by_line(
    data: bytes, off: int, line: int, size: int, done: Bitmap, hold: int | None
) -> tuple[int, int, tuple[int, int] | None]:
    """The loop `Journal.settle` ran before: line by line."""
    f = io.BytesIO(data)
    f.seek(off)
    held = None
    for raw in f:
        if not raw.endswith(b"\n") or off + len(raw) > size:
            break
        if line + 1 not in done and raw.strip():
            break
        if hold is not None and held is None and line + 1 >= hold:
            held = (off, line)
        line += 1
        off += len(raw)
    return off, line, held


def _case(
    lines: list[bytes], newline_at_end: bool, stored: list[int], start: int, cut: int
) -> tuple[bytes, list[int], int, Bitmap, int]:
    """(the file, its line starts, the line to start from, the lines stored, its size)."""
    data = b"\n".join(lines) + (b"\n" if newline_at_end else b"")
    starts = [0] + [i + 1 for i, c in enumerate(data) if c == 10]
    done = Bitmap()
    done.add(stored)
    return data, starts, min(start, len(starts) - 1), done, max(0, len(data) - cut)


_LINE = st.sampled_from([b"", b" ", b"\t\r", b"\x0b", b'{"n":1}', b'{"n":22}\r', b"x"])


@settings(max_examples=examples(400), deadline=None)
@given(
    lines=st.lists(_LINE, max_size=40),
    newline_at_end=st.booleans(),
    stored=st.lists(st.integers(1, 45), max_size=45),
    start=st.integers(0, 40),
    cut=st.integers(0, 8),
    hold=st.none() | st.integers(1, 45),
    block=st.sampled_from([1, 3, 16, 1 << 20]),
)
def test_settled_prefix_is_the_line_by_line_answer(
    lines: list[bytes],
    newline_at_end: bool,
    stored: list[int],
    start: int,
    cut: int,
    hold: int | None,
    block: int,
) -> None:
    data, starts, k, done, size = _case(lines, newline_at_end, stored, start, cut)
    want = _settle_by_line(data, starts[k], k, size, done, hold)
    with pytest.MonkeyPatch.context() as m:
        m.setattr("tracecli.journal.prefix.READ_BYTES", block)
        assert settled_prefix(io.BytesIO(data), starts[k], k, size, done, hold) == want


@settings(max_examples=examples(400), deadline=None)
@given(
    case=st.tuples(
        st.lists(_LINE, max_size=40),  # the lines
        st.booleans(),  # a newline at the end
        st.lists(st.integers(1, 45), max_size=45) | st.just(list(range(1, 46))),  # stored
        st.integers(0, 40),  # the line to start from
        st.integers(0, 8),  # bytes cut off the end (the size registered)
    ),
    hold=st.none() | st.integers(1, 45),
    picked=st.lists(st.booleans(), min_size=42, max_size=42),
    anchored=st.booleans(),
    shift=st.sampled_from([0, 0, 1, -1]),
)
def test_settled_prefix_from_the_runs_line_starts_is_the_same_answer(
    case: tuple[list[bytes], bool, list[int], int, int],
    hold: int | None,
    picked: list[bool],
    anchored: bool,
    shift: int,
) -> None:
    """The line starts a run read (`marks`: its blocks' ends, the last block's perhaps in
    a line still being written; a list whose numbering is off by one, as if from another
    resume point, must not be used) change nothing in the answer, only what is read."""
    data, starts, k, done, size = _case(*case)
    stored = case[2]
    want = _settle_by_line(data, starts[k], k, size, done, hold)
    marks = [(starts[k], k + shift)] if anchored else []
    marks += [(starts[j], j + shift) for j in range(k + 1, len(starts)) if picked[j]]
    if data[-1:] not in (b"", b"\n") and picked[0]:  # a last block without its newline
        marks.append((len(data), len(starts) + shift))
    f = io.BytesIO(data)
    assert settled_prefix(f, starts[k], k, size, done, hold, marks) == want
    known = [o for o, _ in marks if 0 < o <= size and data[o - 1 : o] == b"\n"]
    if anchored and not shift and known and len(stored) == 45 and hold is None:
        assert f.tell() >= max(known)  # read from the last line start known, not before


@settings(max_examples=examples(300), deadline=None)
@given(
    before=st.lists(st.integers(0, 20_000), max_size=50),
    numbers=st.lists(st.integers(0, 20_000), max_size=300)
    | st.integers(0, 19_000).flatmap(
        lambda lo: st.lists(st.integers(lo, lo + 1500), max_size=1200)
    ),
    probe=st.integers(0, 21_000),
)
def test_bitmap_add_next_missing_and_union_agree_with_a_set(
    before: list[int], numbers: list[int], probe: int
) -> None:
    b = Bitmap()
    b.add(before)
    old = set(before)
    touched = b.add(numbers)
    new = set(numbers) - old
    assert touched == {n // b.block_bits for n in new}
    assert set(b) == old | set(numbers) and len(b) == len(old | set(numbers))
    assert b.next_missing(probe) == min(n for n in range(probe, 30_000) if n not in b)
    other = Bitmap()
    other.add(before[::2])
    assert set(b.union(other)) == set(b) | set(other)
