"""Records of a YAML file, composed and built one at a time: libyaml's parser (when PyYAML
has it) under PyYAML's own composer, so memory holds one record, aliases are expanded within
a budget, and an error is placed at its line."""

from __future__ import annotations

import os
import sys
import zlib
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from typing import IO, TYPE_CHECKING, Any

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from tracecli.diagnostics import Diagnostic, Location
from tracecli.inputs.settle import quiet_for
from tracecli.inputs.streams import BOM, os_message
from tracecli.inputs.yaml_json import (
    json_key,
    restore_breaks,
    stand_in_breaks,
    with_exponent_floats,
)

MAX_ALIASED_VALUES = 100_000  # values one record may repeat through aliases
YamlItem = tuple[Location, Any] | Diagnostic


class BadUtf8(Exception):
    """A line of a YAML file that is not UTF-8: its line and the 1-based byte."""

    def __init__(self, line: int, byte: int) -> None:
        super().__init__(line, byte)
        self.line = line
        self.byte = byte


def _marker(raw: bytes) -> bytes | None:
    """b"---" or b"..." when the line is a document marker (at column 0, then a space, a
    tab or the line's end); a marker can sit in no scalar, so it always bounds a document."""
    head = raw[:3]
    if head in (b"---", b"...") and raw[3:4] in (b"", b" ", b"\t", b"\r", b"\n"):
        return head
    return None


def _item(raw: bytes) -> bool:
    """Whether the line starts an item of a sequence at column 0."""
    return raw[:1] == b"-" and raw[1:2] in (b"", b" ", b"\t", b"\r", b"\n")


def _content(raw: bytes) -> bool:
    """Whether the line holds YAML content (not blank, a comment or a directive)."""
    text = raw.strip()
    return bool(text) and text[:1] not in (b"#", b"%")


