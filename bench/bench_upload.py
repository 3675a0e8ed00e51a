#!/usr/bin/env python3
"""bench_upload: `tracecli upload` beside its peers, in one run, on the same generated file.

    python bench/bench_upload.py [--calls 200000] [--rounds 1] [--phases sink,ref,rss]

Phases (each prints a table on stdout; progress on stderr; raw runs in --json-out):

  sink  ../shared/tools/bench/nullsink.py (a fast null Weave server) and, in turn, the
        orjson parse floor, the hand-written httpx script (stdlib json, and --orjson), the
        weave SDK's batching client (weave 0.54.0) and `tracecli upload` (auto mode,
        validating every record). Every run is verified at the sink: all calls whole,
        none twice. Ratios: tracecli / weave SDK, tracecli / hand-written orjson script.
  ref   the weave reference server (weave's SqliteTraceServer), a fresh one per run: the
        hand-written script and `tracecli upload`. Verified by reading the calls back.
  rss   peak RSS of `tracecli upload` to the null server for a 1M-call file (--rss-calls)
        and for a file whose every end comes 100k records after its start (--lag-calls).

Times are each tool's own work time (file opened to last response; for tracecli the
`elapsed_s` of its report), so interpreter start-up is left out on both sides; wall time,
CPU and peak RSS come from /usr/bin/time. The machine is shared: compare the ratios,
which are taken between runs of the same round, not the absolute figures.

Needs ../shared/tools (bench/setup.sh builds the peers' virtualenvs on first use).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TRACECLI_SHARED", ROOT.parent / "shared"))
TOOLS = SHARED / "tools"
BENCH = TOOLS / "bench"
PROJECT = "acme/agents"  # gen_traces.py's


def log(*a: Any) -> None:
    print(*a, file=sys.stderr, flush=True)


def load_peers() -> Any:
    """The shared harness's helpers (http, servers, /usr/bin/time parsing)."""
    spec = importlib.util.spec_from_file_location("run_peers", BENCH / "run_peers.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def venvs() -> dict[str, str]:
    out = subprocess.run(
        ["bash", str(BENCH / "setup.sh")], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def generate(path: Path, calls: int, *extra: str) -> Path:
    if path.exists() and path.stat().st_size > 0:
        return path
    log(f"# generating {path} ({calls} calls {' '.join(extra)})")
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        subprocess.run(
            [sys.executable, str(TOOLS / "gen_traces.py"), "--calls", str(calls), *extra],
            stdout=f,
            check=True,
        )
    tmp.rename(path)
    return path


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run under /usr/bin/time: wall, CPU, peak RSS, exit status, and the tool's result
    (a `RESULT {json}` line from a peer, or tracecli's --format json report)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time", delete=False) as tf:
        tpath = tf.name
    full = ["/usr/bin/time", "-f", "%e %M %U %S", "-o", tpath, *cmd]
    p = subprocess.run(full, cwd=cwd, capture_output=True, text=True, env=env)
    tline = [x for x in Path(tpath).read_text().splitlines() if x.strip()][-1]
    os.unlink(tpath)
    wall, rss_kb, u, s = tline.split()[-4:]
    result = None
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
        elif line.startswith("{"):
            rep = json.loads(line)
            result = {"s": rep["elapsed_s"], "calls": rep["uploaded"], "report": rep}
    return {
        "wall": float(wall),
        "rss_mib": int(rss_kb) / 1024,
        "cpu": float(u) + float(s),
        "rc": p.returncode,
        "result": result,
        "stderr_tail": p.stderr.strip()[-600:],
    }


def start_sink(peers: Any, python: str, work: Path) -> tuple[Any, str]:
    """The shared null server on a free port, its output in WORK/nullsink.log: (process, URL)."""
    port = peers.free_port()
    log_f = (work / "nullsink.log").open("w")
    proc = subprocess.Popen(
        [python, str(BENCH / "nullsink.py"), "--port", str(port)],
        stdout=log_f,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    peers.wait_health(url, proc)
    return proc, url


class Bench:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.peers = load_peers()
        self.v = venvs()
        self.work = Path(a.workdir)
        self.work.mkdir(parents=True, exist_ok=True)
        self.file = generate(self.work / f"flat_{a.calls}.jsonl", a.calls, "--seed", "7")
        self.expected, _, _, _ = self.peers.count_calls(str(self.file))
        state = self.work / "state"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "XDG_STATE_HOME": str(state),  # the bench's journal, not the user's
            "NO_COLOR": "1",
        }
        self.runs: dict[str, Any] = {}

    def tool(self, name: str, url: str, file: Path | None = None) -> list[str]:
        f = str(file or self.file)
        py, weave_py = self.v["PY"], self.v["WEAVE_PY"]
        if name == "floor":
            return [py, str(BENCH / "floor.py"), f, "--calls", str(self.expected)]
        if name == "naive":
            return [py, str(BENCH / "peer_naive.py"), f, "--url", url, "--batch", "100"]
        if name == "naive_orjson":
            return [py, str(BENCH / "peer_naive.py"), f, "--url", url, "--batch", "100", "--orjson"]
        if name == "weave_sdk":
            return [weave_py, str(BENCH / "peer_weave_sdk.py"), f, "--url", url]
        if name.startswith("tracecli"):
            rejected = self.work / "rejected.jsonl"
            cmd = [sys.executable, "-m", "tracecli", "upload", f, "--server", url, "--restart"]
            cmd += ["--format", "json", "--quiet", "--rejected", str(rejected)]
            if name == "tracecli_batch":
                cmd += ["--mode", "batch"]
            return cmd
        raise SystemExit(f"unknown tool {name}")

    # -- phase 1: the null server ---------------------------------------------------------
    def start_sink(self) -> tuple[Any, str]:
        return start_sink(self.peers, self.v["PY"], self.work)

    def phase_sink(self) -> None:
        P = self.peers
        tools = self.a.tools.split(",")
        proc, url = self.start_sink()
        runs: dict[str, list[dict[str, Any]]] = {t: [] for t in tools}
        log(f"# phase sink: {url}, {self.expected} calls, tools {tools}, {self.a.rounds} round(s)")
        try:
            for rnd in range(self.a.rounds):
                k = rnd % len(tools)
                for t in tools[k:] + tools[:k]:
                    P.http(url + "/stats/reset", "POST", {})
                    r = timed(self.tool(t, url), self.work, self.env)
                    st = P.http_json(url + "/stats")
                    c = st["calls"]
                    r["round"] = rnd
                    r["requests"] = st["requests"]
                    r["verify"] = r["rc"] == 0 and (
                        t == "floor" or (c["whole_calls"] == self.expected and c["duplicates"] == 0)
                    )
                    runs[t].append(r)
                    log(
                        f"  round {rnd + 1} {t:14} wall {r['wall']:7.2f}s work "
                        f"{work_s(r):7.2f}s cpu {r['cpu']:6.2f}s rss {r['rss_mib']:5.0f}MiB "
                        f"requests {r['requests']:5} verify={'ok' if r['verify'] else 'MISMATCH'}"
                    )
        finally:
            P.stop(proc)
        self.runs["sink"] = runs
        rows = []
        for t in tools:
            rs = runs[t]
            s = P.med([work_s(r) for r in rs])
            rows.append(
                [
                    t,
                    f"{self.expected / s:,.0f}" if s else "-",
                    f"{s:.2f}" if s else "-",
                    f"{P.med([r['cpu'] for r in rs]):.2f}",
                    f"{P.med([r['rss_mib'] for r in rs]):.0f}",
                    "ok" if all(r["verify"] for r in rs) else "MISMATCH",
                ]
            )
        print(f"\n## null server: {self.expected} calls ({self.file.name})\n")
        print(table(["tool", "calls/s", "work s", "cpu s", "rss MiB", "verify"], rows))
        for base in ("weave_sdk", "naive_orjson", "naive", "floor"):
            if base in runs and "tracecli" in runs:
                print(f"tracecli / {base}: {ratio(runs, 'tracecli', base, P):.2f}x")

    # -- phase 2: the reference server ----------------------------------------------------
    def phase_ref(self) -> None:
        P = self.peers
        tools = self.a.ref_tools.split(",")
        runs: dict[str, list[dict[str, Any]]] = {t: [] for t in tools}
        log(f"# phase ref: fresh reference server per run; tools {tools}")
        for rnd in range(self.a.rounds):
            k = rnd % len(tools)
            for t in tools[k:] + tools[:k]:
                port = P.free_port()
                url = f"http://127.0.0.1:{port}"
                cmd = [self.v["REF_PY"], str(TOOLS / "weave-ref" / "refserver.py"), "--port"]
                cmd += [str(port), "--db", ":memory:", "--log-level", "warning"]
                log_f = (self.work / "refserver.log").open("a")
                srv = subprocess.Popen(cmd, stdout=log_f, stderr=subprocess.STDOUT)
                try:
                    P.wait_health(url, srv, timeout=120)
                    cpu0, _ = P.proc_cpu_rss(srv.pid)
                    r = timed(self.tool(t, url), self.work, self.env)
                    cpu1, hwm = P.proc_cpu_rss(srv.pid)
                    v = P.verify_ref(url, PROJECT, self.expected, 10**9)
                    r["round"] = rnd
                    r["server_cpu"] = cpu1 - cpu0
                    r["server_rss"] = hwm
                    r["verify"] = (
                        r["rc"] == 0 and v["stream_unique"] == v["stream_rows"]
                        and v["stream_ended"] == self.expected
                    )  # fmt: skip
                    runs[t].append(r)
                    log(
                        f"  round {rnd + 1} {t:14} wall {r['wall']:7.2f}s work {work_s(r):7.2f}s "
                        f"cpu {r['cpu']:6.2f}s server cpu {r['server_cpu']:6.2f}s "
                        f"verify={'ok' if r['verify'] else 'MISMATCH'} {v}"
                    )
                finally:
                    P.stop(srv)
                    log_f.close()
        self.runs["ref"] = runs
        rows = []
        for t in tools:
            rs = runs[t]
            s = P.med([work_s(r) for r in rs])
            rows.append(
                [
                    t,
                    f"{self.expected / s:,.0f}" if s else "-",
                    f"{s:.2f}" if s else "-",
                    f"{P.med([r['cpu'] for r in rs]):.2f}",
                    f"{P.med([r['server_cpu'] for r in rs]):.2f}",
                    "ok" if all(r["verify"] for r in rs) else "MISMATCH",
                ]
            )
        print(f"\n## weave reference server: {self.expected} calls\n")
        print(table(["tool", "calls/s", "work s", "cpu s", "server cpu s", "verify"], rows))
        for base in ("naive", "naive_orjson"):
            if base in runs and "tracecli" in runs:
                print(f"tracecli / {base}: {ratio(runs, 'tracecli', base, P):.2f}x")

    # -- phase 3: memory ------------------------------------------------------------------
    def phase_rss(self) -> None:
        files = [
            ("1M calls", generate(self.work / f"flat_{self.a.rss_calls}.jsonl", self.a.rss_calls)),
            (
                "ends 100k records late",
                generate(
                    self.work / f"lag100k_{self.a.lag_calls}.jsonl",
                    self.a.lag_calls,
                    "--lag",
                    "100000",
                ),
            ),
        ]
        proc, url = self.start_sink()
        rows = []
        try:
            for label, f in files:
                self.peers.http(url + "/stats/reset", "POST", {})
                r = timed(self.tool("tracecli", url, f), self.work, self.env)
                st = self.peers.http_json(url + "/stats")
                rep = (r["result"] or {}).get("report", {})
                ok = r["rc"] == 0 and st["calls"]["duplicates"] == 0
                log(f"  rss {label}: {r['rss_mib']:.0f} MiB, {rep.get('uploaded')} calls, ok={ok}")
                rows.append(
                    [
                        label,
                        f"{rep.get('uploaded', 0):,}",
                        f"{r['rss_mib']:.0f}",
                        f"{rep.get('peak_open_calls', 0):,}",
                        f"{rep.get('spilled', 0):,}",
                        f"{rep.get('uploaded', 0) / max(work_s(r), 1e-9):,.0f}",
                        "ok" if ok else "FAILED",
                    ]
                )
                self.runs.setdefault("rss", []).append({"label": label, **r})
        finally:
            self.peers.stop(proc)
        print("\n## peak memory of tracecli upload (null server)\n")
        print(
            table(
                ["file", "calls", "peak RSS MiB", "open calls (peak)", "spilled", "calls/s", ""],
                rows,
            )
        )


def work_s(r: dict[str, Any]) -> float:
    res = r.get("result") or {}
    if "s" in res:
        return float(res["s"])
    loads = res.get("passes", {}).get("loads", {}).get("s")
    return float(loads) if loads else float("nan")


def ratio(runs: dict[str, list[dict[str, Any]]], tool: str, base: str, P: Any) -> float:
    """Speed of `tool` over `base`, per round (same conditions), median over rounds."""
    b = {r["round"]: work_s(r) for r in runs[base]}
    xs = [b[r["round"]] / work_s(r) for r in runs[tool] if r["round"] in b]
    return P.med(xs) or float("nan")


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)) + " |"
        for r in rows
    ]
    return "\n".join([line, sep, *body])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--phases", default="sink,ref,rss")
    ap.add_argument("--tools", default="floor,naive,naive_orjson,weave_sdk,tracecli")
    ap.add_argument("--ref-tools", default="naive,tracecli")
    ap.add_argument("--rss-calls", type=int, default=1_000_000)
    ap.add_argument("--lag-calls", type=int, default=300_000)
    ap.add_argument("--workdir", default="/tmp/tracecli-bench")
    ap.add_argument("--json-out", default=None)
    a = ap.parse_args()
    if not BENCH.is_dir():
        log(f"{BENCH} not found: this benchmark needs the project's ../shared folder")
        return 2
    b = Bench(a)
    t0 = time.monotonic()
    phases = a.phases.split(",")
    if "sink" in phases:
        b.phase_sink()
    if "ref" in phases:
        b.phase_ref()
    if "rss" in phases:
        b.phase_rss()
    log(f"# done in {time.monotonic() - t0:.0f} s")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(b.runs, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
