"""Terminals and inputs as an outside run meets them, bugs found by a hunt and held here.

- on a terminal that says `TERM=dumb` (Emacs shells, some CI consoles), tables still fit
  the window: Rich draws 80 columns there whatever the window's size, and ignores COLUMNS;
- at 40 columns the upload summary keeps each label on its row (`via calls/complete`,
  `skipped (sent before)` were cut in two, the value's words in between);
- a YAML value JSON cannot carry (`!!binary`, `!!set`) is refused by `validate` as `upload`
  refuses it, at its record's line: validate passed such a file that upload then refused
  (and `.nan` is the warning NaN is in a JSON line);
- an OTLP line that holds its spans under `instrumentationLibrarySpans` (the name of
  `scopeSpans` before OTLP 1.0, still written by old exporters and Collectors) is an error
  naming the key, its request kept in the rejected file: weave's server answers 200 and
  stores none of them, and tracecli read the line as holding no span, silently;
- an OTLP request pretty-printed over many lines (`jq .`, the OTLP examples) is read by
  `validate` and `upload` as `convert` reads it: they took each of its lines for a
  request, an error per line;
- `upload --follow` of a file of pretty-printed records waits for a record still being
  written, as it waits for a JSON line without its newline: it reported it cut short and
  put it in the rejected file (while a later pass sent it);
- a JSON array (or pretty-printed records) is read as its lines would be: an integer beyond
  64 bits keeps its digits (it became a float, silently: weave-ref then stored
  1.8446744073709552e+19 for 2**64), and NaN or a lone surrogate escape is not "invalid
  JSON" there while the same record as a JSON line is stored;
- `convert` reads gzip from stdin (and a gzip file without `.gz`) as `validate` does: it
  read the compressed bytes as text, every record refused; and an OTLP export (or a JSON
  array) piped in gzipped is told by its content as it is uncompressed (it was read as
  Weave records, each "fits no known shape");
- `upload` says a UTF-16 file (PowerShell's `>`) is UTF-16, once, as `validate` does (it
  refused each of its lines as not UTF-8);
- `tracecli serve` answers a body that is not UTF-8 as weave's server does (400, FastAPI's
  "error parsing the body"), not 422: the SDK splits a batch differently on the two;
"""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.otel_spans import bare_span
from tests.support.ptyscreen import pty_env, run_on_pty
from tests.support.servers import make_call, start_all, start_serve, start_weave_ref
from tests.support.uploadkit import cli_env, gen_calls, tracecli, write_flat
from tracecli.store.db import Store
from tracecli.upload.api import UploadOptions, upload
from tracecli.upload.validate import validate_paths

PROJECT = "acme/tty"


def _store(path: Path) -> Path:
    calls = [
        make_call(PROJECT, op="openai.chat.completions.create " * 3, at=1, exception="E: " * 30),
        make_call(PROJECT, op="漢字テスト" * 8, at=2, tokens=(812, 95)),
    ]
    with Store(path) as store:
        store.calls_complete(calls)
    return path


def _to_store(tmp_path: Path, rejected: Path, project: str | None = None) -> UploadOptions:
    """An upload into a store of the test's own, its journal and rejected file beside it."""
    return UploadOptions(
        db=tmp_path / "t.db",
        project=project,
        rejected=rejected,
        journal_path=tmp_path / "journal.db",
    )


def test_a_dumb_terminal_gets_a_table_as_wide_as_its_window(tmp_path: Path) -> None:
    db = _store(tmp_path / "t.db")
    for env in (pty_env(TERM="dumb"), pty_env(TERM="dumb", NO_COLOR="1")):
        run = run_on_pty(["tail", "--db", str(db), "-p", PROJECT], cols=40, cwd=tmp_path, env=env)
        assert run.code == 0, run.text()
        rows = [r for r in run.screen if r]
        assert len(rows) == 3, rows  # header and two calls, none wrapped
        assert all(len(r) <= 40 for r in rows), rows
        assert rows[0].startswith("started  op"), rows


YAML_CALL = """\
- project_id: acme/yaml
  id: {id}
  trace_id: 5e0f6c4b-7d1b-4f5a-8c6d-8b9e0f1a2b34
  op_name: yaml.{n}
  started_at: "2026-03-02T09:00:00Z"
  ended_at: "2026-03-02T09:00:01Z"
  inputs: {{v: {value}}}
  attributes: {{}}
  summary: {{}}
"""


def test_a_yaml_value_without_a_json_form_is_refused_by_validate_and_upload(
    tmp_path: Path,
) -> None:
    values = ["plain", "!!binary aGVsbG8=", "!!set {a, b}", "2026-01-01", "[1, 2]", ".nan"]
    path = tmp_path / "calls.yaml"
    path.write_text(
        "".join(
            YAML_CALL.format(id=f"0000000{n}-1111-4111-8111-111111111111", n=n, value=v)
            for n, v in enumerate(values)
        )
    )
    report = validate_paths([str(path)], jobs=0)
    found = sorted((d.line, d.severity.value) for d in report.diagnostics)
    # and YAML's .nan is the warning NaN gets on a JSON line (weave stores null)
    assert found == [(10, "error"), (19, "error"), (46, "warning")], report.diagnostics
    assert all("JSON" in d.message for d in report.diagnostics), report.diagnostics
    up = upload(
        [str(path)],
        _to_store(tmp_path, tmp_path / "rejected.jsonl"),
    )
    assert sorted((d.line, d.severity.value) for d in up.diagnostics) == found
    assert (up.uploaded, up.rejected) == (4, 2)


