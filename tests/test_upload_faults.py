"""What the server refuses, and stopping: 413 splits, 4xx bisects, give-ups, auth, Ctrl-C.

Real servers on 127.0.0.1 (tests/support/servers.py; a fault proxy for a slow server). The promise
under test: every call is stored exactly once or is in the rejected file with the server's
reason, and only the calls the server refused are rejected.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import ROOT
from tests.support.faultproxy import FaultProxy, Faults
from tests.support.servers import ServerHandle, start_serve, start_weave_ref
from tests.support.uploadkit import gen_calls, read_back, write_flat
from tracecli.targets.endpoint import AuthError
from tracecli.upload.api import UploadOptions, upload

PROJECT = "acme/chaos"  # uploadkit's


@pytest.fixture
def ref(tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    handle = start_weave_ref(tmp_path / "ref", *getattr(request, "param", ()))
    yield handle
    handle.stop()


@pytest.fixture
def serve(tmp_path: Path) -> Any:
    handle = start_serve(tmp_path / "serve", api_key="right-key")
    yield handle
    handle.stop()


def opts(tmp: Path, url: str, **kw: Any) -> UploadOptions:
    kw.setdefault("rejected", tmp / "rejected.jsonl")
    kw.setdefault("journal_path", tmp / "journal.db")
    return UploadOptions(server=url, **kw)


def completes(calls: list[tuple[dict, dict]]) -> list[dict]:
    return [{**s, **e} for s, e in calls]


def write(path: Path, records: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def rejected(tmp: Path) -> list[dict]:
    return [orjson.loads(x) for x in (tmp / "rejected.jsonl").read_bytes().splitlines()]


def stored_ids(handle: ServerHandle, project: str = PROJECT) -> list[str]:
    return [r["id"] for r in read_back(handle.url, project, handle.api_key)]


@pytest.mark.slow
@pytest.mark.parametrize("ref", [["--max-request-bytes", "262144"]], indirect=True)
def test_413_splits_chunks_and_rejects_only_the_record_too_big_alone(
    ref: ServerHandle, tmp_path: Path
) -> None:
    calls = gen_calls(600, seed=21, big_every=250, big_bytes=300_000)
    big = {s["id"] for s, _ in calls if "blob" in s["inputs"]}
    assert len(big) == 2
    path = write(tmp_path / "t.jsonl", completes(calls))
    report = upload([str(path)], opts(tmp_path, ref.url))
    assert report.exit_code == 1
    assert (report.uploaded, report.rejected) == (598, 2)
    rej = rejected(tmp_path)
    assert {r["id"] for r in rej} == big
    for r in rej:
        assert r["_tracecli"]["status"] == 413
        assert "too large" in r["_tracecli"]["reason"].lower()
    ids = stored_ids(ref)
    assert len(ids) == len(set(ids)) == 598 and not big & set(ids)


@pytest.mark.slow
def test_a_4xx_is_bisected_to_the_refused_calls_and_the_fixed_file_replays(
    ref: ServerHandle, tmp_path: Path
) -> None:
    records = completes(gen_calls(1000, seed=22))
    bad = {7, 500, 993}
    # Validation now catches what weave's server answers 400 for (bad refs, ids), so the
    # proxy refuses these three calls the way the server refuses a batch for one item.
    reason = "Invalid URI: weave:///not-a-ref"
    refuse = {records[i]["id"]: (400, reason) for i in bad}
    for i in bad:
        records[i]["inputs"] = {"doc": "to be fixed"}
    path = write(tmp_path / "t.jsonl", records)
    with FaultProxy(ref.url, Faults(refuse=refuse)) as proxy:
        report = upload([str(path)], opts(tmp_path, proxy.url))
    assert report.exit_code == 1
    assert (report.uploaded, report.rejected) == (997, 3)
    assert report.requests < 2 + 3 * 2 * 10  # bisection, not one request per call
    rej = rejected(tmp_path)
    assert sorted(r["_tracecli"]["line"] for r in rej) == sorted(i + 1 for i in bad)
    for r in rej:
        assert r["_tracecli"]["status"] == 400
        assert "Invalid URI" in r["_tracecli"]["reason"]
    assert len(set(stored_ids(ref))) == 997

    fixed = tmp_path / "fixed.jsonl"
    write(fixed, [{**r, "inputs": {"doc": "fixed"}} for r in rej])  # _tracecli is ignored
    again = upload([str(fixed)], opts(tmp_path, ref.url, rejected=tmp_path / "r2.jsonl"))
    assert again.exit_code == 0 and again.uploaded == 3
    ids = stored_ids(ref)
    assert len(ids) == len(set(ids)) == 1000


# The reference server writes an upsert_batch item by item: the items before a refused one
# are stored, and re-sending them while bisecting is a 500 unless it tolerates re-sent ids
# (production does: it keeps versions).
@pytest.mark.slow
@pytest.mark.parametrize("ref", [["--dedupe-call-ids"]], indirect=True)
def test_a_refused_start_takes_its_end_with_it_in_batch_mode(
    ref: ServerHandle, tmp_path: Path
) -> None:
    calls = gen_calls(50, seed=23)
    # validation refuses what weave's server answers 400 for: the proxy refuses this start
    # the way the server refuses a batch for one item
    refuse = {calls[10][0]["id"]: (400, "Invalid URI: weave:///not-a-ref")}
    path = write_flat(tmp_path / "t.jsonl", calls)
    with FaultProxy(ref.url, Faults(refuse=refuse)) as proxy:
        report = upload([str(path)], opts(tmp_path, proxy.url, mode="batch", max_retry_time=20))
    assert (report.uploaded, report.rejected) == (49, 2)
    assert {r["_tracecli"]["status"] for r in rejected(tmp_path)} == {400}
    assert {r["type"] for r in rejected(tmp_path)} == {"start", "end"}
    assert len(stored_ids(ref)) == 49


@pytest.mark.slow
def test_retries_that_run_out_leave_the_records_unsent_and_a_rerun_sends_them(
    ref: ServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACECLI_RETRY_BASE_DELAY", "0.05")
    path = write(tmp_path / "t.jsonl", completes(gen_calls(40, seed=24)))
    httpx.post(f"{ref.url}/__refserver/fail", json={"count": 10_000, "status": 503})
    report = upload([str(path)], opts(tmp_path, ref.url, max_retry_time=1.0, chunk_size=10))
    assert report.exit_code == 1
    assert (report.uploaded, report.rejected, report.unsent) == (0, 0, 40)
    assert report.retried > 4
    assert report.rejected_file is None and not (tmp_path / "rejected.jsonl").exists()
    httpx.post(f"{ref.url}/__refserver/fail", json={"count": 0, "status": 503})
    again = upload([str(path)], opts(tmp_path, ref.url))
    assert again.exit_code == 0 and again.uploaded == 40 and again.skipped == 0


@pytest.mark.slow
def test_a_wrong_key_stops_at_the_first_401(serve: ServerHandle, tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", completes(gen_calls(2000, seed=25)))
    with pytest.raises(AuthError, match="refused the API key"):
        upload([str(path)], opts(tmp_path, serve.url, api_key="wrong-key", chunk_size=10))
    assert stored_ids(serve) == []
    report = upload([str(path)], opts(tmp_path, serve.url, api_key="right-key"))
    assert report.exit_code == 0 and report.uploaded == 2000


@pytest.mark.slow
def test_cli_wrong_key_is_one_line_and_exit_2(serve: ServerHandle, tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", completes(gen_calls(5, seed=26)))
    r = subprocess.run(
        [sys.executable, "-m", "tracecli", "upload", str(path), "--server", serve.url],
        env={**os.environ, "PYTHONPATH": str(ROOT), "WANDB_API_KEY": "wrong-key"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "API key" in r.stderr
    assert "wrong-key" not in r.stderr + r.stdout


@pytest.mark.slow
def test_ctrl_c_stops_saves_and_says_how_to_resume(tmp_path: Path) -> None:
    backend = start_serve(tmp_path / "serve")
    calls = gen_calls(3000, seed=27)
    path = write_flat(tmp_path / "t.jsonl", calls)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    cmd = [sys.executable, "-m", "tracecli", "upload", str(path), "--chunk-size", "50"]
    cmd += ["--concurrency", "2", "--format", "json"]
    try:
        with FaultProxy(backend.url, Faults(latency=0.3)) as proxy:
            proc = subprocess.Popen(
                [*cmd, "--server", proxy.url],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            deadline = time.monotonic() + 60
            while proxy.stats.forwarded < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
            assert time.monotonic() - t0 < 10
            assert proc.returncode == 130, err
            assert "resume" in err and "Traceback" not in err
            first = orjson.loads(out)
            assert first["interrupted"] and 0 < first["uploaded"] < 3000
            assert first["unsent"] > 0

            proxy.configure(latency=0.0)
            r = subprocess.run(
                [*cmd, "--server", proxy.url],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert r.returncode == 0, r.stderr
            second = orjson.loads(r.stdout)
            assert second["skipped"] >= 2 * first["uploaded"]
            assert second["uploaded"] + second["skipped"] // 2 == 3000
            # at most the requests in flight at Ctrl-C were sent twice
            assert proxy.duplicates() <= 2 * 50 * 2
        ids = stored_ids(backend)
        assert len(ids) == len(set(ids)) == 3000
    finally:
        backend.stop()
