"""Streaming readers: files, directories and stdin → `(Location, value)` or a Diagnostic.

Every reader is a generator so memory does not grow with file size, and each value carries
the line where it starts, attached here where it is parsed (not later, where it is consumed).
Bytes are parsed line by line, so one bad line (invalid UTF-8, a truncated record) is one
diagnostic, not the failure of the whole file.
"""

from __future__ import annotations

import errno
import gzip
import itertools
import os
import stat
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, cast

import orjson

from tracecli.diagnostics import Diagnostic, Location, UsageError
from tracecli.inputs.json_values import iter_json_values, json_error
from tracecli.inputs.names import apple_double, plain, unrotated
from tracecli.inputs.sniff import PACKED_KINDS, foreign_message, head_of, sniff, stdin_head
from tracecli.inputs.streams import (
    BOM,
    GZIP_MAGIC,
    STDIN,
    STDIN_NAME,
    open_stream,
    os_message,
    regular_file,
)

# The names callers import from here, whichever module of inputs/ holds them.
__all__ = [
    "DIRECTORY_SUFFIXES",
    "FILE_FORMAT",
    "JSONL_SUFFIXES",
    "TRACE_SUFFIXES",
    "YAML_SUFFIXES",
    "InputFormat",
    "Item",
    "Source",
    "SourceFormat",
    "expand_paths",
    "format_of",
    "read_items",
    "readable",
]

InputFormat = Literal["jsonl", "yaml"]
# how a Source is read: "json" is a JSON array of records, or JSON values one after another
# (pretty-printed over many lines, as `jq` writes them); recognised by its first bytes
SourceFormat = Literal["jsonl", "yaml", "json"]
Item = tuple[Location, Any] | Diagnostic

JSONL_SUFFIXES = (".jsonl", ".ndjson")
YAML_SUFFIXES = (".yaml", ".yml")
TRACE_SUFFIXES = JSONL_SUFFIXES + YAML_SUFFIXES
# what a directory brings in: also .json (JSON lines, or a JSON array of records)
DIRECTORY_SUFFIXES = (*TRACE_SUFFIXES, ".json")
FILE_FORMAT = "file-format"  # the code of "this file is another tool's format"


def format_of(path: str, default: InputFormat = "jsonl") -> InputFormat:
    """The format a path's suffix names (a `.gz` and a rotation's suffix are looked
    through: `names.unrotated`); JSONL when unknown."""
    name = unrotated(path)
    if name.endswith(YAML_SUFFIXES):
        return "yaml"
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    return default


def _is_trace_file(p: Path, watching: bool) -> bool:
    """Whether a directory brings the file in: its name, without `.gz` and a rotation's
    suffix (`app.jsonl.1`), ends with one of `DIRECTORY_SUFFIXES`; for the follow's
    watcher (`watching`), without `.gz` alone (a rotated copy holds what it sent)."""
    name = plain(p.name) if watching else unrotated(p.name)
    return name.endswith(DIRECTORY_SUFFIXES)


def readable(path: str) -> None:
    """Raise a UsageError naming the path and the OS's reason when it cannot be read:
    found before anything is sent, one line, never a traceback from deep in a run.
    (Only opened when it is a regular file: opening a pipe could block.)"""
    try:
        if stat.S_ISREG(os.stat(path).st_mode):
            os.close(os.open(path, os.O_RDONLY))
        elif not os.access(path, os.R_OK):
            raise PermissionError(13, os.strerror(13))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the file: {os_message(exc)}") from None


def _trace_files_under(top: str, watching: bool = False) -> list[str]:
    """The trace files under a directory, recursively, sorted; a directory that cannot be
    listed is a usage error naming it and the OS's reason (not "no trace files in it").
    `watching`: for the follow's watcher (see `expand_paths`)."""

    def unreadable(exc: OSError) -> None:
        where = exc.filename or top
        raise UsageError(f"{where}: cannot read the directory: {os_message(exc)}")

    found: list[str] = []
    for folder, dirs, files in os.walk(top, onerror=unreadable):
        dirs.sort()
        for name in sorted(files):  # the first unreadable one said is the same every run
            full = str(Path(folder, name))  # as pathlib spells it: `x.jsonl`, not `./x.jsonl`
            if not _is_trace_file(Path(name), watching) or apple_double(name, full):
                continue
            if os.path.isfile(full):
                found.append(full)
            elif not name.startswith(EDITOR_LOCK):
                _no_file_why(full, dangling_links=not watching)
    return sorted(found)


