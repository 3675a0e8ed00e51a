"""OTLP/JSON → Weave calls without servers: reading, checks, weave's mapping rules, the CLI.

The comparison with weave's own server is tests/test_otel_weave_ref.py; these tests pin the
rules it relies on (float-second times, shortened names, `a` with `a.b`, the key lists) and
the diagnostics a user sees (file, line, field path), and need nothing outside the clone.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from tracecli.check.records import parse_record
from tracecli.cli import app
from tracecli.diagnostics import Location
from tracecli.otel.convert import OtelConvertReport, convert_otlp
from tracecli.otel.nesting import PathConflictError, expand_attributes
from tracecli.otel.spans import decode_span
from tracecli.otel.to_weave import MappingError, op_name_of, shorten_name, span_to_call
from tracecli.wire import encode

FIXTURES = Path(__file__).parent / "otel_fixtures"
T0 = 1_772_445_245_000_000_000
TRACE = "0af7651916cd43dd8448eb211c80319c"


def kv(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


def s(key: str, text: str) -> dict[str, Any]:
    return kv(key, {"stringValue": text})


def i(key: str, n: int | str) -> dict[str, Any]:
    return kv(key, {"intValue": str(n)})


def raw_span(span_id: str = "b7ad6b7169203331", **over: Any) -> dict[str, Any]:
    span = {"traceId": TRACE, "spanId": span_id, "name": "op", "kind": 1, "attributes": []}
    span.update(startTimeUnixNano=str(T0), endTimeUnixNano=str(T0 + 1_000))
    span.update(over)
    return span


def request(*spans: dict[str, Any], resource: list[dict[str, Any]] | None = None) -> bytes:
    rs = {"resource": {"attributes": resource or []}, "scopeSpans": [{"spans": list(spans)}]}
    return orjson.dumps({"resourceSpans": [rs]})


def call_of(**over: Any) -> dict[str, Any]:
    return span_to_call(decode_span(raw_span(**over), None), "acme/otel")


def run(tmp_path: Path, *lines: bytes, project: str | None = "acme/otel",
        name: str = "spans.jsonl") -> tuple[list[dict[str, Any]], OtelConvertReport]:  # fmt: skip
    path = tmp_path / name
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    out: list[bytes] = []
    report = convert_otlp([str(path)], out.append, project=project)
    return [encode.loads(x) for x in out], report


# ----------------------------------------------------------------------- weave's arithmetic
def test_times_are_float_seconds_rounded_as_weave_does() -> None:
    ns = T0 + 123_456_789  # .123456789 s: float seconds round up, truncation would not
    call = call_of(startTimeUnixNano=str(ns), endTimeUnixNano=str(ns + 500))
    assert call["started_at"] == "2026-03-02T09:54:05.123457Z"
    expected = dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).replace(tzinfo=None)
    assert call["otel_dump"]["start_time"] == expected.isoformat()
    assert call["summary"]["weave"]["latency_ms"] == 0


def test_generated_traces_need_the_rounding() -> None:
    """About half of real spans differ in the last microsecond from integer truncation."""
    lines = gzip.decompress((FIXTURES / "agent-seed1.jsonl.gz").read_bytes()).splitlines()
    starts = [int(sp["startTimeUnixNano"]) for line in lines
              for rs in orjson.loads(line)["resourceSpans"] for ss in rs["scopeSpans"]
              for sp in ss["spans"]]  # fmt: skip
    differ = sum(
        dt.datetime.fromtimestamp(n / 1e9, tz=dt.UTC).microsecond != (n // 1000) % 1_000_000
        for n in starts
    )
    assert 0 < differ < len(starts)


@pytest.mark.parametrize(
    ("name", "max_len", "kw", "short"),
    [  # the values weave 0.52.42's shorten_name gives
        ("hello/world.txt", 10, {}, "hello/..."),
        ("hello/world.txt", 10, {"use_delimiter_in_abbr": False}, "hello..."),
        ("verylongword", 8, {}, "veryl..."),
        ("hello/world.txt", 10, {"abbrv": ":1234", "use_delimiter_in_abbr": False}, "hello:1234"),
    ],
)
def test_shorten_name_as_weave(name: str, max_len: int, kw: dict[str, Any], short: str) -> None:
    assert shorten_name(name, max_len, **kw) == short


def test_long_op_names_are_shortened_with_a_hash() -> None:
    assert op_name_of("n" * 127) == "n" * 127
    assert op_name_of("m" * 300) == "m" * 123 + ":88c6"
    words = " ".join(f"step{i}.phase/{i}" for i in range(20))
    assert op_name_of(words).endswith(" step8:1633")
    with pytest.raises(MappingError, match="ends with a delimiter"):
        op_name_of("ab" + "." * 200)  # weave's loop runs off the end: a 500 there


def test_a_and_a_dot_b_are_refused_in_either_order() -> None:
    for pairs in ([("a", 1), ("a.b", 2)], [("a.b", 2), ("a", 1)]):
        with pytest.raises(PathConflictError):
            expand_attributes(pairs)
    with pytest.raises(PathConflictError) as exc:
        expand_attributes([("k\x1b[31m\n", 1), ("k\x1b[31m\n.b", 2)])
    assert "\n" not in str(exc.value) and "\x1b" not in str(exc.value)  # shown escaped
    # a JSON object string is an object: its keys can be added to
    assert expand_attributes([("a", '{"c": 1}'), ("a.b", 2)]) == {"a": {"c": 1, "b": 2}}


def test_inputs_outputs_usage_as_weave_picks_them() -> None:
    call = call_of(attributes=[
        s("gen_ai.prompt.0.role", "user"), s("gen_ai.prompt.0.content", "hi"),
        s("gen_ai.completion.0.content", "yo"), s("gen_ai.completion.0.tool_calls.0.name", "f"),
        i("gen_ai.usage.prompt_tokens", 0), s("gen_ai.usage.completion_tokens", "12"),
        s("gen_ai.request.model", "m1"), s("input", '{"ignored": true}'),
    ])  # fmt: skip
    assert call["inputs"] == {"gen_ai.prompt": [{"role": "user", "content": "hi"}]}
    assert call["output"] == {
        "gen_ai.completion": [{"content": "yo", "tool_calls": [{"name": "f"}]}]
    }
    usage = call["summary"]["usage"]["m1"]
    assert usage["completion_tokens"] == 12 and usage["prompt_tokens"] is None  # 0 is skipped
    # weave's lookups turn {"0": …} into lists in place, which shows in the span it keeps
    dumped = call["otel_dump"]["attributes"]["gen_ai"]["completion"]["0"]
    assert dumped["tool_calls"] == [{"name": "f"}]


def test_generic_input_is_unnested_and_nothing_known_keeps_all_attributes() -> None:
    call = call_of(attributes=[s("input", '{"q": 1}'), s("output", "done")])
    assert call["inputs"] == {"q": 1} and call["output"] == "done"
    call = call_of(attributes=[s("http.route", "/x"), kv("raw", {"bytesValue": "AP8="})])
    assert call["attributes"] == {"http": {"route": "/x"}, "raw": "AP8="}
    assert call["inputs"] == {} and call["output"] == {}


def test_status_exception_and_wandb_fields() -> None:
    call = call_of(status={"code": 2, "message": "boom"},
                   attributes=[s("wandb.display_name", "Nice"), s("wandb.thread_id", "t1"),
                               kv("wandb.is_turn", {"boolValue": True}),
                               s("wandb.wb_run_id", "run-1"), s("input", "x")])  # fmt: skip
    assert call["exception"] == "boom" and call["summary"]["weave"]["status"] == "error"
    assert call["display_name"] == "Nice" and call["thread_id"] == "t1"
    assert call["turn_id"] == call["id"] and call["wb_run_id"] == "acme/otel/run-1"
    assert call_of(status={"code": "STATUS_CODE_ERROR"})["exception"] == ""


def test_values_orjson_cannot_carry(tmp_path: Path) -> None:
    nan = raw_span("1111111111111111", attributes=[s("input.value", "[NaN, 1]")])
    big = raw_span("2222222222222222", attributes=[s("input", '{"n": 123456789012345678901}')])
    calls, report = run(tmp_path, request(nan, big))
    assert calls[0]["inputs"] == {"input.value": [None, 1]}  # weave reads its NaN back as null
    # weave's server stores an integer beyond 64 bits exactly, and so does upload
    assert calls[1]["inputs"] == {"n": 123456789012345678901}
    assert report.diagnostics == []


def test_usage_weave_cannot_store_is_refused() -> None:
    with pytest.raises(MappingError, match="not an integer"):
        call_of(attributes=[s("gen_ai.usage.input_tokens", "many")])


# ----------------------------------------------------------------------- files and checks
def test_converted_calls_are_records_upload_accepts(tmp_path: Path) -> None:
    calls, report = run(tmp_path, *gzip.decompress(
        (FIXTURES / "agent-seed2.jsonl.gz").read_bytes()).splitlines())  # fmt: skip
    assert report.written == report.spans == 19 and report.exit_code == 0
    for n, call in enumerate(calls, 1):
        parsed = parse_record(Location("out.jsonl", n), call)
        assert parsed.record is not None and parsed.record.kind == "complete", parsed.diagnostics
        assert not parsed.diagnostics


def test_gzip_files_are_read(tmp_path: Path) -> None:
    calls, report = run(tmp_path, request(raw_span()), name="spans.jsonl.gz")
    assert len(calls) == 1 and report.exit_code == 0


@pytest.mark.parametrize(
    ("over", "field", "words"),
    [
        ({"traceId": "abc"}, "traceId", "32 hex digits"),
        ({"spanId": "zz" * 8}, "spanId", "16 hex digits"),
        ({"startTimeUnixNano": "12a"}, "startTimeUnixNano", "decimal string"),
        ({"endTimeUnixNano": "-1"}, "endTimeUnixNano", "out of range"),
        ({"kind": 9}, "kind", "unknown value 9"),
        ({"attributes": [i("n", "1.5")]}, "attributes[0].value.intValue", "decimal string"),
        ({"attributes": [kv("n", {})]}, "attributes[0].value", "no value set"),
        ({"attributes": [kv("n", {"doubleValue": "x"})]}, "attributes[0].value.doubleValue",
         "a number"),
        ({"attributes": [i("a", 1), i("a.b", 2)]}, "attributes[1].key", "both set"),
    ],
)  # fmt: skip
def test_field_problems_name_file_line_and_path(
    tmp_path: Path, over: dict[str, Any], field: str, words: str
) -> None:
    ok = raw_span("1111111111111111")
    calls, report = run(tmp_path, request(ok), request(ok | {"spanId": "2222222222222222"},
                                                        raw_span(**over)))  # fmt: skip
    assert len(calls) == 2 and report.not_converted == 1 and report.exit_code == 1
    (d,) = report.diagnostics
    assert (d.line, d.field) == (2, f"resourceSpans[0].scopeSpans[0].spans[1].{field}")
    assert words in d.message and d.is_error


def test_duplicates_missing_parents_and_backwards_spans(tmp_path: Path) -> None:
    child = raw_span("1111111111111111", parentSpanId="2222222222222222")
    orphan = raw_span("3333333333333333", parentSpanId="dead00000000beef")
    backwards = raw_span("4444444444444444", endTimeUnixNano=str(T0 - 5_000_000))
    parent = raw_span("2222222222222222")
    calls, report = run(tmp_path, request(child, orphan), request(backwards, parent, child))
    # the backwards span is written (weave stores it, with a negative latency): a warning
    assert [c["id"] for c in calls] == ["1111111111111111", "3333333333333333",
                                        "4444444444444444", "2222222222222222"]  # fmt: skip
    assert calls[2]["summary"]["weave"]["latency_ms"] == -5
    at = "resourceSpans[0].scopeSpans[0].spans"
    codes = {(d.code, d.severity.value, d.line, d.field) for d in report.diagnostics}
    assert codes == {
        ("otlp-end-before-start", "warning", 2, f"{at}[0].endTimeUnixNano"),
        ("otlp-duplicate-span", "error", 2, f"{at}[2].spanId"),
        ("otlp-missing-parent", "warning", 1, f"{at}[1].parentSpanId"),
    }


def test_convert_warns_when_the_call_ends_before_it_starts_by_the_times_weave_reads(
    tmp_path: Path,
) -> None:
    """Weave reads langfuse.startTime/endTime in place of the span's own times: the call
    ends before it starts by those (one warning per span, at the attribute), not by the
    span's own times they replace (weave-ref stores that call with a positive latency)."""
    lf = [s("langfuse.startTime", "2026-03-02T10:00:01.5"),
          s("langfuse.endTime", "2026-03-02T10:00:00.25")]  # fmt: skip
    forward = [s("langfuse.startTime", "2026-03-02T10:00:00"),
               s("langfuse.endTime", "2026-03-02T10:00:01")]  # fmt: skip
    back = str(T0 - 5_000_000)
    spans = [
        raw_span("1111111111111111", attributes=[s("input", "x"), *lf]),  # langfuse backwards
        raw_span("2222222222222222", endTimeUnixNano=back, attributes=lf),  # both: one warning
        raw_span("3333333333333333", endTimeUnixNano=back, attributes=forward),  # stored forward
        raw_span("4444444444444444", attributes=[s("langfuse.endTime", "2026-03-02T09:00:00Z")]),
        raw_span("5555555555555555", attributes=[s("langfuse.startTime", "2026-03-02T10:00:00")]),
        raw_span(
            "6666666666666666", startTimeUnixNano=str(T0 + 400), endTimeUnixNano=str(T0 + 100)
        ),
    ]  # the last: backwards by 300 ns, the same microsecond for weave (latency 0): no warning
    calls, report = run(tmp_path, request(*spans))
    assert len(calls) == 6 and report.exit_code == 0 and report.errors == 0
    at = "resourceSpans[0].scopeSpans[0].spans"
    got = [(d.code, d.severity.value, d.line, d.field) for d in report.diagnostics]
    assert got == [
        ("otlp-end-before-start", "warning", 1, f"{at}[0].attributes[2]"),
        ("otlp-end-before-start", "warning", 1, f"{at}[1].attributes[1]"),
        ("otlp-end-before-start", "warning", 1, f"{at}[3].attributes[0]"),
        ("otlp-end-before-start", "warning", 1, f"{at}[4].attributes[0]"),
    ]
    assert report.diagnostics[0].message == (
        "the call ends before it starts by langfuse.endTime, which weave reads in place of "
        "the span's own time: ended_at 2026-03-02T10:00:00.250000Z < started_at "
        "2026-03-02T10:00:01.500000Z: weave's server stores the call so, with a negative "
        "latency"
    )
    assert "by langfuse.startTime" in report.diagnostics[3].message
    for call, backwards in zip(calls, [True, True, False, True, True, False], strict=True):
        assert (call["ended_at"] < call["started_at"]) == backwards, call["id"]
    # --strict: errors, the calls written all the same (as for any convert warning)
    (tmp_path / "strict.jsonl").write_bytes(request(*spans[:1]) + b"\n")
    out: list[bytes] = []
    strict = convert_otlp([str(tmp_path / "strict.jsonl")], out.append, project="a/b", strict=True)
    assert (strict.errors, strict.warnings, len(out)) == (1, 0, 1)


