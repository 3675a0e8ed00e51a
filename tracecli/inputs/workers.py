"""Set-up of the forked worker processes that parse and check blocks for validate and upload.

A worker must not outlive the run that forked it. A pool's workers wait on a pipe that their
siblings also hold open, so when the reading process is killed (`kill -9`, the OOM killer,
a CI job cancelled) they never see end-of-file and would sleep forever, each holding its
share of memory. On Linux the kernel can kill them with their parent (PR_SET_PDEATHSIG).
Ctrl-C and SIGTERM are the reading process's to handle: it stops the run and then the
workers (sent to the whole process group, as CI does, they would kill the workers first).

Fork, and only on Linux: a worker needs nothing but this package's functions, and a forked
one has them without re-importing anything (spawn and forkserver re-run the caller's
`__main__`, which a library function must not require to be guarded). The fork must happen
before the run starts a thread (a sender, a progress display): forking a process with
threads is what makes fork unsafe.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from tracecli.diagnostics import UsageError

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1
JOBS_ENV = "TRACECLI_JOBS"
MAX_JOBS = 64  # a typo of 1000 would fork 1000 processes


def usable_cores() -> int:
    """The cores this process may run on (a container or `taskset` may allow fewer)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worker_count(default: int) -> int:
    """Worker processes for a run: $TRACECLI_JOBS when set, else `default`.

    One rule for every command, so that the variable means the same to validate and
    upload: N worker processes parse and check blocks of lines beside the reading process,
    0 none (everything in the reading process). A value that is not a whole number from 0
    to MAX_JOBS is a usage error rather than silently the default: a run that quietly
    ignores its setting is measured wrongly."""
    env = os.environ.get(JOBS_ENV, "").strip()
    if not env:
        return default
    try:
        jobs = int(env)
    except ValueError:
        jobs = -1
    if not 0 <= jobs <= MAX_JOBS:
        raise UsageError(
            f"{JOBS_ENV} must be a whole number of worker processes from 0 (none) to "
            f"{MAX_JOBS}, got {env!r}"
        )
    return jobs


