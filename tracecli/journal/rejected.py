"""The rejected-records file: every record not stored, as it was read, with the reason.

The promise of `upload` is "stored exactly once, or in this file with the reason". The file
is JSONL of the original records (the user's own shape, so they recognise and can fix them),
each with a `_tracecli` object: `{"source", "line", "reason", "status"}`. `tracecli upload`
ignores `_tracecli` on input, so a fixed file can be uploaded as it is.

File policy:
- Written to a temporary file beside the target (mode 0600: records may hold private
  prompts) and renamed over it on close, so a crash never leaves half a file and an existing
  file is replaced in one step. Nothing is created before the first rejected record: a run
  that rejects nothing works in a folder it cannot write to.
- A run that rejects something replaces the previous file; a run that rejects nothing leaves
  an existing file alone (`stale` is then True, so the caller can say it is from earlier).
- When the target is also one of the run's inputs (replaying a fixed rejected file), a
  finished run replaces it with what is still rejected; an interrupted run leaves it intact
  (its rejects are found again on resume, since rejected lines are never acknowledged).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson

from tracecli import replace_file
from tracecli.diagnostics import UsageError
from tracecli.inputs.reader import expand_paths
from tracecli.schema.rules import META_KEY
from tracecli.wire.wideints import NonFinite

DEFAULT_NAME = "tracecli-rejected.jsonl"
GONE_TRIES = 5  # a follow pass looks again at its inputs when one went meanwhile (`_expanded`)


def _as_text(value: Any) -> str:
    if type(value) is NonFinite:
        raise TypeError  # Python's json writes it back as read (NaN, Infinity)
    return str(value)


def record_line(rec: dict[str, Any]) -> bytes:
    """One line of the file: the record as read. orjson for the common case; Python's json
    for what orjson cannot write (integers beyond 64 bits, nesting past 254 levels, NaN,
    lone surrogates), so the line holds what the user wrote; a record nested too deep for
    either keeps its meta and loses its body (it was never sent, and cannot be)."""
    try:
        return orjson.dumps(rec, default=_as_text, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        pass
    try:
        text = json.dumps(rec, default=str, ensure_ascii=True, separators=(",", ":"))
    except (RecursionError, ValueError, TypeError):
        meta = dict(rec.get(META_KEY) or {})
        meta.setdefault("original", "(a record nested too deeply to write here)")
        text = json.dumps({META_KEY: meta}, default=str, ensure_ascii=True)
    return text.encode("ascii") + b"\n"


class RejectedWriter:
    """Collects rejected records; thread-safe; the file appears only on `close()`."""

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_NAME,
        *,
        inputs: Iterable[str | os.PathLike[str]] = (),
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.path = Path(path)
        self._redact = redact or (lambda s: s)
        self._lock = threading.Lock()
        self._out: replace_file.Pending | None = None
        self.count = 0
        self.written: Path | None = None  # where the file went, after close()
        self.stale = False  # an older file was left in place (this run rejected nothing)
        self._closed = False
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if self.path.is_dir():
            raise UsageError(f"--rejected {self.path}: is a directory, expected a file name")
        if not parent.is_dir():
            raise UsageError(f"--rejected {self.path}: directory {parent} does not exist")
        self._is_input = any(_same_file(self.path, p) for p in inputs if str(p) != "-")

    def add(
        self,
        original: Any,
        *,
        path: str,
        line: int,
        reason: str,
        status: int | None = None,
        diagnostics: list[Mapping[str, Any]] | None = None,
    ) -> None:
        """Record one rejected record. `original` is the record as read (a dict); anything
        else (a list, a scalar, the raw text of a line that is not JSON) is kept under
        `_tracecli.original` so nothing is lost."""
        meta: dict[str, Any] = {
            "source": str(path),
            "line": line,
            "reason": self._redact(reason),
            "status": status,
        }
        if diagnostics:
            meta["diagnostics"] = [
                {k: (self._redact(v) if isinstance(v, str) else v) for k, v in d.items()}
                for d in diagnostics
            ]
        if isinstance(original, dict):
            rec = {k: v for k, v in original.items() if k != META_KEY}
        else:
            rec = {}
            meta["original"] = original
        rec[META_KEY] = meta
        data = record_line(rec)
        with self._lock:
            if self._closed:
                raise RuntimeError("RejectedWriter is closed")
            if self._out is None:
                self._out = self._open()
            self._out.file.write(data)
            self.count += 1

    def _open(self) -> replace_file.Pending:
        """Create the temporary file, at the first rejected record (not before: see the
        module's docstring); a folder that cannot be written is then a usage error. A
        device or FIFO (`--rejected /dev/null`) is written in place (`replace_file`)."""
        try:
            return replace_file.begin(self.path, mode=0o600)
        except OSError as exc:
            raise UsageError(
                f"cannot write the rejected records to {self.path}: {exc.strerror or exc} "
                "(--rejected FILE puts them elsewhere)"
            ) from None

    def close(self, *, complete: bool = True) -> Path | None:
        """Publish the file (rename over the target); `complete=False` for an interrupted run.
        Returns where the rejected records are, or None when this run rejected none."""
        with self._lock:
            if self._closed:
                return self.written
            self._closed = True
            out = self._out
            if out is None:
                self.stale = self.path.exists() and not replace_file.is_special(self.path)
                return None
            try:
                if self._is_input and not complete:
                    replace_file.abandon(out)
                    self.stale = True
                    return None
                replace_file.publish(out)
            except OSError as exc:
                replace_file.abandon(out)
                raise UsageError(
                    f"cannot write the rejected records to {self.path}: {exc.strerror or exc}"
                ) from None
            self.written = self.path
            return self.path

    def discard(self) -> None:
        """Drop what was collected without touching the target (e.g. --dry-run)."""
        with self._lock:
            self._closed = True
            if self._out is not None:
                replace_file.abandon(self._out)

    def __enter__(self) -> RejectedWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(complete=exc_type is None)


class Notes(Protocol):
    def first_note(self, key: str, value: str) -> bool: ...


def stale_note(path: str | os.PathLike[str], notes: Notes | None) -> str | None:
    """What to say about a rejected-records file an earlier run left (this run rejected
    nothing): said once, while the file stays as it is (`notes`, the resume journal,
    remembers it was said); None when already said or when it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if notes is not None and not notes.first_note(
        f"stale-rejected:{os.path.realpath(path)}", f"{st.st_size}:{st.st_mtime_ns}"
    ):
        return None
    n = 0
    with contextlib.suppress(OSError), open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            n += block.count(b"\n")
    return (
        f"{path} holds {n:,} records rejected by an earlier run (none were rejected now): "
        f"fix them and upload that file, or delete it"
    )


def _expanded(paths: Sequence[str], follow: bool) -> list[str]:
    """`expand_paths`; in a follow, without the files gone meanwhile: one may go between
    a look at it and its expansion (a rotation renaming `app.jsonl.5` to `app.jsonl.6`
    and `app.jsonl.4` to `app.jsonl.5`), which is then looked at again, a few times."""
    for _ in range(GONE_TRIES if follow else 0):
        paths = [p for p in paths if p == "-" or os.path.exists(p)]
        try:
            return expand_paths(paths)
        except UsageError:
            if all(p == "-" or os.path.exists(p) for p in paths):
                raise  # not a file gone: unreadable, a link to nothing
    paths = [p for p in paths if not follow or p == "-" or os.path.exists(p)]
    return expand_paths(paths)


def upload_inputs(
    paths: Sequence[str], rejected: str | os.PathLike[str] | None, follow: bool = False
) -> list[str]:
    """The files an upload reads (directories expanded, the rejected-records file left
    out: see `skip_rejected_file`); UsageError when there are none, or stdin twice.

    `follow` (a pass of upload --follow): a file gone since the follow looked (a log
    rotated by rename, whose new file is not made yet; an old one deleted) is left out,
    and none left is no error: the next look knows what is there."""
    files = skip_rejected_file(paths, _expanded(paths, follow), rejected)
    if not files and not follow:
        raise UsageError(
            "no trace files found in the given paths (.jsonl, .ndjson, .json, .yaml, .yml)"
        )
    if files.count("-") > 1:
        raise UsageError("stdin ('-') can be read only once")
    return files


def skip_rejected_file(
    paths: Sequence[str], files: list[str], rejected: str | os.PathLike[str] | None
) -> list[str]:
    """`files` without the rejected-records file when only a directory brought it in.

    `tracecli upload .` would otherwise read last run's rejected file as input, reject its
    records again and append them to the new one: the file would grow by itself every run.
    Named explicitly (the fix-and-replay workflow), it stays.
    """
    target = Path(rejected if rejected is not None else DEFAULT_NAME)
    if not target.exists():
        return files
    named = [p for p in paths if p != "-" and os.path.isfile(p)]
    if any(_same_file(target, p) for p in named):
        return files
    return [f for f in files if f == "-" or not _same_file(target, f)]


def _same_file(a: Path, b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
