"""Files real producers write that tracecli cannot read as they are: each said once, with
what to do, by every command that reads inputs (never an error a "line" of binary data)."""

from __future__ import annotations

import bz2
import io
import json
import lzma
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.otel_spans import bare_span
from tests.support.validate_kit import call
from tracecli.cli import app

runner = CliRunner()


def zstd_frame(data: bytes) -> bytes:
    """`data` as one zstd frame of one raw block (what `zstd -d` reads back as `data`):
    the OpenTelemetry Collector's file exporter writes such frames with `compression: zstd`,
    keeping the name it was given (`traces.json`)."""
    assert len(data) < 65536
    if len(data) < 256:  # one segment, its size in 1 byte
        header = b"\x28\xb5\x2f\xfd\x20" + bytes([len(data)])
    else:  # in 2 bytes, less 256
        header = b"\x28\xb5\x2f\xfd\x60" + struct.pack("<H", len(data) - 256)
    block = (1 | len(data) << 3).to_bytes(3, "little")  # the last block, raw
    return header + block + data


def zipped(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("traces.jsonl", data)
    return out.getvalue()


def length_prefixed(messages: list[bytes]) -> bytes:
    """What the Collector's file exporter writes for `format: proto`, and for `compression:
    zstd` (unless its native-compression gate is on): each message after its length, 4 bytes
    big-endian (`exportMessageAsBuffer`)."""
    return b"".join(struct.pack(">I", len(m)) + m for m in messages)


def collector_zstd(data: bytes) -> bytes:
    return length_prefixed([zstd_frame(line + b"\n") for line in data.splitlines()])


def collector_proto(data: bytes) -> bytes:
    # ExportTraceServiceRequest{resource_spans: [ResourceSpans{scope_spans: [{}]}]}, by hand
    return length_prefixed([b"\x0a\x02\x12\x00"] * max(1, len(data.splitlines())))


PACKED: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "zstd": (zstd_frame, "zstd-compressed"),
    "collector-zstd": (collector_zstd, "compression: zstd"),
    "collector-proto": (collector_proto, "format: proto"),
    "xz": (lzma.compress, "xz-compressed"),
    "bzip2": (bz2.compress, "bzip2-compressed"),
    "zip": (zipped, "a zip archive"),
    "utf16": (lambda b: b.decode().encode("utf-16"), "UTF-16"),
}

# each command that reads inputs, with the arguments it needs around a path
COMMANDS = {
    "validate": ["validate"],
    "upload": ["upload", "--target", "local"],
    "upload-freeplay": ["upload", "--target", "freeplay", "--dry-run"],
    "convert-freeplay": ["convert", "--to", "freeplay", "-o", "out.jsonl"],
    "convert-weave": ["convert", "--to", "weave", "-p", "e/p", "-o", "out.jsonl"],
}


def _records(spans: bool) -> bytes:
    if spans:
        request = {"resourceSpans": [{"scopeSpans": [{"spans": [bare_span("a000000000000001")]}]}]}
        return json.dumps(request).encode() + b"\n"
    return b"".join(json.dumps(r).encode() + b"\n" for r in call() + call())


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("packing", list(PACKED))
def test_a_compressed_or_utf16_file_is_said_once_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, packing: str, command: str
) -> None:
    monkeypatch.chdir(tmp_path)
    pack, said = PACKED[packing]
    Path("traces.json").write_bytes(pack(_records(command == "convert-weave") * 3))
    args = COMMANDS[command]
    got = runner.invoke(app, [*args[:1], "traces.json", *args[1:]])
    text = got.stdout + got.stderr
    assert "Traceback" not in text
    assert got.exit_code == 1, text
    problems = [line for line in text.splitlines() if "error" in line and "traces.json" in line]
    assert len(problems) == 1, text
    assert said in problems[0] and "UTF-8 at byte" not in text


def test_the_zstd_frame_is_one_the_zstd_tool_reads() -> None:
    """The test's frame is real zstd: the `zstd` tool, where installed, reads it back."""
    import shutil
    import subprocess

    if shutil.which("zstd") is None:
        pytest.skip("no zstd tool on this machine")
    for data in (_records(False), b'{"short": 1}\n'):
        frame = zstd_frame(data)
        got = subprocess.run(["zstd", "-dc"], input=frame, capture_output=True, check=True)
        assert got.stdout == data


def test_a_links_id_not_in_hex_is_said_without_a_digit_count(tmp_path: Path) -> None:
    """A link's id written in base64 (protobuf's JSON mapping of bytes, as some exporters
    write it): weave refuses the request (400, "not hex"), and the error said no longer
    asks for "0 hex digits"."""
    span = bare_span("a000000000000001")
    span["links"] = [{"traceId": "W47/95gDgQPSabYzgT/GDA==", "spanId": "oAAAAAAAAAE="}]
    request = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    path = tmp_path / "spans.jsonl"
    path.write_text(json.dumps(request) + "\n")
    got = runner.invoke(app, ["validate", str(path)])
    assert got.exit_code == 1
    assert "links[0].traceId: expected hex digits, got 'W47/95gDgQPSabYzgT/GDA=='" in got.stdout


NESTED = {
    "otlp-traces": {"request": {"resourceSpans": []}},
    "otlp-logs": {"request": {"resourceLogs": []}},
    "langsmith": {"run": {"run_type": "llm", "dotted_order": "x", "session_id": "s"}},
}