def test_lines_that_are_not_otlp(tmp_path: Path) -> None:
    weave_call = orjson.dumps({"id": "x", "op_name": "f", "started_at": "2026-01-01T00:00:00Z"})
    calls, report = run(tmp_path, b"{not json", weave_call, request(raw_span()))
    assert len(calls) == 1 and report.exit_code == 1
    assert [(d.line, d.code) for d in report.diagnostics] == [(1, "json"), (2, "otlp-shape")]


def test_project_from_resource_else_the_option(tmp_path: Path) -> None:
    named = [s("wandb.entity", "team"), s("wandb.project", "p1")]
    calls, report = run(tmp_path, request(raw_span("1111111111111111"), resource=named),
                        request(raw_span("2222222222222222")), project=None)  # fmt: skip
    assert [c["project_id"] for c in calls] == ["team/p1"]
    (d,) = report.diagnostics
    assert d.code == "otlp-no-project" and "--project" in d.message
    calls, _ = run(tmp_path, request(raw_span("2222222222222222")), project="acme/x")
    assert calls[0]["project_id"] == "acme/x"


# ----------------------------------------------------------------------- the command
def test_cli_convert_to_weave(tmp_path: Path) -> None:
    src = tmp_path / "spans.jsonl"
    src.write_bytes(request(raw_span()) + b"\n" + request(raw_span("1" * 16, kind=9)) + b"\n")
    out = tmp_path / "calls.jsonl"
    runner = CliRunner()
    res = runner.invoke(app, ["convert", str(src), "--to", "weave", "-p", "acme/otel",
                              "-o", str(out), "--format", "json"])  # fmt: skip
    assert res.exit_code == 1
    report = json.loads(res.stdout)
    assert (report["spans"], report["written"], report["not_converted"]) == (2, 1, 1)
    assert "spans[0].kind" in res.stderr and len(out.read_bytes().splitlines()) == 1
    res = runner.invoke(app, ["convert", str(src), "--to", "weave", "-p", "nope"])
    assert res.exit_code == 2 and "entity/project" in res.stderr
    res = runner.invoke(app, ["convert", str(src), "--to", "freeplay", "-p", "acme/otel"])
    assert res.exit_code == 2 and "--to weave" in res.stderr
