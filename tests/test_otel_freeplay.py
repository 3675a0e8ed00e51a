"""OpenTelemetry files uploaded to Freeplay: the spans converted to Weave calls, then to
Freeplay records by the Weave → Freeplay conversion, against Freeplay's reference server."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson

from tests.support import freeplay_fixtures
from tests.support.freeplay_fixtures import RefServer, fp_upload
from tracecli.otel.convert import convert_otlp

refserver_module = freeplay_fixtures.refserver_module
refserver = freeplay_fixtures.refserver
FIXTURES = Path(__file__).parent / "otel_fixtures"


def test_otlp_to_freeplay_is_the_converted_calls_and_resumes(
    refserver: RefServer, tmp_path: Path
) -> None:
    src = tmp_path / "spans.jsonl.gz"
    shutil.copy(FIXTURES / "agent-seed2.jsonl.gz", src)
    calls = tmp_path / "calls.jsonl"
    with calls.open("wb") as out:
        convert_otlp([str(src)], out.write, project="otlp/freeplay")
    (tmp_path / "a").mkdir()
    expected = fp_upload([calls], tmp_path / "a", refserver, dry_run=True)
    first = fp_upload([src], tmp_path, refserver)
    assert first.exit_code == 0, first.diagnostics
    assert first.uploaded == expected.uploaded > 0
    assert first.records == 19
    got = refserver.records()
    sent = len(got["completions"]) + len(got.get("traces", []))
    again = fp_upload([src], tmp_path, refserver)
    assert again.uploaded == 0 and again.skipped == first.acked_records, again
    got = refserver.records()
    assert len(got["completions"]) + len(got.get("traces", [])) == sent  # nothing twice


def test_otlp_to_freeplay_rejects_refused_spans(refserver: RefServer, tmp_path: Path) -> None:
    src = FIXTURES / "conventions.jsonl"
    report = fp_upload([src], tmp_path, refserver)
    assert report.errors >= 3
    rejected = (tmp_path / "rejected.jsonl").read_bytes().splitlines()
    reasons = [orjson.loads(x)["_tracecli"]["reason"] for x in rejected]
    assert sum("both set" in r for r in reasons) == 3
    # each holds its span as read (a one-span request), so a fixed file can go again
    for line in rejected:
        request = orjson.loads(line)
        (rs,) = request["resourceSpans"]
        (ss,) = rs["scopeSpans"]
        assert len(ss["spans"]) == 1 and "traceId" in ss["spans"][0]
        assert request["_tracecli"]["diagnostics"][0]["code"].startswith("otlp-")
        assert "original" not in request["_tracecli"]["diagnostics"][0]
