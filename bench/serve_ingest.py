#!/usr/bin/env python3
"""Ingest through `tracecli serve`, as ratios against a floor measured in the same run.

One client (httpx, sequential, bodies encoded beforehand) posts the same completed calls in
batches of --batch to `/v2/{entity}/{project}/calls/complete` of:

  floor      ../shared/tools/bench/nullsink.py: parses JSON and counts (HTTP + parse only)
  serve      `tracecli serve` on a fresh store (validate + rules + SQLite, WAL)
  weave-ref  weave's own SqliteTraceServer (../shared/tools/weave-ref, when its venv exists)

Each round runs every server once (order rotated), each on fresh state; the report gives
calls/s per server (median over rounds) and per-round time ratios against the floor. Also
reported: reading everything back through /calls/stream_query.

    python bench/serve_ingest.py [--calls 20000] [--batch 500] [--rounds 3] [--file F.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TRACECLI_SHARED", ROOT.parent / "shared"))
WEAVE_REF_VENV = Path(
    os.environ.get("WEAVE_REF_VENV")
    or Path.home() / ".cache" / "tracecli-weave-ref" / "venv-server"
)
PROJECT = "bench/serve"


def wait_url(proc: subprocess.Popen[bytes], log: Path, pattern: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        m = re.search(pattern, log.read_text(errors="replace"))
        if m:
            url = m.group(1)
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    raise RuntimeError(f"server did not start: {log.read_text(errors='replace')[-2000:]}")


def start(kind: str, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    log = work / f"{kind}-{time.monotonic_ns()}.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if kind == "serve":
        db = work / f"serve-{time.monotonic_ns()}.db"
        cmd = [sys.executable, "-m", "tracecli", "serve", "--db", str(db), "--port", "0"]
        pattern = r"listening on (http://[0-9.:]+)"
    elif kind == "floor":
        cmd = [sys.executable, str(SHARED / "tools/bench/nullsink.py"), "--port", "0"]
        pattern = r"listening on (http://[0-9.:]+)"
    else:
        from socket import socket

        with socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [
            str(WEAVE_REF_VENV / "bin/python"),
            str(SHARED / "tools/weave-ref/refserver.py"),
            "--port",
            str(port),
            "--db",
            ":memory:",
            "--log-level",
            "warning",
        ]
        pattern = r"(http://127\.0\.0\.1:\d+)"
        log.write_text(f"http://127.0.0.1:{port}\n")
    out = open(log, "ab")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    return proc, wait_url(proc, log, pattern, 120)


def post_all(url: str, bodies: list[bytes]) -> float:
    headers = {"content-type": "application/json"}
    with httpx.Client(base_url=url, timeout=120) as client:
        client.get("/health")
        t0 = time.perf_counter()
        for body in bodies:
            r = client.post(f"/v2/{PROJECT}/calls/complete", content=body, headers=headers)
            if r.status_code != 200:
                raise RuntimeError(f"{url}: HTTP {r.status_code}: {r.text[:300]}")
        return time.perf_counter() - t0


def read_back(url: str) -> tuple[int, float]:
    with httpx.Client(base_url=url, timeout=120) as client:
        t0 = time.perf_counter()
        with client.stream("POST", "/calls/stream_query", json={"project_id": PROJECT}) as r:
            n = sum(1 for line in r.iter_lines() if line)
        return n, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--file", type=Path, help="completed calls JSONL (default: generated)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="serve-ingest-"))
    path = args.file
    if path is None:
        path = work / "complete.jsonl"
        gen = SHARED / "tools/gen_traces.py"
        with open(path, "wb") as f:
            gen_args = ["--calls", str(args.calls), "--format", "complete", "--project", PROJECT]
            subprocess.run(
                [sys.executable, str(gen), *gen_args],
                stdout=f,
                check=True,
            )
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    bodies = [
        b'{"batch":[' + b",".join(lines[i : i + args.batch]) + b"]}"
        for i in range(0, len(lines), args.batch)
    ]
    kinds = ["floor", "serve"]
    if (WEAVE_REF_VENV / "bin/python").exists() and (SHARED / "tools/weave-ref").exists():
        kinds.append("weave-ref")
    times: dict[str, list[float]] = {k: [] for k in kinds}
    reads: dict[str, list[float]] = {k: [] for k in kinds if k != "floor"}
    ratios: dict[str, list[float]] = {k: [] for k in kinds if k != "floor"}
    for round_no in range(args.rounds):
        order = kinds[round_no % len(kinds) :] + kinds[: round_no % len(kinds)]
        this: dict[str, float] = {}
        for kind in order:
            proc, url = start(kind, work)
            try:
                this[kind] = post_all(url, bodies)
                if kind != "floor":
                    n, dt = read_back(url)
                    if n != len(lines):
                        raise RuntimeError(f"{kind}: read back {n} of {len(lines)} calls")
                    reads[kind].append(dt)
            finally:
                proc.send_signal(2)
                proc.wait(30)
            times[kind].append(this[kind])
            print(
                f"round {round_no + 1} {kind}: {len(lines) / this[kind]:,.0f} calls/s",
                file=sys.stderr,
            )
        for kind in ratios:
            ratios[kind].append(this[kind] / this["floor"])
    result = {
        "calls": len(lines),
        "batch": args.batch,
        "rounds": args.rounds,
        "calls_per_s": {k: round(len(lines) / statistics.median(v)) for k, v in times.items()},
        "x_floor": {k: round(statistics.median(v), 2) for k, v in ratios.items()},
        "read_back_calls_per_s": {
            k: round(len(lines) / statistics.median(v)) for k, v in reads.items()
        },
    }
    print(f"{len(lines)} calls in batches of {args.batch}, median of {args.rounds} rounds")
    print(f"{'server':<10} {'ingest calls/s':>15} {'x floor (time)':>15} {'read-back calls/s':>18}")
    for kind in kinds:
        ratio = "1.00" if kind == "floor" else f"{result['x_floor'][kind]:.2f}"
        back = result["read_back_calls_per_s"].get(kind, "")
        print(f"{kind:<10} {result['calls_per_s'][kind]:>15,} {ratio:>15} {back!s:>18}")
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
