"""A run of usual calls sent at once (`tracecli.upload.quick_run`) against the one-by-one
quick path it stands for: the checker's bulk feed (`CrossChecker.feed_pairs_quiet`)
leaves the state `feed_pair_quiet` pair by pair leaves, the chunker's slices
(`Chunker.add_calls`) make the chunks `add_call` makes, and whole uploads of odd files
send, report, reject and journal the same with runs on and off."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.quick_kit import odd_file, run_upload
from tests.support.sweeps import examples
from tracecli.check.cross import CrossChecker
from tracecli.check.cross_pairs import _times_in_order, quiet_facts
from tracecli.check.facts import ended_before
from tracecli.upload import quick as quick_mod
from tracecli.upload.quick_run import RunSender, _joined
from tracecli.wire.chunking import Chunk, Chunker
from tracecli.wire.encode import join_objects

_IDS = [f"id-{i}" for i in range(12)]
_TRACES = ["t-a", "t-b", "t-c"]
_TIMES = st.sampled_from(
    [
        "2026-01-01T00:00:01.000000Z",
        "2026-01-01T00:00:02.000000Z",
        "2026-01-01T00:00:03.500000Z",
        "2026-01-01T00:00:02Z",
        "2026-01-01T00:00:02.000000+00:00",
        "2026-01-01 00:00:04.000000Z",
        None,
    ]
)
_RECORD = st.tuples(
    st.sampled_from(["start", "end", "complete", "refused"]),
    st.sampled_from(_IDS),
    st.sampled_from(_TRACES),
    st.none() | st.sampled_from(_IDS),
    _TIMES,
    _TIMES,
)
_PAIR = st.tuples(
    st.sampled_from(_IDS),
    st.sampled_from([*_TRACES, 7]),  # a trace id that is not text leaves the quick path
    st.none() | st.sampled_from(_IDS),
    _TIMES,
    _TIMES,
)


def _state(c: CrossChecker) -> Any:
    idx = c._index
    blocks = [(list(k), list(o)) for k, o in idx._blocks]
    orphans = {h: list(v) for h, v in c._orphans.items()}
    return (
        list(c._traces), list(c._locs), bytes(c._flags), dict(idx.recent), blocks, orphans,
        dict(c._open), list(c.deferred), c.calls, c._paths,
    )  # fmt: skip


def _fed(before: list[Any]) -> CrossChecker:
    c = CrossChecker()
    out: list[Any] = []
    for line, (kind, cid, tid, pid, started, ended) in enumerate(before, 1):
        if kind == "refused":
            c.note_refused_id("a.jsonl", line, cid)
        else:
            s = started if kind != "end" else None
            e = ended if kind != "start" else None
            c.feed_call("a.jsonl", line, kind, cid, tid, pid, s, e, out)
    c.drain()
    return c


@settings(max_examples=examples(600), deadline=None)
@given(
    before=st.lists(_RECORD, max_size=8),
    run=st.lists(_PAIR, min_size=1, max_size=10)
    | st.lists(_PAIR, min_size=1, max_size=10, unique_by=lambda p: p[0]),  # ids distinct
    base=st.sampled_from([0, 100]),
)
def test_feed_pairs_quiet_is_feed_pair_quiet_pair_by_pair(
    before: list[Any], run: list[Any], base: int
) -> None:
    bulk, one, told = _fed(before), _fed(before), _fed(before)
    lines = [20 + 2 * i for i in range(len(run))]
    cols = [list(c) for c in zip(*run, strict=True)]
    cids, tids, pids, starteds, endeds = cols
    took = bulk.feed_pairs_quiet("b.jsonl", base, lines, cids, tids, pids, starteds, endeds)
    # a worker that vouched for the trace ids and the times (`quiet_facts`): the same answer
    if quiet_facts(tids, starteds, endeds):
        assert told.feed_pairs_quiet("b.jsonl", base, lines, *cols, vouched=True) == took
        assert _state(told) == _state(bulk)
    if not took:
        assert _state(bulk) == _state(_fed(before))  # nothing changed
        return
    for line, (cid, tid, pid, started, ended) in zip(lines, run, strict=True):
        assert one.feed_pair_quiet("b.jsonl", base + line, cid, tid, pid, started, ended)
    assert _state(bulk) == _state(one)
    assert bulk.finish() == one.finish()


def test_feed_pairs_quiet_takes_the_usual_run() -> None:
    """Roots and children whose parents came earlier (in the run or before it), one
    child waiting for a parent not read yet, a child read before its parent adopted."""
    c = _fed([("start", "p0", "t-a", None, "2026-01-01T00:00:01.000000Z", None)])
    c.feed_call("a.jsonl", 2, "start", "late-child", "t-b", "p9", "2026-01-01T00:00:01Z", None, [])
    cids = ["p1", "c1", "c2", "p9"]
    tids = ["t-a", "t-a", "t-a", "t-a"]  # p9's child said t-b: a mismatch found on adoption
    pids = [None, "p1", "p0", None]
    times = ["2026-01-01T00:00:01.000000Z"] * 4
    assert c.feed_pairs_quiet("b.jsonl", 0, [1, 2, 3, 4], cids, tids, pids, times, times)
    assert [d.code for d in c.deferred] == ["trace-mismatch"]


_STAMP = st.builds(
    "2026-01-0{}{}00:00:0{}.{}{}".format,
    st.sampled_from("12"),
    st.sampled_from("T "),
    st.sampled_from("0189"),
    st.sampled_from(["000000", "5", "999999"]),
    st.sampled_from(["Z", "+00:00", "-01:00"]),
)


@settings(max_examples=examples(500), deadline=None)
@given(st.lists(st.tuples(st.none() | _STAMP, st.none() | _STAMP), min_size=1, max_size=8))
def test_times_in_order_is_ended_before_pair_by_pair(times: list[Any]) -> None:
    starteds, endeds = [s for s, _ in times], [e for _, e in times]
    want = not any(ended_before(e, s) for s, e in times if s is not None and e is not None)
    assert _times_in_order(starteds, endeds) == want


@settings(max_examples=examples(400), deadline=None)
@given(
    max_items=st.integers(1, 6),
    max_bytes=st.integers(1, 160),
    first=st.lists(st.integers(1, 60), max_size=5),
    sizes=st.lists(st.integers(1, 60), max_size=25),
    kept=st.lists(st.booleans(), min_size=25, max_size=25),
)
def test_add_calls_is_add_call_item_by_item(
    max_items: int, max_bytes: int, first: list[int], sizes: list[int], kept: list[bool]
) -> None:
    """(`kept`: which items carry an `extra`, the project_id as read under --project.)"""

    def chunks(cs: Any) -> list[Any]:
        return [
            (
                c.route,
                c.items,
                list(c.recs),
                list(c.item_ends),
                list(c.rec_ends),
                c.nbytes,
                c.extras,
            )
            for c in cs
        ]

    one, bulk = Chunker(max_items, max_bytes), Chunker(max_items, max_bytes)
    for chunker in (one, bulk):
        for i, size in enumerate(first):  # an open chunk partly filled before the run
            chunker.add_call("r", b"x" * size, 2 * i, 2 * i + 1)
    items = [bytes([65 + i % 26]) * size for i, size in enumerate(sizes)]
    recs = list(range(100, 100 + 2 * len(items)))
    extras = [(("a/b", f"x/{i}"), None) if kept[i] else None for i in range(len(items))]
    closed: list[Chunk] = []
    for i, item in enumerate(items):
        closed += one.add_call("r", item, recs[2 * i], recs[2 * i + 1], extras[i])
    got = bulk.add_calls("r", items, recs, extras if any(kept) else None)
    assert chunks(got) == chunks(closed)
    for c in got:  # what `Chunk.add` keeps for the same units (the general path's)
        again = Chunk("r")
        for u in range(c.units):
            again.add(c.unit(u))
        assert again.extras == c.extras
    assert chunks(bulk.flush()) == chunks(one.flush())


def _runs_on(monkeypatch: pytest.MonkeyPatch, on: bool) -> list[int]:
    """Runs sent at once on or off; the sizes of those sent."""
    taken: list[int] = []
    real = RunSender.send

    def spy(self: RunSender, entries: Any, k: int, j: int, *a: Any) -> bool:
        ok = real(self, entries, k, j, *a)
        if ok:
            taken.append(j - k)
        return ok

    monkeypatch.setattr(RunSender, "send", spy)
    monkeypatch.setattr(quick_mod, "RUN_MIN", 2 if on else 1 << 40)  # short runs too
    return taken


def _journal(d: Path) -> Any:
    """What the journal holds for the file: its resume point and acknowledged lines (not
    the times, the target's key or the file's identity, which differ between runs)."""
    conn = sqlite3.connect(d / "quick" / "j.db")
    try:
        files = sorted(conn.execute("SELECT size, acked, done, resume_off, resume_line FROM files"))
        acks = sorted(conn.execute("SELECT block, bits FROM acks"))
        passed = sorted(conn.execute("SELECT block, bits FROM passed"))
        return files, acks, passed
    finally:
        conn.close()


def _both(tmp: Path, path: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> list[int]:
    got = []
    taken: list[int] = []
    for on in (True, False):
        with monkeypatch.context() as m:
            sizes = _runs_on(m, on)
            d = tmp / ("on" if on else "off")
            d.mkdir(exist_ok=True)
            got.append(run_upload(d, path, True, m, **kw))
            if on:
                taken = sizes
    assert got[0] == got[1]
    return taken


@pytest.mark.parametrize(
    "kw",
    [{}, {"mode": "complete"}, {"strict": True}, {"project": "other/place"}],
    ids=str,
)
def test_runs_send_what_one_by_one_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kw: dict[str, Any]
) -> None:
    path = odd_file(tmp_path / "odd.jsonl", seed=11)
    taken = _both(tmp_path, path, monkeypatch, **kw)
    if "strict" not in kw:  # (--strict sends nothing from a file with errors)
        assert sum(taken) > 60  # runs were sent at once (the odd cases cut them short)


def test_runs_resume_as_one_by_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second run over a file grown since (its start stored, the rest new), with the
    journal of the first: the same requests, report and journal as one by one."""
    whole = odd_file(tmp_path / "odd.jsonl", seed=3).read_bytes().splitlines(keepends=True)
    path = tmp_path / "grow.jsonl"
    results = []
    for on in (True, False):
        with monkeypatch.context() as m:
            sizes = _runs_on(m, on)
            d = tmp_path / ("on" if on else "off")
            d.mkdir()
            path.write_bytes(b"".join(whole[: len(whole) // 2]))
            first = run_upload(d, path, True, m)
            # a stored line moved after the cut: a line the journal says is stored again
            path.write_bytes(b"".join(whole))
            second = run_upload(d, path, True, m)
            results.append((first, second, _journal(d)))
            if on:
                assert sum(sizes) > 30
    assert results[0] == results[1]


_OBJ = st.dictionaries(
    st.sampled_from(["a", "b", "ended_at", "output"]), st.integers(0, 9), max_size=3
)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(_OBJ, _OBJ), min_size=1, max_size=6))
def test_a_runs_items_are_each_pairs_join_objects(
    pairs: list[tuple[dict[str, int], dict[str, int]]],
) -> None:
    """`quick_run._joined` (C-level maps when every body and tail holds a field) makes the
    item `join_objects` makes of each start body and end tail."""
    bodies = [orjson.dumps(s) for s, _ in pairs]
    tails = [orjson.dumps(t) for _, t in pairs]
    want = [join_objects(s, t) for s, t in zip(bodies, tails, strict=True)]
    assert _joined(bodies, tails) == want
