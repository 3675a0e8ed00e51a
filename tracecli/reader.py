"""Streaming readers: files, directories and stdin → `(Location, value)` or a Diagnostic.

Every reader is a generator so memory does not grow with file size, and each value carries
the line where it starts, attached here where it is parsed (not later, where it is consumed).
Bytes are parsed line by line, so one bad line (invalid UTF-8, a truncated record) is one
diagnostic, not the failure of the whole file.
"""

from __future__ import annotations

import gzip
import os
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import orjson
import yaml

from tracecli.diagnostics import Diagnostic, Location, UsageError

InputFormat = Literal["jsonl", "yaml"]
Item = tuple[Location, Any] | Diagnostic

JSONL_SUFFIXES = (".jsonl", ".ndjson")
YAML_SUFFIXES = (".yaml", ".yml")
TRACE_SUFFIXES = JSONL_SUFFIXES + YAML_SUFFIXES
BOM = b"\xef\xbb\xbf"
STDIN = "-"
STDIN_NAME = "<stdin>"  # how stdin is named in diagnostics


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
    return name.endswith(TRACE_SUFFIXES)


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Files named directly, and the trace files under each directory (recursively, sorted).

    A path that does not exist is a usage error before anything is read: a CI step with a
    typo in its glob must fail loudly, not validate nothing.
    """
    out: list[str] = []
    for raw in paths:
        if raw == STDIN:
            out.append(raw)
            continue
        p = Path(raw)
        if p.is_dir():
            found = sorted(str(f) for f in p.rglob("*") if f.is_file() and _is_trace_file(f))
            out.extend(found)
        elif p.exists():
            out.append(raw)
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
    fmt: InputFormat
    size: int | None = None
    bytes_read: int = 0
    records: int = 0
    _raw: IO[bytes] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: str, stdin_format: InputFormat = "jsonl") -> Source:
        if path == STDIN:
            return cls(path=STDIN_NAME, fmt=stdin_format)
        size = os.path.getsize(path)
        return cls(path=path, fmt=format_of(path), size=size)

    def _open_stream(self) -> IO[bytes]:
        if self.path == STDIN_NAME:
            return sys.stdin.buffer
        raw = open(self.path, "rb")  # noqa: SIM115 - closed in __iter__
        self._raw = raw
        if self.path.lower().endswith(".gz"):
            return gzip.GzipFile(fileobj=raw, mode="rb")
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
            yield Diagnostic.at(Location(self.path, 0), "read-error", _os_message(exc))
            return
        try:
            if self.fmt == "yaml":
                yield from self._iter_yaml(stream)
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
        try:
            for raw in stream:
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
                f"file cannot be read from here on: {_os_message(exc)}",
            )

    def _iter_yaml(self, stream: IO[bytes]) -> Iterator[Item]:
        path = self.path
        try:
            data = stream.read()
        except (EOFError, OSError, zlib.error) as exc:
            yield Diagnostic.at(Location(path, 1), "read-error", _os_message(exc))
            return
        self.bytes_read = self.size or len(data)
        if data.startswith(BOM):
            data = data[3:]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            yield Diagnostic.at(Location(path, line), "encoding", "invalid UTF-8 in YAML file")
            return
        try:
            loader = _TraceYamlLoader(text)  # checks the characters: may refuse at once
        except yaml.YAMLError as exc:
            yield Diagnostic.at(Location(path, _yaml_line(exc, text)), "yaml", _yaml_message(exc))
            return
        try:
            while loader.check_node():
                node = loader.get_node()
                if node is None:
                    continue
                items = node.value if isinstance(node, yaml.SequenceNode) else [node]
                for item in items:
                    loc = Location(path, item.start_mark.line + 1)
                    try:
                        value = loader.construct_document(item)
                    except yaml.YAMLError as exc:
                        yield Diagnostic.at(loc, "yaml", _yaml_message(exc))
                        continue
                    except RecursionError:
                        yield Diagnostic.at(loc, "yaml", "nested too deeply")
                        continue
                    if value is None:
                        continue
                    self.records += 1
                    yield loc, value
        except yaml.YAMLError as exc:
            yield Diagnostic.at(Location(path, _yaml_line(exc, text)), "yaml", _yaml_message(exc))
        except RecursionError:
            yield Diagnostic.at(Location(path, 1), "yaml", "nested too deeply")
        finally:
            loader.dispose()


class _TraceYamlLoader(yaml.SafeLoader):
    """The safe loader, minus implicit timestamps: a `started_at` stays the string written,
    exactly as a JSONL file would carry it, so YAML and JSONL records validate the same."""

    yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Aliases are refused: nested ones expand exponentially (a "billion laughs" file
        of a few hundred bytes would hold a checker for hours), and no trace needs them."""
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"found an alias (*{event.anchor}): tracecli does not expand YAML aliases, "
                "write the value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def _os_message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


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


def _yaml_line(exc: BaseException, text: str) -> int:
    """The 1-based line a YAML error names (a ReaderError gives a character position)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    position = getattr(exc, "position", None)
    if isinstance(position, int):
        return text.count("\n", 0, position) + 1
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
