"""The upload's worker pool: how many workers, whether a pool is worth starting, and the
blocks submitted to it (or done right here, looking the same), in input order.

The blocks themselves (what a worker does with one) are `upload.blocks`; the pool is
forked by `inputs.workers`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from tracecli.inputs.reader import STDIN
from tracecli.inputs.workers import fork_pool, usable_cores, worker_count

PENDING_BLOCKS = 1  # blocks submitted beyond one per worker (each holds ~3x its bytes)
PARALLEL_MIN_BYTES = 8 << 20  # below this a pool costs more to start than it saves


def default_jobs() -> int:
    """Worker processes for big inputs: $TRACECLI_JOBS (see `worker_count`), else one less
    than the cores this process may use (the reading process is busy too), at most 4."""
    return worker_count(max(0, min(usable_cores() - 1, 4)))


def start_pool(files: Sequence[str], jobs: int) -> ProcessPoolExecutor | None:
    """Worker processes forked now, or None (small inputs, one core, not Linux). Must run
    before any thread starts (see `tracecli.inputs.workers`)."""
    total = 0
    for f in files:
        if f == STDIN:
            total += PARALLEL_MIN_BYTES  # unknown size: assume it is worth it
        elif not f.lower().endswith((".yaml", ".yml", ".yaml.gz", ".yml.gz")):
            with contextlib.suppress(OSError):
                total += os.path.getsize(f) * (5 if f.lower().endswith(".gz") else 1)
    return fork_pool(jobs) if total >= PARALLEL_MIN_BYTES else None


class Done:
    """A block prepared in this process, looking like a Future."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


class Block:
    """A submitted block: its input, where it ends in the file, and how to redo it."""

    __slots__ = ("args", "done_bytes", "fn", "last", "result", "src")

    def __init__(
        self, src: int, result: Any, fn: Any, args: tuple[Any, ...], done_bytes: int, last: bool
    ) -> None:
        self.src = src
        self.result = result
        self.fn = fn
        self.args = args
        self.done_bytes = done_bytes
        self.last = last


class Interrupted(Exception):
    pass


def wait_block(result: Future[Any] | Done, interrupted: Callable[[], bool]) -> Any:
    """A block's result; gives up (raising Interrupted) once Ctrl-C was pressed."""
    if isinstance(result, Done):
        return result.result()
    while True:
        try:
            return result.result(timeout=0.2)
        except TimeoutError:
            if interrupted():
                raise Interrupted from None
