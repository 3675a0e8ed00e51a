"""Crash and interrupt: `kill -9` and Ctrl-C mid-upload, then resume; nothing lost, little re-sent.

The upload runs through a pass-through proxy (no faults) that counts every call id the
server received, so re-sends are counted exactly as the server saw them.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from tests.support.faultproxy import FaultProxy, Faults
from tests.support.uploadkit import (
    diff_calls,
    gen_calls,
    read_back,
    run_cli,
    start_cli,
    stop_then_resume,
    wait_forwarded,
    weave_ref,
    write_flat,
)

pytestmark = pytest.mark.slow  # kills and resumes: out of the fast loop

CHUNK = 200
CONCURRENCY = 4


def upload_args(file: Path, url: str) -> list[str]:
    return [
        "upload", str(file), "--server", url, "--format", "json",
        "--chunk-size", str(CHUNK), "--concurrency", str(CONCURRENCY),
    ]  # fmt: skip


@pytest.mark.slow
def test_kill_9_three_times_then_finish(tmp_path, serve):
    kill_three_times_then_finish(tmp_path, serve.url, 50_000)


@pytest.mark.slow
@pytest.mark.weave_ref
def test_kill_9_against_weave_reference_server_that_refuses_resent_ids(tmp_path):
    """weave's SQLite server answers a re-sent call id with a 500, and stores the items of a
    batch before the one it fails on: the resumed run must find out what is stored rather
    than retry that 500 until it gives up and rejects calls the server has."""
    with weave_ref(tmp_path / "ref") as ref:
        kill_three_times_then_finish(tmp_path, ref.url, 12_000)


def kill_three_times_then_finish(tmp_path: Path, server_url: str, n: int) -> None:
    rng = random.Random()
    proj = f"crash/kill-{rng.randrange(1 << 30):x}"
    calls = gen_calls(n, seed=rng.randrange(1 << 40), project=proj)
    file = write_flat(tmp_path / "calls.jsonl", calls)
    requests_total = n // CHUNK
    kills = 3
    t0 = time.monotonic()
    with FaultProxy(server_url, Faults(latency=0.01)) as proxy:
        url = proxy.url
        per_kill = []
        for k in range(kills):
            before_dupes = proxy.duplicates()
            proc = start_cli(upload_args(file, url), tmp_path, k)
            if k < kills - 1:
                # mid-upload: after a random number of this run's requests reached the server
                base = proxy.stats.forwarded
                wait_forwarded(proxy, base + rng.randint(3, requests_total // 5), proc)
                time.sleep(rng.uniform(0, 0.03))
            else:
                # and once at a random moment (maybe still reading, maybe sending), but
                # before this run has sent half of what is left: a fast upload must not
                # finish inside the random wait
                base = proxy.stats.forwarded
                cap = base + max(3, (requests_total - base) // 2)
                kill_at_random_moment(proxy, cap, rng.uniform(0.3, 2.0), proc)
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(30) == -signal.SIGKILL, "the upload finished before the kill"
            per_kill.append((proxy.stats.forwarded, proxy.duplicates() - before_dupes))
        r = run_cli(*upload_args(file, url), cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-3000:]
        summary = orjson.loads(r.stdout)
        dupes = proxy.duplicates()
        forwarded_ids = len(proxy.forwarded_ids)
    took = time.monotonic() - t0
    assert summary["skipped"] > 0, summary  # the journal was used
    assert summary["rejected"] == 0 and summary["unsent"] == 0, summary
    # re-sends: at most what was in flight at each kill
    assert dupes <= kills * CONCURRENCY * CHUNK, (dupes, per_kill)
    assert forwarded_ids >= n
    assert diff_calls(calls, read_back(server_url, proj)) == []
    print(
        f"\nkill -9 x{kills}: (forwarded requests, re-sent items) after each kill {per_kill}; "
        f"re-sent call items in all: {dupes} (bound {kills * CONCURRENCY * CHUNK}); "
        f"final run skipped {summary['skipped']} records; {took:.1f} s"
    )


def kill_at_random_moment(
    proxy: FaultProxy, cap: int, seconds: float, proc: subprocess.Popen[bytes]
) -> None:
    """Return after `seconds`, or as soon as the proxy has forwarded `cap` requests,
    whichever comes first, so the kill that follows lands while the upload still runs."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proxy.stats.forwarded < cap:
        assert proc.poll() is None, f"upload ended (exit {proc.returncode}) too early"
        time.sleep(0.002)


def test_ctrl_c_saves_the_journal_and_resumes_without_resending(tmp_path, serve):
    rng = random.Random()
    n = 6_000
    proj = f"crash/int-{rng.randrange(1 << 30):x}"
    calls = gen_calls(n, seed=rng.randrange(1 << 40), project=proj)
    file = write_flat(tmp_path / "calls.jsonl", calls)
    with FaultProxy(serve.url, Faults(latency=0.05)) as proxy:
        args = upload_args(file, proxy.url)
        first, second = stop_then_resume(args, proxy, tmp_path, signal.SIGINT, n)
    assert first["uploaded"] + second["uploaded"] == n
    assert second["skipped"] == 2 * first["uploaded"]  # two records (start, end) per call
    assert diff_calls(calls, read_back(serve.url, proj)) == []


def test_changed_file_is_not_resumed_silently(tmp_path, serve):
    proj = f"crash/chg-{random.randrange(1 << 30):x}"
    calls = gen_calls(300, seed=random.randrange(1 << 40), project=proj)
    file = write_flat(tmp_path / "calls.jsonl", calls[:200])
    r = run_cli(*upload_args(file, serve.url), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # same command again: everything is skipped
    r = run_cli(*upload_args(file, serve.url), cwd=tmp_path)
    again = orjson.loads(r.stdout)
    assert again["uploaded"] == 0 and again["skipped"] == 400, again
    # the file is rewritten: said so, and sent from the start
    write_flat(file, calls)
    r = run_cli(*upload_args(file, serve.url), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    changed = orjson.loads(r.stdout)
    assert changed["uploaded"] == 300 and changed["skipped"] == 0, changed
    assert str(file) in changed["changed_files"]
    # --restart ignores the journal
    r = run_cli(*upload_args(file, serve.url), "--restart", cwd=tmp_path)
    assert orjson.loads(r.stdout)["uploaded"] == 300
    assert diff_calls(calls, read_back(serve.url, proj)) == []
