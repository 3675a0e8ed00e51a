"""`upload` into the embedded store (in process) and the CLI around it.

The store target goes through the same chunking, sending and acknowledging code as a
server, so these cover the pipeline's bookkeeping (rejections, --strict, resume, dry run,
unpaired halves, spilling) quickly; tests/test_roundtrip.py covers the real servers.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import ROOT
from tests.support.uploadkit import gen_calls, write_flat
from tracecli.diagnostics import UsageError
from tracecli.journal.database import store_key
from tracecli.store.db import Store
from tracecli.upload.api import UploadOptions, upload

PROJECT = "acme/chaos"  # uploadkit's


def opts(tmp: Path, **kw: Any) -> UploadOptions:
    kw.setdefault("db", tmp / "store.db")
    kw.setdefault("rejected", tmp / "rejected.jsonl")
    kw.setdefault("journal_path", tmp / "journal.db")
    return UploadOptions(**kw)


def stored(tmp: Path, project: str = PROJECT) -> dict[str, dict]:
    with Store(tmp / "store.db") as s:
        return {c["id"]: c for c in s.query(project)}


def write_lines(path: Path, records: list[Any]) -> Path:
    path.write_bytes(
        b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in records)
    )
    return path


def rejected_lines(path: Path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def test_uploads_every_call_into_the_embedded_store(tmp_path: Path) -> None:
    calls = gen_calls(500, seed=3)
    path = write_flat(tmp_path / "t.jsonl", calls, lag=7)
    report = upload([str(path)], opts(tmp_path))
    assert report.exit_code == 0
    assert (report.records, report.uploaded, report.rejected) == (1000, 500, 0)
    assert report.by_endpoint == {"calls/complete": 500}
    assert report.target_kind == "store"
    got = stored(tmp_path)
    assert len(got) == 500
    for start, end in calls:
        row = got[start["id"]]
        assert row["inputs"] == start["inputs"] and row["output"] == end["output"]
        assert row["parent_id"] == start["parent_id"] and row["trace_id"] == start["trace_id"]


def test_chunk_size_bounds_each_request(tmp_path: Path) -> None:
    path = write_flat(tmp_path / "t.jsonl", gen_calls(100, seed=4))
    report = upload([str(path)], opts(tmp_path, chunk_size=7))
    assert report.requests == 15  # ceil(100 / 7)
    assert report.uploaded == 100


def test_invalid_records_are_rejected_with_their_diagnostics_and_the_rest_stored(
    tmp_path: Path,
) -> None:
    calls = gen_calls(30, seed=5)
    path = write_flat(tmp_path / "t.jsonl", calls, lag=0)
    lines = path.read_bytes().splitlines()
    bad_start = orjson.loads(lines[0])
    del bad_start["op_name"]
    lines[0] = orjson.dumps(bad_start)  # a start without op_name: its end (line 2) goes with it
    broken = orjson.loads(lines[4])
    lines[4] = b'{"type": "start", "id": '  # not JSON, and no id to make out: its end goes
    lines.append(orjson.dumps({"type": "end", "project_id": "nope", "id": "x"}))
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = upload([str(path)], opts(tmp_path))
    assert report.exit_code == 1
    assert report.invalid == 3 and report.rejected == 4
    assert report.errors >= 3
    rej = sorted(rejected_lines(tmp_path / "rejected.jsonl"), key=lambda r: r["_tracecli"]["line"])
    assert [r["_tracecli"]["line"] for r in rej] == [1, 2, 5, len(lines)]
    assert rej[1]["type"] == "end" and rej[1]["id"] == bad_start["id"]
    assert rej[1]["_tracecli"]["reason"].startswith("its start (line 1) was rejected")
    first = rej[0]
    assert first["id"] == bad_start["id"] and first["type"] == "start"  # the record as read
    assert "op_name" in first["_tracecli"]["reason"]
    assert first["_tracecli"]["source"] == str(path)
    assert first["_tracecli"]["status"] is None
    assert rej[2]["_tracecli"]["original"] == '{"type": "start", "id": '
    assert any(d["field"] == "op_name" for d in first["_tracecli"]["diagnostics"])
    got = stored(tmp_path)
    assert bad_start["id"] not in got
    assert broken["id"] not in got  # its end went alone: nothing names the broken start's id
    assert len(got) == len(calls) - 2
    assert report.uploaded == len(calls) - 2 and report.ends_uploaded == 1
    # fixing the rejected start and replaying the pair stores the whole call at once
    fixed = {**{k: v for k, v in first.items() if k != "_tracecli"}, "op_name": "fixed.op"}
    end = {k: v for k, v in rej[1].items() if k != "_tracecli"}
    replay = write_lines(tmp_path / "fixed.jsonl", [fixed, end])
    again = upload([str(replay)], opts(tmp_path, rejected=tmp_path / "r2.jsonl"))
    assert again.exit_code == 0 and again.by_endpoint == {"calls/complete": 1}
    assert stored(tmp_path)[bad_start["id"]]["ended_at"] is not None


@pytest.mark.parametrize("order", ["start first", "end first"])
def test_the_other_half_of_a_call_that_validation_refused_is_rejected_with_it(
    tmp_path: Path, order: str
) -> None:
    """Never half a call: a refused start takes its end along (and a refused end its
    start), whichever is read first, across files; the fixed pair replays as one call."""
    calls = gen_calls(8, seed=41)
    starts = [{"type": "start", **s} for s, _ in calls]
    ends = [{"type": "end", **e} for _, e in calls]
    del starts[2]["op_name"]  # refused by its schema
    ends[5]["ended_at"] = "when it ended"  # refused by its schema too
    a = write_lines(tmp_path / "starts.jsonl", starts)
    b = write_lines(tmp_path / "ends.jsonl", ends)
    files = [a, b] if order == "start first" else [b, a]
    report = upload([str(f) for f in files], opts(tmp_path))
    assert report.exit_code == 1
    assert (report.uploaded, report.ends_uploaded, report.acked_records) == (6, 0, 12)
    assert (report.invalid, report.rejected, report.unsent) == (2, 4, 0)
    assert report.records == report.acked_records + report.rejected
    rejected = rejected_lines(tmp_path / "rejected.jsonl")
    rej = {(r["type"], r["id"]): r["_tracecli"] for r in rejected}
    c2, c5 = calls[2][0]["id"], calls[5][0]["id"]
    assert set(rej) == {("start", c2), ("end", c2), ("start", c5), ("end", c5)}
    assert rej["end", c2]["reason"].startswith(f"its start ({a}:3) was rejected")
    assert rej["start", c5]["reason"].startswith(f"its end ({b}:6) was rejected")
    codes = {d.code for d in report.diagnostics}
    assert "other-half-rejected" in codes and "end-without-start" not in codes
    got = stored(tmp_path)
    assert len(got) == 6 and c2 not in got and c5 not in got
    # the rejected file, fixed, is a valid input: both calls go whole
    fixed = []
    for r in rejected_lines(tmp_path / "rejected.jsonl"):
        r.pop("_tracecli")
        if r["type"] == "start" and r["id"] == c2:
            r["op_name"] = "fixed.op"
        if r["type"] == "end" and r["id"] == c5:
            r["ended_at"] = calls[5][1]["ended_at"]
        fixed.append(r)
    replay = write_lines(tmp_path / "fixed.jsonl", fixed)
    again = upload([str(replay)], opts(tmp_path, rejected=tmp_path / "r2.jsonl"))
    assert again.exit_code == 0 and again.by_endpoint == {"calls/complete": 2}
    assert all(stored(tmp_path)[c]["ended_at"] is not None for c in (c2, c5))


def test_ctrl_c_counts_every_record_read_and_not_sent_as_unsent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped mid-file, the tally still adds up: the open chunk and the halves waiting
    for their other half are unsent (the next run sends them), not forgotten."""
    import os
    import signal

    monkeypatch.setattr("tracecli.upload.run.BLOCK_BYTES", 16 * 1024)
    calls = gen_calls(600, seed=43)
    path = write_flat(tmp_path / "t.jsonl", calls, lag=40)
    lines = path.read_bytes().splitlines()
    lines[300] = b"{not json"  # its diagnostic is the moment to press Ctrl-C
    path.write_bytes(b"\n".join(lines) + b"\n")

    def ctrl_c(d: Any) -> None:
        if d.code == "json":
            os.kill(os.getpid(), signal.SIGINT)

    report = upload([str(path)], opts(tmp_path, chunk_size=7, on_diagnostic=ctrl_c))
    assert report.interrupted and report.exit_code == 130
    assert 300 < report.records < len(lines)
    assert report.unsent > 0
    assert report.records == report.acked_records + report.rejected + report.unsent
    assert len(stored(tmp_path)) == report.uploaded
    # the next run sends what is left, and every call is there once
    again = upload([str(path)], opts(tmp_path))
    assert again.skipped == report.acked_records
    assert again.records == again.acked_records + again.rejected + again.skipped
    assert len(stored(tmp_path)) == len(calls) - 1


