"""OTLP checks on what other producers write (no server needed): the messages name the
file, the line and the field path, and say what would be taken."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.otel_spans import bare_span
from tests.support.uploadkit import run_cli


def one_span_file(tmp_path: Path, **fields: Any) -> Path:
    span = {**bare_span("7d00000000000001"), **fields}
    body = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [span]}]}]}
    src = tmp_path / "spans.jsonl"
    src.write_bytes(orjson.dumps(body) + b"\n")
    return src


@pytest.mark.parametrize(
    ("fields", "field", "said"),
    [
        ({"kind": "client"}, "kind", "'client' is not a SpanKind name (SPAN_KIND_CLIENT, ...)"),
        ({"kind": "SpanKind.CLIENT"}, "kind", "'SpanKind.CLIENT' is not a SpanKind name"),
        ({"status": {"code": "ERROR"}}, "status.code",
         "'ERROR' is not a StatusCode name (STATUS_CODE_ERROR, ...)"),
    ],
)  # fmt: skip
def test_an_unknown_enum_name_is_told_as_one(
    fields: dict[str, Any], field: str, said: str, tmp_path: Path
) -> None:
    """Enum names are read (`SPAN_KIND_CLIENT`); one protobuf does not know was told as
    "expected an integer as a decimal string", as if names were not read at all."""
    src = one_span_file(tmp_path, **fields)
    r = run_cli("validate", str(src), cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 1 and "Traceback" not in out, out
    assert f"spans.jsonl:1: error: resourceSpans[0].scopeSpans[0].spans[0].{field}: {said}" in out
    assert "decimal string" not in out


def test_enum_names_and_numbers_are_read(tmp_path: Path) -> None:
    src = one_span_file(tmp_path, kind="SPAN_KIND_SERVER", status={"code": "2", "message": "x"})
    r = run_cli("validate", str(src), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_base64_id_is_told_in_hex(tmp_path: Path) -> None:
    """protobuf's own JSON mapping writes bytes, ids too, in base64 (`MessageToJson`);
    OTLP/JSON and weave's route want hex. The id is refused, and the message says what
    the base64 holds, in hex, to fix the file with."""
    trace = base64.b64encode(bytes.fromhex("5b8efff798038103d269b633813fc60c")).decode()
    span = base64.b64encode(bytes.fromhex("7d00000000000001")).decode()
    src = one_span_file(tmp_path, traceId=trace, spanId=span)
    r = run_cli("validate", str(src), cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert (
        f"spans[0].traceId: expected 32 hex digits, got '{trace}' (base64 of "
        "5b8efff798038103d269b633813fc60c: OTLP/JSON writes ids in hex" in out
    )
