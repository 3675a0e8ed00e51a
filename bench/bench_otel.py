#!/usr/bin/env python3
"""bench_otel: OpenTelemetry (OTLP/JSON) files through tracecli, beside a bare orjson loop.

    python bench/bench_otel.py [--spans 50000 | --bytes 1G] [--rounds 1] [--keep FILE]

Writes an OTLP file by repeating the committed agent traces of tests/otel_fixtures (spans of
the real OpenTelemetry SDK and the openai-v2 instrumentation) with fresh trace and span ids,
then, per round: a bare `orjson.loads` loop over its lines (a fresh interpreter timing its
own CPU), `tracecli convert FILE --to weave` and `tracecli upload FILE --dry-run` (every span
decoded, checked, converted, validated as a call and encoded into requests; nothing sent).
Reports spans/s, the ratio to the orjson loop (CPU seconds, start-up of the CLI left out by
timing a one-line file too) and each command's peak RSS (/usr/bin/time). The machine may
be shared: compare the ratios, taken in the same round.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "otel_fixtures" / "agent-seed1.jsonl.gz"
_ID = re.compile(rb'"(spanId|traceId|parentSpanId)":"([0-9a-f]+)"')
FLOOR = """
import sys, time, orjson
t = time.process_time()
n = 0
with open(sys.argv[1], "rb") as f:
    for line in f:
        orjson.loads(line)
        n += 1
print(time.process_time() - t)
"""


def write_file(path: Path, spans: int | None, size: int | None, seed: int = 1) -> int:
    """Copies of the fixture's lines with fresh ids until `spans` spans or `size` bytes."""
    lines = gzip.decompress(FIXTURE.read_bytes()).splitlines()
    ids = {m.group(2) for line in lines for m in _ID.finditer(line)}
    rng = random.Random(seed)
    written = n = 0
    with path.open("wb") as out:
        while (spans is None or n < spans) and (size is None or written < size):
            fresh = {i: b"%0*x" % (len(i), rng.getrandbits(4 * len(i))) for i in ids}

            def swap(m: re.Match[bytes], fresh: dict[bytes, bytes] = fresh) -> bytes:
                return b'"%s":"%s"' % (m.group(1), fresh[m.group(2)])

            for line in lines:
                line = _ID.sub(swap, line)
                out.write(line + b"\n")
                written += len(line) + 1
                n += line.count(b'"spanId"')
    return n


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """(user+system CPU seconds, peak RSS in KiB, stdout) of a command."""
    r = subprocess.run(
        ["/usr/bin/time", "-f", "%U %S %M", *cmd], capture_output=True, text=True, env=env
    )
    if r.returncode not in (0, 1):
        sys.exit(f"{cmd[:4]} failed: {r.stderr[-2000:]}")
    user, system, rss = r.stderr.strip().splitlines()[-1].split()
    return float(user) + float(system), int(rss), r.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spans", type=int, default=None)
    ap.add_argument("--bytes", default=None, help="file size instead, e.g. 1G or 200M")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--keep", default=None, help="write the file here and keep it")
    a = ap.parse_args()
    size = None
    if a.bytes:
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        size = int(float(a.bytes[:-1]) * units[a.bytes[-1].upper()])
    spans_wanted = a.spans if a.spans or size else 50_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(a.keep) if a.keep else Path(tmp) / "spans.jsonl"
        spans = write_file(path, spans_wanted, size)
        one = Path(tmp) / "one.jsonl"
        one.write_bytes(path.open("rb").readline())
        home = Path(tmp) / "home"
        home.mkdir()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(home)}
        env.update(XDG_STATE_HOME=str(home / "state"), XDG_DATA_HOME=str(home / "data"))
        cli = [sys.executable, "-m", "tracecli"]
        mb = path.stat().st_size / 1e6
        print(f"{path.name}: {mb:,.0f} MB, {spans:,} spans; load {os.getloadavg()[0]:.2f}")
        for r in range(a.rounds):
            loop = [sys.executable, "-c", FLOOR, str(path)]
            floor = float(subprocess.run(loop, capture_output=True, text=True, check=True).stdout)
            rows = [("orjson.loads loop", floor, 0)]
            for name, args in (
                (
                    "tracecli convert",
                    ["convert", "{f}", "--to", "weave", "-p", "b/o", "-o", os.devnull],
                ),
                (
                    "tracecli upload --dry-run",
                    ["upload", "{f}", "--dry-run", "-p", "b/o", "-f", "json", "--restart"],
                ),
            ):
                start, _, _ = timed(cli + [x.format(f=one) for x in args], env)
                cpu, rss, _ = timed(cli + [x.format(f=path) for x in args], env)
                rows.append((name, max(cpu - start, 1e-9), rss))
            print(f"round {r + 1}:")
            print("| run | CPU s | spans/s | x orjson loop | peak RSS MB |")
            print("| --- | --- | --- | --- | --- |")
            for name, cpu, rss in rows:
                ratio = floor / cpu
                mem = f"{rss / 1024:,.0f}" if rss else "-"
                print(f"| {name} | {cpu:.2f} | {spans / cpu:,.0f} | {ratio:.3f} | {mem} |")
        print(json.dumps({"spans": spans, "bytes": path.stat().st_size}))


if __name__ == "__main__":
    main()