def test_a_start_refused_by_a_cross_record_rule_takes_its_end_read_before_it(
    tmp_path: Path,
) -> None:
    """The end is read first (another file) and held; its start, read later, is refused by a
    rule across records (its trace is not its parent's): the end goes with it, whole."""
    calls = gen_calls(8, seed=41)
    k = next(i for i, (s, _) in enumerate(calls) if s["parent_id"] is not None)
    child = calls[k][0]["id"]
    starts = [{"type": "start", **s} for s, _ in calls]
    ends = [{"type": "end", **e} for _, e in calls]
    starts[k]["trace_id"] = "0" * 32  # not its parent's trace
    a = write_lines(tmp_path / "starts.jsonl", starts)
    b = write_lines(tmp_path / "ends.jsonl", ends)
    report = upload([str(b), str(a)], opts(tmp_path))
    assert report.exit_code == 1
    assert (report.uploaded, report.invalid, report.rejected) == (7, 1, 2)
    rej = {
        (r["type"], r["id"]): r["_tracecli"] for r in rejected_lines(tmp_path / "rejected.jsonl")
    }
    assert set(rej) == {("start", child), ("end", child)}
    assert "differs from the trace_id of its parent call" in rej["start", child]["reason"]
    assert rej["end", child]["reason"].startswith(f"its start ({a}:{k + 1}) was rejected")
    assert child not in stored(tmp_path) and len(stored(tmp_path)) == 7


