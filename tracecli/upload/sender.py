"""Send chunks on worker threads, split what the server refuses, and report each record's fate.

`Workers` is the one sending engine, for every target: worker threads, a short queue,
the outage stop, Ctrl-C and the fatal error. `Sender` is its Weave part (chunks of calls,
split and reconciled); Freeplay's (one request per record) is `upload.freeplay_send`.

The reading loop must never wait for the network, and the server must never wait for the
reader: `concurrency` daemon threads take chunks from a short queue (so memory stays
bounded: the reader blocks when it is full) and post them through the target's one pooled
client. Each record ends in exactly one of three callbacks: acknowledged (the server stored
it; the journal records it right away), rejected (the server refused it for its content:
it goes to the rejected file with the reason), or unsent (no answer came, retries ran out
on a server that kept failing, Ctrl-C or an auth failure stopped the upload first: the next
run sends it). A record the server never refused is never "rejected".

Two stops keep a dead server from costing hours: no answer to any request for --max-outage
seconds (the transport's outage watch: connection refused, reset, timed out), or retries
that ran out (--max-retry-time) for `OUTAGE_GIVE_UPS` requests in a row with nothing stored
between (a server that answers, but only 5xx/429). Either way the rest is left unsent.

Refusals are narrowed down, never applied to innocent records: a 413 or a content error
(400/404/409/422) on a chunk of several calls splits it in halves, sent one after the other,
until the refused calls stand alone; a 422 that names the failing batch items drops those
at once. A start and its end share one unit and so are never separated by a split.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from tracecli.diagnostics import TracecliError
from tracecli.targets import ChecksStored, Target
from tracecli.targets.outcome import ALREADY_STORED, AlreadyStored, Outcome
from tracecli.targets.reconcile import chunk_keys, is_stored, item_key, split_stored
from tracecli.targets.retry import Action
from tracecli.upload.give_ups import gave_up_reason
from tracecli.upload.inflight import InFlight
from tracecli.wire.chunking import SINGLE, Chunk
from tracecli.wire.encode import CALL_START

log = logging.getLogger("tracecli.upload.sender")

# Callbacks get a chunk (or the part of one) whose records share the fate.
OnAcked = Callable[[str, Chunk, int], None]  # route, what it stored, calls completed
OnRejected = Callable[[Chunk, str, "int | None"], None]  # what, the reason, HTTP status
OnUnsent = Callable[[Chunk], None]


OUTAGE_GIVE_UPS = 8  # chunks given up in a row (nothing acknowledged between) that stop it
COLLECT_EVERY = 4  # requests between full garbage collections (see _collect)
QUEUED = 2  # chunks ready beyond one per thread: enough to never starve, few to hold


J = TypeVar("J")  # what one worker takes at a time: a chunk, a Freeplay record


class Workers(Generic[J]):
    """Jobs sent on `concurrency` threads through one target, with one outage stop.

    A subclass says how one job is sent and what its fate is (`_send`, which calls
    `_count_give_up` with each request's outcome) and what becomes of a job that is not
    sent (`_unsent`). Everything else (the queue, the threads, waiting, Ctrl-C, a fatal
    error, the stop when the server is down) is the same for every target.
    """

    who = "the server"  # in the outage message: "<who> failed 8 requests in a row"
    kept = "stored"  # what nothing was between those requests

    def __init__(self, target: Target, *, concurrency: int) -> None:
        self.target = target
        self.fatal: TracecliError | None = None  # an AuthError or config error: all stops
        self.halted: str | None = None  # why sending stopped early (an outage), if it did
        self._give_ups = 0  # chunks whose retries ran out in a row, nothing acked between
        # every request given up (retries ran out, Retry-After too long) and the last one's
        # outcome: why records were left unsent when there were too few to stop the run
        self.gave_up = 0
        self.last_give_up: Outcome | None = None
        self._outage_limit = max(OUTAGE_GIVE_UPS, 2 * concurrency)
        self._queue: queue.Queue[J | None] = queue.Queue(maxsize=concurrency + QUEUED)
        self._stopping = threading.Event()
        self._cond = threading.Condition()
        self._pending = 0  # jobs submitted and not finished
        self._flight = InFlight[J]()  # given up at Ctrl-C when an answer never comes
        self._posts = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"tracecli-send-{i}", daemon=True)
            for i in range(concurrency)
        ]
        for t in self._threads:
            t.start()

    def _send(self, job: J) -> None:
        raise NotImplementedError

    def _unsent(self, job: J) -> None:
        raise NotImplementedError

    @property
    def stopped(self) -> bool:
        return self._stopping.is_set() or self.broken

    @property
    def broken(self) -> bool:
        """Nothing more will be sent: a fatal error, or the server looks down."""
        return self.fatal is not None or self.halted is not None

    def submit(
        self,
        job: J,
        interrupted: Callable[[], bool] = lambda: False,
        tick: Callable[[], None] | None = None,
    ) -> bool:
        """Queue a job (blocking while the queue is full, calling `tick` meanwhile so a
        progress line keeps saying what the requests wait for); False when the upload is
        stopping, in which case the job's records were reported unsent."""
        with self._cond:
            self._pending += 1
        while True:
            if self.stopped or interrupted():
                self._finish_unsent(job)
                return False
            try:
                self._queue.put(job, timeout=0.1)
                return True
            except queue.Full:
                if tick is not None:
                    tick()
                continue

    def wait(
        self,
        timeout: float | None = None,
        interrupted: Callable[[], bool] | None = None,
        tick: Callable[[], None] | None = None,
    ) -> bool:
        """Wait until every submitted job is finished; False on timeout or interruption."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending:
                if interrupted is not None and interrupted():
                    return False
                left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
                if left <= 0:
                    return False
                self._cond.wait(left)
                if tick is not None:
                    tick()
        return True

    def stop(self, grace: float) -> None:
        """Ctrl-C: send nothing new, give requests in flight `grace` seconds to be answered,
        then cut short their retries (their records stay unsent, for the next run)."""
        self._stopping.set()
        while True:  # jobs still queued will not be sent
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                self._finish_unsent(job)
        if not self.wait(grace):
            self.target.cancel()
            if not self.wait(2.0):  # an answer that never comes: see upload.inflight
                self._flight.abandon(self._unsent_abandoned)

    def _unsent_abandoned(self, job: J) -> None:
        """`_unsent` through the callbacks that are not fenced off (see `InFlight`)."""
        raise NotImplementedError

    def close(self) -> None:
        self._stopping.set()
        for _ in self._threads:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                break

    def join(self, timeout: float) -> None:
        """Wait for the threads to end (after `close`)."""
        for t in self._threads:
            t.join(timeout=timeout)

    # -- worker side ----------------------------------------------------------------------
    def _collect(self) -> None:
        """Free the request bodies now. The HTTP client's request and response objects
        refer to each other, so a sent body (up to 32 MiB) lives until a full garbage
        collection, which the reading loop's allocations make rare: two dozen spent bodies
        were seen alive at once. `upload` freezes what existed before it, so a full
        collection here only walks the run's own objects."""
        with self._cond:
            self._posts += 1
            due = self._posts % COLLECT_EVERY == 0
        if due:
            gc.collect()

    def _finish_unsent(self, job: J) -> None:
        self._unsent(job)
        self._done()

    def _done(self) -> None:
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._flight.begin(job)
            try:
                if self.stopped:
                    self._unsent(job)
                else:
                    self._send(job)
            except TracecliError as exc:  # AuthError, TLS/config: nothing else can succeed
                if self.fatal is None:
                    self.fatal = exc
                self._unsent(job)
            except BaseException as exc:  # a bug: do not lose the records silently
                if self.fatal is None:
                    self.fatal = TracecliError(f"internal error while sending: {exc!r}")
                self._unsent(job)
            finally:
                self._flight.end()
                self._done()

    def _count_give_up(self, action: Action, out: Outcome | None = None) -> None:
        """Stop when the server is down: no answer to any request for --max-outage seconds
        (UNREACHABLE, from the transport's outage watch), or retries that ran out for
        `_outage_limit` requests in a row with nothing acknowledged between (a server that
        answers, but only with 5xx/429). Either way it is not refusing records: stop, rather
        than spend --max-retry-time on every job left. What is not sent is left for the
        next run (the journal knows what was stored)."""
        with self._cond:
            if action is Action.OK:
                self._give_ups = 0
            elif action is Action.UNREACHABLE and self.halted is None:
                self.halted = halt_reason(self.target, out)
            elif action is Action.GIVE_UP:
                self._give_ups += 1
                self.gave_up += 1
                self.last_give_up = out
                if self._give_ups >= self._outage_limit and self.halted is None:
                    self.halted = gave_up_reason(self.who, self._give_ups, out, self.kept)


class Sender(Workers[Chunk]):
    """Weave's chunks of calls: split what the server refuses, reconcile after a failed
    request, one call's steps in order on the SINGLE route."""

    def __init__(
        self,
        target: Target,
        *,
        concurrency: int,
        on_acked: OnAcked,
        on_rejected: OnRejected,
        on_unsent: OnUnsent,
    ) -> None:
        super().__init__(target, concurrency=concurrency)
        self.on_acked = self._flight.fenced(on_acked)
        self.on_rejected = self._flight.fenced(on_rejected)
        self.on_unsent = self._flight.fenced(on_unsent)
        self._unsent_now = on_unsent

    def _unsent(self, job: Chunk) -> None:
        self.on_unsent(job)

    def _unsent_abandoned(self, job: Chunk) -> None:
        self._unsent_now(job)

    def _send(self, job: Chunk) -> None:
        if job.route == SINGLE:
            self._single(job)
        else:
            self._deliver(job)

    def _deliver(self, chunk: Chunk) -> None:
        if self.broken:
            self.on_unsent(chunk)
            return
        target = self.target
        if isinstance(target, ChecksStored):
            left = [chunk]  # what is still to send, narrowed by each recheck

            def recheck() -> bytes | AlreadyStored | None:
                held, rest = self._held(target, left[0])
                if not held.units and rest.nitems == left[0].nitems:
                    return None
                if held.units:
                    self.on_acked(held.route, held, held.units)
                left[0] = rest
                return rest.body() if rest.units else ALREADY_STORED

            out = target.post(chunk.route, chunk.body(), can_split=chunk.units > 1, recheck=recheck)
            chunk = left[0]
            if not chunk.units:  # all of it turned out to be stored already
                self._collect()
                self._count_give_up(Action.OK)
                return
        else:
            out = target.post(chunk.route, chunk.body(), can_split=chunk.units > 1)
        self._collect()
        action = out.action
        self._count_give_up(action, out)
        if action is Action.OK:
            partial = out.body.get("rejected_items") if isinstance(out.body, dict) else None
            if partial:  # stored, all but these (an OTLP partial success)
                self._partial(chunk, partial, out.status)
            else:
                self.on_acked(chunk.route, chunk, chunk.units)
        elif action is Action.SPLIT:
            named = out.item_errors if out.status == 422 else {}
            if named and self._drop_named(chunk, named, out.status):
                return
            for part in chunk.split():
                self._deliver(part)
        elif action in _NO_VERDICT:
            self.on_unsent(chunk)
        else:  # REJECT: the server refused it for its content
            self.on_rejected(chunk, out.reason, out.status)

    def _held(self, target: ChecksStored, chunk: Chunk) -> tuple[Chunk, Chunk]:
        """(what of `chunk` the server holds, what is left to send); all left when the
        server cannot say."""
        stored = target.stored_calls(chunk_keys(chunk))
        if stored is None:
            return Chunk(chunk.route), chunk
        held, rest = split_stored(chunk, stored)
        if held.units or rest.nitems < chunk.nitems:
            log.info(
                "%s: %d of %d items were already stored; sending the other %d",
                chunk.route,
                chunk.nitems - rest.nitems,
                chunk.nitems,
                rest.nitems,
            )
        return held, rest

    def _partial(self, chunk: Chunk, named: dict[int, str], status: int | None) -> None:
        """A request the server took but for the items `named` (index → reason): those
        units rejected, the others acknowledged (one item per unit: --mode otel)."""
        bad = sorted(i for i in named if 0 <= i < chunk.units)
        for i in bad:
            self.on_rejected(chunk.subset([i]), named[i], status)
        rest = [i for i in range(chunk.units) if i not in named]
        if rest:
            kept = chunk.subset(rest)
            self.on_acked(kept.route, kept, kept.units)

    def _drop_named(self, chunk: Chunk, named: dict[int, str], status: int | None) -> bool:
        """Reject the units holding the items a 422 names and send the rest again.
        False (bisect instead) when the indices do not fit this chunk."""
        owner: list[int] = []
        start = 0
        for ui, end in enumerate(chunk.item_ends):
            owner.extend([ui] * (end - start))
            start = end
        if any(i < 0 or i >= len(owner) for i in named):
            return False
        bad: dict[int, list[str]] = {}
        for i, msg in sorted(named.items()):
            bad.setdefault(owner[i], []).append(f"item {i}: {msg}")
        for ui, msgs in bad.items():
            self.on_rejected(chunk.subset([ui]), "; ".join(msgs), status)
        rest = [ui for ui in range(chunk.units) if ui not in bad]
        if rest:
            self._deliver(chunk.subset(rest))
        return True

    def _single(self, chunk: Chunk) -> None:
        """/call/start then /call/end, each only after the one before was acknowledged.
        With a record per step, each step acknowledges its own record; a completed call
        split in two is acknowledged when its end is."""
        steps = chunk.steps
        per_step = len(chunk.recs) == len(steps)
        for i, (route, body) in enumerate(zip(steps, chunk.items, strict=True)):
            if self.fatal is not None:
                self.on_unsent(_records(chunk, i if per_step else 0))
                return
            out = self._post_step(route, body)
            self._collect()
            self._count_give_up(out.action, out)
            if out.action is Action.OK:
                last = int(i == len(steps) - 1)
                step = Chunk(route)
                if per_step:
                    step.recs.append(chunk.recs[i])
                elif last:
                    step.recs.extend(chunk.recs)
                step.items.append(body)
                step.item_ends.append(1)
                step.rec_ends.append(len(step.recs))
                self.on_acked(route, step, last)
                continue
            left = _records(chunk, i if per_step else 0)
            if out.action in _NO_VERDICT:
                self.on_unsent(left)
            else:
                self.on_rejected(left, out.reason, out.status)
            return

    def _post_step(self, route: str, body: bytes) -> Outcome:
        """One single-call request; a start the server already holds (a 500 on a re-sent
        start, see `tracecli.targets.reconcile`) counts as sent."""
        target = self.target
        if route != CALL_START or not isinstance(target, ChecksStored):
            return target.post(route, body, can_split=False)

        def recheck() -> AlreadyStored | None:
            key = item_key(route, body)
            stored = target.stored_calls([key]) if key is not None else None
            return ALREADY_STORED if key and stored and is_stored(key, stored) else None

        return target.post(route, body, can_split=False, recheck=recheck)


# Outcomes that say nothing against the records: no answer, or retries that ran out on a
# server that kept failing. They are unsent (the next run sends them), never rejected.
_NO_VERDICT = frozenset({Action.CANCELLED, Action.GIVE_UP, Action.UNREACHABLE})


def halt_reason(target: object, out: Outcome | None = None) -> str:
    """`server unreachable since 14:02:11`: when the target stopped answering."""
    since = getattr(target, "unreachable_since", None)
    if since is None:
        return "server unreachable" + (f" ({out.reason})" if out is not None else "")
    return "server unreachable since " + time.strftime("%H:%M:%S", time.localtime(since))


def _records(chunk: Chunk, first: int) -> Chunk:
    """The records of a SINGLE chunk from step `first` on (with all its items, so the
    records can still be rebuilt as they were read)."""
    if first == 0:
        return chunk
    c = Chunk(chunk.route)
    c.items.extend(chunk.items)
    c.recs.extend(chunk.recs[first:])
    c.item_ends.append(len(c.items))
    c.rec_ends.append(len(c.recs))
    c.extras = dict(chunk.extras)
    c.steps = chunk.steps
    return c
