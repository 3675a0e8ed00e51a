"""Records left unsent because a few requests gave up (fewer than stop the run) are said
on stderr, with the last give-up's reason and the resume hint, not only counted.

Real processes on 127.0.0.1: `tracecli serve` behind the fault proxy, which answers every
write with 503, or with 429 and a Retry-After longer than --max-retry-time. One chunk is
one request: far from the 8 in a row that stop the run, so no stop line is printed.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.support.faultproxy import FaultProxy, Faults
from tests.support.uploadkit import gen_calls, run_cli, tracecli_serve, write_flat
from tracecli.targets.outcome import Outcome
from tracecli.targets.retry import Action
from tracecli.upload.give_ups import gave_up_reason


@pytest.mark.parametrize(
    ("faults", "why"),
    [
        (
            Faults(p_429=1.0, retry_after="600"),
            "the server asked to wait 600 s (Retry-After), longer than --max-retry-time "
            "(1 s), on a request: not retried",
        ),
        (Faults(p_5xx=1.0), "the server failed a request, retried for --max-retry-time (last: "),
    ],
)
def test_one_request_given_up_says_why(tmp_path: Path, faults: Faults, why: str) -> None:
    file = tmp_path / "t.jsonl"
    write_flat(file, gen_calls(2))
    with tracecli_serve(tmp_path / "srv") as serve, FaultProxy(serve.url, faults) as proxy:
        got = run_cli(
            "upload", str(file), "--server", proxy.url, "--max-retry-time", "1",
            "--concurrency", "1", "--format", "json", timeout=60, cwd=tmp_path,
        )  # fmt: skip
    assert got.returncode == 1, got.stderr
    report = orjson.loads(got.stdout)
    assert report["unsent"] == 4 and report["rejected"] == 0 and report["halted"] is None
    errors = [ln for ln in got.stderr.splitlines() if ln.startswith("tracecli: error:")]
    assert len(errors) == 1, got.stderr
    assert errors[0].startswith("tracecli: error: " + why), errors[0]
    assert errors[0].endswith("; 4 records unsent; run the same command again to resume")
    assert report["gave_up"] == errors[0].removeprefix("tracecli: error: ")


def test_the_words_for_requests_given_up() -> None:
    out = Outcome(Action.GIVE_UP, 503, reason="503 Service Unavailable")
    assert gave_up_reason("the server", 3, out) == (
        "the server failed 3 requests, each retried for --max-retry-time "
        "(last: 503 Service Unavailable)"
    )
    assert gave_up_reason("Freeplay", 1, None) == (
        "Freeplay failed a request, retried for --max-retry-time"
    )
