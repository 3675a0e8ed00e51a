"""A server whose Retry-After is longer than --max-retry-time: the stop line says so.

Real processes on 127.0.0.1: `tracecli serve` behind the fault proxy, which answers every
write with 429 and `Retry-After: 600`. Nothing is retried (the wait is beyond
--max-retry-time), so the line must not say the requests were "retried for
--max-retry-time" nor "gave up after 1 attempts in 0 s": it names the wait the server asked
for and leaves the records unsent for the next run.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.support.faultproxy import FaultProxy, Faults
from tests.support.uploadkit import gen_calls, run_cli, tracecli_serve, write_flat
from tracecli.targets.attempts import asked_too_long


def test_a_retry_after_beyond_max_retry_time_is_said_as_such(tmp_path: Path) -> None:
    file = tmp_path / "t.jsonl"
    write_flat(file, gen_calls(20))
    with (
        tracecli_serve(tmp_path / "srv") as serve,
        FaultProxy(serve.url, Faults(p_429=1.0, retry_after="600")) as proxy,
    ):
        got = run_cli(
            "upload", str(file), "--server", proxy.url, "--max-retry-time", "5",
            "--chunk-size", "2", "--concurrency", "1", "--format", "json", timeout=60, cwd=tmp_path,
        )  # fmt: skip
    assert got.returncode == 1, got.stderr
    report = orjson.loads(got.stdout)
    assert report["unsent"] == 40 and report["rejected"] == 0 and report["retried"] == 0
    line = got.stderr.strip().splitlines()[-1]
    assert line == (
        "tracecli: error: the server asked to wait 600 s (Retry-After), longer than "
        "--max-retry-time (5 s), on 8 requests in a row: not retried, and nothing stored "
        "between; 40 records unsent; run the same command again to resume"
    )


def test_the_words_for_a_wait_longer_than_what_is_left() -> None:
    assert asked_too_long(600, 5, 5) == "600 s (Retry-After), longer than --max-retry-time (5 s)"
    assert asked_too_long(150, 100, 300) == (
        "150 s (Retry-After), longer than the 100 s left of --max-retry-time (300 s)"
    )