def test_an_end_refused_after_its_start_was_stored_by_an_earlier_run_is_said(
    tmp_path: Path,
) -> None:
    """The start went in an earlier run (batch mode, journaled): it cannot be taken back,
    so the refused end is rejected alone and a warning says the call stays running."""
    from tracecli.journal.resume import Journal

    calls = gen_calls(2, seed=42)
    path = write_lines(
        tmp_path / "t.jsonl",
        [
            {"type": "start", **calls[0][0]},
            {"type": "end", **calls[0][1], "ended_at": "when it ended"},
            {"type": "call", **calls[1][0], **calls[1][1]},
        ],
    )
    with Store(tmp_path / "store.db") as s:
        s.call_start(calls[0][0])
        key = store_key(tmp_path / "store.db", s.store_id())
    with Journal.open(server=key, project=None, db_path=tmp_path / "journal.db") as j:
        j.file(str(path))
        j.ack(str(path), [1])
        j.hold(str(path), 1)  # as a run leaves a start sent as running: read again next time
    report = upload([str(path)], opts(tmp_path))
    assert (report.uploaded, report.rejected, report.skipped) == (1, 1, 1)
    (rej,) = rejected_lines(tmp_path / "rejected.jsonl")
    assert (rej["type"], rej["_tracecli"]["line"]) == ("end", 2)
    (warn,) = [d for d in report.diagnostics if d.code == "end-rejected"]
    assert warn.line == 1 and "stays running" in warn.message


def test_strict_sends_nothing_when_any_record_has_an_error_or_warning(tmp_path: Path) -> None:
    calls = gen_calls(20, seed=6)
    path = write_flat(tmp_path / "t.jsonl", calls)
    lines = path.read_bytes().splitlines()
    rec = orjson.loads(lines[2])
    rec["not_a_field"] = 1  # a warning; --strict makes it an error
    lines[2] = orjson.dumps(rec)
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = upload([str(path)], opts(tmp_path, strict=True))
    assert report.strict_blocked and report.exit_code == 1
    assert report.uploaded == 0 and report.requests == 0
    assert not (tmp_path / "store.db").exists() or stored(tmp_path) == {}
    rej = rejected_lines(tmp_path / "rejected.jsonl")
    assert [r["_tracecli"]["line"] for r in rej] == [3, 9]  # the call's other half with it
    assert rej[1]["_tracecli"]["reason"].startswith("its start (line 3) was rejected")
    # without --strict it is only a warning: everything goes
    report = upload([str(path)], opts(tmp_path))
    assert report.exit_code == 0 and report.warnings == 1 and report.uploaded == 20


