"""The embedded store (an in-process `tracecli.store.db.Store`), spoken to like a server.

Bodies are the very bytes a server would get; decoding them here costs a little, but it
keeps one upload path for every target, so what the embedded store holds is exactly what a
server would have been sent, read as weave's server reads it (integers beyond 64 bits exact).
A `calls/complete` body (nearly every request of an upload) is read into rows without
building its JSON values (`tracecli.store.body_rows`) when it can be, outside any lock:
SQLite writes are serial (the store's one writer), but a request's rows are built while
another's are written, and requests waiting meanwhile share a transaction
(`tracecli.store.group_commit`).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from tracecli.diagnostics import TracecliError, cannot_write
from tracecli.store.body_rows import ROW_COLUMNS, completed_rows
from tracecli.store.db import Store
from tracecli.store.exact_json import loads_exact
from tracecli.store.group_commit import GroupWriter
from tracecli.store.rows import StoreError
from tracecli.targets import CountingTarget
from tracecli.targets.outcome import Outcome
from tracecli.targets.retry import Action
from tracecli.wire.encode import CALL_END, CALL_START, UPSERT_BATCH

log = logging.getLogger("tracecli.targets.local")


class LocalStoreTarget(CountingTarget):
    # Requests in flight: one's rows are built while another's are written (GIL released
    # in SQLite), and those that wait meanwhile are written in one transaction
    # (`store.group_commit`). Three threads measured no faster than two, with more CPU
    # and memory (a request's body and rows each).
    concurrency = 2

    def __init__(self, db: Path, *, bulk: bool = False) -> None:
        """`bulk`: a load that ends (not `--follow`): into an empty store, the id indexes are
        built once when it ends (`close`), not call by call (`tracecli.store.id_indexes`)."""
        db.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(str(db))
        self.store = Store(db)  # (upload reads its id and marks: journal.store_marks)
        self._grouped = GroupWriter(self.store, ROW_COLUMNS)
        self._deferred = False
        if bulk:
            try:
                self._deferred = self.store.defer_id_indexes()
            except BaseException:  # (Ctrl-C, a closed store)
                self.store.close()
                raise

    def post(self, route: str, body: bytes, *, can_split: bool = True) -> Outcome:
        with self._lock:
            self._counted(body)
        try:
            rows = completed_rows(body) if route.endswith("/calls/complete") else None
            if rows is not None:
                self._grouped.write(rows)
                return Outcome(Action.OK, 200, body={})
            res = self._apply(route, loads_exact(body))
        except (ValueError, TypeError, KeyError, TracecliError) as exc:
            action = Action.SPLIT if can_split else Action.REJECT
            return Outcome(action, 400, reason=str(exc) or type(exc).__name__)
        except sqlite3.Error as exc:  # the file, not the records (a full disk): all stops
            raise StoreError(cannot_write("trace store", self.store.path, exc)) from None
        return Outcome(Action.OK, 200, body=res)

    def _apply(self, route: str, req: dict[str, Any]) -> Any:
        s = self.store
        if route.endswith("/calls/complete"):
            return s.calls_complete(req["batch"])
        if route == UPSERT_BATCH:
            return s.upsert_batch(req["batch"])
        if route == CALL_START:
            return s.call_start(req["start"])
        if route == CALL_END:
            return s.call_end(req["end"])
        raise ValueError(f"the embedded store has no route {route}")

    def close(self) -> None:
        """Build the indexes a bulk load left out, then close the store. Should that fail
        (a full disk, Ctrl-C), every call stays stored: the next tracecli to open the
        store builds them."""
        try:
            if self._deferred:
                self._deferred = False
                try:
                    self.store.restore_id_indexes()
                except TracecliError as exc:
                    log.warning("%s; the next open of the store builds them", exc)
        finally:
            close = getattr(self.store, "close", None)
            if close is not None:
                close()
