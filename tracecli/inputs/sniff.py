"""What an input really holds, told from its first bytes: a JSON array, JSON values one after
another, or another tool's format (OpenTelemetry, LangSmith, CSV) named in one line."""

from __future__ import annotations

import gzip
import re
import sys
import zlib
from contextlib import suppress
from typing import Literal, NamedTuple

import orjson

from tracecli.inputs.streams import (
    BOM,
    GZIP_MAGIC,
    HEAD_BYTES,
    STDIN_NAME,
    pipe_stream,
    regular_file,
)

SNIFF_BYTES = HEAD_BYTES  # the head of a file its format is told from
UTF16 = (
    "the file is UTF-16 (it starts with a UTF-16 byte order mark); tracecli reads UTF-8: "
    "convert it, e.g. iconv -f UTF-16 -t UTF-8"
)
OTLP = "otlp"  # Sniffed.foreign of an OpenTelemetry traces export


class Sniffed(NamedTuple):
    fmt: Literal["jsonl", "json"]  # how to read it
    # another tool's format: "otlp", "otlp-other", "otel-console", "langsmith",
    # "weave-dropped", "csv", or a compression (`packed`)
    foreign: str | None


_KEY_RE = re.compile(rb'"([A-Za-z_][A-Za-z0-9_]*)"\s*:')
_LANGSMITH_KEYS = frozenset({"dotted_order", "parent_run_id", "session_id", "child_run_ids"})


def sniff(head: bytes, json_suffix: bool = False) -> Sniffed:
    """What the first bytes of a JSON-lines input say it really is.

    - `[`: a JSON array of records, over many lines (or on one, in a `.json` file): read as
      records;
    - a first line that is `{` alone: JSON values one after another (`jq` output);
    - a first record with `resourceSpans`: an OpenTelemetry OTLP JSON export (records `{}`
      before it tell nothing: an empty OTLP request is written so);
    - one with `run_type` and LangSmith's run keys (`dotted_order`, ...): a LangSmith run
      export (and no Weave `op_name`);
    - a first line of comma-separated names that is not JSON: CSV.
    - compressed data tracecli does not read (zstd, xz, bzip2, zip) or UTF-16 (`packed`).
    Anything else is read as JSON lines, line by line, as before."""
    packing = packed(head)
    if packing is not None:
        return Sniffed("jsonl", packing)
    text = head[3:] if head.startswith(BOM) else head
    text = text.lstrip()
    if not text:
        return Sniffed("jsonl", None)
    first_line = text.split(b"\n", 1)[0].strip()
    while first_line == b"{}" and b"\n" in text:  # an empty record tells no format
        text = text.split(b"\n", 1)[1].lstrip()
        first_line = text.split(b"\n", 1)[0].strip()
    if text[:1] == b"[":
        # a JSON array over many lines, or on the one line of a `.json` file; an array
        # that is a whole line of a JSON-lines file is a (wrong) record, said as such
        if json_suffix or not _parses(first_line):
            return Sniffed("json", _array_of(text))
        if _array_of(text) == OTLP and not text[len(first_line) :].strip():
            return Sniffed("json", OTLP)  # an OTLP export's requests as one JSON array
        return Sniffed("jsonl", None)
    if text[:1] == b"{":
        fmt: Literal["jsonl", "json"] = "json" if first_line == b"{" else "jsonl"
        keys = _first_keys(first_line if fmt == "jsonl" else text[:4096])
        return Sniffed(fmt, _foreign_keys(keys))
    if b"," in first_line and b"{" not in first_line and not _records_follow(text):
        try:
            orjson.loads(first_line)
        except orjson.JSONDecodeError:
            return Sniffed("jsonl", "csv")
    return Sniffed("jsonl", None)


def _records_follow(text: bytes) -> bool:
    """Whether a line after the first starts a JSON object: JSON lines under a header or a
    comment (`# exported by app, v1.2`), not CSV, whose rows start with a value."""
    return any(line.lstrip()[:1] == b"{" for line in text.split(b"\n")[1:])


# What a file holds when its first bytes are these, and what to do: every line of it would
# be binary garbage, an error each. The OpenTelemetry Collector's file exporter writes zstd
# (`compression: zstd`) under the name it was given (`traces.json`); PowerShell's `>`
# writes UTF-16.
PACKINGS: dict[bytes, tuple[str, str]] = {
    b"\x28\xb5\x2f\xfd": ("zstd", "zstd-compressed: decompress it first (zstd -d)"),
    b"\xfd7zXZ\x00": ("xz", "xz-compressed: decompress it first (xz -d)"),
    b"BZh": ("bzip2", "bzip2-compressed: decompress it first (bzip2 -d)"),
    b"PK\x03\x04": ("zip", "a zip archive: extract its files first (unzip)"),
    b"\xff\xfe": ("utf16", UTF16),
    b"\xfe\xff": ("utf16", UTF16),
}
# The Collector's file exporter writes each message after its length (4 bytes, big-endian:
# a first byte of 0 below 16 MiB, which no text starts with) for `format: proto`, and for
# `compression: zstd` unless its native-compression feature gate is on (then the file is
# one zstd stream of JSON lines: the zstd magic above).
_TO_JSON = "tracecli reads OTLP JSON lines: set the exporter's `format: json`"
COLLECTOR: dict[str, str] = {
    "collector-zstd": (
        "the file is the OpenTelemetry Collector file exporter's `compression: zstd` output "
        f"(each message compressed on its own, after its length); {_TO_JSON}, without "
        "`compression`"
    ),
    "collector-proto": (
        "the file is the OpenTelemetry Collector file exporter's `format: proto` output "
        f"(OTLP protobuf messages, each after its length); {_TO_JSON}"
    ),
}
PACKED_KINDS = frozenset(kind for kind, _ in PACKINGS.values()) | frozenset(COLLECTOR)