def test_strict_dry_run_that_finds_an_error_counts_nothing_as_sent(tmp_path: Path) -> None:
    """--strict's checking pass sends nothing: a blocked report says no request and no
    call, and --dry-run still writes no rejected file."""
    path = write_flat(tmp_path / "t.jsonl", gen_calls(10, seed=8))
    lines = path.read_bytes().splitlines()
    rec = orjson.loads(lines[1])
    rec["not_a_field"] = 1
    lines[1] = orjson.dumps(rec)
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = upload([str(path)], opts(tmp_path, strict=True, dry_run=True))
    assert report.strict_blocked and report.dry_run and report.exit_code == 1
    assert (report.uploaded, report.requests, report.bytes_sent) == (0, 0, 0)
    assert report.by_endpoint == {} and report.ends_uploaded == 0
    assert not (tmp_path / "rejected.jsonl").exists()


def test_dry_run_sends_nothing_and_says_what_would_go(tmp_path: Path) -> None:
    path = write_flat(tmp_path / "t.jsonl", gen_calls(50, seed=7))
    report = upload([str(path)], opts(tmp_path, dry_run=True, chunk_size=20))
    assert report.exit_code == 0 and report.dry_run
    assert report.requests == 3 and report.bytes_sent > 10_000
    assert report.by_endpoint == {"calls/complete": 50}
    assert not (tmp_path / "store.db").exists()
    assert not (tmp_path / "journal.db").exists()
    assert not (tmp_path / "rejected.jsonl").exists()


def test_resume_skips_what_was_acknowledged_and_restart_sends_again(tmp_path: Path) -> None:
    path = write_flat(tmp_path / "t.jsonl", gen_calls(200, seed=8))
    first = upload([str(path)], opts(tmp_path))
    assert first.uploaded == 200 and first.skipped == 0
    again = upload([str(path)], opts(tmp_path))
    assert (again.uploaded, again.skipped, again.requests) == (0, 400, 0)
    assert again.files[0].skipped == 400 and not again.files[0].changed
    restart = upload([str(path)], opts(tmp_path, restart=True))
    assert (restart.uploaded, restart.skipped) == (200, 0)
    with path.open("ab") as f:  # appended: only the new records go
        for start, end in gen_calls(3, seed=99):
            f.write(orjson.dumps({"type": "call", **start, **end}) + b"\n")
    grown = upload([str(path)], opts(tmp_path))
    assert grown.changed_files == []
    assert (grown.uploaded, grown.skipped, grown.records) == (3, 400, 403)
    path.write_bytes(b"\n" + path.read_bytes())  # the part sent changed: said, started over
    changed = upload([str(path)], opts(tmp_path))
    assert changed.changed_files == [str(path)]
    assert (changed.uploaded, changed.skipped) == (203, 0)
    assert len(stored(tmp_path)) == 203


def test_resume_after_a_half_acknowledged_call_sends_only_the_missing_half(
    tmp_path: Path,
) -> None:
    """A start acknowledged earlier (batch mode) and its end not: the end goes alone."""
    from tracecli.journal.resume import Journal

    calls = gen_calls(10, seed=9)
    path = write_flat(tmp_path / "t.jsonl", calls, lag=0)  # start, end, start, end, ...
    with Store(tmp_path / "store.db") as s:
        s.call_start(calls[0][0])
        key = store_key(tmp_path / "store.db", s.store_id())
    with Journal.open(server=key, project=None, db_path=tmp_path / "journal.db") as j:
        j.file(str(path))
        j.ack(str(path), [1])  # the first call's start
    report = upload([str(path)], opts(tmp_path))
    assert report.exit_code == 0
    assert report.skipped == 1
    assert report.by_endpoint == {"calls/complete": 9, "call/upsert_batch": 1}
    # the lone end completes a call stored before: not a call uploaded now
    assert (report.uploaded, report.ends_uploaded, report.acked_records) == (9, 1, 19)
    got = stored(tmp_path)
    assert len(got) == 10 and got[calls[0][0]["id"]]["ended_at"] is not None


