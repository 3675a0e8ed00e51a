"""The block engine validate and upload share: results in input order with or without a
pool, the in-process fallback when a worker dies, and how inputs are cut and read."""

from __future__ import annotations

import gzip
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tracecli.inputs.reader import Source
from tracecli.upload.engine import PLAIN, RECORDS, STREAM, Engine, Job, input_kind

PARENT = os.getpid()
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork pools only")


def square(n: int) -> tuple[int, int]:
    time.sleep(0.002 * (n % 3))  # out of step, so that order is the engine's doing
    return n, n * n


def dies_in_a_worker(n: int) -> tuple[int, bool]:
    """Kills the worker that runs it (as the OOM killer would); fine in the parent. Says
    where it ran."""
    if os.getpid() != PARENT and n == 3:
        os._exit(1)
    return n, os.getpid() == PARENT


def _collect(engine_kw: dict[str, Any], jobs: int, fn: Any, n: int) -> tuple[list[Any], Engine]:
    got: list[Any] = []
    seen_pending: list[int] = []

    def on_block(tag: Any, result: Any) -> None:
        got.append((tag, result))
        seen_pending.append(len(engine.pending))

    engine = Engine(on_block, **engine_kw)
    engine.start(jobs, worth_it=jobs > 0)
    try:
        for i in range(n):
            engine.submit(i, fn, (i,))
        engine.submit("end", None, ())  # a marker: no work, its place kept
        engine.drain()
    finally:
        engine.close()
    limit = engine_kw.get("per_job", 1) * jobs + engine_kw.get("extra", 0)
    assert max(seen_pending, default=0) <= limit
    return got, engine


def test_results_come_in_submission_order_in_process() -> None:
    got, _ = _collect({}, 0, square, 10)
    assert got == [(i, (i, i * i)) for i in range(10)] + [("end", None)]


@linux_only
def test_results_come_in_submission_order_from_a_pool() -> None:
    got, engine = _collect({"per_job": 2}, 2, square, 40)
    assert got == [(i, (i, i * i)) for i in range(40)] + [("end", None)]
    assert engine.pool is None  # closed


@linux_only
def test_a_worker_that_dies_leaves_its_jobs_to_this_process() -> None:
    got, _ = _collect({"extra": 1}, 2, dies_in_a_worker, 12)
    assert [tag for tag, _ in got] == [*range(12), "end"]
    assert [r[0] for _, r in got[:-1]] == list(range(12))
    assert got[3][1] == (3, True)  # done again here


@linux_only
def test_an_eager_pool_keeps_order_and_hands_its_jobs_over_at_once() -> None:
    """validate's pool: every job in flight in the workers' pipe, answers in a wide pipe."""
    import concurrent.futures.process as executor
    import fcntl

    before = executor.EXTRA_QUEUED_CALLS
    engine = Engine(lambda tag, result: None, per_job=3, eager=True)
    engine.start(2, worth_it=True)
    try:
        pool = engine.pool
        assert pool is not None
        assert pool._call_queue._maxsize == 3 * 2  # running ones and the 4 ahead
        answers = pool._result_queue._writer.fileno()
        assert fcntl.fcntl(answers, fcntl.F_GETPIPE_SZ) >= 1 << 20
    finally:
        engine.close()
    assert before == executor.EXTRA_QUEUED_CALLS  # the module's setting restored
    got, _ = _collect({"per_job": 3, "eager": True}, 2, square, 40)
    assert got == [(i, (i, i * i)) for i in range(40)] + [("end", None)]
    got, _ = _collect({"per_job": 3, "eager": True}, 2, dies_in_a_worker, 12)
    assert [tag for tag, _ in got] == [*range(12), "end"]
    assert got[3][1] == (3, True)  # done again here


def test_a_halted_run_reads_and_finishes_no_more() -> None:
    got: list[Any] = []
    engine = Engine(lambda tag, result: got.append(tag), halted=lambda: len(got) >= 2)
    for i in range(5):
        engine.submit(i, square, (i,))
    engine.drain()
    assert got == [0, 1]


