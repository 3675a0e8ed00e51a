#!/usr/bin/env python3
"""run_all: every figure of bench/README.md's summary table, across file styles, in one run.

    python bench/run_all.py [--calls 50000] [--rounds 1] [--styles compact,dumps,offsets,yaml]
                            [--parts startup,validate,sink,store] [--project E/P] [--json-out F]

For each style of `gen_traces.py --style` (the same records, written the ways people's
programs write them), on one file of --calls calls:

  validate  `tracecli validate FILE` beside the floor: a bare `orjson.loads` loop over
            the lines (JSONL), or `yaml.load_all(..., CSafeLoader)` (YAML)
  sink      `tracecli upload FILE --server NULL` beside the hand-written httpx + orjson
            script and the weave 0.54 SDK's batching client, to one null Weave server
            (../shared/tools/bench/); each run verified there (all calls whole, none twice);
            with --project E/P also `tracecli upload FILE --project E/P` (every record's
            project_id replaced, as most users upload), beside the same upload without it
  store     `tracecli upload FILE --db NEW.db` (the embedded SQLite store) beside the
            hand-written script to the null server, in the same round

and once, first (`startup.py`): the start-up of `validate` and `upload --dry-run` of a
one-line file, `tail --help` and `--help`, beside `python3 -c pass` and
`python3 -c "import orjson"` (CPU beyond bare Python: what every small file pays).

Runs of one round are interleaved (A, B, C, then rotated next round) so that what a
neighbour does to the machine falls on both sides of a ratio; ratios are taken within a
round, then the median over rounds. --baseline DIR (`git archive` of an earlier commit,
unpacked) runs that checkout's tracecli too, in the same rounds: before and after, under
the same neighbours. Each figure is given three ways: wall time with
start-up (what a user waits for), CPU time per record (user + system of the whole process
tree, from wait4: steadier than wall time when the machine is shared), and the 1-minute
load average when the run began. The peers read JSONL only: a YAML file's upload is
compared with their runs on the compact file of the same records.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_upload import BENCH, load_peers, start_sink, table, venvs  # noqa: E402
from bench_validate import LOOP, Sampler  # noqa: E402
from gen_traces import STYLES, generate  # noqa: E402
from startup import measure as measure_startup  # noqa: E402
from startup import report as startup_lines  # noqa: E402

ORJSON_LOOP = LOOP.format(mod="orjson")
YAML_LOOP = """
import sys, time, yaml
n = 0
t = time.perf_counter()
with open(sys.argv[1], "rb") as f:
    for doc in yaml.load_all(f, Loader=yaml.CSafeLoader):
        n += 1
print(n, time.perf_counter() - t)
"""


def log(*a: Any) -> None:
    print(*a, file=sys.stderr, flush=True)


def load() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Wall seconds (start-up included), CPU seconds of the process and the children it
    waited for, peak memory of the tree (sampled every 50 ms), exit status, stdout."""
    la = load()
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
    sampler = Sampler(proc.pid)
    sampler.start()
    out, err = proc.communicate()
    # communicate() has reaped it: its rusage (children included) comes from the
    # RUSAGE_CHILDREN difference, which covers only this child as runs are sequential
    wall = time.perf_counter() - t
    sampler.stop.set()
    sampler.join()
    return {
        "wall": wall,
        "rc": proc.returncode,
        "out": out.decode(errors="replace"),
        "err": err.decode(errors="replace")[-800:],
        "tree_rss": sampler.max_rss,
        "tree_pss": sampler.max_pss,
        "max_one": sampler.max_one,
        "load": la,
    }


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    c0 = children_cpu()
    r = run(cmd, env, cwd)
    r["cpu"] = children_cpu() - c0
    return r


def result_line(out: str) -> dict[str, Any]:
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[7:]))
        if line.startswith("{"):
            return dict(json.loads(line))
    return {}