class _WholeDocuments:
    """upload --follow: the lines of a YAML file handed on only once their document is
    known whole, since a document cut anywhere between two keys is valid YAML as it stands
    (all but its `output`) and would be sent so. Whole are: the lines before a `---` line,
    those up to a `...` line, the items of a top-level list before the next item, and all
    of it once the file is quiet (`settle.quiet_for`: the writer stopped). The lines of a
    last document not yet known whole are left for a later pass (`held_back`)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._ready: deque[bytes] = deque()
        self._held: list[bytes] = []  # the current document's lines, not known whole yet
        self._list: bool | None = None  # whether it is a top-level list (None: no content yet)
        self.held_back = False

    def readline(self) -> bytes:
        while not self._ready:
            raw = self._stream.readline()
            if not raw:
                return self._at_end()
            self._take(raw)
        return self._ready.popleft()

    def _release(self) -> None:
        self._ready.extend(self._held)
        self._held = []

    def _take(self, raw: bytes) -> None:
        line = raw.removeprefix(BOM)
        marker = _marker(line)
        if marker == b"---":  # what came before is whole; this line starts the next one
            self._release()
            rest = line[3:].strip()
            self._list = False if rest and rest[:1] != b"#" else None  # `--- {a: 1}`: whole
            self._held.append(raw)
        elif marker == b"...":
            self._held.append(raw)
            self._release()
            self._list = None
        elif self._list is None and _content(raw):
            self._list = _item(raw)
            self._held.append(raw)
        else:
            if self._list and _item(raw):  # the next item: the one before is whole
                self._release()
            self._held.append(raw)

    def _at_end(self) -> bytes:
        if self._held:
            if _quiet(self._stream):
                self._release()
            else:
                self._held = []
                self.held_back = True
        return self._ready.popleft() if self._ready else b""


def _quiet(stream: IO[bytes]) -> bool:
    """Whether the file behind `stream` has not changed for `QUIET_SECONDS` (True when
    that cannot be told: its whole content is read, as without --follow)."""
    try:
        mtime_ns = os.fstat(stream.fileno()).st_mtime_ns
    except (OSError, ValueError):
        return True
    return quiet_for(mtime_ns) <= 0


class LineDecoder:
    """A byte stream as the text stream PyYAML reads (`read(size)`), decoded a line at a
    time so invalid UTF-8 is reported at its own line, and remembering where the recent
    lines start so an error that PyYAML places by character can be given its line. With
    `follow` (upload --follow), a last document not yet known whole is not handed out
    (see `_WholeDocuments`)."""

    def __init__(self, stream: IO[bytes], follow: bool = False) -> None:
        self._whole = _WholeDocuments(stream) if follow else None
        self._stream: IO[bytes] | _WholeDocuments = self._whole or stream
        self._line = ""  # the line being handed out, from `_at` on
        self._at = 0
        self.lines = 0  # lines decoded so far
        self.bytes = 0
        self._starts: deque[tuple[int, int]] = deque(maxlen=8192)  # (char offset, line)
        self._decoded = 0  # characters decoded so far
        self.breaks = False  # whether a NEL, LS or PS was handed out as its stand-in

    def read(self, size: int = -1) -> str:
        """Up to `size` characters (all that is left when negative); one line is decoded
        at a time and handed out by offset, so a 50 MB line costs its size, not its size
        per read."""
        parts: list[str] = []
        want = size if size >= 0 else sys.maxsize
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
            raise BadUtf8(self.lines + 1, exc.start + 1) from None
        if not line.isascii():  # NEL, LS, PS: line breaks to YAML 1.1 (see yaml_json)
            stood_in = stand_in_breaks(line)
            self.breaks = self.breaks or stood_in != line
            line = stood_in
        self._starts.append((self._decoded, self.lines + 1))
        self.lines += 1
        self._decoded += len(line)
        self._line, self._at = line, 0
        return True

    def cut_before(self, line: int) -> bool:
        """Whether an error at `line` is where this text stops short of a part held back
        (--follow): a top-level list cut before an item that a quoted scalar spans (`- "a`
        then `- b"`) reads as an unclosed quote there. A later pass reads on; an error
        that remains is said once the file is quiet (nothing is held back then)."""
        return self._whole is not None and self._whole.held_back and line >= self.lines

    def line_of(self, position: int) -> int:
        """The 1-based line of character `position`, if it is among the recent lines."""
        line = 1
        for start, n in self._starts:
            if start > position:
                break
            line = n
        return line


class _RecordComposer(Composer, SafeConstructor, Resolver):
    """The safe loader's composer, constructor and resolver, minus implicit timestamps: a
    `started_at` stays the string written, exactly as a JSONL file would carry it, so YAML
    and JSONL records validate the same. It comes first among a loader's bases, so its
    composition (not the C parser's own `check_node`, `get_node`) builds each node."""

    # ... and with floats as YAML 1.2 writers write them (`1e-07`): see yaml_json
    yaml_implicit_resolvers = with_exponent_floats(
        {
            k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
            for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
        }
    )

    if TYPE_CHECKING:  # what the parser beside it in a loader's bases provides

        def check_event(self, *choices: object) -> bool: ...
        def peek_event(self) -> yaml.Event | None: ...
        def get_event(self) -> yaml.Event | None: ...
        def dispose(self) -> None: ...

    def __init__(self) -> None:
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self.next_record()

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        """A mapping, its keys that are numbers, booleans or null spelled as JSON spells
        them (`yaml_json.json_key`), each before it is put in: `true` and `1` stay two."""
        if not isinstance(node, MappingNode):
            raise ConstructorError(
                None,
                None,
                f"expected a mapping node, but found {type(node).__name__}",
                node.start_mark,
            )
        self.flatten_mapping(node)  # the merge key `<<`
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = json_key(self.construct_object(key_node, deep=deep))
            if not isinstance(key, Hashable):
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found unhashable key",
                    key_node.start_mark,
                )
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def next_record(self) -> None:
        """Start the alias budget over: it is per record."""
        self.expanded = 0
        self.sizes: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        """Aliases are followed within a budget: `yaml.dump` writes them for a dict shared
        by many calls, but nested ones expand exponentially (a "billion laughs" file of
        a few hundred bytes would hold the checks for hours)."""
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            node = self.anchors.get(event.anchor)
            if node is not None:
                self.expanded += _node_size(node, self.sizes)
                if self.expanded > MAX_ALIASED_VALUES:
                    raise ComposerError(
                        None,
                        None,
                        f"found an alias (*{event.anchor}) past {MAX_ALIASED_VALUES:,} "
                        "values repeated by aliases in one record: write the values out",
                        _plain_mark(event.start_mark),
                    )
        return super().compose_node(parent, index)


def _no_json_form(loader: Any, node: Node) -> Any:
    """A `!!binary` or `!!set` value: JSON has no form for it, so the record cannot be sent
    as written (upload refused it while validate passed it); refused here, for both."""
    raise ConstructorError(
        None,
        None,
        f"a !!{node.tag.rsplit(':', 1)[-1]} value has no JSON form, and a Weave server takes "
        "JSON: write it as a string or a list",
        node.start_mark,
    )


_RecordComposer.add_constructor("tag:yaml.org,2002:binary", _no_json_form)
_RecordComposer.add_constructor("tag:yaml.org,2002:set", _no_json_form)


