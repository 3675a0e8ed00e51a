"""`tracecli tail --follow` against a server that fails part-way through a poll.

A poll reads the newest calls page by page, then the running calls it watches by id. When
one of those reads fails (a 503, a restart), the poll is retried at the next interval: what
the failed poll had read must still be reported then, not remembered as seen and dropped.
`tracecli serve` behind the fault proxy of tests/support/faultproxy.py, real processes.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.faultproxy import FaultProxy, Faults
from tests.support.servers import make_call, start_half, start_serve
from tests.support.tail_kit import follow_json

PROJECT = "acme/tailfaults"


def _follow(url: str) -> tuple[subprocess.Popen[bytes], queue.Queue[bytes]]:
    return follow_json(["--server", url, "-p", PROJECT, "-n", "1"], env={"NO_COLOR": "1"})


def _collect(out: queue.Queue[bytes], want: set[str], seconds: float) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while not want <= {c["id"] for c in seen} and time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            seen.append(orjson.loads(out.get(timeout=0.2)))
    return seen


def _stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    return proc.stderr.read().decode()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("failing", "old", "new"),
    [
        # 150 new calls: more than a page (100), so the poll reads two; only the second
        # page's request has an offset
        pytest.param(b'"offset"', 0, 150, id="second-page"),
        # the running call, watched since the snapshot, is by then beyond the pages a poll
        # reads (200 calls came after it, shown by earlier polls), so it is read by its id
        pytest.param(b'"call_ids"', 200, 50, id="watched-running-calls"),
    ],
)
def test_a_poll_that_fails_half_way_loses_no_call(
    tmp_path: Path, failing: bytes, old: int, new: int
) -> None:
    serve = start_serve(tmp_path / "serve")
    try:
        with FaultProxy(serve.url, Faults()) as proxy, serve.client() as backend:
            running = make_call(PROJECT, at=0, duration=None)  # watched by id until it ends
            first = make_call(PROJECT, at=1)
            assert backend.post("/call/start", json={"start": start_half(running)}).is_success
            r = backend.post(f"/v2/{PROJECT}/calls/complete", json={"batch": [first]})
            assert r.is_success
            proc, out = _follow(proxy.url)
            try:
                assert orjson.loads(out.get(timeout=30))["id"] == first["id"]  # the snapshot
                for n in range(0, old, 50):  # shown by polls before the failing one
                    done = [make_call(PROJECT, at=10 + n + i / 100) for i in range(50)]
                    r = backend.post(f"/v2/{PROJECT}/calls/complete", json={"batch": done})
                    assert r.is_success
                    assert len(_collect(out, {c["id"] for c in done}, 20)) == 50
                proxy.configure(fail_read_matching=failing, fail_reads=1)
                news = [make_call(PROJECT, at=1000 + i) for i in range(new)]
                r = backend.post(f"/v2/{PROJECT}/calls/complete", json={"batch": news})
                assert r.is_success
                seen = _collect(out, {c["id"] for c in news}, 20)
            finally:
                err = _stop(proc)
            assert proxy.stats.injected[503] == 1, proxy.stats
    finally:
        serve.stop()
    ids = [c["id"] for c in seen]
    missing = {c["id"] for c in news} - set(ids)
    assert not missing, f"{len(missing)} of {new} new calls never shown; stderr: {err}"
    assert len(ids) == len(set(ids)), "a call shown twice"
    assert "Traceback" not in err and "retrying" in err, err