class RunAll:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.work = Path(a.work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "XDG_STATE_HOME": str(self.work / "state"),  # the bench's journal, not the user's
            "NO_COLOR": "1",
        }
        self.base_env: dict[str, str] | None = None
        if a.baseline or a.baseline_env:  # the same figures for another checkout (or this
            # one with other settings: --baseline-env TRACECLI_JOBS=2), in the same rounds
            base = Path(a.baseline).resolve() if a.baseline else ROOT
            self.base_env = {**self.env, "PYTHONPATH": str(base)}
            self.base_env.update(kv.split("=", 1) for kv in a.baseline_env)
        self.files: dict[str, Path] = {}
        self.records: dict[str, int] = {}
        for style in a.styles:
            suffix = "yaml" if style == "yaml" else "jsonl"
            path = self.work / f"{style}_{a.calls}.{suffix}"
            if not path.exists():
                log(f"# generating {path}")
                tmp = path.with_name("tmp_" + path.name)
                generate(tmp, a.calls, style=style)
                tmp.rename(path)
            self.files[style] = path
        self.peers: Any = None
        self.v: dict[str, str] = {}
        self.results: dict[str, Any] = {}

    def compact_twin(self) -> Path:
        """The compact JSONL file of the same records, to count a YAML file's calls."""
        path = self.work / f"compact_{self.a.calls}.jsonl"
        if not path.exists():
            generate(path, self.a.calls)
        return path

    # -- validate -----------------------------------------------------------------------
    def validate(self) -> None:
        out: dict[str, Any] = {}
        for style, path in self.files.items():
            loop = YAML_LOOP if style == "yaml" else ORJSON_LOOP
            floor_cmd = [sys.executable, "-c", loop, str(path)]
            val_cmd = [sys.executable, "-m", "tracecli", "validate", str(path), "--format", "json"]
            rounds: list[dict[str, Any]] = []
            order = [("floor", floor_cmd), ("validate", val_cmd)]
            if self.base_env:
                order.append(("base", val_cmd))
            for rnd in range(self.a.rounds):
                k = rnd % len(order)
                got = {
                    name: timed(cmd, self.base_env if name == "base" else self.env, self.work)
                    for name, cmd in order[k:] + order[:k]
                }
                f, v = got["floor"], got["validate"]
                if f["rc"] != 0 or v["rc"] not in (0, 1):
                    raise SystemExit(f"{style}: validate or its floor failed: {v['err']}{f['err']}")
                n, floor_s = f["out"].split()
                rep = json.loads(v["out"])
                records = int(n)
                assert rep["records"] == records, (rep["records"], records)
                assert rep["errors"] == 0, rep
                self.records[style] = records
                rounds.append(
                    {
                        "floor_s": float(floor_s),
                        "floor_wall": f["wall"],
                        "floor_cpu": f["cpu"],
                        "validate_wall": v["wall"],
                        "validate_cpu": v["cpu"],
                        "validate_tree_pss": v["tree_pss"],
                        "validate_max_one": v["max_one"],
                        "load": max(f["load"], v["load"]),
                        "records": records,
                    }
                )
                if "base" in got:
                    b = got["base"]
                    assert json.loads(b["out"])["records"] == records
                    rounds[-1].update(base_wall=b["wall"], base_cpu=b["cpu"])
                    rounds[-1]["load"] = max(rounds[-1]["load"], b["load"])
                log(
                    f"  validate {style:8} round {rnd + 1}: floor {float(floor_s):.2f}s, "
                    f"validate {v['wall']:.2f}s wall {v['cpu']:.2f}s cpu (load {v['load']:.2f})"
                )
            out[style] = rounds
        self.results["validate"] = out

    # -- uploads ------------------------------------------------------------------------
    def start_sink(self) -> tuple[Any, str]:
        return start_sink(self.peers, self.v["PY"], self.work)

    def tool(self, name: str, style: str, url: str) -> list[str]:
        path = self.files[style]
        if name == "script":
            script = str(BENCH / "peer_naive.py")
            return [self.v["PY"], script, str(path), "--url", url, "--batch", "100", "--orjson"]
        if name == "sdk":
            return [self.v["WEAVE_PY"], str(BENCH / "peer_weave_sdk.py"), str(path), "--url", url]
        cmd = [sys.executable, "-m", "tracecli", "upload", str(path), "--restart"]
        cmd += ["--format", "json", "--quiet", "--rejected", str(self.work / "rejected.jsonl")]
        if name == "tracecli":
            return [*cmd, "--server", url]
        if name == "project":  # (another project than the file's: each one replaced)
            return [*cmd, "--server", url, "--project", self.a.project]
        db = self.work / "store.db"
        for p in self.work.glob("store.db*"):
            p.unlink()
        return [*cmd, "--db", str(db)]

    def uploads(self, parts: list[str]) -> None:
        self.peers = load_peers()
        self.v = venvs()
        proc, url = self.start_sink()
        out: dict[str, Any] = {}
        try:
            for style, path in self.files.items():
                jsonl = style != "yaml"
                # a YAML file holds the same records as the compact one (same seed)
                counted = path if jsonl else self.files.get("compact") or self.compact_twin()
                expected = self.peers.count_calls(str(counted))[0]
                tools = ["tracecli"] if "sink" in parts else []
                if "sink" in parts and self.a.project:
                    tools.append("project")
                if "store" in parts:
                    tools.append("store")
                if self.base_env:
                    tools += [t + "_base" for t in tools]
                if jsonl:
                    tools.insert(0, "script")
                    if "sink" in parts and style in self.a.sdk_styles:
                        tools.append("sdk")
                rounds = []
                for rnd in range(self.a.rounds):
                    k = rnd % len(tools)
                    got: dict[str, Any] = {}
                    for t in tools[k:] + tools[:k]:
                        self.peers.http(url + "/stats/reset", "POST", {})
                        env = self.base_env if t.endswith("_base") else self.env
                        r = timed(self.tool(t.removesuffix("_base"), style, url), env, self.work)
                        res = result_line(r["out"])
                        if t.startswith("store"):
                            ok = r["rc"] == 0 and res.get("uploaded") == expected
                        else:
                            st = self.peers.http_json(url + "/stats")["calls"]
                            whole = st["whole_calls"] == expected and st["duplicates"] == 0
                            ok = r["rc"] == 0 and (whole or t == "sdk")
                            r["sink_whole"] = st["whole_calls"]
                        r["work_s"] = float(res.get("elapsed_s", res.get("s", "nan")))
                        r["ok"] = ok
                        r.pop("out")
                        got[t] = r
                        log(
                            f"  upload {style:8} round {rnd + 1} {t:9} wall {r['wall']:6.2f}s "
                            f"work {r['work_s']:6.2f}s cpu {r['cpu']:6.2f}s "
                            f"rss {r['tree_rss'] / 2**20:4.0f}MiB load {r['load']:.2f} "
                            f"{'ok' if ok else 'NOT VERIFIED ' + r['err'][-300:]}"
                        )
                    rounds.append(got)
                out[style] = {"expected": expected, "rounds": rounds}
        finally:
            self.peers.stop(proc)
        self.results["upload"] = out

    # -- the tables ---------------------------------------------------------------------
    def report(self) -> None:
        med = statistics.median
        if "validate" in self.results:
            rows = []
            for style, rs in self.results["validate"].items():
                n = rs[0]["records"]
                rows.append(
                    [
                        style,
                        f"{self.files[style].stat().st_size / 1e6:.0f} MB",
                        f"{med(r['floor_s'] for r in rs):.2f} s",
                        f"{med(r['validate_wall'] for r in rs):.2f} s",
                        f"{med(r['floor_s'] / r['validate_wall'] for r in rs):.2f}x",
                        f"{med(r['floor_cpu'] for r in rs) / n * 1e6:.2f} / "
                        f"{med(r['validate_cpu'] for r in rs) / n * 1e6:.2f}",
                        f"{max(r['validate_max_one'] for r in rs) / 2**20:.0f} / "
                        f"{max(r['validate_tree_pss'] for r in rs) / 2**20:.0f} MiB",
                        f"{min(r['load'] for r in rs):.2f}-{max(r['load'] for r in rs):.2f}",
                    ]
                )
                if "base_wall" in rs[0]:
                    rows[-1][5:5] = [
                        f"{med(r['floor_s'] / r['base_wall'] for r in rs):.2f}x",
                        f"{med(r['base_cpu'] for r in rs) / n * 1e6:.2f}",
                    ]
            print(f"\n## validate ({self.a.calls} calls, {self.a.rounds} round(s), medians)\n")
            head = ["style", "file", "floor", "validate (wall, start-up in)", "x floor"]
            if self.base_env:
                head += ["baseline x floor", "baseline CPU us/record"]
            head += ["CPU us/record floor / validate", "peak RSS largest / tree PSS", "load"]
            print(table(head, rows))
            print(
                "\nfloor: a bare orjson.loads loop over the lines (yaml: yaml.load_all with "
                "CSafeLoader), timed inside its interpreter"
            )
        if "upload" in self.results:
            compact = self.results["upload"].get("compact")
            rows = [upload_row(style, u, compact) for style, u in self.results["upload"].items()]
            print(f"\n## upload ({self.a.calls} calls, {self.a.rounds} round(s), medians)\n")
            head = ["style", "null server calls/s", "x script (wall)", "x SDK", "store calls/s"]
            head += ["store x script-to-null (wall)", "CPU us/call upload / store / script"]
            head += ["peak RSS MiB upload / store", "load", "verified"]
            if self.a.project:
                head += [f"--project {self.a.project}: x without (wall), CPU us/call"]
            if self.base_env:
                head += ["baseline: x script, x SDK, store x script, CPU us/call upload / store"]
                if self.a.project:
                    head += ["baseline --project: x without (wall), CPU us/call"]
            print(table(head, rows))
            print(
                "\ncalls/s and ratios from each tool's own work time (file opened to last "
                "answer); in brackets from wall time, start-up included. script: the "
                "hand-written httpx + orjson uploader; SDK: weave 0.54's batching client."
            )


