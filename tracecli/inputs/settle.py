"""When the end of a growing file counts as final under `upload --follow`.

A JSON line is whole at its newline, but a multi-document YAML file has no such mark: its
last document may be half written and still valid YAML (all but its `output`). It counts
as whole once a `---` or `...` line follows it (see `yaml_records._WholeDocuments`), or
once the file has not changed for `QUIET_SECONDS`: the writer stopped. A pass that held
such a document back is followed by another once the file is quiet (`upload.follow`).
Apart from the readers and the follow loop so that both use it without importing each
other (nor PyYAML)."""

from __future__ import annotations

import time

QUIET_SECONDS = 2.0
_quiet = [QUIET_SECONDS]  # what counts now: the follow's `yaml_quiet` setting (`quiet_seconds`)


def quiet_seconds(seconds: float | None = None) -> float:
    """How long a file must not change to count as quiet; `seconds` sets it (the setting
    `yaml_quiet` of the one follow a process runs; its passes read in this process)."""
    if seconds is not None:
        _quiet[0] = seconds
    return _quiet[0]


def quiet_for(mtime_ns: int, now_ns: int | None = None) -> float:
    """Seconds left before a file last changed at `mtime_ns` (wall clock) counts as
    quiet; 0 when it does."""
    now = time.time_ns() if now_ns is None else now_ns
    return max(0.0, _quiet[0] - (now - mtime_ns) / 1e9)
