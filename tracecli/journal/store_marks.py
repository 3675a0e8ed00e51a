"""Marks that tell an upload the embedded store went back in time (an older copy restored).

The journal knows a store by its path and its store id (`database.store_key`), which tells a
new or replaced store file from the one it sent to; but a restored backup of the same store
keeps its id and lacks what was stored since, and the journal would skip those calls as sent.
So each upload leaves a random mark in the store and the same mark in its journal, when it
starts and when it ends; the next upload compares them. A different mark (or none where the
journal left one) means the store is not as this journal last left it: the journal forgets
what it recorded for the store and everything is sent again (the store keeps one of each).

Each journal (one per user state directory) has its own mark in the store, so two users, or
a CI job and a person, uploading to one store do not take each other's marks for a restore.
A mark is not a secret: random hex, nothing about the user or the files. Cautious by design:
an upload killed between writing the two copies of a mark at worst makes the next upload send
everything again, never skip a call; two uploads of one journal at once pair their writes
(`Journal.swap_note` holds the journal's write lock across both). Not seen: a copy taken
during an upload killed before its last mark (the copy keeps the mark the upload began with).
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tracecli.diagnostics import TracecliError
from tracecli.journal.resume import Journal

__all__ = ["MarkKeeper", "StoreGuard"]

_JOURNAL_ID = "journal-id"


@runtime_checkable
class MarkKeeper(Protocol):
    """What keeps the marks: the embedded store (`tracecli.store.sqlite_file.SqliteFile`)."""

    def mark(self, name: str) -> str | None: ...

    def set_mark(self, name: str, value: str) -> None: ...


@dataclass(slots=True)
class StoreGuard:
    """One upload's marks in one store: `open` checks them and leaves new ones, `close`
    leaves the upload's last."""

    journal: Journal
    keeper: MarkKeeper
    journal_id: str
    lost: bool = False  # the store was not as this journal left it: its record was dropped

    @classmethod
    def open(cls, journal: Journal, keeper: object) -> StoreGuard | None:
        """Check the store's mark against the journal's (None: `keeper` keeps no marks, a
        server target), forget the journal's record of the store when they differ, and stamp
        a new mark for this upload."""
        if not isinstance(keeper, MarkKeeper):
            return None
        made: list[str] = []

        def keep_or_make(old: str | None) -> str:  # (touched: notes are pruned when idle)
            made.append(old or _token())
            return made[0]

        journal.swap_note(_JOURNAL_ID, keep_or_make)
        guard = cls(journal, keeper, made[0])
        guard._stamp(check=True)
        if guard.lost:
            journal.forget_target()
        return guard

    def close(self) -> None:
        """The upload's last mark (before the store closes). Failing, it is left out: the
        mark of the start stands, true of what the journal held then."""
        with contextlib.suppress(TracecliError, sqlite3.Error):
            self._stamp(check=False)

    def _stamp(self, *, check: bool) -> None:
        """A new mark, in the store first, then in the journal (whose lock is held across
        both, so two uploads' stamps never interleave): what the journal holds for the store
        now is all in it. Killed between the two writes: the next upload sends again."""

        def swap(noted: str | None) -> str:
            if check and noted is not None and noted != self.keeper.mark(self.journal_id):
                self.lost = True
            value = _token()
            self.keeper.set_mark(self.journal_id, value)
            return value

        self.journal.swap_note(f"store-mark:{self.journal.target}", swap)


def _token() -> str:
    return secrets.token_hex(16)
