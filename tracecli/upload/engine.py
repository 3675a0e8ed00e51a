"""The block engine that validate and upload share: how an input is read, and the worker
pool that does the per-record work of its blocks, in input order.

An input is read one of four ways (`input_kind`): OpenTelemetry spans (the caller turns
them into calls), records one by one (YAML, a JSON array, another tool's format), a plain
JSON-lines file cut into byte ranges of whole lines, or a stream (gzip, stdin, a pipe) read
in blocks of whole lines. A block is a job: a function and its arguments, run by a forked
worker (`inputs.workers`) when the run has a pool, else right here; either way its result
comes back to the caller's `on_block`, in the order the jobs were submitted, with a few
jobs in flight per worker so that every core stays busy. A worker that dies (killed, out of
memory) costs nothing but time: the run stops the pool and does the jobs left in-process.

What a job computes, and what becomes of its result, is the caller's: validate checks
records (`validate_blocks`), upload checks and encodes them (`blocks`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from tracecli.inputs.blocks import plan_ranges, read_blocks
from tracecli.inputs.reader import Source, format_of
from tracecli.inputs.same_file import FileKey, Replaced
from tracecli.inputs.sniff import OTLP  # not otlp_lines: validate of JSONL needs no OpenTelemetry
from tracecli.inputs.streams import STDIN, open_stream, read_as_stream, stream_position
from tracecli.inputs.workers import (
    broken_pool_error,
    fork_pool,
    stop_pool,
    usable_cores,
    worker_count,
)

if TYPE_CHECKING:  # the pool's module comes with the pool (inputs/workers.py)
    from concurrent.futures import Future

# how an input is read (`input_kind`)
SPANS = "spans"  # OpenTelemetry spans
RECORDS = "records"  # record by record, in the reading process
PLAIN = "plain"  # a regular JSON-lines file, in byte ranges
STREAM = "stream"  # gzip, stdin, a pipe: their size says nothing

Job = tuple[Any, Callable[..., Any] | None, tuple[Any, ...]]  # (tag, function, arguments)


def input_kind(src: Source | None, path: str) -> str:
    """How `path` is read; `src` is it opened (None when it cannot be: reading it in blocks
    then says why)."""
    if src is not None:
        if src.foreign_kind == OTLP:
            return SPANS
        if src.fmt != "jsonl" or src.foreign is not None:
            return RECORDS
    return STREAM if read_as_stream(path) else PLAIN


def default_jobs(cap: int, spare: int) -> int:
    """Worker processes: $TRACECLI_JOBS (see `worker_count`), else the cores this process
    may use less `spare` (for a reading process that is busy too), at most `cap`; none on
    one core."""
    cores = usable_cores()
    return worker_count(max(0, min(cores - spare, cap)) if cores > 1 else 0)


PARALLEL_MIN_BYTES = 8 << 20  # inputs read in blocks below this: a pool costs more to start
# than it saves (validate, upload and convert each keep a name of their own for it)


def read_as_lines(path: str) -> bool:
    """Whether `path` is read as JSON lines (in blocks, so by workers), not YAML."""
    return format_of(path) == "jsonl"


def worth_a_pool(files: Sequence[str], min_bytes: int, in_blocks: Callable[[str], bool]) -> bool:
    """Whether the inputs read in blocks (`in_blocks`) add up to `min_bytes`: below that a
    pool costs more to start than it saves. Stdin counts as big, gzip as five times its
    size."""
    total = 0
    for f in files:
        if f == STDIN:
            total += min_bytes  # unknown size: assume it is worth it
        elif in_blocks(f):
            with contextlib.suppress(OSError):
                total += os.path.getsize(f) * (5 if f.lower().endswith(".gz") else 1)
    return total >= min_bytes


class Done:
    """A job done in this process, looking like a Future."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


class Pending(NamedTuple):
    """A submitted job: the caller's tag, its result to come, and how to redo it."""

    tag: Any
    result: Future[Any] | Done
    fn: Callable[..., Any] | None
    args: tuple[Any, ...]


def _ready(result: Future[Any] | Done) -> bool:
    """Whether a job's result is there (done here, or its worker answered)."""
    return isinstance(result, Done) or result.done()


class StreamStop(NamedTuple):
    """Why a stream was not read to its end: it could not be opened, or a read failed."""

    error: BaseException
    opened: bool


class Interrupted(Exception):
    """Ctrl-C while waiting for a worker: the block is given up."""


class _NeverRaised(Exception):
    pass


def _never() -> bool:
    return False


