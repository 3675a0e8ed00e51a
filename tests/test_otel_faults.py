"""Faults for OpenTelemetry uploads: every span stored once through 5xx, 429, drops, kill -9.

The spans are made here (many lines of many spans each, children before their parents,
several traces across lines), uploaded straight from the OTLP file. The proxy of
tests/support/faultproxy.py answers part of the requests with errors, drops connections after the
server stored a request, and the process is killed mid-upload; the finished upload must
leave each span stored exactly once, and the journal must have spared the resumed run
what was stored (whole lines: a line is journaled once all of its spans are stored).
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from tests.support.faultproxy import CHAOS, FAST, FaultProxy, Faults
from tests.support.uploadkit import cli_env, read_back, run_cli, tracecli, tracecli_serve, weave_ref

T0 = 1_772_445_245_000_000_000
# more 429s than tests/test_chaos.py: these runs make fewer requests (some 40), and each
# kind of fault must happen in each run
FAULTS = {**CHAOS, "p_429": 0.15}


def kv(key: str, value: str) -> dict:
    return {"key": key, "value": {"stringValue": value}}


def gen_otlp(path: Path, spans: int, *, seed: int, project: str, per_line: int = 40) -> set[str]:
    """An OTLP file of `spans` spans (traces of a root and 1-5 children, written as an
    exporter does: each trace's children first, its root on a later line); their ids."""
    rng = random.Random(seed)
    entity, name = project.split("/")
    resource = {"attributes": [kv("service.name", "faults"), kv("wandb.entity", entity),
                               kv("wandb.project", name)]}  # fmt: skip
    pending: list[dict] = []
    ids: set[str] = set()
    lines: list[bytes] = []
    roots: list[dict] = []
    t = T0
    while len(ids) < spans:
        trace = f"{rng.getrandbits(128):032x}"
        root_id = f"{rng.getrandbits(64) | 1 << 63:016x}"
        kids = min(rng.randint(1, 5), spans - len(ids) - 1)
        for k in range(kids):
            sid = f"{rng.getrandbits(64) | 1 << 63:016x}"
            ids.add(sid)
            pending.append(span(trace, sid, root_id, t + k * 1000, f"chat {len(ids)}", rng))
        ids.add(root_id)
        roots.append(span(trace, root_id, None, t, "agent", rng))
        t += 10_000_000
        if len(pending) >= per_line:  # a batch of children, then (a line later) the roots
            lines.append(request(resource, pending))
            pending = []
            if len(roots) >= per_line // 4:
                lines.append(request(resource, roots))
                roots = []
    for rest in (pending, roots):
        if rest:
            lines.append(request(resource, rest))
    path.write_bytes(b"".join(lines))
    return ids


def span(
    trace: str, sid: str, parent: str | None, start: int, name: str, rng: random.Random
) -> dict:
    s = {
        "traceId": trace,
        "spanId": sid,
        "name": name,
        "kind": 3,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + rng.randint(1000, 9_000_000)),
        "attributes": [
            kv("gen_ai.operation.name", "chat"),
            kv("gen_ai.request.model", "gpt-4o-mini"),
            kv(
                "gen_ai.input.messages",
                orjson.dumps(
                    [
                        {
                            "role": "user",
                            "parts": [{"type": "text", "content": "x" * rng.randint(20, 300)}],
                        }
                    ]
                ).decode(),
            ),
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": str(rng.randint(1, 900))}},
        ],
        "status": {},
    }
    if parent is not None:
        s["parentSpanId"] = parent
    return s


def request(resource: dict, spans: list[dict]) -> bytes:
    body = {"resourceSpans": [{"resource": resource, "scopeSpans": [
        {"scope": {"name": "faults"}, "spans": spans}]}]}  # fmt: skip
    return orjson.dumps(body) + b"\n"


def stored_ids(url: str, project: str) -> list[str]:
    return [c["id"] for c in read_back(url, project)]


@pytest.mark.slow
def test_otlp_upload_through_chaos_stores_every_span_once(tmp_path: Path) -> None:
    proj = f"otel/chaos-{random.randrange(1 << 30):x}"
    src = tmp_path / "spans.jsonl"
    ids = gen_otlp(src, 3000, seed=random.randrange(1 << 40), project=proj)
    faults = Faults(**FAULTS, seed=random.randrange(1000), drop_nth=(3, 7))
    with tracecli_serve(tmp_path / "store") as server, FaultProxy(server.url, faults) as proxy:
        r = run_cli("upload", str(src), "--server", proxy.url, "--api-key", "x", "-f", "json",
                    "--chunk-size", "100", "--concurrency", "4", cwd=tmp_path, **FAST)  # fmt: skip
        summary = orjson.loads(r.stdout)
        stats = proxy.stats
        stored = stored_ids(server.url, proj)
    assert r.returncode == 0, r.stderr[-3000:]
    assert summary["uploaded"] == len(ids) and summary["rejected"] == 0, summary
    assert stats.injected[500] + stats.injected[503] > 0 and stats.injected[429] > 0, stats
    assert stats.dropped_after > 0, stats
    assert sorted(stored) == sorted(ids)  # each once


