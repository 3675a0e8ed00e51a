"""The upload's worker pool: how many workers and whether a pool is worth starting.

The pool is forked by `inputs.workers` and driven by the block engine (`upload.engine`),
as validate's is; the blocks themselves (what a worker does with one) are `upload.blocks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from tracecli.inputs.reader import format_of
from tracecli.inputs.workers import fork_pool
from tracecli.upload import engine

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

# Blocks submitted beyond one per worker, handed to the workers' pipe at once (`fork_pool`'s
# `ahead`, which also widens the answers' pipe to 1 MiB): a worker's answer (~0.6 MB pickled
# for a 512 KiB block) then seldom waits in a 64 KiB pipe for this process to read it, and
# this process seldom waits for an answer while it pairs, chunks and stores. Each one holds
# an answer in this process: a constant, whatever the input's size (measured: the largest
# process's peak RSS +3-4 MiB for one more, the same 112-113 MiB at 1M calls).
PENDING_BLOCKS = 2
# When the reading process shares the blocks' work (`Engine`'s `share`, uploads to a
# server): blocks handed to the worker's pipe beyond the one it runs, and blocks the
# reading process may hold beyond those. It prepares a block itself, rather than wait for
# the worker's oldest answer, when the worker has its own and QUEUED_BLOCKS queued.
# Upload's reading process needs about a fifth of a block's work per block and sat idle
# the rest of the run, waiting for its worker (py-spy, 50k calls: 70% of its samples);
# a block done here is neither pickled nor unpickled. Five queued, not two: the hand-over
# is the pool's threads' (its manager, its feeder), which wait for the interpreter lock
# while this process prepares a block, and with two the worker ran dry (idle ~35% of its
# samples against ~2% with five). One block of its own at a time beyond those: 2 or 4
# were no faster (50k calls, work 0.80-0.89 and 0.83-0.88 s against 0.77-0.80 s with 1)
# and held more (peak RSS 69 and 76 MB against 65 MB; 57 MB without sharing).
QUEUED_BLOCKS = 5
SHARED_BLOCKS = 1
PARALLEL_MIN_BYTES = engine.PARALLEL_MIN_BYTES


def default_jobs() -> int:
    """Worker processes for big inputs: $TRACECLI_JOBS (see `worker_count`), else one less
    than the cores this process may use (the reading process is busy too), at most 4."""
    return engine.default_jobs(cap=4, spare=1)


def start_pool(files: Sequence[str], jobs: int) -> ProcessPoolExecutor | None:
    """Worker processes forked now, or None (small inputs, one core, not Linux). Must run
    before any thread starts (see `tracecli.inputs.workers`). Its jobs are handed over
    ahead (see PENDING_BLOCKS, QUEUED_BLOCKS): they read and encode, with nothing to undo
    when a run halts (the answers of the few in the pipe are dropped)."""
    worth_it = engine.worth_a_pool(files, PARALLEL_MIN_BYTES, _not_yaml)
    return fork_pool(jobs, ahead=QUEUED_BLOCKS) if worth_it else None


class Limits(NamedTuple):
    """`Engine`'s `extra` and `share` for an upload."""

    extra: int
    share: int


def engine_limits(share: bool) -> Limits:
    """`Engine`'s `extra` and `share` for a run: whether the reading process prepares
    blocks itself when its worker has enough (see QUEUED_BLOCKS). Not for the embedded
    store: its sender threads write SQLite, which gives up the interpreter lock for each
    row and must take it back from the reading thread, so a reading thread busy with a
    block slows every write (py-spy: the senders' samples in `write_rows` doubled; the
    store's work time 1.23-1.44 s against 1.07-1.20 s without, 50k calls). Sharing only
    while no request was in flight gained nothing either (1.21-1.27 against 1.07-1.20 s)."""
    if share:
        return Limits(extra=QUEUED_BLOCKS + SHARED_BLOCKS, share=1 + QUEUED_BLOCKS)
    return Limits(extra=PENDING_BLOCKS, share=0)


def _not_yaml(path: str) -> bool:
    """YAML is read record by record in the reading process (no blocks for workers)."""
    return format_of(path) != "yaml"  # (the suffixes of `reader.YAML_SUFFIXES`, or .gz)
