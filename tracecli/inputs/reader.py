"""Streaming readers: files, directories and stdin → `(Location, value)` or a Diagnostic.

Every reader is a generator so memory does not grow with file size, and each value carries
the line where it starts, attached here where it is parsed (not later, where it is consumed).
Bytes are parsed line by line, so one bad line (invalid UTF-8, a truncated record) is one
diagnostic, not the failure of the whole file.
"""

from __future__ import annotations

import gzip
import os
import re
import stat
import sys
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple, cast

import orjson
import yaml

from tracecli.diagnostics import Diagnostic, Location, UsageError

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
BOM = b"\xef\xbb\xbf"
STDIN = "-"
STDIN_NAME = "<stdin>"  # how stdin is named in diagnostics
FILE_FORMAT = "file-format"  # the code of "this file is another tool's format"


def format_of(path: str, default: InputFormat = "jsonl") -> InputFormat:
    """The format a path's suffix names (a `.gz` is looked through); JSONL when unknown."""
    name = path.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith(YAML_SUFFIXES):
        return "yaml"
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    return default


def _is_trace_file(p: Path) -> bool:
    name = p.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
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


def _trace_files_under(top: str) -> list[str]:
    """The trace files under a directory, recursively, sorted; a directory that cannot be
    listed is a usage error naming it and the OS's reason (not "no trace files in it")."""

    def unreadable(exc: OSError) -> None:
        where = exc.filename or top
        raise UsageError(f"{where}: cannot read the directory: {os_message(exc)}")

    found: list[str] = []
    for folder, dirs, files in os.walk(top, onerror=unreadable):
        dirs.sort()
        for name in files:
            full = str(Path(folder, name))  # as pathlib spells it: `x.jsonl`, not `./x.jsonl`
            if _is_trace_file(Path(name)) and os.path.isfile(full):
                found.append(full)
    return sorted(found)


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Files named directly, and the trace files under each directory (recursively, sorted).

    A path that does not exist is a usage error before anything is read: a CI step with a
    typo in its glob must fail loudly, not validate nothing. So is a file or a directory
    that cannot be read (one line naming it and the OS's reason). Each file comes once,
    however often it is named (directly, through a directory or a link).
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
            for f in _trace_files_under(raw):
                add(f)
        elif p.exists():
            add(raw)
        else:
            raise UsageError(f"{raw}: no such file or directory")
    return out


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
    # upload --follow: a last line without its newline is still being written; not read
    whole_lines: bool = False
    _raw: IO[bytes] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: str, stdin_format: InputFormat = "jsonl") -> Source:
        """The input at `path`; a JSON-lines input is sniffed by its first bytes: a JSON
        array of records is read as records, another tool's format is named (`foreign`)."""
        if path == STDIN:
            src = cls(path=STDIN_NAME, fmt=stdin_format)
            head = _peek_stdin() if stdin_format == "jsonl" else b""
        else:
            src = cls(path=path, fmt=format_of(path), size=os.path.getsize(path))
            # a pipe (`<(zcat f.gz)`) is not sniffed: reading its head would consume it
            sniffable = src.fmt == "jsonl" and _is_regular(path)
            head = _file_head(path) if sniffable else b""
        if head:
            found = sniff(head, src.path.lower().removesuffix(".gz").endswith(".json"))
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
        if self.path == STDIN_NAME:
            return sys.stdin.buffer
        raw = open(self.path, "rb")  # noqa: SIM115 - closed in __iter__
        self._raw = raw
        if self.path.lower().endswith(".gz"):
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
            if self.foreign is not None and self.refuse_foreign:
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
        loads = orjson.loads
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
                yield item
                continue
            n += 1
            if n % 256 == 0:
                self._progress(len(item.raw))
            try:
                value = orjson.loads(item.raw)
            except orjson.JSONDecodeError as exc:
                yield Diagnostic.at(Location(path, item.line), "json", json_error(item.raw, exc))
                continue
            self.records += 1
            yield Location(path, item.line), value

    def _iter_yaml(self, stream: IO[bytes]) -> Iterator[Item]:
        """Records of a YAML file as they are parsed: each document of a multi-document
        stream, each item of a top-level list, composed and built one at a time, so
        memory holds one record, not the file (a list's node tree costs ~50x its text).
        A problem stops the file: YAML cannot resume after a syntax error."""
        path = self.path
        text = _LineDecoder(stream)
        loader: _TraceYamlLoader | None = None
        line = 1
        try:
            loader = _TraceYamlLoader(text)  # reads ahead: may fail at once
            loader.get_event()  # StreamStart
            while not loader.check_event(yaml.StreamEndEvent):
                loader.get_event()  # DocumentStart
                top_list = loader.check_event(yaml.SequenceStartEvent)
                if top_list:
                    loader.get_event()
                while not (top_list and loader.check_event(yaml.SequenceEndEvent)):
                    loader.next_record()
                    node = loader.compose_node(None, None)
                    line = node.start_mark.line + 1
                    try:  # a record that cannot be built (a tag) stops only itself
                        value = loader.construct_document(node)
                    except yaml.YAMLError as exc:
                        yield Diagnostic.at(Location(path, line), "yaml", _yaml_message(exc))
                        value = None
                    except RecursionError:
                        yield Diagnostic.at(Location(path, line), "yaml", "nested too deeply")
                        value = None
                    if value is not None:
                        self.records += 1
                        yield Location(path, line), value
                    if not top_list:
                        break
                if top_list:
                    loader.get_event()  # SequenceEnd
                loader.get_event()  # DocumentEnd
                loader.anchors = {}
        except yaml.YAMLError as exc:
            where = _yaml_line(exc, text)
            yield Diagnostic.at(Location(path, where), "yaml", _yaml_message(exc))
        except _BadUtf8 as exc:
            yield Diagnostic.at(
                Location(path, exc.line), "encoding", f"invalid UTF-8 at byte {exc.byte}"
            )
        except RecursionError:
            yield Diagnostic.at(Location(path, line), "yaml", "nested too deeply")
        except (EOFError, OSError, zlib.error) as exc:
            yield Diagnostic.at(
                Location(path, text.lines + 1),
                "read-error",
                f"file cannot be read from here on: {os_message(exc)}",
            )
        finally:
            if loader is not None:
                loader.dispose()
            self.bytes_read = self.size or text.bytes