@pytest.mark.slow
def test_otlp_upload_kill_9_and_resume_stores_every_span_once(tmp_path: Path) -> None:
    with tracecli_serve(tmp_path / "store") as server:
        kill_twice_then_finish(tmp_path, server.url, 8000)


@pytest.mark.slow
@pytest.mark.weave_ref
def test_mode_otel_kill_9_and_resume_to_weave_stores_every_span_once(tmp_path: Path) -> None:
    with weave_ref(tmp_path / "ref") as ref:
        kill_twice_then_finish(tmp_path, ref.url, 3000, "--mode", "otel")


def kill_twice_then_finish(tmp_path: Path, url: str, n: int, *extra: str) -> None:
    rng = random.Random()
    proj = f"otel/kill-{rng.randrange(1 << 30):x}"
    src = tmp_path / "spans.jsonl"
    ids = gen_otlp(src, n, seed=rng.randrange(1 << 40), project=proj)
    args = ["upload", str(src), "--format", "json", "--api-key", "x",
            "--chunk-size", "100", "--concurrency", "4", *extra]  # fmt: skip
    with FaultProxy(url, Faults(latency=0.01)) as proxy:
        for k in range(2):
            proc = subprocess.Popen(
                tracecli(*args, "--server", proxy.url),
                stdout=subprocess.DEVNULL,
                stderr=(tmp_path / f"err{k}.txt").open("wb"),
                stdin=subprocess.DEVNULL,
                env=cli_env(),
                cwd=tmp_path,
            )
            base = proxy.stats.forwarded
            deadline = time.monotonic() + 90
            while proxy.stats.forwarded < base + rng.randint(5, 20):
                assert proc.poll() is None, (tmp_path / f"err{k}.txt").read_text()[-2000:]
                assert time.monotonic() < deadline, "no progress"
                time.sleep(0.002)
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(30) == -signal.SIGKILL
        r = run_cli(*args, "--server", proxy.url, cwd=tmp_path)
        summary = orjson.loads(r.stdout)
    stored = stored_ids(url, proj)
    assert r.returncode == 0, r.stderr[-3000:]
    assert summary["rejected"] == 0 and summary["unsent"] == 0, summary
    assert summary["skipped"] > 0, summary  # the journal spared what was stored
    assert summary["skipped"] + summary["uploaded"] == len(ids), summary
    assert sorted(stored) == sorted(ids)  # each once


@pytest.mark.slow
@pytest.mark.weave_ref
def test_mode_otel_through_chaos_to_weave_stores_every_span_once(tmp_path: Path) -> None:
    """weave's SQLite server fails (500) on a span id sent again: after a dropped answer
    the retry must send only what it does not hold (the upload asks it which it holds)."""
    proj = f"otel/chaos-otel-{random.randrange(1 << 30):x}"
    src = tmp_path / "spans.jsonl"
    ids = gen_otlp(src, 1500, seed=random.randrange(1 << 40), project=proj)
    faults = Faults(**FAULTS, seed=random.randrange(1000), drop_nth=(2, 5), inject_nth={3: 429})
    with weave_ref(tmp_path / "ref") as ref, FaultProxy(ref.url, faults) as proxy:
        r = run_cli("upload", str(src), "--server", proxy.url, "--api-key", "x", "-f", "json",
                    "--mode", "otel", "--chunk-size", "50", "--concurrency", "4",
                    cwd=tmp_path, **FAST)  # fmt: skip
        summary = orjson.loads(r.stdout)
        stats = proxy.stats
        stored = stored_ids(ref.url, proj)
    assert r.returncode == 0, r.stderr[-3000:]
    assert summary["uploaded"] == len(ids) and summary["rejected"] == 0, summary
    # the drops (drop_nth) and one 429 (inject_nth) are certain, whatever the seed rolls
    assert stats.dropped_after > 0 and stats.injected[429] > 0, stats
    assert sorted(stored) == sorted(ids)  # each once
