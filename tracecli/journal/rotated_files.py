"""The files an earlier run read under the paths of this one, rotated away since: renamed
in the same folder to a name no input has (RotatingFileHandler's `app.jsonl.1`) while no
tracecli ran (between two cron runs, a follow stopped or killed). The records written to
such a file between the last run and the rename are in it alone: the run reads it too,
from where the journal says the last run stopped."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import IO

from tracecli.inputs.rotated import locate
from tracecli.journal.file_identity import FileRow, Identity, same_prefix, still_there


def rotated_away(files: list[str], row_at: Callable[[str], FileRow | None]) -> list[str]:
    """Of the files whose entry (`row_at`, by real path) is of another file than the one
    now at that path: where that file is now in the same folder (by device and inode), its
    seen part unchanged and records after where it was stored; not among `files`."""
    inputs = {os.path.realpath(f) for f in files if f != "-"}
    out: list[str] = []
    for real in sorted(inputs):
        try:
            st = os.stat(real)
        except OSError:
            continue
        row = row_at(real)
        if row is None or not row.ino or (row.dev, row.ino) == (st.st_dev, st.st_ino):
            continue
        found = locate((row.dev, row.ino), real)
        if (
            found is not None
            and os.path.realpath(found.path) not in inputs
            and found.size > row.resume_off
            and same_prefix(found.path, row, found.size)
        ):
            out.append(found.path)
    return out


def moved_row(
    ident: Identity, f: IO[bytes], same_inode: list[FileRow], recent: list[FileRow]
) -> FileRow | None:
    """The entry of the file `ident` read earlier under another path (renamed by a log
    rotation): among the entries of its device and inode (`same_inode`), one whose content
    seen then is unchanged and whose old path is no longer that file (else it is a second
    link, uploaded on its own). Else a copy of a file read before whose original no longer
    holds that content (the copy copytruncate made), found by content among the most
    `recent` entries."""
    for row in same_inode:
        with contextlib.suppress(OSError, ValueError):  # ValueError: a detached entry
            st = os.stat(row.path)
            if (st.st_dev, st.st_ino) == (row.dev, row.ino):
                continue
        if same_prefix(f, row, ident.size):
            return row
    for row in recent:
        if not still_there(row) and same_prefix(f, row, ident.size):
            return row
    return None
