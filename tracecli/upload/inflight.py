"""The requests the sending threads have in flight, and Ctrl-C giving up on them.

Ctrl-C lets the requests in flight finish for a grace time; one whose answer never comes
(a server or a proxy that hangs) would otherwise be in no count at all: neither stored,
rejected nor unsent. `InFlight.abandon` counts its records unsent (the next run sends them,
as after `kill -9`), and the callbacks made `fenced` ignore what its worker learns later,
so no record is counted twice."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

J = TypeVar("J")


class InFlight(Generic[J]):
    """Worker thread -> the job it sends; whether the upload gave up on them."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._jobs: dict[int, J] = {}
        self._told: set[int] = set()  # threads whose job had a verdict already (a part)
        self.abandoned = False

    def begin(self, job: J) -> None:
        with self._lock:
            self._jobs[threading.get_ident()] = job

    def end(self) -> None:
        with self._lock:
            self._jobs.pop(threading.get_ident(), None)
            self._told.discard(threading.get_ident())

    def abandon(self, unsent: Callable[[J], None]) -> None:
        """Give up on the jobs in flight: `unsent` (not fenced) for each that had no verdict
        yet. (One that had, for a part, keeps the rest out of the counts rather than count
        that part twice: the journal is right either way.)"""
        with self._lock:
            self.abandoned = True
            jobs = [job for t, job in self._jobs.items() if t not in self._told]
            self._jobs.clear()
            for job in jobs:
                unsent(job)

    def fenced(self, fn: Callable[..., None]) -> Callable[..., None]:
        """`fn`, unless the upload gave up on the jobs in flight (see `abandon`)."""

        def call(*args: object) -> None:
            with self._lock:
                if not self.abandoned:
                    self._told.add(threading.get_ident())
                    fn(*args)

        return call


__all__ = ["InFlight"]