def packed(head: bytes) -> str | None:
    """The kind of compression (or UTF-16) a file's first bytes say, if one of `PACKINGS`
    (bzip2 only with its block size digit: "BZh9", not a line starting "BZh"), or of the
    Collector's length-prefixed messages (`COLLECTOR`)."""
    for magic, (kind, _) in PACKINGS.items():
        if head.startswith(magic) and (kind != "bzip2" or head[3:4].isdigit()):
            return kind
    if head[:1] == b"\x00" and len(head) > 4:
        if head[4:8] == b"\x28\xb5\x2f\xfd":
            return "collector-zstd"
        if head[4:5] == b"\x0a":  # field 1 (resource_spans), length-delimited
            return "collector-proto"
    return None


def _foreign_keys(keys: set[str]) -> str | None:
    """The other tool's format a record's keys name, if any."""
    if "resourceSpans" in keys or "resource_spans" in keys:  # (protobuf's field names too)
        return OTLP
    if keys & {"resourceLogs", "resourceMetrics", "resource_logs", "resource_metrics"}:
        return "otlp-other"
    if "run_type" in keys and keys & _LANGSMITH_KEYS and "op_name" not in keys:
        return "langsmith"
    if keys == _WEAVE_DROPPED_KEYS:
        return "weave-dropped"
    if keys >= _CONSOLE_SPAN_KEYS and "op_name" not in keys:
        return "otel-console"
    return None


# a span as OpenTelemetry's ConsoleSpanExporter prints it (`ReadableSpan.to_json()`)
_CONSOLE_SPAN_KEYS = frozenset({"name", "context", "kind", "start_time"})


# a line of the weave SDK's `.weave_client_dropped_items_log.jsonl` (its batch processors'
# disk fallback): the item it could not send, as `json.dumps(..., default=str)` wrote it
_WEAVE_DROPPED_KEYS = frozenset({"timestamp", "error_message", "item_id", "item"})


def _array_of(text: bytes) -> str | None:
    """OpenTelemetry when a JSON array's first element is an OTLP request (an export of
    requests written as one array): its first key is `resourceSpans` (a request's only
    one), not a key nested in a record; None for anything else (records, read as such)."""
    inner = text[1:].lstrip()
    first = _KEY_RE.match(inner[1:].lstrip()) if inner[:1] == b"{" else None
    if first is None:
        return None
    kind = _foreign_keys({first.group(1).decode()})
    return kind if kind in (OTLP, "otlp-other") else None


def _parses(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def _first_keys(text: bytes) -> set[str]:
    """The keys of the first record: its top level when the line parses, else those of its
    top level found in the head (a long first line is cut by it). Only the top level: a
    Weave call whose inputs hold an OTLP request (`resourceSpans`) is no OTLP export."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _top_keys(text)
    return set(value) if isinstance(value, dict) else set()


# a JSON string (and the colon after it, if a key), or a bracket
_TOKEN_RE = re.compile(rb'"([^"\\]*(?:\\.[^"\\]*)*)"\s*(:?)|[{}\[\]]')


def _top_keys(text: bytes) -> set[str]:
    """The keys at the top level of the JSON object `text` starts (cut anywhere)."""
    keys: set[str] = set()
    depth = 0
    for m in _TOKEN_RE.finditer(text):
        token = m.group(0)[:1]
        if token in (b"{", b"["):
            depth += 1
        elif token in (b"}", b"]"):
            depth -= 1
        elif depth == 1 and m.group(2):
            with suppress(orjson.JSONDecodeError):  # a bad escape: no key of ours
                keys.add(orjson.loads(b'"' + m.group(1) + b'"'))
    return keys


def foreign_message(kind: str, path: str) -> str:
    """One line for a file in another tool's format: what it is, and what to do."""
    shown = "-" if path == STDIN_NAME else path
    for packed_kind, said in PACKINGS.values():
        if kind == packed_kind:
            return said if kind == "utf16" else f"the file is {said}"
    if kind in COLLECTOR:
        return COLLECTOR[kind]
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
    if kind == "otel-console":
        return (
            "OpenTelemetry's ConsoleSpanExporter output (each span's to_json()), not OTLP: "
            "tracecli reads OTLP JSON, as the OTLP JSON file exporter "
            "(opentelemetry-exporter-otlp-json-file) or the Collector's file exporter "
            "writes it"
        )
    if kind == "weave-dropped":
        return (
            "the weave SDK's log of the items it could not send "
            "(.weave_client_dropped_items_log.jsonl), not Weave calls: it writes each item "
            "as Python text, which tracecli cannot read back as a call"
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


def head_of(path: str) -> bytes:
    """The first bytes of a file, gunzipped when it is gzip; b"" when it cannot be read
    (the read itself then says why). A pipe's head is read once and kept in front of
    the rest (`streams.pipe_stream`), as stdin's is."""
    if not regular_file(path):
        try:
            return _unzipped(bytes(pipe_stream(path).peek(SNIFF_BYTES)))
        except (OSError, ValueError):
            return b""
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


def stdin_head() -> bytes:
    """What stdin holds so far, without consuming it (gunzipped, for gzip)."""
    peek = getattr(sys.stdin.buffer, "peek", None)
    if peek is None:
        return b""
    try:
        head = bytes(peek(SNIFF_BYTES))
    except (OSError, ValueError):
        return b""
    return _unzipped(head)


def _unzipped(head: bytes) -> bytes:
    """The start of a stream's bytes, gunzipped when they are gzip."""
    if head[:2] != GZIP_MAGIC:
        return head
    try:  # what the buffered start of a gzip stream holds (an OTLP export piped in)
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, SNIFF_BYTES)
    except zlib.error:
        return b""
