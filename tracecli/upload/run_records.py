"""Files read record by record rather than in blocks of lines: YAML, a JSON array of
records, records pretty-printed over many lines, another tool's format (said once).

Why apart from `run`: these records come one at a time from a `Source`, are prepared here in
the reading process (no worker: a YAML record cannot be found by a line split), and then go
through the same `Run._consume` as a block's entries, so that checks, pairing and chunking
stay one path. Under --follow such a file is read whole each pass, so what was refused once
is passed over (JSON only: a YAML document still being written may read as a bad record).
"""

from __future__ import annotations

from typing import Any, Protocol

from tracecli.diagnostics import Diagnostic
from tracecli.inputs.reader import FILE_FORMAT, Source
from tracecli.upload.blocks import Entry, _add_warnings, prepare
from tracecli.upload.lines import line_extras
from tracecli.upload.report import FileReport
from tracecli.wire.wideints import exact_loads

__all__ = ["read_records"]


class Run(Protocol):
    """What reading a file record by record needs of the upload run (`upload.run.Run`),
    named here so that this module, which run.py calls, does not import it back."""

    files: list[str]
    file_reports: list[FileReport]
    bytes_done: list[int]
    fates: Any
    journal: Any  # the run's Journal, or None
    opts: Any  # the run's UploadOptions (project, follow)

    def _halted(self) -> bool: ...
    def _consume(self, i: int, base: int, entries: list[Entry]) -> None: ...
    def _progress(self, force: bool = False) -> None: ...


def read_records(run: Run, i: int, src: Source) -> None:
    """Input `i`, read record by record through `src`, into `run` (as `feed_spans` does
    for OpenTelemetry files)."""
    project = run.opts.project
    src.whole_lines = run.opts.follow  # a record still being written waits (--follow)
    src.exact = exact_loads  # a JSON array's elements read as a JSON line is
    # --follow reads such a file whole each pass: what it refused once is passed over
    # (not in YAML, where a document still being written may read as a bad record)
    journal = run.journal if run.opts.follow and src.fmt == "json" else None
    passed = journal.passed(run.files[i]) if journal is not None else None
    entries: list[Entry] = []
    for item in src:
        if run._halted():
            return
        if isinstance(item, Diagnostic) and item.code == FILE_FORMAT:
            run.fates.late([item])  # another tool's file: an error, no record of ours
            continue
        if isinstance(item, Diagnostic):
            if passed is not None and item.line in passed:
                continue
            run.fates.invalid(None, item.path, item.line, [item])
            run.file_reports[i].records += 1
            continue
        loc, value = item
        if passed is not None and loc.line in passed:
            continue
        extras = line_extras(value, b"", True)  # NaN, lone surrogates: as in a JSON line
        prepare(value, loc.line, src.path, project, entries, fast=False)
        if extras:
            _add_warnings(entries, extras)
        run.file_reports[i].records += 1
        run._consume(i, 0, entries)
        entries.clear()
    run.bytes_done[i] = src.bytes_read
    run._progress()
