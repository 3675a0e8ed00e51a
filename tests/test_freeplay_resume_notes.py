"""A resumed Freeplay upload of Weave calls says nothing false about what an earlier run
stored: an end whose start lies before the resume point, both sent by the stopped run as one
Freeplay record, was an error ("call … has no start in the inputs: … cannot become a
Freeplay record"), so the resumed run exited 1 though every record was stored."""

from __future__ import annotations

import signal
from collections import Counter

import orjson

from tests.support import freeplay_fixtures
from tests.support.faultproxy import FaultProxy, Faults
from tests.support.freeplay_fixtures import API_KEY, PROJECT, RefServer
from tests.support.uploadkit import gen_calls, run_cli, start_cli, wait_forwarded, write_flat

refserver_module = freeplay_fixtures.refserver_module
refserver = freeplay_fixtures.refserver


def test_a_resumed_freeplay_upload_does_not_refuse_the_ends_it_skips(
    tmp_path, refserver: RefServer
):
    calls = gen_calls(150, seed=17, project="resume/freeplay")
    file = write_flat(tmp_path / "calls.jsonl", calls)
    with FaultProxy(refserver.base, Faults(latency=0.02)) as proxy:
        args = [
            "upload", str(file), "--target", "freeplay", "--server", f"{proxy.url}/api",
            "--api-key", API_KEY, "-p", PROJECT, "--format", "json", "--concurrency", "1",
        ]  # fmt: skip
        proc = start_cli(args, tmp_path, 0)
        wait_forwarded(proxy, 20, proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 143
        r = run_cli(*args, cwd=tmp_path)
    report = orjson.loads(r.stdout)
    assert report["skipped"] > 0, report
    assert report["diagnostics"] == [], report["diagnostics"]
    assert r.returncode == 0, r.stderr[-2000:]
    traces = Counter(t["trace_id"] for t in refserver.records()["traces"])
    assert len(traces) == 150 and max(traces.values()) == 1
