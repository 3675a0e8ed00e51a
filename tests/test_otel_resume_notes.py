"""`upload --mode otel` resumed: a span's parent on a line an earlier run stored is in the
inputs; the resumed run said "parent span … is not in the inputs: its call will show
without its parent" of every child sent by it whose parent was stored before (the
lines stored are skipped without their span ids being noted)."""

from __future__ import annotations

import random

import orjson
import pytest

from tests.support.faultproxy import FaultProxy, Faults
from tests.support.uploadkit import read_back, run_cli, weave_ref


def kv(key: str, value: str) -> dict:
    return {"key": key, "value": {"stringValue": value}}


def request(resource: dict, spans: list[dict]) -> bytes:
    body = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}
    return orjson.dumps(body) + b"\n"


def span(trace: str, sid: str, parent: str | None, start: int, name: str, _: object) -> dict:
    s = {"traceId": trace, "spanId": sid, "name": name, "kind": 1, "status": {},
         "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 1000)}  # fmt: skip
    if parent is not None:
        s["parentSpanId"] = parent
    return s


@pytest.mark.weave_ref
def test_a_resumed_otel_upload_knows_the_parents_an_earlier_run_stored(tmp_path):
    rng = random.Random(3)
    proj = f"otel/resume-{rng.randrange(1 << 30):x}"
    entity, name = proj.split("/")
    resource = {"attributes": [kv("service.name", "resume"), kv("wandb.entity", entity),
                               kv("wandb.project", name)]}  # fmt: skip
    trace, root = f"{rng.getrandbits(128):032x}", f"{rng.getrandbits(64) | 1 << 63:016x}"
    t0 = 1_772_445_245_000_000_000
    kids = [
        span(trace, f"{rng.getrandbits(64) | 1 << 63:016x}", root, t0 + k, "chat", rng)
        for k in range(10)
    ]
    src = tmp_path / "spans.jsonl"  # the children first (spans are written as they end)
    src.write_bytes(
        request(resource, kids) + request(resource, [span(trace, root, None, t0, "agent", rng)])
    )
    args = ["upload", str(src), "--mode", "otel", "--api-key", "x", "-f", "json",
            "--chunk-size", "10", "--concurrency", "1", "--max-retry-time", "1"]  # fmt: skip
    # the children's request answered 503 "retry in 30 s": left unsent; the root is stored
    faults = Faults(inject_nth={1: 503}, retry_after="30")
    with weave_ref(tmp_path / "ref") as ref, FaultProxy(ref.url, faults) as proxy:
        first = run_cli(*args, "--server", proxy.url, cwd=tmp_path)
        assert first.returncode == 1, first.stderr
        assert orjson.loads(first.stdout)["uploaded"] == 1, first.stdout
        second = run_cli(*args, "--server", proxy.url, cwd=tmp_path)
        stored = read_back(ref.url, proj)
    report = orjson.loads(second.stdout)
    assert second.returncode == 0, second.stderr
    assert report["uploaded"] == 10 and report["skipped"] == 1, report
    assert report["diagnostics"] == [], report["diagnostics"]
    assert len(stored) == 11 and {c["id"] for c in stored} >= {k["spanId"] for k in kids}