def _otlp_line(scopes_key: str, span_id: str) -> str:
    scope = {"scope": {"name": "old"}, "spans": [bare_span(span_id)]}
    return json.dumps({"resourceSpans": [{"resource": {}, scopes_key: [scope]}]}) + "\n"


def test_otlp_spans_under_the_pre_1_0_key_are_an_error_not_skipped(tmp_path: Path) -> None:
    path = tmp_path / "old.jsonl"
    path.write_text(
        _otlp_line("scopeSpans", "eee19b7ec3c1b174")
        + _otlp_line("instrumentationLibrarySpans", "fff19b7ec3c1b174")
    )
    report = validate_paths([str(path)], jobs=0)
    assert [(d.line, d.field, d.severity.value) for d in report.diagnostics] == [
        (2, "resourceSpans[0].instrumentationLibrarySpans", "error")
    ], report.diagnostics
    assert "scopeSpans" in report.diagnostics[0].message
    assert report.records == 2
    rejected = tmp_path / "rejected.jsonl"
    up = upload(
        [str(path)],
        _to_store(tmp_path, rejected, project="acme/otlp"),
    )
    assert (up.uploaded, up.rejected) == (1, 1)
    kept = [json.loads(x) for x in rejected.read_text().splitlines()]
    assert [
        k["resourceSpans"][0]["instrumentationLibrarySpans"][0]["spans"][0]["spanId"] for k in kept
    ] == ["fff19b7ec3c1b174"]


def test_a_pretty_printed_otlp_request_is_read_by_validate_and_upload(tmp_path: Path) -> None:
    one = json.loads(_otlp_line("scopeSpans", "aaa19b7ec3c1b174"))
    two = json.loads(_otlp_line("scopeSpans", "bbb19b7ec3c1b174"))
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(one, indent=2) + "\n" + json.dumps(two, indent=2) + "\n")
    report = validate_paths([str(path)], jobs=0)
    assert report.diagnostics == [] and (report.records, report.calls) == (2, 2)
    rejected = tmp_path / "rejected.jsonl"
    up = upload(
        [str(path)],
        _to_store(tmp_path, rejected, project="acme/otlp"),
    )
    assert (up.uploaded, up.rejected) == (2, 0), up.diagnostics


def test_following_pretty_records_waits_for_the_one_being_written(tmp_path: Path) -> None:
    def record(n: int) -> str:
        body = {
            "project_id": "acme/follow",
            "id": f"0000000{n}-2222-4222-8222-222222222222",
            "trace_id": "5e0f6c4b-7d1b-4f5a-8c6d-8b9e0f1a2b34",
            "op_name": f"pretty.{n}",
            "started_at": "2026-03-02T09:00:00Z",
            "ended_at": "2026-03-02T09:00:01Z",
            "inputs": {},
            "attributes": {},
            "summary": {},
        }
        return json.dumps(body, indent=2) + "\n"

    path = tmp_path / "calls.jsonl"
    second = record(2)
    # a value that is not a record, said once; then the writer in the middle of record 2
    path.write_text(record(1) + "7\n" + record(3) + second[:60])
    rejected = tmp_path / "rejected.jsonl"
    opts = UploadOptions(
        db=tmp_path / "t.db", rejected=rejected, journal_path=tmp_path / "j.db", follow=True
    )
    first = upload([str(path)], opts)
    assert (first.uploaded, first.rejected) == (2, 1)
    assert [d.line for d in first.diagnostics] == [12], first.diagnostics
    with path.open("a") as f:
        f.write(second[60:])
    again = upload([str(path)], opts)
    assert (again.uploaded, again.rejected, again.diagnostics) == (1, 0, [])
    assert len(rejected.read_text().splitlines()) == 1  # the `7` alone


