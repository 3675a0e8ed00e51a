"""The quick path of upload's reading loop (`tracecli.upload.quick`) and the journal's
C-speed helpers (`Bitmap.add`/`next_missing`/`union`, `journal.prefix.settled_prefix`):
each gives what the general path (or the line-by-line loop it replaced) gives."""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.uploadkit import gen_calls, write_flat
from tracecli.journal.prefix import settled_prefix
from tracecli.packing import Bitmap
from tracecli.upload import sender as sender_mod
from tracecli.upload.api import UploadOptions, upload
from tracecli.upload.run import Run


def _odd_file(path: Path, seed: int) -> Path:
    """A generated file with the cases the quick path must hand to the general one:
    duplicates, ends before starts, trace mismatches, starts holding an end field, ends
    with fields a completed call drops, own parents, refused lines, moved ends."""
    rng = random.Random(seed)
    src = write_flat(path.with_suffix(".src"), gen_calls(300, seed=seed), lag=3)
    out: list[bytes] = []
    moved: list[bytes] = []
    for raw in src.read_bytes().splitlines():
        d: dict[str, Any] = orjson.loads(raw)
        body = d.get("start") or d.get("end") or d
        kind = "start" if "start" in d or d.get("type") == "start" else "end"
        r = rng.random()
        if r < 0.02:
            out.append(b"{not json")
            continue
        if r < 0.04:
            out += [raw, raw]
            continue
        if r < 0.06 and kind == "end":
            body["ended_at"] = "2020-01-01T00:00:00.000000Z"
        elif r < 0.08 and kind == "start" and body.get("parent_id"):
            body["trace_id"] = "6513270e-269e-4d37-b2a7-000000000000"
        elif r < 0.10 and kind == "start":
            body["ended_at"] = body["started_at"]
        elif r < 0.12 and kind == "end":
            body["op_name"] = "x"
        elif r < 0.14 and kind == "start":
            body["parent_id"] = body["id"]
        elif r < 0.16 and kind == "end":
            moved.append(orjson.dumps(d))
            continue
        out.append(orjson.dumps(d))
    path.write_bytes(b"\n".join(out + moved) + b"\n")
    return path


def _run(tmp: Path, path: Path, quick: bool, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> Any:
    """The upload's report, rejected file and every request it made (route, body, records)."""
    sent: list[tuple[str, str, list[int], list[int]]] = []
    real = sender_mod.Workers.submit

    def spy(self: Any, job: Any, *a: Any, **k: Any) -> bool:
        sent.append(
            (job.route, hashlib.sha1(job.body()).hexdigest(), list(job.recs), list(job.rec_ends))
        )
        return real(self, job, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(sender_mod.Workers, "submit", spy)
        m.setattr("tracecli.upload.run.BLOCK_BYTES", 16 * 1024)  # many blocks, pairs cut
        if not quick:
            m.setattr(Run, "_quick", lambda self: None)
        d = tmp / ("quick" if quick else "general")
        d.mkdir(exist_ok=True)
        report = upload(
            [str(path)],
            UploadOptions(
                db=d / "store.db", rejected=d / "rej.jsonl", journal_path=d / "j.db", **kw
            ),
        )
    summary = report.to_dict()
    for key in ("elapsed_s", "calls_per_s", "target", "rejected_file"):
        summary.pop(key)
    rejected = (d / "rej.jsonl").read_bytes() if (d / "rej.jsonl").exists() else b""
    return summary, rejected.replace(str(d).encode(), b"D"), sent


@pytest.mark.parametrize("kw", [{}, {"mode": "complete"}, {"strict": True}], ids=str)
def test_quick_path_sends_what_the_general_path_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kw: dict[str, Any]
) -> None:
    path = _odd_file(tmp_path / "odd.jsonl", seed=5)
    quick = _run(tmp_path, path, True, monkeypatch, **kw)
    general = _run(tmp_path, path, False, monkeypatch, **kw)
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


_LINE = st.sampled_from([b"", b" ", b"\t\r", b"\x0b", b'{"n":1}', b'{"n":22}\r', b"x"])


@settings(max_examples=400, deadline=None)
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
    data = b"\n".join(lines) + (b"\n" if newline_at_end else b"")
    starts = [0] + [i + 1 for i, c in enumerate(data) if c == 10]
    k = min(start, len(starts) - 1)
    done = Bitmap()
    done.add(stored)
    size = max(0, len(data) - cut)
    want = _settle_by_line(data, starts[k], k, size, done, hold)
    with pytest.MonkeyPatch.context() as m:
        m.setattr("tracecli.journal.prefix.READ_BYTES", block)
        assert settled_prefix(io.BytesIO(data), starts[k], k, size, done, hold) == want


@settings(max_examples=300, deadline=None)
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
