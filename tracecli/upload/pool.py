"""The upload's worker pool: how many workers and whether a pool is worth starting.

The pool is forked by `inputs.workers` and driven by the block engine (`upload.engine`),
as validate's is; the blocks themselves (what a worker does with one) are `upload.blocks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

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
PARALLEL_MIN_BYTES = engine.PARALLEL_MIN_BYTES


def default_jobs() -> int:
    """Worker processes for big inputs: $TRACECLI_JOBS (see `worker_count`), else one less
    than the cores this process may use (the reading process is busy too), at most 4."""
    return engine.default_jobs(cap=4, spare=1)


def start_pool(files: Sequence[str], jobs: int) -> ProcessPoolExecutor | None:
    """Worker processes forked now, or None (small inputs, one core, not Linux). Must run
    before any thread starts (see `tracecli.inputs.workers`). Its jobs are handed over
    ahead (see PENDING_BLOCKS): they read and encode, with nothing to undo when a run halts
    (the answers of the few in the pipe are dropped)."""
    worth_it = engine.worth_a_pool(files, PARALLEL_MIN_BYTES, _not_yaml)
    return fork_pool(jobs, ahead=PENDING_BLOCKS) if worth_it else None


def _not_yaml(path: str) -> bool:
    """YAML is read record by record in the reading process (no blocks for workers)."""
    return format_of(path) != "yaml"  # (the suffixes of `reader.YAML_SUFFIXES`, or .gz)
