"""validate and upload say the same about the same files, and what they say is true.

Each test here is a disagreement or a false line found by trying files the way a user
would: the first round's notes name them (two copies of a file in one folder, OTLP record
counts, empty OTLP requests, `--help` to a full disk).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], ["validate", "--help"], ["upload", "-h"]]
)
def test_help_and_version_to_a_full_stdout_are_one_line(tmp_path: Path, args: list[str]) -> None:
    """`tracecli --help > /dev/full` ended in a traceback from Click's echo (OSError: No
    space left on device), where every command says one line and exits 2."""
    with open("/dev/full", "w") as full:
        out = subprocess.run(
            [sys.executable, "-m", "tracecli", *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            timeout=120,
        )
    assert (out.returncode, out.stderr) == (
        2,
        "tracecli: error: cannot write to stdout: No space left on device\n",
    )


def _validate_errors(cwd: Path, *paths: str) -> set[tuple[str, int, str]]:
    """(file, line, field) of each error `validate --format json` says."""
    import json

    from tests.support.uploadkit import run_cli

    done = run_cli("validate", *paths, "--format", "json", cwd=cwd)
    report = json.loads(done.stdout)
    return {
        (d["path"], d["line"], d["field"])
        for d in report["diagnostics"]
        if d["severity"] == "error"
    }


def _upload_refusals(cwd: Path, *paths: str) -> set[tuple[str, int, str]]:
    """(file, line, field) of each record `upload` (to the embedded store) refuses on its
    own account: its rejected file's lines, less those sent back only with their other half
    ("its start (line 3) was rejected": validate names that start)."""
    from tests.support.uploadkit import read_jsonl, run_cli

    rejected = cwd / "rejected.jsonl"
    done = run_cli(
        "upload", *paths, "--target", "local", "--db", str(cwd / "t.db"),
        "--rejected", str(rejected), "-p", "acme/agents", cwd=cwd,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    refused = set()
    for rec in read_jsonl(rejected) if rejected.exists() else []:
        meta = rec["_tracecli"]
        if " was rejected; fix that one" in meta["reason"]:
            continue
        field = meta["reason"].split(":", 1)[0]
        refused.add((meta["source"], meta["line"], field))
    return refused


def test_two_copies_of_a_file_validate_names_what_upload_refuses(tmp_path: Path) -> None:
    """Two copies of a file whose line 3 (a start) lacks fields: upload refused the second
    copy's line 4 (an end of the same call id as the first copy's line 4: "call id …
    already has an end") and validate said nothing of it, the id being that of a refused
    start. Two ends of one call are an error whatever became of its start."""
    sample = ROOT / "samples/invalid/missing_field.jsonl"
    (tmp_path / "two").mkdir()
    for name in ("a.jsonl", "b.jsonl"):
        (tmp_path / "two" / name).write_bytes(sample.read_bytes())
    said = _validate_errors(tmp_path, "two")
    assert ("two/b.jsonl", 4, "id") in said
    refused = _upload_refusals(tmp_path, "two")
    assert {(p, line) for p, line, _ in said} == {(p, line) for p, line, _ in refused}


def _otlp_line(*span_ids: str) -> str:
    import json

    spans = [
        {
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": sid,
            "name": "op",
            "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000001000000000",
        }
        for sid in span_ids
    ]
    scope = {"scope": {"name": "s"}, "spans": spans}
    return json.dumps({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [scope]}]})


@pytest.mark.parametrize("first", [True, False], ids=["empty-first", "empty-later"])
def test_an_empty_otlp_request_is_taken_as_weave_takes_it(tmp_path: Path, first: bool) -> None:
    """`{}` (an ExportTraceServiceRequest with nothing set) was refused ("not an OTLP
    ExportTraceServiceRequest") where weave's OTel route answers 200 and stores nothing, as
    it does for `{"resourceSpans": []}`, a resource without scopes and a scope without
    spans, which tracecli took already: all are taken, nothing sent, nothing said."""
    from tests.support.uploadkit import run_cli

    lines = [_otlp_line("eee19b7ec3c1b174", "eee19b7ec3c1b175"), "{}", '{"resourceSpans": []}']
    if first:
        lines = lines[1:] + lines[:1]
    (tmp_path / "otlp.jsonl").write_text("\n".join(lines) + "\n")
    assert _validate_errors(tmp_path, "otlp.jsonl") == set()
    assert _upload_refusals(tmp_path, "otlp.jsonl") == set()
    conv = run_cli("convert", "otlp.jsonl", "--to", "weave", "-p", "acme/otel", cwd=tmp_path)
    assert conv.returncode == 0, conv.stderr
    assert len(conv.stdout.splitlines()) == 2


def _counts(cwd: Path, name: str) -> tuple[int, int, int, str]:
    """(validate's records, upload's records, upload --mode otel's records, convert's
    summary line) for one file."""
    import json

    from tests.support.uploadkit import run_cli

    v = json.loads(run_cli("validate", name, "--format", "json", cwd=cwd).stdout)["records"]
    got = []
    for mode in ("auto", "otel"):
        # --mode otel sends to a server's OTel route: counted in a dry run (nothing sent)
        target = ["--target", "local", "--db", str(cwd / "t.db")]
        if mode == "otel":
            target = ["--server", "http://127.0.0.1:9", "--dry-run"]
        up = run_cli(
            "upload", name, *target, "--mode", mode, "--rejected", str(cwd / f"{mode}.rej"),
            "-p", "acme/otel", "--format", "json", cwd=cwd,
        )  # fmt: skip
        got.append(json.loads(up.stdout)["records"])
    conv = run_cli("convert", name, "--to", "weave", "-p", "acme/otel", cwd=cwd)
    line = next(x for x in conv.stderr.splitlines() if x.startswith("converted"))
    return v, got[0], got[1], line


def test_otlp_records_are_counted_alike_by_validate_upload_and_convert(tmp_path: Path) -> None:
    """One OTLP file was "2 records" to validate and 4 to upload: validate counted spans
    only, upload a line that is no JSON too, and a resource refused whole as one record
    where validate counted its spans. A record of an OTLP file is a span (refused or not;
    a resource refused whole: each of its spans), and a line or part refused whole that
    holds no span is one record; convert counts every line of the file."""
    import json

    good = _otlp_line("eee19b7ec3c1b174", "eee19b7ec3c1b175")
    bad_resource = json.loads(_otlp_line("aee19b7ec3c1b176", "aee19b7ec3c1b177"))
    bad_resource["resourceSpans"][0]["resource"] = {"attributes": 5}
    no_spans = {"resourceSpans": [{"resource": {"attributes": 5}}]}
    lines = [good, "not json", json.dumps(bad_resource), json.dumps(no_spans), "[1]"]
    (tmp_path / "otlp.jsonl").write_text("\n".join(lines) + "\n")
    # 2 spans + a line of no JSON + 2 spans of a refused resource + a refused resource of
    # no span + a line that is no request
    v, up, otel, conv = _counts(tmp_path, "otlp.jsonl")
    assert (v, up, otel) == (7, 7, 7)
    assert conv.startswith("converted 4 OpenTelemetry spans from 5 lines"), conv


def _complete(i: int, parent: int | None = None) -> bytes:
    """A completed call (one line), id `i`, child of call `parent`."""
    import json

    def cid(n: int) -> str:
        return f"00000000-0000-4000-8000-{n:012d}"

    call = {
        "project_id": "acme/agents", "id": cid(i), "op_name": "op",
        "trace_id": "4e0f6c4b-7d1b-4f5a-8c6d-8b9e0f1a2b34",
        "parent_id": None if parent is None else cid(parent),
        "started_at": "2026-03-02T09:14:05Z", "ended_at": "2026-03-02T09:14:06Z",
        "attributes": {}, "inputs": {}, "output": None, "summary": {},
    }  # fmt: skip
    return (json.dumps(call) + "\n").encode()


def _follow_warnings(
    tmp_path: Path, first: bytes, then: bytes, calls: tuple[int, int]
) -> list[str]:
    """`upload --follow` of a file holding `first`, then `then` appended once the store
    holds `calls[0]` calls (a pass of its own), stopped once it holds `calls[1]`: the
    "not in the inputs" lines it said."""
    import signal
    import sqlite3
    import time

    from tests.support.uploadkit import cli_env, tracecli

    traces = tmp_path / "t.jsonl"
    db = tmp_path / "t.db"
    traces.write_bytes(first)
    proc = subprocess.Popen(
        tracecli(
            "upload", "--follow", str(traces), "--target", "local", "--db", str(db),
            "-p", "acme/agents", "--flush-interval", "0.2", "--pair-wait", "30",
            "--rejected", str(tmp_path / "rej.jsonl"),
        ),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        env=cli_env(), cwd=tmp_path,
    )  # fmt: skip

    def stored() -> int:
        if not db.exists():
            return 0
        try:
            with sqlite3.connect(db) as con:
                return int(con.execute("select count(*) from calls").fetchone()[0])
        except sqlite3.Error:
            return 0

    def wait_stored(n: int) -> None:
        deadline = time.monotonic() + 60
        while stored() < n:
            assert proc.poll() is None, "the follower ended"
            assert time.monotonic() < deadline, f"{stored()} calls stored, not {n}"
            time.sleep(0.1)

    try:
        wait_stored(calls[0])
        with traces.open("ab") as f:
            f.write(then)
        wait_stored(calls[1])
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = err.decode().replace("\r", "\n").splitlines()
    return [x.replace(str(traces), "t.jsonl") for x in lines if "not in the inputs" in x]


def test_follow_warns_of_no_parent_another_pass_read(tmp_path: Path) -> None:
    """`upload --follow` warned "the parent call is not in the inputs" for a child whose
    parent an earlier pass had read (a producer writing parents first), or a later pass
    read (completed calls are written when they end: children first); every call was
    stored all the same. A parent that never comes is still warned about, once."""
    first = _complete(1) + _complete(3, parent=2) + _complete(9, parent=99)
    then = _complete(4, parent=1) + _complete(2)  # a child of call 1, call 3's parent
    warned = _follow_warnings(tmp_path, first, then, (3, 5))
    assert warned == ["t.jsonl:3: warning: parent_id: the parent call is not in the inputs"]


def test_follow_warns_of_no_parent_span_another_pass_read(tmp_path: Path) -> None:
    """The same for OpenTelemetry spans: a child span read a pass before its parent span
    was "not in the inputs"."""
    import json

    def span(sid: str, parent: str | None = None) -> bytes:
        request = json.loads(_otlp_line(sid))
        if parent is not None:
            request["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["parentSpanId"] = parent
        return (json.dumps(request) + "\n").encode()

    first = span("00000000000000a2", "00000000000000a1") + span("00000000000000b2", "f" * 16)
    then = span("00000000000000a1") + span("00000000000000a3", "00000000000000a2")
    warned = _follow_warnings(tmp_path, first, then, (2, 4))
    assert len(warned) == 1, warned
    assert warned[0].startswith("t.jsonl:2: warning: resourceSpans[0].scopeSpans[0].spans[0]")
    assert f"parent span {'f' * 16} of trace" in warned[0]


def test_earlier_passes_hold_a_parent_warning_until_due_or_read() -> None:
    """The follow's memory of its passes (check/passes.py), by itself: a parent read drops
    its held warnings; the others are said after `wait`, or all at the end; the set of
    known ids stays bounded."""
    from tracecli.check import passes as mod
    from tracecli.diagnostics import Diagnostic, Severity

    now = [0.0]
    passes = mod.EarlierPasses(wait=10.0, clock=lambda: now[0])

    def warn(line: int) -> Diagnostic:
        return Diagnostic("t.jsonl", line, "parent_id", "missing-parent", Severity.WARNING, "x")

    passes.read([1, 2])
    assert passes.knows(1) and not passes.knows(3)
    passes.hold(3, [warn(5)])
    passes.hold(4, [warn(6)])
    now[0] = 5.0
    passes.hold(7, [warn(8)])
    passes.read([3])  # call 3 came: its child's warning is dropped
    assert passes.due() == []
    now[0] = 10.0
    assert [d.line for d in passes.due()] == [6]
    assert [d.line for d in passes.rest()] == [8]
    assert passes.rest() == []
    passes.read(range(100, 100 + mod.KNOWN_MAX + 5))
    assert len(passes.known) <= mod.KNOWN_MAX