class _BadUtf8(Exception):
    def __init__(self, line: int, byte: int) -> None:
        super().__init__(line, byte)
        self.line = line
        self.byte = byte


class _LineDecoder:
    """A byte stream as the text stream PyYAML reads (`read(size)`), decoded a line at a
    time so invalid UTF-8 is reported at its own line, and remembering where the recent
    lines start so an error that PyYAML places by character can be given its line."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._line = ""  # the line being handed out, from `_at` on
        self._at = 0
        self.lines = 0  # lines decoded so far
        self.bytes = 0
        self._starts: deque[tuple[int, int]] = deque(maxlen=8192)  # (char offset, line)
        self._decoded = 0  # characters decoded so far

    def read(self, size: int) -> str:
        """Up to `size` characters; one line is decoded at a time and handed out by
        offset, so a 50 MB line costs its size, not its size per read."""
        parts: list[str] = []
        want = size
        while want > 0:
            if self._at >= len(self._line) and not self._next_line():
                break
            chunk = self._line[self._at : self._at + want]
            self._at += len(chunk)
            want -= len(chunk)
            parts.append(chunk)
        return "".join(parts)

    def _next_line(self) -> bool:
        raw = self._stream.readline()
        if not raw:
            return False
        self.bytes += len(raw)
        if self.lines == 0 and raw.startswith(BOM):
            raw = raw[3:]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _BadUtf8(self.lines + 1, exc.start + 1) from None
        self._starts.append((self._decoded, self.lines + 1))
        self.lines += 1
        self._decoded += len(line)
        self._line, self._at = line, 0
        return True

    def line_of(self, position: int) -> int:
        """The 1-based line of character `position`, if it is among the recent lines."""
        line = 1
        for start, n in self._starts:
            if start > position:
                break
            line = n
        return line


try:
    from yaml.cyaml import CParser as _Parser  # PyYAML built with libyaml
except ImportError:  # pragma: no cover - wheels ship it; a source build may not
    _Parser = yaml.parser.Parser
_Scanning: tuple[Any, ...] = (
    () if _Parser is not yaml.parser.Parser else (yaml.reader.Reader, yaml.scanner.Scanner)
)


class _TraceYamlLoader(
    *_Scanning,  # type: ignore[misc]
    _Parser,
    yaml.composer.Composer,
    yaml.constructor.SafeConstructor,
    yaml.resolver.Resolver,
):
    """The safe loader, minus implicit timestamps: a `started_at` stays the string written,
    exactly as a JSONL file would carry it, so YAML and JSONL records validate the same.

    libyaml's parser (ten times PyYAML's, when PyYAML was built with it) under PyYAML's
    own composer, so that records can be composed one at a time and aliases budgeted.
    """

    yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Aliases are followed within a budget: `yaml.dump` writes them for a dict shared
        by many calls, but nested ones expand exponentially (a "billion laughs" file of
        a few hundred bytes would hold the checks for hours)."""
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = self.anchors.get(event.anchor)
            if node is not None:
                self.expanded += _node_size(node, self.sizes)
                if self.expanded > MAX_ALIASED_VALUES:
                    raise yaml.composer.ComposerError(
                        None,
                        None,
                        f"found an alias (*{event.anchor}) past {MAX_ALIASED_VALUES:,} "
                        "values repeated by aliases in one record: write the values out",
                        event.start_mark,
                    )
        return super().compose_node(parent, index)

    def __init__(self, stream: Any) -> None:
        for base in _Scanning:
            base.__init__(self, stream) if base is yaml.reader.Reader else base.__init__(self)
        _Parser.__init__(self, stream) if not _Scanning else _Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self.next_record()

    # The C parser's own composition (check_node, get_node) is not used: PyYAML's
    # composer, first in line after the parser for compose_node, builds each node.
    check_node = yaml.composer.Composer.check_node
    get_node = yaml.composer.Composer.get_node
    get_single_node = yaml.composer.Composer.get_single_node

    def next_record(self) -> None:
        """Start the alias budget over: it is per record."""
        self.expanded = 0
        self.sizes: dict[int, int] = {}