@pytest.mark.parametrize("nested", list(NESTED))
def test_a_big_first_record_holding_another_formats_keys_is_read_as_records(
    tmp_path: Path, nested: str
) -> None:
    """A Weave call of an op that handles OpenTelemetry requests (its inputs hold
    `resourceSpans`), its first line longer than the 64 KiB head the file is told from: the
    whole file was taken for an OTLP export (every line "not an OTLP request") or refused as
    OTLP logs, from a key deep inside the first record."""
    from tests.support.validate_kit import complete, new_id

    first = complete(new_id(), new_id(), inputs={**NESTED[nested], "note": "x" * 70_000})
    path = tmp_path / "calls.jsonl"
    path.write_text(json.dumps(first) + "\n" + json.dumps(complete(new_id(), new_id())) + "\n")
    got = runner.invoke(app, ["validate", str(path), "--format", "json"])
    report = json.loads(got.stdout)
    assert (report["errors"], report["calls"]) == (0, 2), report["diagnostics"]


def test_an_otlp_request_longer_than_the_head_is_still_told_by_its_first_key(
    tmp_path: Path,
) -> None:
    span = bare_span("a000000000000001")
    span["attributes"] = [{"key": "input.value", "value": {"stringValue": "x" * 70_000}}]
    request = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    path = tmp_path / "spans.jsonl"
    path.write_text(json.dumps(request) + "\n")
    got = runner.invoke(app, ["validate", str(path), "--format", "json"])
    report = json.loads(got.stdout)
    assert (report["errors"], report["calls"]) == (0, 1), report["diagnostics"]


def test_the_weave_sdks_dropped_items_log_is_named_once(tmp_path: Path) -> None:
    """What weave 0.54's batch processor writes to `.weave_client_dropped_items_log.jsonl`
    when the server fails its items (`json.dumps(record, default=str)`: the item, a pydantic
    model, as Python text): said once as that log, not each line as a record of no shape."""
    item = "mode='start' req=CallStartReq(start=StartedCallSchemaForInsert(project_id='e/p'))"
    lines = [
        json.dumps({"timestamp": 1765100000.5, "error_message": "boom", "item_id": n, "item": item})
        for n in (140230, 140231)
    ]
    path = tmp_path / ".weave_client_dropped_items_log.jsonl"
    path.write_text("\n".join(lines) + "\n")
    got = runner.invoke(app, ["validate", str(path)])
    assert got.exit_code == 1
    (problem,) = [line for line in got.stdout.splitlines() if ": error:" in line]
    assert "the weave SDK's log of the items it could not send" in problem


CONSOLE_SPAN = {
    "name": "chat gpt-4o",
    "context": {"trace_id": "0x7778f17efc6664bbd4fa9272a21a3bfc", "span_id": "0x9f6d3745b1114efa"},
    "kind": "SpanKind.INTERNAL",
    "parent_id": "0x31e7cda158c423f5",
    "start_time": "2026-12-07T17:37:43.726004Z",
    "end_time": "2026-12-07T17:37:43.726021Z",
    "status": {"status_code": "UNSET"},
    "attributes": {"gen_ai.request.model": "gpt-4o"},
    "events": [],
    "links": [],
    "resource": {"attributes": {"service.name": "unknown_service:python"}, "schema_url": ""},
}


@pytest.mark.parametrize("indent", [4, None], ids=["as-printed", "one-a-line"])
def test_the_console_span_exporters_output_is_named_once(
    tmp_path: Path, indent: int | None
) -> None:
    """OpenTelemetry's ConsoleSpanExporter (`span.to_json()`, pretty-printed: what a program
    prints to a log) is not OTLP: said once, with what to use instead, not a shape error
    per span."""
    path = tmp_path / "spans.json"
    path.write_text("\n".join(json.dumps(CONSOLE_SPAN, indent=indent) for _ in range(3)) + "\n")
    for args in (["validate"], ["upload", "--target", "local", "--dry-run"]):
        got = runner.invoke(app, [*args, str(path)])
        assert got.exit_code == 1
        problems = [line for line in got.stdout.splitlines() if ": error:" in line]
        problems += [line for line in got.stderr.splitlines() if ": error:" in line]
        assert len(problems) == 1 and "ConsoleSpanExporter" in problems[0], problems


def test_a_header_line_with_a_comma_does_not_make_a_json_lines_file_csv(tmp_path: Path) -> None:
    """A JSON-lines file a script started with a comment (`# exported by app, v1.2`): that
    line is an error of its own and the records after it are read. The whole file was said
    to be CSV, every record refused."""
    path = tmp_path / "calls.jsonl"
    path.write_bytes(b"# exported by my-app, v1.2\n" + _records(False))
    got = runner.invoke(app, ["validate", str(path), "--format", "json"])
    report = json.loads(got.stdout)
    assert (report["errors"], report["calls"]) == (1, 2), report["diagnostics"]
    assert report["diagnostics"][0]["line"] == 1
    csv = tmp_path / "calls.csv.jsonl"
    csv.write_text("id,op_name,started_at\n1,a,2025-01-01\n2,b,2025-01-02\n")
    got = runner.invoke(app, ["validate", str(csv)])
    assert "a CSV file" in got.stdout