def test_a_plain_file_is_cut_at_line_ends_and_covers_it_all(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    data = b"".join(b'{"n": %d, "pad": "%s"}\n' % (i, b"x" * (i % 50)) for i in range(300))
    path.write_bytes(data)
    pieces: list[bytes] = []

    def job(offset: int, length: int, last: bool) -> Job:
        return last, _read, (str(path), offset, length)

    engine = Engine(lambda last, block: pieces.append(block))
    assert engine.read_plain(str(path), len(data), 0, 1000, job) is None
    assert b"".join(pieces) == data
    assert len(pieces) > 5 and all(p.endswith(b"\n") for p in pieces)


def test_a_stream_stops_at_a_read_error_after_the_blocks_before_it(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"
    whole = gzip.compress(b"".join(b'{"n": %d}\n' % i for i in range(5000)))
    path.write_bytes(whole[: len(whole) // 2])  # truncated
    blocks: list[bytes] = []

    def job(data: bytes, done: int, first: bool) -> Job:
        return first, _same, (data,)

    engine = Engine(lambda first, block: blocks.append(block))
    stop = engine.read_stream(str(path), 4096, job)
    assert stop is not None and stop.opened
    lines = b"".join(blocks).splitlines()
    assert lines and lines == [b'{"n": %d}' % i for i in range(len(lines))]
    missing = engine.read_stream(str(tmp_path / "nope.gz"), 4096, job)
    assert missing is not None and not missing.opened


def test_how_each_input_is_read(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"type": "start"}\n')
    (tmp_path / "b.yaml").write_text("- type: start\n")
    (tmp_path / "c.jsonl.gz").write_bytes(gzip.compress(b'{"type": "start"}\n'))
    kinds = {}
    for name in ("a.jsonl", "b.yaml", "c.jsonl.gz"):
        p = str(tmp_path / name)
        kinds[name] = input_kind(Source.open(p, "jsonl"), p)
    assert kinds == {"a.jsonl": PLAIN, "b.yaml": RECORDS, "c.jsonl.gz": STREAM}


def _read(path: str, offset: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def _same(data: bytes) -> bytes:
    return data


@linux_only
def test_uploads_pool_hands_its_blocks_over_ahead_through_a_wide_pipe(tmp_path: Path) -> None:
    """upload's pool: the blocks it keeps ahead are in the workers' pipe at once, and the
    answers (~0.6 MB each) have a pipe that holds more than one."""
    import concurrent.futures.process as executor
    import fcntl

    from tracecli.upload.pool import QUEUED_BLOCKS, start_pool

    big = tmp_path / "t.jsonl"
    with big.open("wb") as f:
        f.truncate(9 << 20)  # (its size is all start_pool looks at)
    before = executor.EXTRA_QUEUED_CALLS
    pool = start_pool([str(big)], 1)
    assert pool is not None
    try:
        assert pool._call_queue._maxsize == 1 + QUEUED_BLOCKS
        answers = pool._result_queue._writer.fileno()
        assert fcntl.fcntl(answers, fcntl.F_GETPIPE_SZ) >= 1 << 20
        assert [f.result() for f in [pool.submit(square, n) for n in range(6)]] == [
            (n, n * n) for n in range(6)
        ]
    finally:
        pool.shutdown(wait=True)
    assert before == executor.EXTRA_QUEUED_CALLS


def where_it_ran(n: int) -> tuple[int, bool]:
    """Slow in a worker, quick here: the reading process then finds the worker's queue
    full and takes jobs itself."""
    if os.getpid() != PARENT:
        time.sleep(0.01)
    return n, os.getpid() == PARENT


@linux_only
def test_a_sharing_engine_does_jobs_itself_when_the_workers_have_enough() -> None:
    """`share`: the reading process does a job rather than wait, when its worker holds
    `share` jobs not done; the results still come in submission order, and never more
    than the limit are in flight."""
    got, _ = _collect({"extra": 6, "share": 2}, 1, where_it_ran, 40)
    assert [tag for tag, _ in got] == [*range(40), "end"]
    assert [r[0] for _, r in got[:-1]] == list(range(40))
    here = sum(1 for _, r in got[:-1] if r[1])
    assert 0 < here < 40  # both did some


@linux_only
def test_a_sharing_engine_leaves_a_dead_workers_jobs_to_this_process() -> None:
    got, _ = _collect({"extra": 4, "share": 2}, 1, dies_in_a_worker, 12)
    assert [tag for tag, _ in got] == [*range(12), "end"]
    assert [r[0] for _, r in got[:-1]] == list(range(12))
    assert got[3][1] == (3, True)


def test_uploads_engine_shares_only_for_a_server() -> None:
    """The embedded store's writers give up the interpreter lock for each row: a reading
    process busy preparing blocks would slow them, so a store run keeps the old limits."""
    from tracecli.upload.pool import PENDING_BLOCKS, QUEUED_BLOCKS, engine_limits

    assert engine_limits(False) == (PENDING_BLOCKS, 0)  # (extra, share)
    assert engine_limits(True).share == 1 + QUEUED_BLOCKS