MAX_ALIASED_VALUES = 100_000  # values one record may repeat through aliases


def _node_size(node: Any, memo: dict[int, int]) -> int:
    """How many values a node stands for once its aliases are expanded."""
    n = memo.get(id(node))
    if n is None:
        if isinstance(node, yaml.SequenceNode):
            n = 1 + sum(_node_size(c, memo) for c in node.value)
        elif isinstance(node, yaml.MappingNode):
            n = 1 + sum(_node_size(k, memo) + _node_size(v, memo) for k, v in node.value)
        else:
            n = 1
        memo[id(node)] = n
    return n


def os_message(exc: BaseException) -> str:
    """What went wrong reading, in the OS's words when it has them."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def stream_position(stream: IO[bytes]) -> int:
    """Bytes of the underlying file consumed by a gzip stream (progress against the file's
    size); 0 for stdin and pipes, whose size is not known."""
    fileobj = getattr(stream, "fileobj", None)
    try:
        return int(fileobj.tell()) if fileobj is not None else 0
    except (OSError, ValueError):
        return 0


def json_error(raw: bytes, exc: orjson.JSONDecodeError) -> str:
    """The message for a line that is not JSON (invalid UTF-8 gets its own wording).

    The same whether or not the line still holds its newline (the file reader keeps it,
    the block reader splits it off): orjson would place an error at the end on "line 2".
    """
    if raw.endswith(b"\n"):
        raw = raw[:-1]
        try:
            orjson.loads(raw)
        except orjson.JSONDecodeError as again:
            exc = again
    msg = str(exc)
    if "utf-8" in msg.lower() or "surrogate" in msg.lower():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as uexc:
            return f"invalid UTF-8 at byte {uexc.start + 1}"
    if "recursion" in msg.lower() or "depth limit" in msg.lower():
        return "invalid JSON: nested too deeply (more than 1024 levels)"
    # orjson: "unexpected character: line 1 column 5 (char 4)"; the line is ours already.
    msg = msg.split(": line 1 column", 1)[0] if ": line 1 column" in msg else msg
    col = getattr(exc, "colno", None)
    where = f" at column {col}" if col else ""
    if _non_finite_at(raw, getattr(exc, "pos", None)):
        # what Python's json.dumps writes for float('nan') by default: not JSON
        msg = "NaN and Infinity are not JSON (write null, or the value as a string)"
    return f"invalid JSON{where}: {msg}"


def _non_finite_at(raw: bytes, pos: int | None) -> bool:
    if not isinstance(pos, int) or not (b"NaN" in raw or b"Infinity" in raw):
        return False
    text = raw.decode("utf-8", "replace")
    return text.startswith(("NaN", "Infinity"), pos) or text.startswith("-Infinity", pos - 1)


def _yaml_line(exc: BaseException, text: _LineDecoder) -> int:
    """The 1-based line a YAML error names (a ReaderError gives a character position)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    position = getattr(exc, "position", None)
    if isinstance(position, int):
        return text.line_of(position)
    return 1


