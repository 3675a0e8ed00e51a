#!/usr/bin/env python3
"""stages: what each stage of validate and upload costs per record, in CPU time.

    python bench/stages.py FILE.jsonl [--rounds 3] [--no-upload]

Stages are measured by difference, each a loop that does one more step than the one
before, over the same blocks of the file, in this process, on one core, best of
--rounds (CPU time: steadier than wall time on a shared machine; the per-record figure
of a profiler is inflated by its own cost per call, these are not):

  read     read the file's blocks (1 MB, whole lines) and split them into lines
  parse    + orjson.loads of every line                       (the floor's own loop)
  check    + the fast path's type check of each record (fastcheck, the block reader's
           `fast_facts`), no pairing
  pair     + pairing starts with their ends inside the block and packing the pairs:
           the validate worker's whole `check_lines`
  encode   upload's worker (`blocks.prepare_lines`: parse, check, encode, pair) minus
           read, parse and check
  cross    the rest of a serial `tracecli validate` (TRACECLI_JOBS=0, a subprocess,
           start-up taken off): cross-record checks, report
  send     the rest of a serial `tracecli upload` to a null server (TRACECLI_JOBS=0):
           cross-record checks, the pairing table, chunking, request bodies and HTTP

With workers, read..encode run in the workers (spread over the cores) and cross/send in
the main process.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from tracecli.inputs.blocks import plan_ranges  # noqa: E402
from tracecli.upload import blocks as upload_blocks  # noqa: E402
from tracecli.upload import validate_blocks as vb  # noqa: E402
from tracecli.upload.fastpath import fast_facts  # noqa: E402


def log(*a: Any) -> None:
    print(*a, file=sys.stderr, flush=True)


def read_blocks(path: str) -> list[bytes]:
    size = os.path.getsize(path)
    out = []
    with open(path, "rb") as f:
        for off, length in plan_ranges(path, size, 1 << 20):
            f.seek(off)
            out.append(f.read(length))
    return out


def s_read(path: str) -> int:
    n = 0
    for b in read_blocks(path):
        n += len(b.split(b"\n")) - 1
    return n


def s_parse(path: str) -> int:
    loads = orjson.loads
    n = 0
    for b in read_blocks(path):
        for line in b.split(b"\n"):
            if line:
                loads(line)
                n += 1
    return n


def s_check(path: str) -> int:
    loads, fast = orjson.loads, fast_facts
    n = 0
    for b in read_blocks(path):
        for line in b.split(b"\n"):
            if line:
                fast(loads(line), n, True)
                n += 1
    return n


def s_pair(path: str) -> int:
    n = 0
    for i, b in enumerate(read_blocks(path)):
        n += vb.check_lines(b, path, i == 0).records
    return n


def s_encode(path: str) -> int:
    n = 0
    for i, b in enumerate(read_blocks(path)):
        n += upload_blocks.prepare_lines(b, path, i == 0, None).records
    return n


def best(fn: Any, path: str, rounds: int) -> tuple[float, int]:
    times = []
    n = 0
    for _ in range(rounds):
        t = time.process_time()
        n = fn(path)
        times.append(time.process_time() - t)
    return min(times), n


def child_cpu(cmd: list[str], env: dict[str, str]) -> float:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-upload", action="store_true")
    a = ap.parse_args()
    path = a.file
    with open("/proc/loadavg") as f:
        load0 = f.read().split()[0]
    cum: dict[str, float] = {}
    for name, fn in (
        ("read", s_read),
        ("parse", s_parse),
        ("check", s_check),
        ("pair", s_pair),
        ("encode", s_encode),
    ):
        cum[name], n = best(fn, path, a.rounds)
    records = n
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    tiny = Path(path).with_name("stages_tiny.jsonl")
    with open(path, "rb") as f:
        tiny.write_bytes(f.readline())
    py = sys.executable
    val = [py, "-m", "tracecli", "validate", "--format", "json"]
    val_env = {**env, "TRACECLI_JOBS": "0"}
    v_start = min(child_cpu([*val, str(tiny)], val_env) for _ in range(a.rounds))
    v_total = min(child_cpu([*val, path], val_env) for _ in range(a.rounds)) - v_start
    up_total = None
    if not a.no_upload:
        from run_all import load_peers, venvs  # the null server of ../shared/tools/bench

        peers, v = load_peers(), venvs()
        port = peers.free_port()
        from bench_upload import BENCH

        sink = subprocess.Popen(
            [v["PY"], str(BENCH / "nullsink.py"), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            peers.wait_health(url, sink)
            up = [py, "-m", "tracecli", "upload", "--server", url, "--restart", "--quiet"]
            up += ["--format", "json", "--rejected", str(Path(path).with_name("rej.jsonl"))]
            up_env = {**env, "TRACECLI_JOBS": "0", "XDG_STATE_HOME": str(Path(path).parent)}
            u_start = min(child_cpu([*up, str(tiny)], up_env) for _ in range(a.rounds))
            up_total = min(child_cpu([*up, path], up_env) for _ in range(a.rounds)) - u_start
        finally:
            peers.stop(sink)
    with open("/proc/loadavg") as f:
        load1 = f.read().split()[0]

    def us(x: float) -> str:
        return f"{x / records * 1e6:.2f}"

    rows = [
        ("read", cum["read"]),
        ("parse", cum["parse"] - cum["read"]),
        ("check", cum["check"] - cum["parse"]),
        ("pair (in the block)", cum["pair"] - cum["check"]),
        ("cross (validate's main process)", v_total - cum["pair"]),
    ]
    print(f"# {path}: {records:,} records; CPU us/record, best of {a.rounds}; load {load0}-{load1}")
    print("\n| stage | validate | upload |\n|---|---|---|")
    upload_rows = {
        "read": cum["read"],
        "parse": cum["parse"] - cum["read"],
        "check": cum["check"] - cum["parse"],
        "encode + pair (in the block)": cum["encode"] - cum["check"],
    }
    for name, x in rows:
        u = upload_rows.get(name)
        print(f"| {name} | {us(x)} | {us(u) if u is not None else ''} |")
    print(f"| encode + pair (in the block) | | {us(upload_rows['encode + pair (in the block)'])} |")
    if up_total is not None:
        print(f"| cross + pairing table + chunk + send (main) | | {us(up_total - cum['encode'])} |")
    print(
        f"| **total** | **{us(v_total)}** | **{us(up_total) if up_total is not None else '-'}** |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
