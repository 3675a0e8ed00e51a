"""An OTLP file's lines read in blocks and mapped in order, by the run's worker processes
when it has them, else by the reading process (`otlp_map.map_lines` maps one block).

Split from `otlp_map`, which maps a block's lines: this module only decides where each
block is mapped and hands the answers back in the file's order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any, NamedTuple

from tracecli.diagnostics import Diagnostic
from tracecli.inputs.workers import widen_pool
from tracecli.otel.calls import SpanCalls
from tracecli.upload.otlp_lines import raw_lines
from tracecli.upload.otlp_map import LineParts, Mapped, map_lines, with_raw

__all__ = [
    "BLOCK_BYTES",
    "PENDING",
    "QUEUED",
    "Workers",
    "line_blocks",
    "map_blocks",
    "validate_lines",
]

BLOCK_BYTES = 256 << 10  # lines are mapped (in the run's workers when it has them) in blocks
PENDING = 16  # blocks in flight beyond one per worker (~1 MB each with their answers): the
# reading process maps ahead this far while the oldest block is with a worker that is slow
# (a busy machine: with 8 it often waited there, 0.1-0.3 s of a 20k-span upload)
QUEUED = 3  # blocks handed to each worker at a time: the one it maps, two behind it


class Workers(NamedTuple):
    """The run's worker processes, as mapping blocks needs them."""

    pool: Callable[[], Any]  # the pool now (None: none, or no longer)
    jobs: int
    broken: Callable[[], None]  # a worker died: the run stops using the pool
    halted: Callable[[], bool]


def line_blocks(path: str, display: str) -> Iterator[list[tuple[int, bytes]] | Diagnostic]:
    """A file's lines as read, in blocks of about BLOCK_BYTES; a read error on its own."""
    block: list[tuple[int, bytes]] = []
    size = 0
    for item in raw_lines(path, display):
        if isinstance(item, Diagnostic):
            if block:
                yield block
                block, size = [], 0
            yield item
            continue
        block.append(item)
        size += len(item[1])
        if size >= BLOCK_BYTES:
            yield block
            block, size = [], 0
    if block:
        yield block


def _ready(future: Any) -> bool:
    return isinstance(future, Mapped) or future.done()


def _busy(pending: deque[tuple[Any, list[tuple[int, bytes]]]]) -> int:
    """Blocks handed to the workers and not mapped yet (running or queued)."""
    return sum(1 for future, _ in pending if not _ready(future))


def map_blocks(
    blocks: Iterator[list[tuple[int, bytes]] | Diagnostic],
    path: str,
    project: str | None,
    workers: Workers,
    validate: bool = False,
    convert: bool = False,
) -> Iterator[LineParts]:
    """The blocks' lines mapped, in order, until the run halts: by the worker processes when
    there are some, else here. A worker that dies leaves its blocks here. A read error
    comes as a line without spans.

    With workers, the reading process reads, checks and sends, and maps a block itself
    only when it has nothing else to do: every worker has a block queued behind the one
    it maps (`QUEUED`), so it never waits for the reading process, and a block ready is
    handed on before another is mapped here."""
    pending: deque[tuple[Any, list[tuple[int, bytes]]]] = deque()
    widen_pool(workers.pool())
    limit = workers.jobs + PENDING if workers.pool() is not None else 0
    queued = workers.jobs * QUEUED

    def finish() -> list[LineParts]:
        future, lines = pending.popleft()
        if isinstance(future, Mapped):
            return with_raw(future, lines)
        if workers.pool() is not None:
            try:
                return with_raw(future.result(), lines)
            except BrokenProcessPool:
                workers.broken()
        return with_raw(map_lines(lines, path, project, validate, convert), lines)

    def place(block: list[tuple[int, bytes]]) -> Iterator[LineParts]:
        """`block` handed to a worker or mapped here, the blocks ready before handed on."""
        while True:
            while pending and _ready(pending[0][0]):
                yield from finish()
            pool = workers.pool()
            if pool is not None and _busy(pending) < queued:
                try:
                    job = pool.submit(map_lines, block, path, project, validate, convert)
                    pending.append((job, block))
                    return
                except BrokenProcessPool:
                    workers.broken()
            if pool is None or len(pending) < limit:
                pending.append((map_lines(block, path, project, validate, convert), block))
                return
            yield from finish()  # as many in flight as allowed: wait for the oldest

    try:
        for block in blocks:
            if workers.halted():
                return
            if isinstance(block, Diagnostic):
                while pending:
                    yield from finish()
                yield LineParts(block.line, b"", [], block)
                continue
            yield from place(block)
            if not workers.pool():
                while pending:  # no workers (or no longer): in order, nothing to wait for
                    yield from finish()
        while pending:
            yield from finish()
    except BaseException:  # failed (Ctrl-C) or left: the pool is stopped (cancelled here, a
        pending.clear()  # future the pool's thread then marks broken: 3.11's InvalidStateError)
        raise
    finally:
        for future, _ in pending:  # halted: what is left is not needed
            if not isinstance(future, Mapped):
                future.cancel()


def validate_lines(
    calls: SpanCalls, path: str, display: str, pool: Any, jobs: int
) -> Iterator[LineParts | Diagnostic]:
    """`validate`'s read of an OTLP file: its lines mapped (by `pool`'s workers if any),
    a line that is no JSON or a read error as its diagnostic."""
    state = {"pool": pool}
    workers = Workers(lambda: state["pool"], jobs, lambda: state.update(pool=None), _never)
    blocks = line_blocks(path, display)
    for parts in map_blocks(blocks, display, calls.project, workers, validate=True):
        yield parts if parts.error is None else parts.error


def _never() -> bool:
    return False