class _PyLoader(_RecordComposer, Reader, Scanner, Parser):
    """PyYAML's own parser: only where PyYAML was built without libyaml."""

    def __init__(self, stream: LineDecoder) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _RecordComposer.__init__(self)


_Loader: Callable[[LineDecoder], _RecordComposer] = _PyLoader
try:
    from yaml._yaml import CParser
except ImportError:  # pragma: no cover - wheels ship libyaml; a source build may not
    pass
else:

    class _CLoader(_RecordComposer, CParser):
        """libyaml's parser: ten times PyYAML's."""

        def __init__(self, stream: LineDecoder) -> None:
            CParser.__init__(self, stream)
            _RecordComposer.__init__(self)

    _Loader = _CLoader


def _plain_mark(mark: Any) -> yaml.error.Mark | None:
    """The C parser's mark (same fields, another class) as the one PyYAML's errors take."""
    if mark is None:
        return None
    return yaml.error.Mark(mark.name, mark.index, mark.line, mark.column, None, 0)


def _node_size(node: Node, memo: dict[int, int]) -> int:
    """How many values a node stands for once its aliases are expanded."""
    n = memo.get(id(node))
    if n is None:
        if isinstance(node, SequenceNode):
            n = 1 + sum(_node_size(c, memo) for c in node.value)
        elif isinstance(node, MappingNode):
            n = 1 + sum(_node_size(k, memo) + _node_size(v, memo) for k, v in node.value)
        else:
            n = 1
        memo[id(node)] = n
    return n


def read_yaml(text: LineDecoder, path: str) -> Iterator[YamlItem]:
    """Records of a YAML file as they are parsed: each document of a multi-document
    stream, each item of a top-level list, composed and built one at a time, so
    memory holds one record, not the file (a list's node tree costs ~50x its text).
    A problem stops the file: YAML cannot resume after a syntax error."""
    loader: _RecordComposer | None = None
    line = 1
    try:
        loader = _Loader(text)  # reads ahead: may fail at once
        loader.get_event()  # StreamStart
        while not loader.check_event(yaml.StreamEndEvent):
            loader.get_event()  # DocumentStart
            top_list = loader.check_event(yaml.SequenceStartEvent)
            if top_list:
                loader.get_event()
            while not (top_list and loader.check_event(yaml.SequenceEndEvent)):
                loader.next_record()
                # a root's index: only path resolvers read it, and the safe loader has none
                node = loader.compose_node(None, 0)
                if node is None:  # pragma: no cover - the events above hold a node
                    break
                line = node.start_mark.line + 1 if node.start_mark is not None else line
                value, problem = _construct(loader, node)
                if text.breaks:
                    value = restore_breaks(value)
                if problem is not None:
                    yield Diagnostic.at(Location(path, line), "yaml", problem)
                elif value is not None:
                    yield Location(path, line), value
                if not top_list:
                    break
            if top_list:
                loader.get_event()  # SequenceEnd
            loader.get_event()  # DocumentEnd
            loader.anchors = {}
    except yaml.YAMLError as exc:
        at = yaml_line(exc, text)
        if not text.cut_before(at):
            yield Diagnostic.at(Location(path, at), "yaml", yaml_message(exc))
    except BadUtf8 as exc:
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


def _construct(loader: _RecordComposer, node: Node) -> tuple[Any, str | None]:
    """The record a node builds, or why it cannot be built (a tag): that stops only it."""
    try:
        return loader.construct_document(node), None
    except yaml.YAMLError as exc:
        return None, yaml_message(exc)
    except (ValueError, KeyError, OverflowError) as exc:
        # a tag PyYAML builds with Python's own parsers (`!!int abc`, `!!bool maybe`,
        # `!!timestamp 2026-13-45`): their errors are not YAMLErrors
        why = f"no boolean {exc}" if isinstance(exc, KeyError) else str(exc)
        return None, f"invalid YAML: a value is not what its tag says ({why})"
    except RecursionError:
        return None, "nested too deeply"


def yaml_line(exc: BaseException, text: LineDecoder) -> int:
    """The 1-based line a YAML error names (a ReaderError gives a character position)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    position = getattr(exc, "position", None)
    if isinstance(position, int):
        return text.line_of(position)
    return 1


def yaml_message(exc: BaseException) -> str:
    """One line for a YAML error: its context and its problem, whitespace folded."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    text = f"{context}: {problem}" if context else str(problem)
    return "invalid YAML: " + " ".join(text.split())