def test_unpaired_halves_go_through_upsert_batch_in_auto_and_are_rejected_in_complete(
    tmp_path: Path,
) -> None:
    calls = gen_calls(5, seed=10)
    records = [{"type": "start", **calls[0][0]}]  # running: no end
    records.append({"type": "end", **calls[1][1]})  # its start is elsewhere
    records += [{"type": "call", **s, **e} for s, e in calls[2:]]
    path = write_lines(tmp_path / "t.jsonl", records)
    report = upload([str(path)], opts(tmp_path))
    assert report.exit_code == 0, report.diagnostics
    assert report.by_endpoint == {"calls/complete": 3, "call/upsert_batch": 2}
    assert (report.uploaded, report.ends_uploaded, report.acked_records) == (4, 1, 5)
    codes = {d.code for d in report.diagnostics}
    assert {"running-call", "end-without-start"} <= codes
    got = stored(tmp_path)
    assert got[calls[0][0]["id"]]["ended_at"] is None  # running
    assert calls[1][0]["id"] not in got  # an end alone is not a call (yet)

    other = tmp_path / "complete"
    other.mkdir()
    report = upload([str(path)], opts(other, mode="complete"))
    assert report.exit_code == 1 and report.rejected == 2 and report.uploaded == 3
    reasons = [r["_tracecli"]["reason"] for r in rejected_lines(other / "rejected.jsonl")]
    assert all("--mode complete sends only completed calls" in r for r in reasons)


@pytest.mark.parametrize("mode", ["batch", "single"])
def test_completed_records_are_split_for_the_half_routes(tmp_path: Path, mode: str) -> None:
    calls = gen_calls(6, seed=11)
    path = write_lines(tmp_path / "t.jsonl", [{"type": "call", **s, **e} for s, e in calls])
    report = upload([str(path)], opts(tmp_path, mode=mode))
    assert report.exit_code == 0 and report.uploaded == 6
    got = stored(tmp_path)
    for s, e in calls:
        assert got[s["id"]]["output"] == e["output"] and got[s["id"]]["inputs"] == s["inputs"]


def test_many_open_calls_spill_to_disk_and_all_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tracecli.upload.run.BLOCK_BYTES", 16 * 1024)  # pairs across blocks
    calls = gen_calls(3000, seed=12)
    path = write_flat(tmp_path / "t.jsonl", calls, lag=2000)
    report = upload([str(path)], opts(tmp_path, memory_budget=64 * 1024))
    assert report.exit_code == 0
    assert report.spilled > 1000 and report.peak_open_calls > 1900
    assert report.uploaded == 3000 and report.by_endpoint == {"calls/complete": 3000}
    assert len(stored(tmp_path)) == 3000


def test_project_flag_rewrites_and_the_rejected_file_keeps_the_original(tmp_path: Path) -> None:
    calls = gen_calls(4, seed=13)
    records: list[Any] = [{"type": "call", **s, **e} for s, e in calls]
    records[1] = {**records[1], "op_name": "x" * 129}  # invalid (too long)
    path = write_lines(tmp_path / "t.jsonl", records)
    report = upload([str(path)], opts(tmp_path, project="other/place"))
    assert report.uploaded == 3 and report.rejected == 1
    assert len(stored(tmp_path, "other/place")) == 3 and stored(tmp_path) == {}
    (rej,) = rejected_lines(tmp_path / "rejected.jsonl")
    assert rej["project_id"] == PROJECT


def test_a_freeplay_record_is_rejected_with_the_reason(tmp_path: Path) -> None:
    calls = gen_calls(1, seed=14)
    fp = {"session_id": "3f1d7c2e-6a4b-4c8e-9d2f-1a2b3c4d5e6f", "messages": []}
    path = write_lines(tmp_path / "t.jsonl", [{"type": "call", **calls[0][0], **calls[0][1]}, fp])
    report = upload([str(path)], opts(tmp_path))
    assert report.uploaded == 1 and report.rejected == 1 and report.exit_code == 1


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    path = write_flat(tmp_path / "t.jsonl", gen_calls(1))
    for kw in (
        {"chunk_size": 0},
        {"chunk_bytes": 64 * 1024 * 1024},
        {"concurrency": 0},
        {"mode": "sideways"},
        {"project": "noslash"},
    ):
        with pytest.raises(UsageError):
            upload([str(path)], opts(tmp_path, **kw))
    with pytest.raises(UsageError, match="no such file"):
        upload([str(tmp_path / "missing.jsonl")], opts(tmp_path))


# -- the CLI --------------------------------------------------------------------------------


