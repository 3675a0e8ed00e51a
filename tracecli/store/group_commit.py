"""Batches of call rows from several threads written in one transaction (group commit).

Why: an upload to the embedded store posts its requests from a few sender threads. Each
request's rows are built in Python (holding the GIL) and then written by SQLite, which
releases the GIL while it steps and while its COMMIT writes the WAL: so one thread's rows
can be built while another's are written, and the store's serial part is SQLite alone.
While one transaction runs, the batches that other threads hand in wait together; the next
thread to write takes all of them into one transaction, so each index page those calls
touch is written to the WAL once per transaction rather than once per request.

Durability is unchanged: `write` returns only after the transaction holding its batch has
committed, so a request is acknowledged (and journalled) only once its calls are stored,
and a killed upload sends again what was not (every write is an upsert: a call is never
stored twice). A transaction of several batches that fails is written again batch by
batch, so each batch gets its own outcome, as if it had been written alone.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tracecli.store.db import Store

__all__ = ["GroupWriter"]


@dataclass(slots=True)
class _Batch:
    """One thread's rows, and what became of them once a transaction has taken them."""

    rows: Sequence[tuple[Any, ...]]
    done: bool = False
    error: BaseException | None = None


class GroupWriter:
    """Completed calls' rows (`complete_columns` order) written to `store` by whichever
    calling thread finds no transaction running, together with every batch waiting then."""

    def __init__(self, store: Store, complete_columns: tuple[str, ...]) -> None:
        self._store = store
        self._columns = complete_columns
        self._cond = threading.Condition()
        self._waiting: list[_Batch] = []
        self._writing = False

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Store these rows; returns once they are committed (raises what writing them
        alone would have raised)."""
        mine = _Batch(rows)
        with self._cond:
            self._waiting.append(mine)
            while self._writing and not mine.done:
                self._cond.wait()
            if not mine.done:  # no transaction running: this thread writes the group
                self._writing = True
                group, self._waiting = self._waiting, []
        if not mine.done:
            try:
                self._write_group(group)
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()
        if mine.error is not None:
            raise mine.error

    def _write_group(self, group: list[_Batch]) -> None:
        try:
            if len(group) > 1:
                try:
                    self._write([r for b in group for r in b.rows])
                except Exception:  # each batch again on its own: its own outcome
                    pass
                else:
                    for b in group:
                        b.done = True
                    return
            for b in group:
                try:
                    self._write(b.rows)
                except Exception as exc:
                    b.error = exc
                b.done = True
        finally:  # (this thread stopped by a BaseException: the rest were not written)
            for b in group:
                if not b.done:
                    b.error = RuntimeError("the store's transaction did not finish")
                    b.done = True

    def _write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self._store.write_rows(complete_rows=rows, complete_columns=self._columns)