def init_worker(parent: int) -> None:
    """The pool's initializer; `parent` is the reading process's pid, taken before the fork."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the same: a job cancelled by its group
    import ctypes  # imported by fork_pool before the fork: already here

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux's libc: the pipe's end still stops them
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


_HASH_PROBE = "tracecli worker hash probe"


def fork_pool(jobs: int, ahead: int = 0) -> ProcessPoolExecutor | None:
    """`jobs` workers, forked now; None where that is not possible. They must hash strings
    as this process does (validate's workers send call ids as hashes); forked ones do.

    `ahead`: jobs handed to the workers' pipe beyond the one each runs (see `_executor`); 0
    keeps the executor's own way (one, the rest handed over as workers finish)."""
    if jobs < 1 or not sys.platform.startswith("linux"):
        return None
    import ctypes  # noqa: F401 (for init_worker, imported once here rather than per worker)
    import multiprocessing
    from concurrent.futures.process import BrokenProcessPool  # imported by the runs that fork

    try:
        pool = _executor(jobs, multiprocessing.get_context("fork"), ahead)
    except (OSError, ValueError, RuntimeError):
        return None
    try:
        same = pool.submit(hash, _HASH_PROBE).result() == hash(_HASH_PROBE)  # forks them all
    except (OSError, ValueError, RuntimeError, BrokenProcessPool):
        stop_pool(pool, failed=True)
        return None
    except BaseException:  # Ctrl-C as they start: stopped, else the exit waits for them
        stop_pool(pool, failed=True)
        raise
    if not same:
        pool.shutdown(wait=True)
        return None
    return pool


ANSWER_PIPE_BYTES = 1 << 20  # Linux's limit for any user (/proc/sys/fs/pipe-max-size)


def _executor(jobs: int, ctx: Any, ahead: int) -> ProcessPoolExecutor:
    """A pool whose workers can go on while this process is busy, when `ahead` > 0.

    The executor hands jobs to its workers and takes their answers in a thread of this
    process, which needs the interpreter lock for each: while this process computes (the
    cross-record checks sort 65k ids at a time, ~50 ms), a worker that finished waits for
    its next job, and a worker whose answer outgrows the pipe (a validate block's answer
    is ~180 KB, the pipe 64 KB) waits for it to be read. Measured on 100k calls, the two
    workers idled ~45 ms each at every such stall. So: `ahead` jobs go into the jobs' pipe
    as soon as they are submitted (the executor's queue size is read from its module when
    it is made), and the answers' pipe holds 1 MiB (several answers). Both are best
    effort: without them the run is slower, not different."""
    from concurrent.futures import process

    settings = vars(process)  # (a Final name to type checkers: it is read, not meant to be set)
    saved = settings.get("EXTRA_QUEUED_CALLS", 1)  # (3.2 to 3.13 have it)
    settings["EXTRA_QUEUED_CALLS"] = max(saved, ahead)
    try:
        pool = process.ProcessPoolExecutor(
            max_workers=jobs, mp_context=ctx, initializer=init_worker, initargs=(os.getpid(),)
        )
    finally:
        settings["EXTRA_QUEUED_CALLS"] = saved
    if ahead > 0:
        widen(getattr(getattr(pool, "_result_queue", None), "_writer", None))
    return pool


def widen_pool(pool: Any) -> None:
    """A pool's two pipes (jobs to the workers, answers back) widened from 64 KiB to hold a
    whole block or answer (OTLP: ~256 KiB out, ~380 KiB back for upload).

    Through a 64 KiB pipe a block crosses in several writes, each waiting for the other
    side to read, and the reading process's side is a thread (the pool's feeder, its
    manager) that must take the GIL back from the busy main thread for each: up to a
    switch interval (5 ms) a time, the worker idle meanwhile. Best effort: a pool built
    otherwise (or None), or a kernel that refuses, keeps its pipes."""
    if pool is None:
        return
    widen(getattr(getattr(pool, "_call_queue", None), "_writer", None))
    widen(getattr(getattr(pool, "_result_queue", None), "_reader", None))


def widen(end: Any) -> None:
    """Let a pipe (either end: a `multiprocessing` connection, or None) hold
    ANSWER_PIPE_BYTES, where the system allows it; best effort."""
    try:
        import fcntl  # (Linux: fork_pool runs nowhere else)
    except ImportError:
        return
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)  # Python 3.10+
    if end is None or setsize is None:
        return
    with contextlib.suppress(AttributeError, OSError, ValueError):
        fcntl.fcntl(end.fileno(), setsize, ANSWER_PIPE_BYTES)


def broken_pool_error() -> type[BaseException]:
    """What a pool raises when one of its workers died; asked only by runs with a pool."""
    from concurrent.futures.process import BrokenProcessPool

    return BrokenProcessPool


def stop_pool(pool: ProcessPoolExecutor, failed: bool) -> None:
    """Let the workers go: waiting for them after a run, killing them after a failure (a
    broken or interrupted pool may never answer). Either way the pool's manager thread is
    over before this returns: left running at exit, it races the interpreter's own
    clean-up, which then prints a traceback (OSError: Bad file descriptor)."""
    if not failed:
        pool.shutdown(wait=True, cancel_futures=True)
        return
    procs = list((getattr(pool, "_processes", None) or {}).values())
    # (taken before `shutdown`, which forgets them when it does not wait)
    manager = getattr(pool, "_executor_manager_thread", None)
    answers = getattr(pool, "_result_queue", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.join(timeout=5)
    _end_answers(answers)
    if manager is not None:
        manager.join(5.0)


def _end_answers(answers: Any) -> None:
    """Close this process's end for writing the answers' pipe, once the workers are dead.

    A worker killed amid an answer (one write of its header, another of its bytes) leaves
    the manager thread reading bytes that never come: this process holds the pipe's
    writing end too, so the read never sees end-of-file, and the interpreter's exit then
    waits for that thread for ever (Ctrl-C or SIGTERM of a validate of a big file hung
    about one time in five). Closed, the read ends, and the thread finds the pool broken
    and stops. Nothing in this process writes answers."""
    writer = getattr(answers, "_writer", None)
    if writer is not None:
        with contextlib.suppress(OSError):
            writer.close()
