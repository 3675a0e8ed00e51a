#!/usr/bin/env python3
"""bench_otel: OpenTelemetry (OTLP/JSON) files through tracecli, beside a bare orjson loop.

    python bench/bench_otel.py [--spans 50000 | --bytes 1G] [--rounds 1] [--keep FILE]
                               [--runs loop,validate,convert,upload] [--jobs N]
                               [--baseline CHECKOUT]

Writes an OTLP file by repeating the committed agent traces of tests/otel_fixtures (spans of
the real OpenTelemetry SDK and the openai-v2 instrumentation) with fresh trace and span ids,
then, per round, in a rotating order:

- the floor: a bare `orjson.loads` loop over the file's lines (a fresh interpreter timing
  itself, start-up excluded);
- `tracecli validate FILE`, `tracecli convert FILE --to weave -o /dev/null`: wall time less
  the same command's wall time on a one-line file (start-up and imports);
- `tracecli upload FILE` to a fresh null Weave server (`../shared/tools/bench/nullsink.py`,
  which parses every body): the report's `elapsed_s` (file opened to last answer); verified
  at the server (every span's call arrived, once).

`--baseline CHECKOUT`: each tracecli run is made twice in a round, this checkout's code and
then the other's (another checkout of tracecli, its bytecode compiled), on the same file
and the same null server: before and after, side by side, in the same minutes.

Reports spans/s, the ratio to the floor (spans/s over the floor's spans/s, wall clock in
the same round), CPU µs per span, and each command's peak RSS (`/usr/bin/time`). The
machine may be shared: the 1-minute load average is printed before each round; compare
ratios taken in the same round. Needs ../shared/tools for the upload run (its setup.sh
builds the null server's virtualenv); without it the upload run is left out, said so.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TRACECLI_SHARED", ROOT.parent / "shared"))
BENCH = SHARED / "tools" / "bench"
FIXTURE = ROOT / "tests" / "otel_fixtures" / "agent-seed1.jsonl.gz"
PROJECT = "bench/otel"
_ID = re.compile(rb'"(spanId|traceId|parentSpanId)":"([0-9a-f]+)"')
FLOOR = """
import sys, time, orjson
t = time.perf_counter()
n = 0
with open(sys.argv[1], "rb") as f:
    for line in f:
        orjson.loads(line)
        n += 1
print(time.perf_counter() - t)
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