class Engine:
    """The pool and the jobs in flight. `on_block(tag, result)` gets each job's result in
    submission order (None for a job without a function: a marker the caller places).

    `per_job`, `extra`: jobs submitted ahead while a pool runs, per worker and beyond.
    `eager`: those jobs go to the workers' pipe at once and their answers wait in a
    pipe that holds several (`workers.fork_pool`'s `ahead`), so that the workers go on
    while this process is busy; not for a run that may halt (a job in the pipe is done
    even when the run no longer needs it). `share`: this process does a job itself,
    rather than wait for the oldest, when the workers already hold `share` jobs each not
    done (running or queued) and fewer than `per_job * jobs + extra` are in flight (see
    `_place`); 0: it always waits. `halted`: the run stops early (no more blocks
    are read or finished). `interrupted`: while set, a wait for a worker gives up (the
    block is dropped); None waits without looking.
    """

    def __init__(
        self,
        on_block: Callable[[Any, Any], None],
        *,
        pool: Any = None,
        jobs: int = 0,
        per_job: int = 1,
        extra: int = 0,
        eager: bool = False,
        share: int = 0,
        halted: Callable[[], bool] = _never,
        interrupted: Callable[[], bool] | None = None,
    ) -> None:
        self.on_block = on_block
        self.pool = pool
        self.jobs = jobs if pool is not None else 0
        self.per_job = per_job
        self.extra = extra
        self.eager = eager
        self.share = share
        self.halted = halted
        self.interrupted = interrupted
        self.pending: deque[Pending] = deque()
        # what a dead worker raises; imported with the pool (most runs need neither)
        self.broken: type[BaseException] = broken_pool_error() if pool is not None else _NeverRaised

    def start(self, jobs: int, worth_it: bool) -> None:
        """Fork `jobs` workers now if the inputs are `worth_it`; before any thread starts."""
        if jobs >= 1 and worth_it:
            ahead = self.per_job * jobs + self.extra - jobs if self.eager else 0
            self.pool = fork_pool(jobs, ahead)
        if self.pool is not None:
            self.jobs = jobs
            self.broken = broken_pool_error()

    # -- jobs ------------------------------------------------------------------------------
    def submit(self, tag: Any, fn: Callable[..., Any] | None, args: tuple[Any, ...]) -> None:
        if fn is None:
            result: Future[Any] | Done = Done(None)
        elif self.pool is None:
            result = Done(fn(*args))
        elif self.share:
            result = self._place(fn, args)
        else:
            try:
                result = self.pool.submit(fn, *args)
            except self.broken:
                self._in_process()
                result = Done(fn(*args))
        self.pending.append(Pending(tag, result, fn, args))
        limit = self.per_job * self.jobs + self.extra if self.pool is not None else 0
        while len(self.pending) > limit and not self.halted():
            self._finish()

    def _place(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Future[Any] | Done:
        """A job handed to the workers, or done here when they have enough to do.

        A worker's answer costs this process its unpickling and the worker its pickling,
        and while this process waits for the oldest answer one core idles (upload's
        reading process needs a fifth of what its worker does per block). So: the answers
        that are back are taken first (in order: what they hold goes on to the senders);
        then the job goes to a worker whose queue is short (it never waits for this
        process), else is done here while there is room in flight, else this waits for
        the oldest answer and tries again."""
        limit = self.per_job * self.jobs + self.extra
        while True:
            pending = self.pending
            while pending and _ready(pending[0].result) and not self.halted():
                self._finish()
            if self.pool is None:
                return Done(fn(*args))
            if sum(1 for p in pending if not _ready(p.result)) < self.share * self.jobs:
                try:
                    job: Future[Any] = self.pool.submit(fn, *args)
                    return job
                except self.broken:
                    self._in_process()
                    continue
            if len(pending) < limit or self.halted():
                return Done(fn(*args))
            self._finish()

    def drain(self) -> None:
        """Finish every job in flight (before reading an input in-process: input order)."""
        while self.pending and not self.halted():
            self._finish()

    def _finish(self) -> None:
        job = self.pending.popleft()
        try:
            got = self._wait(job.result)
        except Interrupted:
            return
        except self.broken:
            self._in_process()
            got = job.fn(*job.args) if job.fn is not None else None
        self.on_block(job.tag, got)

    def _wait(self, result: Future[Any] | Done) -> Any:
        interrupted = self.interrupted
        if interrupted is None or isinstance(result, Done):
            return result.result()
        while True:
            try:
                return result.result(timeout=0.2)
            except TimeoutError:
                if interrupted():
                    raise Interrupted from None

    def _in_process(self) -> None:
        """A worker died (killed, out of memory): finish this run without the pool."""
        self.close(failed=True)
        self.pending = deque(
            Pending(p.tag, Done(p.fn(*p.args)) if p.fn is not None else p.result, p.fn, p.args)
            for p in self.pending
        )

    def close(self, failed: bool = False) -> None:
        """Stop the workers: politely after a run, at once when it failed (Ctrl-C)."""
        pool, self.pool = self.pool, None
        self.jobs = 0
        if pool is not None:
            stop_pool(pool, failed)

    # -- reading ---------------------------------------------------------------------------
    def read_plain(
        self,
        path: str,
        size: int,
        offset: int,
        block_bytes: int,
        job: Callable[[int, int, bool], Job],
        key: FileKey | None = None,
    ) -> OSError | None:
        """Submit a plain file from `offset` (a line start) as byte ranges of whole lines:
        `job(offset, length, last)`; the error when the file cannot be cut so. Nothing
        when the name no longer holds the file `key` (rotated away: found by the next run)."""
        try:
            ranges = plan_ranges(path, size, block_bytes, offset, key)
        except Replaced:
            return None
        except OSError as exc:
            return exc
        last = len(ranges) - 1
        for n, (start, length) in enumerate(ranges):
            if self.halted():
                return None
            self.submit(*job(start, length, n == last))
        return None

    def read_stream(
        self, path: str, block_bytes: int, job: Callable[[bytes, int, bool], Job]
    ) -> StreamStop | None:
        """Submit a stream as blocks of whole lines: `job(data, bytes read, first)`. A read
        error stops it: the blocks before it are finished first, then it is returned."""
        try:
            stream = open_stream(path)
        except OSError as exc:
            return StreamStop(exc, opened=False)
        first = True
        try:
            for data in read_blocks(stream, block_bytes):
                if self.halted():
                    return None
                if isinstance(data, Exception):
                    self.drain()
                    return StreamStop(data, opened=True)
                self.submit(*job(data, stream_position(stream), first))
                first = False
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
        return None
