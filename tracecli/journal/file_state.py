"""What the journal knows about one input file: the state a run starts from (`FileState`)
and what it keeps while the run goes on (`FileEntry`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from tracecli.journal.acks import AckSet
from tracecli.journal.file_identity import Identity


class FileState(NamedTuple):
    """What the journal knew about one input file when the run started."""

    path: str  # as given by the user
    journaled: bool  # False for stdin and other non-regular files: nothing is remembered
    changed: bool  # a previous run saw different content under this path: starting over
    acked: int  # lines already acknowledged (skipped by this run)
    done: bool  # a previous run finished this file
    # Where the acknowledged prefix ends: every record before `resume_offset` (a line
    # start, after `resume_line` lines) was stored, so a plain file is read from there.
    resume_offset: int = 0
    resume_line: int = 0
    # acknowledged lines before the resume point no longer kept line by line (see `settle`)
    compacted: int = 0
    appended: bool = False  # an earlier run saw a shorter version: only the rest is new
    # the file read (device, inode; 0: none), from the descriptor its identity was taken
    # of: the pass reads that file only, not another the name holds by then (a rotation)
    dev: int = 0
    ino: int = 0


@dataclass(slots=True)
class FileEntry:
    """What the journal holds in memory about one input file during a run."""

    id: int
    acks: AckSet
    state: FileState | None = None
    ident: Identity | None = None
    resume_off: int = 0
    resume_line: int = 0
    compacted: int = 0
    hold: int | None = None  # the first line of a call still open: settle stops before it
    passed: AckSet = field(default_factory=AckSet)  # invalid lines settle may pass (follow)
    # line starts the run read, (offset, lines before it): where settle may start reading
    marks: list[tuple[int, int]] | None = None