def test_a_json_array_keeps_wide_integers_and_reads_what_a_json_line_reads(
    tmp_path: Path,
) -> None:
    def call(n: int, extra: str) -> str:
        return (
            f'{{"project_id": "acme/wide", "id": "0000000{n}-3333-4333-8333-333333333333", '
            '"trace_id": "5e0f6c4b-7d1b-4f5a-8c6d-8b9e0f1a2b34", "op_name": "wide", '
            '"started_at": "2026-03-02T09:00:00Z", "ended_at": "2026-03-02T09:00:01Z", '
            f'"attributes": {{}}, "summary": {{}}, "inputs": {{{extra}}}}}'
        )

    wide = '"n": 18446744073709551616, "m": -9223372036854775809, "big": 1' + "0" * 400
    odd = '"nan": NaN, "inf": -Infinity, "s": "\\ud800 lone"'
    path = tmp_path / "calls.json"
    path.write_text("[\n" + call(1, wide) + ",\n" + call(2, odd) + "\n]\n")
    report = validate_paths([str(path)], jobs=0)
    assert [d for d in report.diagnostics if d.is_error] == [] and report.calls == 2
    # the warnings the same record gets on a JSON line
    lines = tmp_path / "lines" / "calls.jsonl"
    lines.parent.mkdir()
    lines.write_text(call(2, odd) + "\n")
    on_lines = validate_paths([str(lines)], jobs=0).diagnostics
    assert sorted((d.field, d.code) for d in report.diagnostics) == sorted(
        (d.field, d.code) for d in on_lines
    )
    assert len(on_lines) == 3
    db = tmp_path / "t.db"
    up = upload(
        [str(path)],
        UploadOptions(db=db, rejected=tmp_path / "r.jsonl", journal_path=tmp_path / "j.db"),
    )
    assert (up.uploaded, up.rejected) == (2, 0), up.diagnostics
    assert sorted((d.field, d.code) for d in up.diagnostics) == sorted(
        (d.field, d.code) for d in on_lines
    )
    with Store(db) as store:
        stored = {c["id"][:8]: c for c in store.query("acme/wide")}["00000001"]
    assert stored["inputs"] == {"n": 2**64, "m": -(2**63) - 1, "big": 10**400}
    assert all(type(v) is int for v in stored["inputs"].values())


@pytest.mark.slow  # weave's reference server
def test_serve_answers_a_body_that_is_not_utf8_as_weave_does(tmp_path: Path) -> None:
    ref, serve = start_all(
        lambda: start_weave_ref(tmp_path / "ref"), lambda: start_serve(tmp_path / "serve")
    )
    try:
        body = b'{"batch": [{"project_id": "acme/utf8", "op_name": "\xff"}]}'
        got = [
            httpx.post(
                f"{s.url}/v2/acme/utf8/calls/complete",
                content=body,
                headers={"content-type": "application/json"},
                auth=("api", "key"),
            )
            for s in (ref, serve)
        ]
        assert [r.status_code for r in got] == [400, 400], [r.text for r in got]
        assert got[1].json() == got[0].json()
    finally:
        for s in (ref, serve):
            s.stop()


def test_the_upload_summary_keeps_its_labels_whole_at_40_columns(tmp_path: Path) -> None:
    # 1,000 calls in chunks of 10: "1,000 (100 requests)" leaves its label 19 columns
    calls = write_flat(tmp_path / "calls.jsonl", gen_calls(1000, project=PROJECT))
    args = ["upload", str(calls), "--db", str(tmp_path / "t.db"), "--chunk-size", "10"]
    run = run_on_pty(args, cols=40, cwd=tmp_path)
    assert run.code == 0, run.text()
    labels = ("  via calls/complete", "skipped (sent before)", "records uploaded")
    for label in labels:
        assert any(row.startswith(label) for row in run.screen), run.text()
    assert all(len(row) <= 40 for row in run.screen)


def test_convert_reads_gzip_from_stdin_and_without_its_suffix(tmp_path: Path) -> None:
    flat = write_flat(tmp_path / "calls.jsonl", gen_calls(3, project=PROJECT))
    packed = gzip.compress(flat.read_bytes())
    (tmp_path / "calls.gz.jsonl").write_bytes(packed)  # gzip, named as plain JSON lines
    for args, stdin in ((["-"], packed), ([str(tmp_path / "calls.gz.jsonl")], b"")):
        out = tmp_path / "out.jsonl"
        done = subprocess.run(
            tracecli("convert", *args, "--to", "freeplay", "-o", str(out)),
            input=stdin,
            capture_output=True,
            env=cli_env(),
            timeout=60,
        )
        assert done.returncode == 0, done.stderr.decode()
        assert len(out.read_text().splitlines()) >= 3


def test_a_gzipped_otlp_export_on_stdin_is_told_by_its_content(tmp_path: Path) -> None:
    lines = _otlp_line("scopeSpans", "ddd19b7ec3c1b174") + _otlp_line(
        "scopeSpans", "eee29b7ec3c1b174"
    )
    done = subprocess.run(
        tracecli("validate", "-", "--format", "json"),
        input=gzip.compress(lines.encode()),
        capture_output=True,
        env=cli_env(),
        timeout=60,
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert json.loads(done.stdout)["calls"] == 2


def test_upload_names_a_utf16_file_once_as_validate_does(tmp_path: Path) -> None:
    flat = write_flat(tmp_path / "calls.jsonl", gen_calls(2, project=PROJECT))
    path = tmp_path / "ps.jsonl"
    path.write_bytes(flat.read_text().encode("utf-16"))
    said = validate_paths([str(path)], jobs=0).diagnostics
    up = upload(
        [str(path)],
        UploadOptions(
            db=tmp_path / "t.db", rejected=tmp_path / "r.jsonl", journal_path=tmp_path / "j.db"
        ),
    )
    assert [(d.line, d.code) for d in up.diagnostics] == [(d.line, d.code) for d in said]
    assert [d.code for d in said] == ["file-encoding"]