def cli(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in __import__("os").environ.items()
        if k not in ("WF_TRACE_SERVER_URL", "WANDB_API_KEY")
    }
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "tracecli", "upload", *args],
        cwd=cwd,
        env=env,
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_cli_text_summary_says_where_calls_went(tmp_path: Path) -> None:
    path = write_flat(tmp_path / "t.jsonl", gen_calls(30, seed=15))
    r = cli(str(path), "--db", str(tmp_path / "store.db"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert "calls uploaded" in r.stderr and "30" in r.stderr
    assert "tracecli tail" in r.stderr and str(tmp_path / "store.db") in r.stderr
    assert "WANDB_API_KEY" not in r.stderr
    r = cli(str(path), "--db", str(tmp_path / "store.db"), "--quiet", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "")


def test_cli_a_wandb_key_with_no_server_says_the_calls_stayed_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_flat(tmp_path / "t.jsonl", gen_calls(5, seed=16))
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    r = subprocess.run(
        [sys.executable, "-m", "tracecli", "upload", str(path), "--db", str(tmp_path / "s.db")],
        cwd=tmp_path,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "WANDB_API_KEY is set but no server was given" in r.stderr
    assert "k" * 40 not in r.stderr + r.stdout


def test_cli_json_is_one_object_on_stdout(tmp_path: Path) -> None:
    path = write_flat(tmp_path / "t.jsonl", gen_calls(30, seed=16))
    r = cli(str(path), "--db", str(tmp_path / "s.db"), "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for key in ("uploaded", "rejected", "retried", "requests", "by_endpoint", "elapsed_s"):
        assert key in out
    assert out["files"] == 1 and out["uploaded"] == 30 and out["skipped"] == 0


def test_cli_reads_yaml_from_stdin_and_rejects_into_the_cwd(tmp_path: Path) -> None:
    import yaml

    calls = gen_calls(3, seed=17)
    docs = [{"type": "call", **s, **e} for s, e in calls] + [{"type": "call", "id": "bad"}]
    r = cli(
        "-",
        "--input-format",
        "yaml",
        "--db",
        str(tmp_path / "s.db"),
        "-f",
        "json",
        cwd=tmp_path,
        stdin=yaml.safe_dump(docs).encode(),
    )
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    assert (out["uploaded"], out["rejected"]) == (3, 1)
    assert (tmp_path / "tracecli-rejected.jsonl").exists()
    assert "<stdin>:" in r.stderr  # the diagnostic names the input


@pytest.mark.slow
def test_summary_counts_calls_and_records_apart_and_says_short_times_in_ms(
    tmp_path: Path,
) -> None:
    from tracecli.cli.cmd_upload import format_elapsed

    assert [format_elapsed(x) for x in (0, 0.0004, 0.046, 0.9996, 1.04, 75, 3725)] == [
        "0 ms", "1 ms", "46 ms", "1.0 s", "1.0 s", "1 min 15 s", "1 h 02 min",
    ]  # fmt: skip
    calls = gen_calls(3, seed=44)
    records = [{"type": "start", **calls[0][0]}, {"type": "end", **calls[1][1]}]
    records += [{"type": "call", **calls[2][0], **calls[2][1]}]
    path = write_lines(tmp_path / "t.jsonl", records)
    r = cli(str(path), "--db", str(tmp_path / "s.db"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = dict(
        re.split(r"\s{2,}", line.strip(), maxsplit=1)
        for line in r.stderr.splitlines()
        if re.search(r"\S\s{2,}\S", line)
    )
    assert rows["calls uploaded"] == "2"  # the running call and the completed one
    assert rows["ends uploaded alone"] == "1"  # its call was started elsewhere
    assert rows["records uploaded"] == "3"
    assert rows["elapsed"].endswith(" ms") and "0.0 s" not in r.stderr
    r = cli(str(path), "--db", str(tmp_path / "s2.db"), "-f", "json", cwd=tmp_path)
    out = json.loads(r.stdout)
    assert (out["uploaded"], out["ends_uploaded"], out["records_uploaded"]) == (2, 1, 3)
    assert out["by_endpoint"] == {"calls/complete": 1, "call/upsert_batch": 2}


def test_cli_dry_run_reports_requests_and_bytes(tmp_path: Path) -> None:
    path = write_flat(tmp_path / "t.jsonl", gen_calls(10, seed=18))
    r = cli(str(path), "--db", str(tmp_path / "s.db"), "--dry-run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "requests (would send)" in r.stderr and "bytes (would send)" in r.stderr
    assert "dry run: nothing was sent" in r.stderr
    assert not (tmp_path / "s.db").exists()


def test_cli_remote_server_without_a_key_is_exit_2_before_reading(tmp_path: Path) -> None:
    r = cli(
        str(tmp_path / "not-even-there.jsonl"), "--server", "https://example.invalid", cwd=tmp_path
    )
    assert r.returncode == 2
    assert "no API key" in r.stderr and "Traceback" not in r.stderr


def test_cli_unreachable_server_is_exit_2(tmp_path: Path) -> None:
    from tests.conftest import free_port

    path = write_flat(tmp_path / "t.jsonl", gen_calls(2))
    r = cli(str(path), "--server", f"http://127.0.0.1:{free_port()}", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "cannot reach the server" in r.stderr


def test_worker_processes_give_the_same_answer_as_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks validated and encoded in a process pool: same report, store and rejects."""
    monkeypatch.setattr("tracecli.upload.run.BLOCK_BYTES", 8 * 1024)
    monkeypatch.setattr("tracecli.upload.pool.PARALLEL_MIN_BYTES", 0)
    calls = gen_calls(400, seed=19)
    path = write_flat(tmp_path / "t.jsonl", calls, lag=40)
    lines = path.read_bytes().splitlines()
    lines[10] = b"{not json"
    bad = orjson.loads(lines[20])
    bad["id"] = "NOT-AN-ID"
    lines[20] = orjson.dumps(bad)
    warn = orjson.loads(lines[30])
    warn["extra_field"] = True
    lines[30] = orjson.dumps(warn)
    path.write_bytes(b"\n".join(lines) + b"\n")
    results = []
    for jobs in (0, 2):
        d = tmp_path / f"jobs{jobs}"
        d.mkdir()
        report = upload([str(path)], opts(d, jobs=jobs))
        rej = sorted(
            (r["_tracecli"]["line"], r["_tracecli"]["reason"])
            for r in rejected_lines(d / "rejected.jsonl")
        )
        summary = report.to_dict()
        for key in (
            "elapsed_s",
            "calls_per_s",
            "target",
            "rejected_file",
            "peak_open_calls",
            "spilled",
        ):
            summary.pop(key)
        results.append((summary, rej, sorted(stored(d).items())))
    assert results[0] == results[1]
    summary, rej, got = results[0]
    assert summary["rejected"] == 2 and summary["warnings"] >= 1
    assert len(got) == 398


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_a_pipe_is_read_as_a_stream_plain_or_gzip(tmp_path: Path, compress: bool) -> None:
    """`upload <(zcat traces.gz)` names a pipe: it was read as an empty file (0 records,
    exit 0). Gzip is known by its first bytes, whatever the name."""
    import gzip
    import os
    import threading

    calls = gen_calls(300, seed=41)
    data = write_flat(tmp_path / "t.jsonl", calls, lag=5).read_bytes()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as f:
            f.write(gzip.compress(data) if compress else data)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    report = upload([str(fifo)], opts(tmp_path))
    writer.join(10)
    assert report.exit_code == 0
    assert (report.records, report.uploaded, report.rejected) == (600, 300, 0)
    assert len(stored(tmp_path)) == 300


def test_a_string_the_server_reads_as_a_bad_reference_is_refused_as_validate_does(
    tmp_path: Path,
) -> None:
    """Weave's server refuses a request holding `weave:///x` anywhere (400); validate says
    so, and upload must refuse the record itself rather than store it where no server
    checks (the embedded store) or lose a request to the server's refusal."""
    calls = gen_calls(50, seed=43)
    calls[7][0]["inputs"] = {"docs": [{"ref": "weave:///not-a-ref"}]}
    path = write_flat(tmp_path / "t.jsonl", calls)
    report = upload([str(path)], opts(tmp_path))
    assert report.exit_code == 1
    assert (report.uploaded, report.rejected) == (49, 2)  # the start, and its end with it
    rej = rejected_lines(tmp_path / "rejected.jsonl")
    reasons = sorted(r["_tracecli"]["reason"] for r in rej)
    assert "weave:/// string as a reference" in reasons[0] + reasons[1]
    assert len(stored(tmp_path)) == 49