def _yaml_message(exc: BaseException) -> str:
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    text = f"{context}: {problem}" if context else str(problem)
    return "invalid YAML: " + " ".join(text.split())


def read_items(
    paths: Iterable[str], stdin_format: InputFormat = "jsonl"
) -> Iterator[tuple[Source, Item]]:
    """All items of all paths in order, each with the Source it came from."""
    for path in expand_paths(paths):
        src = Source.open(path, stdin_format)
        for item in src:
            yield src, item


# -- what an input holds -----------------------------------------------------------------
SNIFF_BYTES = 64 << 10  # the head of a file its format is told from


class Sniffed(NamedTuple):
    fmt: Literal["jsonl", "json"]  # how to read it
    foreign: str | None  # another tool's format: "otlp", "otlp-other", "langsmith", "csv"


_KEY_RE = re.compile(rb'"([A-Za-z_][A-Za-z0-9_]*)"\s*:')
_LANGSMITH_KEYS = frozenset({"dotted_order", "parent_run_id", "session_id", "child_run_ids"})


def sniff(head: bytes, json_suffix: bool = False) -> Sniffed:
    """What the first bytes of a JSON-lines input say it really is.

    - `[`: a JSON array of records, over many lines (or on one, in a `.json` file): read as
      records;
    - a first line that is `{` alone: JSON values one after another (`jq` output);
    - a first record with `resourceSpans`: an OpenTelemetry OTLP JSON export;
    - one with `run_type` and LangSmith's run keys (`dotted_order`, ...): a LangSmith run
      export (and no Weave `op_name`);
    - a first line of comma-separated names that is not JSON: CSV.
    Anything else is read as JSON lines, line by line, as before."""
    text = head[3:] if head.startswith(BOM) else head
    text = text.lstrip()
    if not text:
        return Sniffed("jsonl", None)
    first_line = text.split(b"\n", 1)[0].strip()
    if text[:1] == b"[":
        # a JSON array over many lines, or on the one line of a `.json` file; an array
        # that is a whole line of a JSON-lines file is a (wrong) record, said as such
        if json_suffix or not _parses(first_line):
            return Sniffed("json", None)
        return Sniffed("jsonl", None)
    if text[:1] == b"{":
        fmt: Literal["jsonl", "json"] = "json" if first_line == b"{" else "jsonl"
        keys = _first_keys(first_line if fmt == "jsonl" else text[:4096])
        if "resourceSpans" in keys:
            return Sniffed(fmt, "otlp")
        if "resourceLogs" in keys or "resourceMetrics" in keys:
            return Sniffed(fmt, "otlp-other")
        if "run_type" in keys and keys & _LANGSMITH_KEYS and "op_name" not in keys:
            return Sniffed(fmt, "langsmith")
        return Sniffed(fmt, None)
    if b"," in first_line and b"{" not in first_line:
        try:
            orjson.loads(first_line)
        except orjson.JSONDecodeError:
            return Sniffed("jsonl", "csv")
    return Sniffed("jsonl", None)