def upload_row(style: str, u: dict[str, Any], compact: dict[str, Any] | None) -> list[str]:
    """One row of the upload table (a YAML file's peers: their runs on the compact file)."""
    med = statistics.median
    exp = u["expected"]
    rs = u["rounds"]
    base = rs if "script" in rs[0] else (compact or {}).get("rounds", [])

    def rate(t: str) -> str:
        xs = [r[t]["work_s"] for r in rs if t in r]
        return f"{exp / med(xs):,.0f}" if xs else "-"

    def ratio(t: str, b: str, key: str = "work_s") -> str:
        pairs = [x[b][key] / r[t][key] for r, x in zip(rs, base, strict=False) if t in r and b in x]
        return f"{med(pairs):.2f}x" if pairs else "-"

    def beside(t: str, b: str, key: str = "work_s") -> str:  # two runs of the same file
        pairs = [r[b][key] / r[t][key] for r in rs if t in r and b in r]
        return f"{med(pairs):.2f}x" if pairs else "-"

    def cpu(t: str) -> str:
        xs = [r[t]["cpu"] for r in rs if t in r]
        return f"{med(xs) / exp * 1e6:.1f}" if xs else "-"

    def rss(t: str) -> str:
        xs = [r[t]["tree_rss"] for r in rs if t in r]
        return f"{max(xs) / 2**20:.0f}" if xs else "-"

    loads = [r[t]["load"] for r in rs for t in r]
    ok = all(r[t]["ok"] for r in rs for t in r)
    # upload --project beside the same upload without it (a ratio below 1: slower)
    extra, proj_base = [], []
    if any("project" in r for r in rs):
        extra = [
            f"{beside('project', 'tracecli')} ({beside('project', 'tracecli', 'wall')}), "
            f"{cpu('project')}"
        ]
    if any("project_base" in r for r in rs):
        proj_base = [
            f"{beside('project_base', 'tracecli_base')} "
            f"({beside('project_base', 'tracecli_base', 'wall')}), {cpu('project_base')}"
        ]
    if any("tracecli_base" in r or "store_base" in r for r in rs):
        extra += [
            f"{ratio('tracecli_base', 'script')}, {ratio('tracecli_base', 'sdk')}, "
            f"{ratio('store_base', 'script')}, {cpu('tracecli_base')} / {cpu('store_base')}",
            *proj_base,
        ]
    return [
        style,
        rate("tracecli"),
        f"{ratio('tracecli', 'script')} ({ratio('tracecli', 'script', 'wall')})",
        ratio("tracecli", "sdk"),
        rate("store"),
        f"{ratio('store', 'script')} ({ratio('store', 'script', 'wall')})",
        f"{cpu('tracecli')} / {cpu('store')} / {cpu('script')}",
        f"{rss('tracecli')} / {rss('store')}",
        f"{min(loads):.2f}-{max(loads):.2f}",
        "ok" if ok else "NOT VERIFIED",
        *extra,
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--styles", default=",".join(STYLES))
    ap.add_argument("--sdk-styles", default="compact,dumps", help="styles the SDK runs on")
    ap.add_argument("--parts", default="startup,validate,sink,store")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "tracecli-bench-all"))
    ap.add_argument("--json-out", default=None)
    ap.add_argument(
        "--project",
        default=None,
        metavar="ENTITY/PROJECT",
        help="also upload to the null server with --project (another project than the "
        "file's acme/agents), beside the same upload without it",
    )
    ap.add_argument(
        "--baseline",
        default=None,
        help="another checkout of tracecli: its figures too, interleaved",
    )
    ap.add_argument(
        "--baseline-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment of the baseline's runs (without --baseline: this checkout's), "
        "e.g. TRACECLI_JOBS=2; repeatable",
    )
    a = ap.parse_args()
    a.styles = [s for s in a.styles.split(",") if s]
    a.sdk_styles = a.sdk_styles.split(",")
    if any("=" not in kv for kv in a.baseline_env):
        ap.error("--baseline-env takes KEY=VALUE")
    parts = a.parts.split(",")
    if ("sink" in parts or "store" in parts) and not BENCH.is_dir():
        log(f"{BENCH} not found: the upload figures need the project's ../shared folder")
        return 2
    # a timeout's SIGTERM unwinds like an error, so the null server is stopped (finally)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    b = RunAll(a)
    t0 = time.monotonic()
    if "startup" in parts:  # first: most files are small, so it counts in every ratio
        b.results["startup"] = measure_startup(max(5, 3 * a.rounds), a.baseline)
    if "validate" in parts:
        b.validate()
    if "sink" in parts or "store" in parts:
        b.uploads(parts)
    log(f"# done in {time.monotonic() - t0:.0f} s")
    b.report()
    if "startup" in b.results:
        print("\n".join(startup_lines(b.results["startup"])))
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(b.results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