class Timed:
    """One command under /usr/bin/time: wall and CPU seconds, peak RSS, its stdout."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        with tempfile.NamedTemporaryFile("r", suffix=".time", delete=False) as tf:
            tpath = tf.name
        r = subprocess.run(
            ["/usr/bin/time", "-f", "%e %U %S %M", "-o", tpath, *cmd],
            capture_output=True,
            text=True,
            env=env,
        )
        wall, user, system, rss = Path(tpath).read_text().split()[-4:]
        os.unlink(tpath)
        if r.returncode not in (0, 1):
            sys.exit(f"{' '.join(cmd[2:5])} failed ({r.returncode}): {r.stderr[-2000:]}")
        self.wall, self.cpu = float(wall), float(user) + float(system)
        self.rss_mb = int(rss) * 1024 / 1e6
        self.stdout = r.stdout


def load_peers() -> Any:
    """The shared harness's helpers (HTTP, a free port, waiting for a server)."""
    spec = importlib.util.spec_from_file_location("run_peers", BENCH / "run_peers.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Sink:
    """A null Weave server for the upload runs, started once, reset before each run."""

    def __init__(self, workdir: Path) -> None:
        out = subprocess.run(
            ["bash", str(BENCH / "setup.sh")], capture_output=True, text=True, check=True
        ).stdout
        py = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)["PY"]
        self.peers = load_peers()
        port = self.peers.free_port()
        self.log = (workdir / "nullsink.log").open("w")
        self.proc = subprocess.Popen(
            [py, str(BENCH / "nullsink.py"), "--port", str(port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{port}"
        self.peers.wait_health(self.url, self.proc)

    def reset(self) -> None:
        self.peers.http(self.url + "/stats/reset", "POST", {})

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.peers.http_json(self.url + "/stats")
        return result

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spans", type=int, default=None)
    ap.add_argument("--bytes", default=None, help="file size instead, e.g. 1G or 200M")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--keep", default=None, help="write the file here (reused if there)")
    ap.add_argument("--runs", default="loop,validate,convert,upload")
    ap.add_argument("--jobs", type=int, default=None, help="tracecli's --jobs (default: its own)")
    ap.add_argument("--baseline", default=None, help="another checkout, run beside this one")
    a = ap.parse_args()
    size = None
    if a.bytes:
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        size = int(float(a.bytes[:-1]) * units[a.bytes[-1].upper()])
    spans_wanted = a.spans if a.spans or size else 50_000
    runs = a.runs.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = Path(a.keep) if a.keep else work / "spans.jsonl"
        if path.exists() and path.stat().st_size:
            spans = sum(line.count(b'"spanId"') for line in path.open("rb"))
        else:
            spans = write_file(path, spans_wanted, size)
        one = work / "one.jsonl"
        with path.open("rb") as f:
            one.write_bytes(f.readline())
        home = work / "home"
        home.mkdir()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(home), "NO_COLOR": "1"}
        env.update(XDG_STATE_HOME=str(home / "state"), XDG_DATA_HOME=str(home / "data"))
        envs = {"": env}
        if a.baseline:
            envs[BASE] = {**env, "PYTHONPATH": str(Path(a.baseline).resolve())}
        cli = [sys.executable, "-m", "tracecli"]
        jobs = ["--jobs", str(a.jobs)] if a.jobs else []
        sink = None
        if "upload" in runs:
            if (BENCH / "nullsink.py").exists():
                sink = Sink(work)
            else:
                print(f"(no {BENCH}: the upload run is left out)")
                runs.remove("upload")
        mb = path.stat().st_size / 1e6
        print(f"{path.name}: {mb:,.0f} MB, {spans:,} spans, {spans / mb:,.0f} spans/MB")
        commands = {
            "validate": ["validate", "{f}", "-f", "json", *jobs],
            "convert": ["convert", "{f}", "--to", "weave", "-p", PROJECT, "-o", os.devnull],
        }
        results: list[dict[str, Any]] = []
        try:
            for r in range(a.rounds):
                order = runs[r % len(runs) :] + runs[: r % len(runs)]
                print(f"round {r + 1} (load average {os.getloadavg()[0]:.2f}): {order}")
                row: dict[str, Any] = {}
                for name in order:
                    for tag, e in envs.items() if name != "loop" else [("", env)]:
                        row[name + tag] = run_one(
                            name, path, one, spans, cli, e, commands, sink, jobs
                        )
                results.append(row)
                report(row, spans)
        finally:
            if sink is not None:
                sink.stop()
        print(json.dumps({"spans": spans, "bytes": path.stat().st_size, "rounds": results}))


def run_one(
    name: str,
    path: Path,
    one: Path,
    spans: int,
    cli: list[str],
    env: dict[str, str],
    commands: dict[str, list[str]],
    sink: Sink | None,
    jobs: list[str],
) -> dict[str, Any]:
    """One timed run: its work seconds (start-up left out), CPU seconds, peak RSS."""
    if name == "loop":
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", FLOOR, str(path)], capture_output=True, text=True, check=True
        )
        work = float(out.stdout)
        return {"s": work, "cpu": time.perf_counter() - t0, "rss_mb": None}
    if name == "upload":
        assert sink is not None
        sink.reset()
        cmd = [*cli, "upload", str(path), "--server", sink.url, "-p", PROJECT, "--restart"]
        cmd += ["-f", "json", "--quiet", "--rejected", os.devnull, *jobs]
        t = Timed(cmd, env)
        rep = json.loads(t.stdout)
        calls = sink.stats()["calls"]
        ok = calls["complete_unique"] == spans and calls["duplicates"] == 0
        if not ok:
            print(f"  upload NOT verified: {calls} for {spans} spans")
        return {"s": rep["elapsed_s"], "cpu": t.cpu, "rss_mb": t.rss_mb, "verified": ok}
    args = commands[name]
    start = Timed([*cli, *(x.format(f=one) for x in args)], env)
    t = Timed([*cli, *(x.format(f=path) for x in args)], env)
    return {
        "s": max(t.wall - start.wall, 1e-9),
        "cpu": max(t.cpu - start.cpu, 1e-9),
        "rss_mb": t.rss_mb,
    }


BASE = " (baseline)"
LABELS = {
    "loop": "orjson.loads loop (floor)",
    "validate": "tracecli validate",
    "convert": "tracecli convert --to weave",
    "upload": "tracecli upload → null server",
}


def report(row: dict[str, Any], spans: int) -> None:
    floor = row.get("loop")
    print("| run | work s | spans/s | x floor | CPU µs/span | peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r in row.items():
        ratio = f"{floor['s'] / r['s']:.3f}" if floor else "-"
        mem = f"{r['rss_mb']:,.0f}" if r["rss_mb"] else "-"
        label = LABELS[name.removesuffix(BASE)] + (BASE if name.endswith(BASE) else "")
        print(
            f"| {label} | {r['s']:.2f} | {spans / r['s']:,.0f} | {ratio} | "
            f"{r['cpu'] / spans * 1e6:.1f} | {mem} |"
        )


if __name__ == "__main__":
    main()
