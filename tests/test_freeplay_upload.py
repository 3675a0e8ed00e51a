"""`upload --target freeplay` against Freeplay's reference server (a real HTTP server).

What is checked at the server, not in tracecli's own report: the bodies it stored match
what the official SDK sends for the same calls; injected 429/500 are retried; a 400 is
rejected with the server's message; resuming never records a completion twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tests.conftest import ROOT, SAMPLES
from tests.support import freeplay_fixtures
from tests.support.freeplay_fixtures import (
    API_KEY,
    OTHER_PROJECT,
    PROJECT,
    RefServer,
    completions_file,
    fp_upload,
)
from tests.support.freeplay_golden import GOLDEN, SESSION, sdk, sdk_view
from tracecli.cli import app

refserver_module = freeplay_fixtures.refserver_module
refserver = freeplay_fixtures.refserver


def test_samples_upload(refserver: RefServer, tmp_path: Path) -> None:
    sample = SAMPLES / "freeplay" / "completions.jsonl"
    if not sample.exists():
        pytest.skip(f"{sample} not written yet")
    n = sum(1 for line in sample.read_text().splitlines() if line.strip())
    report = fp_upload([sample], tmp_path, refserver)
    assert report.exit_code == 0, report.diagnostics
    got = refserver.records()
    assert report.uploaded == n == got["counts"]["completions"] + got["counts"]["traces"]
    for rec in got["completions"] + got["traces"]:
        assert rec["warnings"] == []  # not even the reference server's GUESS-level doubts


def test_converted_weave_file_matches_the_sdk_at_the_server(
    refserver: RefServer, tmp_path: Path
) -> None:
    report = fp_upload([GOLDEN / "weave_sdk_examples.jsonl"], tmp_path, refserver)
    assert report.exit_code == 0 and report.by_endpoint == {"completions": 3, "traces": 2}
    got = refserver.records()
    assert {c["session_id"] for c in got["completions"]} == {SESSION}
    assert {c["project_id"] for c in got["completions"] + got["traces"]} == {PROJECT}
    by_last = {c["body"]["messages"][-1].get("content"): c for c in got["completions"]}
    for name, key in (
        ("6_1_completion", "Paris."),
        ("6_2_completion", None),
        ("6_3_completion", "It is 21 °C and clear in Lisbon."),
    ):
        body = dict(by_last[key]["body"])
        expected = sdk_view(sdk(name))
        if "completion_id" not in expected:  # the SDK let the server choose; tracecli did
            body.pop("completion_id")
        assert body == expected, name
        assert by_last[key]["message_shapes"][-1] == "openai.assistant"
    assert by_last[None]["completion_id"] == "11111111-2222-4333-8444-555555555555"
    agent = next(
        t for t in got["traces"] if t["trace_id"] == "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
    )
    assert agent["session_id"] == SESSION
    assert agent["body"] == sdk_view(sdk("6_3_trace"))
    assert all(not t["warnings"] for t in got["traces"])
    assert all(not c["warnings"] for c in got["completions"])


def test_every_golden_conversion_is_accepted(refserver: RefServer, tmp_path: Path) -> None:
    files = sorted(GOLDEN.glob("*.freeplay.jsonl"))
    report = fp_upload(files, tmp_path, refserver)
    assert report.exit_code == 0 and report.rejected == 0, report.diagnostics
    n = sum(len(f.read_text().splitlines()) for f in files)
    counts = refserver.records()["counts"]
    assert counts["completions"] + counts["traces"] == n == report.uploaded


def test_injected_429_and_500_are_retried(refserver: RefServer, tmp_path: Path) -> None:
    refserver.faults([429, 500, 503], retry_after=0)
    report = fp_upload([completions_file(tmp_path, 1)], tmp_path, refserver, concurrency=1)
    assert report.exit_code == 0
    assert report.uploaded == 1 and report.retried == 3 and report.requests == 4
    assert refserver.records()["counts"]["completions"] == 1


def test_400_is_rejected_with_the_servers_message(refserver: RefServer, tmp_path: Path) -> None:
    refserver.faults([400])
    src = completions_file(tmp_path, 3)
    report = fp_upload([src], tmp_path, refserver, concurrency=1)
    assert report.exit_code == 1
    assert report.uploaded == 2 and report.rejected == 1 and report.retried == 0
    lines = (tmp_path / "rejected.jsonl").read_text().splitlines()
    assert len(lines) == 1
    rejected = json.loads(lines[0])
    meta = rejected.pop("_tracecli")
    assert meta == {
        "source": str(src),
        "line": 1,
        "reason": "injected fault 400 (refserver test helper)",
        "status": 400,
    }
    assert rejected == json.loads(src.read_text().splitlines()[0])  # as it was read
    assert any(d.code == "http-400" for d in report.diagnostics)


def test_an_outage_stops_the_upload_instead_of_waiting_on_every_record(
    refserver: RefServer, tmp_path: Path
) -> None:
    """Retries running out for 8 records in a row (twice the concurrency if more) means
    Freeplay is failing: the run stops (nothing rejected: Freeplay refused no record; those
    and the rest are unsent), and the next run sends everything, once."""
    src = completions_file(tmp_path, 30)
    refserver.faults([503] * 200)
    first = fp_upload([src], tmp_path, refserver, concurrency=2, max_retry_time=0)
    assert first.exit_code == 1 and first.uploaded == 0 and first.rejected == 0
    assert 8 <= first.unsent < 30  # not read on
    assert first.halted and "failed 8 requests in a row" in first.halted
    assert first.gave_up is None  # the stop line says it
    # the lines not read are counted in, as for Weave (not "the rest of the input, not read")
    assert first.halted.endswith("; 30 records unsent; run the same command again to resume")
    refserver.clear()  # back up (and the faults left forgotten)
    second = fp_upload([src], tmp_path, refserver)
    assert (second.exit_code, second.uploaded, second.skipped) == (0, 30, 0)
    completions, _ = ids_at(refserver)
    assert len(completions) == len(set(completions)) == 30


def test_resume_never_records_a_completion_twice(refserver: RefServer, tmp_path: Path) -> None:
    src = completions_file(tmp_path, 6)
    # Run 1: the first request fails for good (500, no retry time): not acknowledged.
    refserver.faults([500])
    first = fp_upload([src], tmp_path, refserver, concurrency=1, max_retry_time=0)
    assert (first.uploaded, first.rejected, first.unsent) == (5, 0, 1)
    # one request given up, too few to stop the run: why the record is unsent is said
    assert first.halted is None and first.gave_up == (
        "Freeplay failed a request, retried for --max-retry-time (last: injected fault 500 "
        "(refserver test helper) (gave up after 1 attempts in 0 s)); 1 records unsent; run the "
        "same command again to resume"
    )
    # Run 2 sends only that one; run 3 sends nothing.
    second = fp_upload([src], tmp_path, refserver, concurrency=2)
    assert (second.uploaded, second.skipped, second.exit_code) == (1, 5, 0)
    third = fp_upload([src], tmp_path, refserver)
    assert (third.uploaded, third.skipped, third.requests) == (0, 6, 0)
    got = refserver.records()
    ids = [c["completion_id"] for c in got["completions"]]
    assert len(ids) == len(set(ids)) == 6
    assert not any(c["warnings"] for c in got["completions"])


def test_derived_completion_ids_are_stable(refserver: RefServer, tmp_path: Path) -> None:
    src = completions_file(tmp_path, 3)
    fp_upload([src], tmp_path, refserver)
    fp_upload([src], tmp_path, refserver, restart=True)  # forget the journal: send again
    got = refserver.records()["completions"]
    ids = [c["completion_id"] for c in got]
    assert len(ids) == 6 and len(set(ids)) == 3  # the same ids: Freeplay can dedupe
    assert sum("already recorded" in w for c in got for w in c["warnings"]) == 3


def test_invalid_records_rejected_rest_sent(refserver: RefServer, tmp_path: Path) -> None:
    src = completions_file(tmp_path, 2)
    with src.open("ab") as f:
        f.write(b'{"session_id": "456", "messages": []}\nnot json\n')
    report = fp_upload([src], tmp_path, refserver)
    assert (report.uploaded, report.rejected, report.invalid) == (2, 2, 2)
    rejected = [json.loads(x) for x in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert [r["_tracecli"]["line"] for r in rejected] == [3, 4]
    assert "session_id: '456' is not a UUID" in rejected[0]["_tracecli"]["reason"]
    strict = fp_upload([src], tmp_path, refserver, strict=True, restart=True)
    assert strict.strict_blocked and strict.uploaded == 0
    assert refserver.records()["counts"]["completions"] == 2  # nothing more was sent


def test_record_project_id_and_dry_run(refserver: RefServer, tmp_path: Path) -> None:
    src = tmp_path / "p.jsonl"
    rec = {
        "session_id": SESSION,
        "project_id": OTHER_PROJECT,
        "messages": [{"role": "user", "content": "x"}],
    }
    src.write_bytes(orjson.dumps(rec) + b"\n")
    dry = fp_upload([src], tmp_path, refserver, dry_run=True)
    assert (
        dry.uploaded == dry.requests == dry.acked_records == 1 and dry.target == refserver.api_base
    )
    assert refserver.records()["counts"]["completions"] == 0
    report = fp_upload([src], tmp_path, refserver)
    assert report.uploaded == 1
    assert refserver.records()["completions"][0]["project_id"] == OTHER_PROJECT


# --------------------------------------------------------------------------- the command
def cli_env(server: RefServer) -> dict[str, str]:
    return {**os.environ, "FREEPLAY_API_KEY": API_KEY, "FREEPLAY_API_BASE": server.api_base}


def test_cli_upload_and_config_errors(refserver: RefServer, tmp_path: Path) -> None:
    src = completions_file(tmp_path, 2)
    args = ["upload", str(src), "--target", "freeplay", "--rejected", str(tmp_path / "r.jsonl")]
    runner = CliRunner()
    res = runner.invoke(app, [*args, "--project", PROJECT], env=cli_env(refserver))
    assert res.exit_code == 0, res.stderr
    assert "via completions      2" in res.stderr and API_KEY not in res.output
    unknown = "5a6c1f1e-8f0b-4a7e-9a51-3b1d2c9e7f10"
    res = runner.invoke(app, [*args, "--project", unknown, "--restart"], env=cli_env(refserver))
    assert res.exit_code == 2 and "Project not found" in res.stderr
    bad_key = ["--project", PROJECT, "--api-key", "wrong", "--restart"]
    res = runner.invoke(app, [*args, *bad_key], env=cli_env(refserver))
    assert res.exit_code == 2 and "refused the API key" in res.stderr and "wrong" not in res.output
    res = runner.invoke(app, [*args, "--restart"], env=cli_env(refserver))
    assert res.exit_code == 2 and "no Freeplay project" in res.stderr
    res = runner.invoke(app, [*args, "--project", "acme/x"], env=cli_env(refserver))
    assert res.exit_code == 2 and "UUID" in res.stderr
    env = {k: v for k, v in cli_env(refserver).items() if k != "FREEPLAY_API_KEY"}
    res = runner.invoke(app, [*args, "--project", PROJECT], env=env)
    assert res.exit_code == 2 and "FREEPLAY_API_KEY" in res.stderr
    assert refserver.records()["counts"]["completions"] == 2


@pytest.mark.slow
def test_ctrl_c_then_resume_sends_each_completion_once(
    refserver: RefServer, tmp_path: Path
) -> None:
    src = completions_file(tmp_path, 5)
    refserver.faults([429], retry_after=30)  # the first request waits: time to press Ctrl-C
    cmd = [sys.executable, "-m", "tracecli", "upload", str(src), "--target", "freeplay",
           "--project", PROJECT, "--concurrency", "1",
           "--rejected", str(tmp_path / "r.jsonl")]  # fmt: skip
    env = {**cli_env(refserver), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path
    )
    deadline = time.monotonic() + 30
    while refserver.faults([]) and time.monotonic() < deadline:  # the fault was served:
        time.sleep(0.05)  # tracecli now waits out the Retry-After, mid-upload
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert b"resume" in err
    sent_before = refserver.records()["counts"]["completions"]
    assert sent_before < 5
    again = subprocess.run(cmd, env=env, capture_output=True, timeout=60, cwd=tmp_path)
    assert again.returncode == 0, again.stderr.decode()
    got = refserver.records()["completions"]
    ids = [c["completion_id"] for c in got]
    assert len(ids) == len(set(ids)) == 5


# --------------------------------------------------------------------------- never twice
def ids_at(server: RefServer) -> tuple[list[str], list[str]]:
    got = server.records()
    return [c["completion_id"] for c in got["completions"]], [t["trace_id"] for t in got["traces"]]


def test_a_grown_file_sends_only_what_is_new(refserver: RefServer, tmp_path: Path) -> None:
    """A live trace file: the first upload meets a call still running; once it has ended
    (the file grew: the journal sees an append) only the new records go."""
    weave = (GOLDEN / "weave_sdk_examples.jsonl").read_text().splitlines()
    live = tmp_path / "live.jsonl"
    live.write_text("\n".join(weave[:-1]) + "\n")
    first = fp_upload([live], tmp_path, refserver)
    completions, traces = ids_at(refserver)
    assert first.uploaded == len(completions) + len(traces) > 0
    # the running agent call is not sent, and not dropped: reported and in the rejected file
    assert (first.exit_code, first.rejected) == (1, 1)
    (running,) = [json.loads(x) for x in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert running["id"] == "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
    assert "has no end in the inputs" in running["_tracecli"]["reason"]
    with live.open("a") as f:
        f.write(weave[-1] + "\n")
    second = fp_upload([live], tmp_path, refserver)
    assert (second.exit_code, second.uploaded) == (0, 1)  # the agent, now ended
    assert "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a" in ids_at(refserver)[1]
    assert not second.files[0].changed  # the journal saw an append...
    assert second.skipped >= first.uploaded  # ...and skipped what was stored
    completions, traces = ids_at(refserver)
    assert len(completions) == len(set(completions)) and len(traces) == len(set(traces))
    assert first.uploaded + second.uploaded == len(completions) + len(traces)
    third = fp_upload([live], tmp_path, refserver)
    assert (third.uploaded, third.requests) == (0, 0)


def test_a_record_in_two_files_of_one_run_is_sent_once(
    refserver: RefServer, tmp_path: Path
) -> None:
    """A Weave file and its conversion in one upload: the same completions and traces
    (same ids), sent once. A later run over another path is another upload, as for Weave."""
    src = GOLDEN / "weave_sdk_examples.jsonl"
    both = fp_upload([src, GOLDEN / "weave_sdk_examples.freeplay.jsonl"], tmp_path, refserver)
    completions, traces = ids_at(refserver)
    assert len(completions) == len(set(completions)) and len(traces) == len(set(traces))
    assert both.uploaded == len(completions) + len(traces) == 5
    assert both.skipped == 5  # the converted file's lines
    copy = tmp_path / "copy.freeplay.jsonl"
    copy.write_bytes((GOLDEN / "weave_sdk_examples.freeplay.jsonl").read_bytes())
    again = fp_upload([copy], tmp_path, refserver)
    assert again.uploaded == 5  # sent on purpose: the same ids, so Freeplay can tell


def test_the_same_completion_twice_in_the_inputs_is_sent_once(
    refserver: RefServer, tmp_path: Path
) -> None:
    one = completions_file(tmp_path, 3)
    twice = tmp_path / "twice.jsonl"
    twice.write_bytes(one.read_bytes() * 2)
    report = fp_upload([twice], tmp_path, refserver, concurrency=4)
    assert (report.uploaded, report.skipped, report.exit_code) == (3, 3, 0)
    assert report.requests_by_endpoint == report.by_endpoint == {"completions": 3}
    again = fp_upload([twice], tmp_path, refserver, restart=True)  # --restart: once more
    assert (again.uploaded, again.skipped) == (3, 3)
    completions, _ = ids_at(refserver)
    assert len(completions) == 6 and len(set(completions)) == 3


def test_an_api_base_without_api_stops_at_once(refserver: RefServer, tmp_path: Path) -> None:
    src = completions_file(tmp_path, 20)
    args = ["upload", str(src), "--target", "freeplay", "--project", PROJECT,
            "--rejected", str(tmp_path / "r.jsonl")]  # fmt: skip
    env = {**cli_env(refserver), "FREEPLAY_API_BASE": refserver.base}  # no /api
    res = CliRunner().invoke(app, args, env=env)
    assert res.exit_code == 2, res.output
    assert "does not look like Freeplay's API" in res.stderr and "/api" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.jsonl").exists()  # nothing rejected: nothing was wrong with them
    env["FREEPLAY_API_BASE"] = ""
    env["FREEPLAY_API_URL"] = refserver.base  # the Freeplay CLI's variable: host alone
    res = CliRunner().invoke(app, args, env=env)
    assert res.exit_code == 0, res.stderr
    assert "via completions      20 (20 requests)" in res.stderr
    assert refserver.records()["counts"]["completions"] == 20


def test_a_web_page_answering_200_is_not_an_acknowledgement(tmp_path: Path) -> None:
    """An API base in front of a web app (200, HTML) stores nothing: stop at the first
    answer, exit 2, one line; nothing counted as sent."""
    src = completions_file(tmp_path, 5)
    args = ["upload", str(src), "--target", "freeplay", "--project", PROJECT,
            "--rejected", str(tmp_path / "r.jsonl")]  # fmt: skip
    with freeplay_fixtures.web_page_server() as base:
        env = {**os.environ, "FREEPLAY_API_KEY": API_KEY, "FREEPLAY_API_BASE": base}
        res = CliRunner().invoke(app, args, env=env)
    assert res.exit_code == 2, res.output
    assert "without Freeplay's JSON acknowledgement" in res.stderr and "text/html" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.jsonl").exists()  # not rejected either: nothing was wrong


@pytest.mark.slow
def test_kill_9_three_times_then_finish(refserver: RefServer, tmp_path: Path) -> None:
    """SIGKILL mid-upload three times (when the server has stored some records), then let it
    finish: every completion recorded, re-sends per kill at most the requests in flight."""
    n, concurrency = 1200, 4
    src = completions_file(tmp_path, n)
    cmd = [sys.executable, "-m", "tracecli", "upload", str(src), "--target", "freeplay",
           "--project", PROJECT, "--concurrency", str(concurrency), "-q",
           "--rejected", str(tmp_path / "r.jsonl")]  # fmt: skip
    env = {**cli_env(refserver), "PYTHONPATH": str(ROOT)}
    dups = 0  # re-sent completions so far (a kill's re-sends happen in the next run)
    for threshold in (150, 500, 850):
        proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 120
        while refserver.records()["counts"]["completions"] < threshold:
            assert proc.poll() is None, "the upload ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.kill()
        proc.wait(timeout=30)
        completions, _ = ids_at(refserver)
        now = len(completions) - len(set(completions))
        assert 0 <= now - dups <= concurrency
        dups = now
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    completions, _ = ids_at(refserver)
    assert len(set(completions)) == n
    assert len(completions) - n <= 3 * concurrency  # re-sent: the requests in flight per kill


def test_a_line_that_is_not_json_is_a_record_read_and_refused(
    refserver: RefServer, tmp_path: Path
) -> None:
    """As a Weave upload counts it: records = uploaded + rejected, also for such lines."""
    src = completions_file(tmp_path, 2)
    with src.open("ab") as f:
        f.write(b"not json\n\n{broken\n")
    report = fp_upload([src], tmp_path, refserver)
    assert (report.records, report.uploaded, report.rejected) == (4, 2, 2)
    assert report.files[0].records == 4
    out = tmp_path / "out.jsonl"
    got = CliRunner().invoke(app, ["convert", str(src), "--to", "freeplay", "-o", str(out)])
    assert "converted 4 input records" in got.stdout + got.stderr, got.stdout + got.stderr


def test_a_stop_counts_the_halves_held_for_their_other_half_as_unsent(
    refserver: RefServer, tmp_path: Path
) -> None:
    """Weave calls converted for Freeplay: a start read and held for its end when the run
    stops is unsent too; every record read has one fate, and the stop line counts all."""
    from tests.support.uploadkit import gen_calls, write_flat

    src = tmp_path / "w.jsonl"
    write_flat(src, gen_calls(150))  # 300 records
    refserver.faults([503] * 400)
    first = fp_upload([src], tmp_path, refserver, concurrency=2, max_retry_time=0)
    assert first.exit_code == 1 and first.uploaded == 0 and first.rejected == 0
    assert first.records == first.unsent < 300  # not read on
    assert first.halted and first.halted.endswith(
        "; 300 records unsent; run the same command again to resume"
    )