def _parses(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def _first_keys(text: bytes) -> set[str]:
    """The keys of the first record: its top level when the line parses (a long first line
    may be cut by the head), else every key name seen near the start."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {m.group(1).decode() for m in _KEY_RE.finditer(text[:16384])}
    return set(value) if isinstance(value, dict) else set()


def foreign_message(kind: str, path: str) -> str:
    """One line for a file in another tool's format: what it is, and what to do."""
    shown = "-" if path == STDIN_NAME else path
    if kind == "otlp":
        return (
            "an OpenTelemetry OTLP JSON file, not Weave calls: "
            f"`tracecli convert {shown} --to weave` converts it"
        )
    if kind == "otlp-other":
        return (
            "an OpenTelemetry OTLP JSON file of logs or metrics, not traces: "
            "tracecli reads Weave calls and Freeplay records"
        )
    if kind == "langsmith":
        return (
            "a LangSmith run export, not Weave calls: tracecli reads Weave calls and "
            "Freeplay records (`tracecli schema` shows their shape)"
        )
    return (
        "a CSV file, not JSON lines: tracecli reads JSON lines, a JSON array of records "
        "or YAML (`tracecli schema` shows the shape of a record)"
    )


def _file_head(path: str) -> bytes:
    """The first bytes of a file, gunzipped when it is gzip; b"" when it cannot be read
    (the read itself then says why)."""
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
            if head[:2] != GZIP_MAGIC:
                return head
            f.seek(0)
            with gzip.GzipFile(fileobj=f, mode="rb") as z:
                return z.read(SNIFF_BYTES)
    except (OSError, EOFError, zlib.error):
        return b""


def _peek_stdin() -> bytes:
    """What stdin holds so far, without consuming it; b"" for gzip (read as JSON lines)."""
    peek = getattr(sys.stdin.buffer, "peek", None)
    if peek is None:
        return b""
    try:
        head = bytes(peek(SNIFF_BYTES))
    except (OSError, ValueError):
        return b""
    return b"" if head[:2] == GZIP_MAGIC else head


class RawValue(NamedTuple):
    line: int  # where the value starts
    raw: bytes


_OUTSIDE = re.compile(rb'[\[\]{}"]')  # what changes the depth, outside strings
_INSIDE = re.compile(rb'["\\]')  # what ends a string, or escapes the next byte
_NEXT = re.compile(rb"[^\s,]")  # the start of the next value (commas between are skipped)
_SCALAR_END = re.compile(rb"[\s,\]]")


def iter_json_values(
    stream: IO[bytes], path: str, block: int = 1 << 16
) -> Iterator[RawValue | Diagnostic]:
    """The raw bytes of each element of a JSON array (or of each of JSON values that
    follow one another), with the line where it starts, read incrementally: a scanner
    that only tracks strings and nesting depth, so memory holds one element and a block.
    Each element is parsed by the caller (orjson), exactly as a JSON line would be.
    A file cut short is one diagnostic at the element it cuts."""
    buf = bytearray()
    pos = 0
    line = 1  # the line at `pos`
    top = -1  # the depth of the elements: 1 inside `[...]`, 0 for values in a row
    depth = 0
    start = -1  # where the current element starts in buf; -1 between elements
    start_line = 0
    in_str = False
    esc = False
    closed = False  # the array's `]` was read
    eof = False
    first = True

    while True:
        if pos >= len(buf) or (
            start >= 0 and top == depth and not in_str and buf[start] not in b'{["'
        ):
            # more bytes (a scalar element is only known complete at its end)
            if pos < len(buf):
                m = _SCALAR_END.search(buf, pos)
                if m is not None or eof:
                    end = m.start() if m is not None else len(buf)
                    yield RawValue(start_line, bytes(buf[start:end]))
                    line += buf.count(b"\n", pos, end)
                    pos, start = end, -1
                    continue
            if eof:
                break
            keep = start if start >= 0 else pos
            if keep:
                del buf[:keep]
                pos -= keep
                if start >= 0:
                    start = 0
            more = stream.read(block)
            if not more:
                eof = True
                continue
            if first:
                first = False
                more = more[3:] if more.startswith(BOM) else more
            buf += more
            continue
        if esc:
            esc = False
            pos += 1
            continue
        if in_str:
            m = _INSIDE.search(buf, pos)
            end = m.start() if m is not None else len(buf)
            line += buf.count(b"\n", pos, end)
            if m is None:
                pos = end
                continue
            pos = end + 1
            if buf[end] == 0x5C:  # a backslash: the next byte is escaped
                esc = True
                continue
            in_str = False
            if depth == top:  # a string element
                yield RawValue(start_line, bytes(buf[start:pos]))
                start = -1
            continue
        if start < 0:  # between elements
            m = _NEXT.search(buf, pos)
            end = m.start() if m is not None else len(buf)
            line += buf.count(b"\n", pos, end)
            pos = end
            if m is None:
                continue
            c = buf[pos]
            if top < 0:  # the very first byte: an array, or values one after another
                top = 1 if c == 0x5B else 0
                if top == 1:
                    depth = 1
                    pos += 1
                    continue
            if closed:
                yield Diagnostic.at(
                    Location(path, line), "json", "invalid JSON: text after the array's closing ]"
                )
                return
            if top == 1 and c == 0x5D:  # `]`: the end of the array
                closed = True
                depth = 0
                pos += 1
                continue
            start, start_line = pos, line
            if c in b"{[":
                depth += 1
                pos += 1
            elif c == 0x22:
                in_str = True
                pos += 1
            continue
        m = _OUTSIDE.search(buf, pos)
        end = m.start() if m is not None else len(buf)
        line += buf.count(b"\n", pos, end)
        if m is None:
            pos = end
            continue
        pos = end + 1
        c = buf[end]
        if c == 0x22:
            in_str = True
        elif c in b"{[":
            depth += 1
        else:
            depth -= 1
            if depth <= top:
                yield RawValue(start_line, bytes(buf[start:pos]))
                start = -1
                depth = top
    if start >= 0:
        yield Diagnostic.at(
            Location(path, start_line),
            "json",
            "invalid JSON: the file ends inside this record (is it cut short?)",
        )
    elif top == 1 and not closed:
        yield Diagnostic.at(
            Location(path, line), "json", "invalid JSON: the array is not closed (`]` missing)"
        )


# -- how an input is read ----------------------------------------------------------------
GZIP_MAGIC = b"\x1f\x8b"


def _is_regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def count_lines(path: str, offset: int = 0) -> int | None:
    """The lines of a file from `offset` (a line's start) to its end, or None when it
    cannot be read: about the records a JSON-lines file holds there (a blank line, rare,
    counts too)."""
    n = 0
    last = b"\n"
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            for block in iter(lambda: f.read(1 << 20), b""):
                n += block.count(b"\n")
                last = block[-1:]
    except OSError:
        return None
    return n + (0 if last == b"\n" else 1)


def regular_file(path: str) -> bool:
    """A regular file, which can be read in ranges by its size; a pipe (`<(zcat f.gz)`)
    or a device reports a size of 0 and must be read as a stream to its end."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return True  # let the read say what is wrong


def file_head(path: str, n: int = 2) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""  # let the read say what is wrong


def read_as_stream(path: str) -> bool:
    """Whether `path` must be read front to back (stdin, a pipe, gzip by its suffix or its
    first bytes) rather than in byte ranges of a plain file."""
    if path == STDIN or path.lower().endswith(".gz") or not regular_file(path):
        return True
    return file_head(path) == GZIP_MAGIC


def open_stream(path: str) -> IO[bytes]:
    """The bytes of stdin, a pipe or a file, gunzipped when they are gzip: known by the
    suffix, or by the first two bytes whatever the name (a gzip file piped in)."""
    raw: IO[bytes]
    if path == STDIN:
        raw = sys.stdin.buffer
    else:
        if path.lower().endswith(".gz"):
            return cast(IO[bytes], gzip.open(path, "rb"))
        raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    peek = getattr(raw, "peek", None)
    if peek is not None and peek(2)[:2] == GZIP_MAGIC:
        return cast(IO[bytes], _GzipOver(raw))
    return raw


class _GzipOver(gzip.GzipFile):
    """A gzip stream that closes what it reads from (a pipe we opened), never stdin."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__(fileobj=raw, mode="rb")
        self._source = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._source is not sys.stdin.buffer:
                self._source.close()