# Emacs marks a file being edited with a dangling link `.#name` (to `user@host.pid`): no
# trace file, whatever its name ends with.
EDITOR_LOCK = ".#"


def _no_file_why(path: str, dangling_links: bool) -> None:
    """A trace file's name under a directory that is no regular file: a link that loops
    (ELOOP) or leads where may not be searched is unreadable input, said as such (one line
    naming it and the OS's reason), never skipped silently; so is a dangling link (the
    file it named moved or deleted: its records may be missing), unless `dangling_links`
    is False (`upload --follow`: a file being rotated, there again at the next look). A
    pipe or a folder so named holds no trace to read: left out."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise UsageError(f"{path}: cannot read the file: {os_message(exc)}") from None
        if dangling_links and os.path.islink(path):
            to = os.readlink(path)
            raise UsageError(
                f"{path}: cannot read the file: it is a symbolic link to {to}, which does not exist"
            ) from None


def expand_paths(paths: Iterable[str], *, watching: bool = False) -> list[str]:
    """Files named directly, and the trace files under each directory (recursively, sorted).

    A path that does not exist is a usage error before anything is read: a CI step with a
    typo in its glob must fail loudly, not validate nothing. So is a file or a directory
    that cannot be read (one line naming it and the OS's reason), and a link to no file
    inside a directory. A directory brings in its rotated trace files too (`app.jsonl.1`,
    `app.jsonl.2.gz`: `names.unrotated`). Each file comes once, however often it is named
    (directly, through a directory or a link).

    `watching`: for the follow's watcher, which looks again soon: a link to no file is
    left out for now (it may resolve), and rotated copies are not brought in (they hold
    what it sent as the live file).
    """
    out: list[str] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        # a file named twice (`traces/ traces/a.jsonl`) is read once: twice, every one
        # of its calls would be its own duplicate
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            readable(path)
            out.append(path)

    for raw in paths:
        if raw == STDIN:
            if STDIN in out:
                raise UsageError("- (stdin) can be given only once")
            out.append(raw)
            continue
        p = Path(raw)
        if p.is_dir():
            for f in _trace_files_under(raw, watching):
                add(f)
        elif p.exists():
            add(raw)
        else:
            raise UsageError(f"{raw}: {_why_missing(raw)}")
    return out


def _why_missing(path: str) -> str:
    """Why a path is neither a file nor a directory, in the OS's words: `Path.exists()`
    is False for any error, and a link that loops (ELOOP) or a folder that may not be
    searched is not a missing file."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT and exc.strerror:
            return exc.strerror[:1].lower() + exc.strerror[1:]
    return "no such file or directory"


@dataclass
class Source:
    """One input: its path as the user gave it, its format, and how far it has been read.

    `bytes_read` counts the bytes of the file on disk (compressed bytes for .gz), so a
    progress bar can compare it with the file's size.
    """

    path: str
    fmt: SourceFormat
    size: int | None = None
    bytes_read: int = 0
    records: int = 0
    # another tool's format (OpenTelemetry, LangSmith, CSV): what to say about it, once
    foreign: str | None = None
    # which format that is ("otlp": OpenTelemetry traces, read by validate and upload too)
    foreign_kind: str | None = None
    # iterate a foreign file as that one diagnostic (validate, upload), not as its records
    # (convert, which may know how to read it)
    refuse_foreign: bool = False
    # Where to start reading a plain JSON-lines file (a line start) and the lines before it:
    # the part an earlier run stored (see `resume_at`).
    start_offset: int = 0
    start_line: int = 0
    # the lines of a JSON-lines input read so far (the last one's number): where a stopped
    # upload's unread rest begins (`upload.run_inputs.sources_unread`)
    line: int = 0
    # upload --follow: a last line without its newline is still being written; not read
    whole_lines: bool = False
    # how validate, upload and convert read a JSON line orjson cannot read exactly (wide
    # integers, NaN, lone surrogates: `wire.wideints.exact_loads`), for a JSON array's
    # elements and a JSON line read here; None: orjson alone
    exact: Callable[[bytes], Any] | None = None
    _raw: IO[bytes] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: str, stdin_format: InputFormat = "jsonl") -> Source:
        """The input at `path`; a JSON-lines input is sniffed by its first bytes: a JSON
        array of records is read as records, another tool's format is named (`foreign`)."""
        if path == STDIN:
            src = cls(path=STDIN_NAME, fmt=stdin_format)
            head = stdin_head() if stdin_format == "jsonl" else b""
        else:
            src = cls(path=path, fmt=format_of(path), size=os.path.getsize(path))
            # a pipe (`<(zcat f.gz)`): its head is read once and kept, as stdin's
            head = head_of(path) if src.fmt == "jsonl" else b""
        if head:
            found = sniff(head, unrotated(src.path).endswith(".json"))
            if found.fmt == "json":
                src.fmt = "json"
            if found.foreign is not None:
                src.foreign = foreign_message(found.foreign, src.path)
                src.foreign_kind = found.foreign
        return src

    def resume_at(self, offset: int, line: int) -> bool:
        """Read from `offset` (after `line` lines) rather than from the start: an appended
        file whose beginning was stored already. Only a plain JSON-lines file can be read
        so (a seek); False for others (gzip, YAML, a JSON array, stdin), read whole."""
        if (
            offset <= 0
            or self.fmt != "jsonl"
            or self.foreign is not None
            or self.path == STDIN_NAME
            or self.path.lower().endswith(".gz")
            or (self.size is not None and offset > self.size)
        ):
            return False
        self.start_offset, self.start_line = offset, line
        return True

    def _open_stream(self) -> IO[bytes]:
        # gzip known by its first bytes too (piped to stdin, a name without .gz), as
        # `streams.open_stream` knows it for validate and upload
        if self.path == STDIN_NAME:
            return open_stream(STDIN)
        if not regular_file(self.path):  # a pipe: the stream its head was sniffed from
            return open_stream(self.path)
        raw = open(self.path, "rb")  # noqa: SIM115 - closed in __iter__
        self._raw = raw
        if self.path.lower().endswith(".gz") or raw.peek(2)[:2] == GZIP_MAGIC:
            return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
        return raw

    def _progress(self, n: int) -> None:
        if self._raw is not None and self._raw is not sys.stdin.buffer:
            try:
                self.bytes_read = self._raw.tell()
                return
            except (OSError, ValueError):
                pass
        self.bytes_read += n

    def __iter__(self) -> Iterator[Item]:
        try:
            stream = self._open_stream()
        except OSError as exc:
            yield Diagnostic.at(Location(self.path, 0), "read-error", os_message(exc))
            return
        try:
            if self.foreign is not None and (
                self.refuse_foreign or self.foreign_kind in PACKED_KINDS
            ):
                yield Diagnostic.at(Location(self.path, 1), FILE_FORMAT, self.foreign)
            elif self.fmt == "yaml":
                yield from self._iter_yaml(stream)
            elif self.fmt == "json":
                yield from self._iter_json(stream)
            else:
                yield from self._iter_jsonl(stream)
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
            if self._raw is not None:
                self._raw.close()
                if self.size is not None:
                    self.bytes_read = self.size

    def _iter_jsonl(self, stream: IO[bytes]) -> Iterator[Item]:
        path = self.path
        lineno = 0
        # with `exact` (validate, upload, convert): a line holding a wide integer, NaN or a
        # lone surrogate is read as JSON arrays' elements are
        loads = orjson.loads if self.exact is None else self._element
        plain = self._raw is stream  # plain file: count bytes ourselves, cheaper than tell()
        if plain and self.start_offset:
            stream.seek(self.start_offset)
            lineno = self.start_line
            self.bytes_read = self.start_offset
        try:
            for raw in stream:
                if self.whole_lines and not raw.endswith(b"\n"):
                    break  # the writer is in the middle of it: the next pass reads it whole
                lineno += 1
                self.line = lineno
                if plain:
                    self.bytes_read += len(raw)
                elif lineno % 256 == 0:
                    self._progress(len(raw))
                if lineno == 1 and raw.startswith(BOM):
                    raw = raw[3:]
                try:
                    value = loads(raw)
                except orjson.JSONDecodeError as exc:
                    if not raw.strip():
                        continue
                    yield Diagnostic.at(Location(path, lineno), "json", json_error(raw, exc))
                    continue
                self.records += 1
                yield Location(path, lineno), value
        except (EOFError, OSError, zlib.error) as exc:
            yield Diagnostic.at(
                Location(path, lineno + 1),
                "read-error",
                f"file cannot be read from here on: {os_message(exc)}",
            )

    def _iter_json(self, stream: IO[bytes]) -> Iterator[Item]:
        """The records of a JSON array (or of JSON values one after another), each parsed
        as it is completed and placed at the line where it starts: memory holds one
        record and a block, never the file."""
        path = self.path
        n = 0
        values = iter_json_values(stream, path)
        while True:
            try:
                item = next(values)
            except StopIteration:
                return
            except (EOFError, OSError, zlib.error) as exc:
                yield Diagnostic.at(
                    Location(path, 0), "read-error", f"file cannot be read: {os_message(exc)}"
                )
                return
            if isinstance(item, Diagnostic):
                if self.whole_lines:  # --follow: at the end, a record still being written
                    with suppress(EOFError, OSError, zlib.error):  # (the next read says it)
                        following = next(values, None)  # waits for the next pass
                        if following is None:
                            return
                        values = itertools.chain((following,), values)
                yield item
                continue
            n += 1
            if n % 256 == 0:
                self._progress(len(item.raw))
            try:
                value = self._element(item.raw)
            except orjson.JSONDecodeError as exc:
                yield Diagnostic.at(Location(path, item.line), "json", json_error(item.raw, exc))
                continue
            self.records += 1
            yield Location(path, item.line), value

    def _element(self, raw: bytes) -> Any:
        """An element of a JSON array; with `exact`, as a JSON line of it is read (orjson
        would make an integer beyond 64 bits a float, and refuse NaN or a lone surrogate).
        orjson's JSONDecodeError for what is not JSON even so."""
        if self.exact is None:
            return orjson.loads(raw)
        if raw.translate(_DIGITS_AS_ZERO).find(_WIDE_RUN) < 0:
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError:
                pass
        try:
            return self.exact(raw)
        except ValueError:
            return orjson.loads(raw)  # not JSON: said in orjson's words

    def _iter_yaml(self, stream: IO[bytes]) -> Iterator[Item]:
        """The records of a YAML file, one at a time (see `yaml_records.read_yaml`)."""
        # imported here for start-up time: PyYAML and the record composer are only for
        # YAML files
        from tracecli.inputs.yaml_records import LineDecoder, read_yaml

        text = LineDecoder(stream, follow=self.whole_lines)  # --follow: whole documents
        try:
            for item in read_yaml(text, self.path):
                if not isinstance(item, Diagnostic):
                    self.records += 1
                yield item
        finally:
            self.bytes_read = self.size or text.bytes


# a run of digits as long as an integer beyond 64 bits: orjson would read it as a float
# (searched with every digit read as "0": a tenth of the time of a regular expression's
# `\d{19}`, which counts on every line of upload and convert)
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= i <= 0x39 else i for i in range(256))
_WIDE_RUN = b"0" * 19


def read_items(
    paths: Iterable[str], stdin_format: InputFormat = "jsonl"
) -> Iterator[tuple[Source, Item]]:
    """All items of all paths in order, each with the Source it came from."""
    for path in expand_paths(paths):
        src = Source.open(path, stdin_format)
        for item in src:
            yield src, item
