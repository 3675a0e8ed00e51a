"""A resumed upload says nothing false about the calls an earlier, stopped run stored.

A run stopped mid-upload (SIGTERM, kill -9) leaves a resume point before the first line it
could not settle; the next run reads the lines after it again and skips those stored. An
end among them whose start lies before that point was said to have "the start of this
call is not in the inputs" (an error under --strict: exit 1, though every call was stored).
A child whose parent lies before the resume point (not read again) is said so, as a
warning: its parent may well be there."""

from __future__ import annotations

import signal

import orjson
import pytest

from tests.support.faultproxy import FaultProxy, Faults
from tests.support.uploadkit import (
    diff_calls,
    gen_calls,
    read_back,
    run_cli,
    start_cli,
    wait_forwarded,
    write_flat,
)


def test_a_resumed_run_does_not_say_a_stored_end_has_no_start(tmp_path, serve):
    calls = gen_calls(600, seed=7, project="resume/notes")
    file = write_flat(tmp_path / "calls.jsonl", calls)
    with FaultProxy(serve.url, Faults(latency=0.05)) as proxy:
        args = [
            "upload", str(file), "--server", proxy.url, "--format", "json", "--strict",
            "--chunk-size", "100", "--concurrency", "1",
        ]  # fmt: skip
        proc = start_cli(args, tmp_path, 0)
        wait_forwarded(proxy, 2, proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 143
        r = run_cli(*args, cwd=tmp_path)
    report = orjson.loads(r.stdout)
    assert report["skipped"] > 0, report
    said = [(d["line"], d["code"]) for d in report["diagnostics"]]
    assert not [s for s in said if s[1] == "end-without-start"], said
    assert diff_calls(calls, read_back(serve.url, "resume/notes")) == []


@pytest.mark.parametrize("mode", ["batch", "auto"])
def test_a_resumed_strict_run_is_not_failed_by_parents_before_its_resume_point(
    tmp_path, serve, mode
):
    calls = gen_calls(800, seed=8, project=f"resume/strict-{mode}")
    file = write_flat(tmp_path / "calls.jsonl", calls)
    with FaultProxy(serve.url, Faults(latency=0.05)) as proxy:
        args = [
            "upload", str(file), "--server", proxy.url, "--format", "json", "--strict",
            "--mode", mode, "--chunk-size", "100", "--concurrency", "1",
        ]  # fmt: skip
        proc = start_cli(args, tmp_path, 0)
        wait_forwarded(proxy, 3, proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 143
        r = run_cli(*args, cwd=tmp_path)
    report = orjson.loads(r.stdout)
    assert r.returncode == 0, r.stderr[-2000:]
    assert report["errors"] == 0 and report["skipped"] > 0, report
    for d in report["diagnostics"]:
        assert d["code"] == "missing-parent" and d["severity"] == "warning", d
        assert "stored by an earlier run, were not read again" in d["message"], d
    assert diff_calls(calls, read_back(serve.url, f"resume/strict-{mode}")) == []
