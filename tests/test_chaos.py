"""Chaos: `tracecli upload` through a fault-injecting proxy loses nothing and stores nothing twice.

The proxy answers 20% of write requests 500/503, 5% 429 + Retry-After, drops 5% of the
connections *after* the backend stored the request (so the re-send must be harmless), and
answers 413 above 256 KB. The upload must still end with every call stored exactly once
with identical content, exit 0. Backoff is shortened through TRACECLI_RETRY_* so the test
is bounded in time; production keeps 0.5 s / 30 s.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import orjson
import pytest

from tests.support.faultproxy import CHAOS, FAST, FaultProxy, Faults
from tests.support.uploadkit import (
    diff_calls,
    gen_calls,
    read_back,
    read_jsonl,
    run_cli,
    weave_ref,
    write_flat,
)

pytestmark = pytest.mark.slow  # fault-proxy uploads: out of the fast loop

LIMIT = 256 * 1024


def project(tag: str) -> str:
    return f"chaos/{tag}-{random.randrange(1 << 30):x}"


def seed() -> int:
    # the weave reference server keys calls by id alone: fresh ids for every test
    return random.randrange(1 << 40)


def upload(file: Path, url: str, *args: str, cwd: Path, timeout: float = 170):
    r = run_cli(
        "upload", str(file), "--server", url, "--format", "json", *args,
        cwd=cwd, timeout=timeout, **FAST,
    )  # fmt: skip
    summary = orjson.loads(r.stdout) if r.stdout.strip().startswith("{") else None
    return r, summary


def chaos_run(
    tmp_path: Path, backend: str, calls_n: int, *args: str, proj: str, limit: int = LIMIT
) -> None:
    calls = gen_calls(calls_n, seed=seed(), project=proj)
    file = write_flat(tmp_path / "calls.jsonl", calls)
    faults = Faults(
        **CHAOS,
        max_bytes=limit,
        seed=random.randrange(1000),
        drop_nth=(3, 17),
        inject_nth={5: 429, 8: 503},
    )
    t0 = time.monotonic()
    with FaultProxy(backend, faults) as proxy:
        r, summary = upload(file, proxy.url, "--concurrency", "4", *args, cwd=tmp_path)
        stats, dupes = proxy.stats, proxy.duplicates()
    took = time.monotonic() - t0
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stderr[-3000:]}"
    assert summary is not None, r.stdout[-2000:]
    assert summary["uploaded"] == calls_n and summary["rejected"] == 0, summary
    assert summary["retried"] > 0
    # every kind of fault really happened
    assert stats.injected[413] > 0, stats
    assert stats.injected[500] + stats.injected[503] > 0, stats
    assert stats.injected[429] > 0, stats
    assert stats.dropped_after > 0, stats
    assert dupes > 0  # dropped-after-store requests were sent again...
    stored = read_back(backend, proj)
    assert diff_calls(calls, stored) == []  # ...and still stored exactly once, unchanged
    print(f"\nchaos {calls_n} calls: {took:.1f} s, {stats}, re-sent call items: {dupes}")


@pytest.mark.slow
def test_chaos_20k_calls_tracecli_serve(tmp_path, serve):
    chaos_run(tmp_path, serve.url, 20_000, proj=project("serve"))


@pytest.mark.slow
def test_chaos_20k_calls_small_chunks(tmp_path, serve):
    """More requests, so more faults of each kind: 100-call chunks (~55 KB), 413 above 40 KB."""
    chaos_run(
        tmp_path, serve.url, 20_000, "--chunk-size", "100", proj=project("small"), limit=40_000
    )


@pytest.mark.slow
@pytest.mark.weave_ref
def test_chaos_20k_calls_weave_reference_server(tmp_path):
    # As it runs by default: its SQLite primary key makes a re-sent call a 500 (and a batch
    # is stored item by item up to the failing one), so every dropped-after-store request
    # is only settled by asking the server what it holds (tracecli.targets.reconcile).
    with weave_ref(tmp_path / "ref") as ref:
        chaos_run(tmp_path, ref.url, 20_000, proj=project("ref"))


@pytest.mark.slow  # > 5 s: out of the fast loop (-m "not slow")
@pytest.mark.weave_ref
@pytest.mark.parametrize("mode", ["batch", "single"])
def test_chaos_other_modes_weave_reference_server(tmp_path, mode):
    """Re-sent starts are 500s there: in a batch, the items before one are stored."""
    n = 600 if mode == "batch" else 150
    proj = project(f"ref-{mode}")
    calls = gen_calls(n, seed=seed(), project=proj)
    file = write_flat(tmp_path / "calls.jsonl", calls, lag=40)
    faults = Faults(**{**CHAOS, "p_drop": 0.15}, seed=5)
    with weave_ref(tmp_path / "ref") as ref, FaultProxy(ref.url, faults) as proxy:
        r, summary = upload(file, proxy.url, "--mode", mode, "--chunk-size", "50", cwd=tmp_path)
        stats = proxy.stats
        stored = read_back(ref.url, proj)
    assert r.returncode == 0, r.stderr[-3000:]
    assert summary["uploaded"] == n and summary["rejected"] == 0, summary
    assert stats.dropped_after > 0, stats
    assert diff_calls(calls, stored) == []


@pytest.mark.parametrize("mode", ["batch", "single"])
def test_chaos_other_modes(tmp_path, serve, mode):
    """upsert_batch (an end never before its start is acknowledged) and start/end routes."""
    n = 600 if mode == "batch" else 150
    proj = project(mode)
    calls = gen_calls(n, seed=seed(), project=proj)
    file = write_flat(tmp_path / "calls.jsonl", calls, lag=40)
    faults = Faults(**CHAOS, seed=3)
    with FaultProxy(serve.url, faults) as proxy:
        r, summary = upload(file, proxy.url, "--mode", mode, "--chunk-size", "50", cwd=tmp_path)
        stats = proxy.stats
    assert r.returncode == 0, r.stderr[-3000:]
    assert summary["uploaded"] == n, summary
    assert stats.dropped_after + sum(stats.injected.values()) > 0
    assert diff_calls(calls, read_back(serve.url, proj)) == []


def test_retry_time_exhausted_leaves_the_records_unsent_for_the_next_run(tmp_path, serve):
    """A server that answers only 5xx never refused the records: when --max-retry-time runs
    out they are unsent (not in the rejected file), and the same command sends them."""
    proj = project("giveup")
    calls = gen_calls(30, seed=seed(), project=proj)
    file = write_flat(tmp_path / "calls.jsonl", calls)
    with FaultProxy(serve.url, Faults(p_5xx=1.0)) as proxy:
        t0 = time.monotonic()
        r, summary = upload(file, proxy.url, "--max-retry-time", "1", cwd=tmp_path)
        took = time.monotonic() - t0
        assert r.returncode == 1, r.stderr[-2000:]
        assert took < 60
        assert summary["uploaded"] == 0 and summary["rejected"] == 0, summary
        assert summary["unsent"] == 60, summary  # each original record, starts and ends
        assert not (tmp_path / "tracecli-rejected.jsonl").exists()
        # the server comes back: the same command stores every call once
        proxy.configure(p_5xx=0.0)
        r2, summary2 = upload(file, proxy.url, "--max-retry-time", "1", cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert summary2["uploaded"] == 30 and summary2["rejected"] == 0
    assert diff_calls(calls, read_back(serve.url, proj)) == []


def test_a_record_too_large_for_the_server_is_rejected_alone(tmp_path, serve):
    proj = project("big")
    calls = gen_calls(200, seed=seed(), project=proj)
    calls[57][0]["inputs"]["blob"] = "z" * (LIMIT + 10_000)
    file = write_flat(tmp_path / "calls.jsonl", calls)
    with FaultProxy(serve.url, Faults(max_bytes=LIMIT)) as proxy:
        r, summary = upload(file, proxy.url, cwd=tmp_path)
        assert proxy.stats.injected[413] >= 2  # the chunk, then the call alone
    assert r.returncode == 1, r.stderr[-2000:]
    assert summary["uploaded"] == 199 and summary["rejected"] >= 1, summary
    rejected = read_jsonl(tmp_path / "tracecli-rejected.jsonl")
    assert {x["id"] for x in rejected} == {calls[57][0]["id"]}
    assert all(x["_tracecli"]["status"] == 413 for x in rejected)
    assert "too large" in rejected[0]["_tracecli"]["reason"].lower()
    stored = read_back(serve.url, proj)
    assert diff_calls([c for i, c in enumerate(calls) if i != 57], stored) == []


def test_a_server_that_stays_down_stops_the_upload_and_the_next_run_sends_the_rest(tmp_path, serve):
    """Retries that run out for request after request, nothing stored between: the server
    is down, not refusing records. Stop, rather than spend --max-retry-time on each of the
    remaining chunks; what was not sent is the next run's."""
    proj = project("down")
    calls = gen_calls(400, seed=seed(), project=proj)
    file = write_flat(tmp_path / "calls.jsonl", calls)
    args = ("--max-retry-time", "0.3", "--chunk-size", "10", "--concurrency", "2")
    with FaultProxy(serve.url, Faults(p_5xx=1.0)) as proxy:
        r, summary = upload(file, proxy.url, *args, cwd=tmp_path)
        assert r.returncode == 1, r.stderr[-2000:]
        assert summary["halted"] and "failed 8 requests in a row" in summary["halted"]
        assert summary["halted"].endswith("; run the same command again to resume")
        assert f"tracecli: error: {summary['halted']}" in r.stderr
        assert summary["uploaded"] == 0 and summary["rejected"] == 0
        assert not (tmp_path / "tracecli-rejected.jsonl").exists()
        # 8 chunks of 10 calls given up, and what was read and not sent: unsent
        assert 8 * 20 <= summary["unsent"] <= 800, summary
        proxy.configure(p_5xx=0.0)  # the server is back: the same command sends everything
        r2, summary2 = upload(file, proxy.url, *args, cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert summary2["uploaded"] == 400 and summary2["skipped"] == 0, summary2
    assert diff_calls(calls, read_back(serve.url, proj)) == []
