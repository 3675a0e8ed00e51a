#!/usr/bin/env python3
"""bench_validate: `tracecli validate` against the bare parse loops, on the same file, in one run.

    python bench/bench_validate.py [--calls 200000 | --bytes 1G] [--shape flat] [--rounds 3]

Per round, in a rotating order, on one generated file (bench/gen_traces.py):

  orjson   a bare `for line in file: orjson.loads(line)` loop      <- the floor
  json     the same with the standard library's json.loads
  validate `tracecli validate FILE --format json`, as a subprocess, every check on

Each loop runs in its own fresh interpreter and times itself (start-up excluded);
validate is timed from outside (its wall time includes start-up, a few tenths of a second,
reported on its own so the ratio can be read both ways). Its peak memory is sampled from
/proc every 50 ms over the whole process tree (main process + workers): the largest
single process, and the tree's sum of RSS and of PSS (shared pages split between the
processes that share them; the honest total for forked workers). The machine may be
shared: compare the ratios, taken between runs of the same round, not absolute figures.
As the wall-clock ratio of a run that needs every core suffers most from neighbours, CPU
time per record (all processes, from wait4) is reported too, with the ratio it implies
on idle cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from gen_traces import generate, parse_size  # noqa: E402

LOOP = """
import sys, time, {mod}
loads = {mod}.loads
n = 0
t = time.perf_counter()
with open(sys.argv[1], "rb") as f:
    for line in f:
        if line.strip():
            loads(line)
            n += 1
print(n, time.perf_counter() - t)
"""


def log(*a: Any) -> None:
    print(*a, file=sys.stderr, flush=True)


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[bytes, float, Any]:
    """stdout, CPU seconds (user + system, the child and the workers it waited for) and
    the Popen, with memory sampled while it runs."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    sampler = Sampler(proc.pid)
    sampler.start()
    chunks = []
    assert proc.stdout is not None
    for chunk in iter(lambda: proc.stdout.read(1 << 16), b""):  # type: ignore[union-attr]
        chunks.append(chunk)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    sampler.stop.set()
    sampler.join()
    proc.sampler = sampler  # type: ignore[attr-defined]
    return b"".join(chunks), usage.ru_utime + usage.ru_stime, proc


def loop(mod: str, path: Path) -> dict[str, float]:
    out, cpu, proc = run_child([sys.executable, "-c", LOOP.format(mod=mod), str(path)])
    if proc.returncode != 0:
        raise SystemExit(f"{mod} loop failed")
    n_text, s_text = out.split()
    n, s = int(n_text), float(s_text)
    return {"records": n, "s": s, "records_per_s": n / s, "cpu_s": cpu}


def tree(pid: int) -> list[int]:
    """pid and its descendants, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in bytes; (0, 0) once it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, pss


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.stop = threading.Event()
        self.max_one = self.max_rss = self.max_pss = 0
        self.max_procs = 0

    def run(self) -> None:
        while not self.stop.wait(0.05):
            pids = tree(self.pid)
            mem = [memory(p) for p in pids]
            self.max_procs = max(self.max_procs, len(pids))
            self.max_one = max([self.max_one, *(r for r, _ in mem)])
            self.max_rss = max(self.max_rss, sum(r for r, _ in mem))
            self.max_pss = max(self.max_pss, sum(p for _, p in mem))


def validate(path: Path, env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "tracecli", "validate", str(path), "--format", "json"]
    t = time.perf_counter()
    out, cpu, proc = run_child(cmd, env)
    wall = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        raise SystemExit(f"validate failed ({proc.returncode}): {err}")
    report = json.loads(out)
    sampler = proc.sampler  # type: ignore[attr-defined]
    return {
        "s": wall,
        "cpu_s": cpu,
        "report": {k: v for k, v in report.items() if k != "diagnostics"},
        "max_process_rss": sampler.max_one,
        "tree_rss": sampler.max_rss,
        "tree_pss": sampler.max_pss,
        "processes": sampler.max_procs,
    }


def mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=None, help="calls in the file (200000)")
    ap.add_argument("--bytes", dest="size", default=None, help="file size instead: 1G")
    ap.add_argument("--shape", default="flat", choices=["flat", "batch", "requests", "complete"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jobs", default=None, help="TRACECLI_JOBS for validate (default: cores)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tracecli-bench")
    ap.add_argument("--json-out", type=Path, default=None)
    a = ap.parse_args()
    if a.calls is None and a.size is None:
        a.calls = 200_000
    a.work.mkdir(parents=True, exist_ok=True)
    tag = f"{a.calls}calls" if a.calls else a.size
    path = a.work / f"validate_{a.shape}_{tag}.jsonl"
    if not path.exists():
        log(f"# generating {path}")
        generate(path, a.calls, parse_size(a.size) if a.size else None, a.shape)
    size = path.stat().st_size

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if a.jobs:
        env["TRACECLI_JOBS"] = a.jobs
    tiny = a.work / "validate_tiny.jsonl"
    tiny.write_bytes(path.open("rb").readline())
    startup = statistics.median(validate(tiny, env)["s"] for _ in range(3))

    runs: dict[str, list[dict[str, Any]]] = {"orjson": [], "json": [], "validate": []}
    tools = list(runs)
    for r in range(a.rounds):
        order = tools[r % 3 :] + tools[: r % 3]
        for tool in order:
            log(f"# round {r + 1}/{a.rounds}: {tool}")
            runs[tool].append(validate(path, env) if tool == "validate" else loop(tool, path))
    records = runs["orjson"][0]["records"]
    v_report = runs["validate"][0]["report"]
    assert v_report["records"] == records, (v_report, records)
    for run in runs["validate"]:
        run["records_per_s"] = records / run["s"]
        run["records_per_s_no_startup"] = records / max(run["s"] - startup, 1e-9)

    def med(tool: str, key: str = "records_per_s") -> float:
        return statistics.median(x[key] for x in runs[tool])

    def ratio(a_tool: str, b_tool: str, key: str = "records_per_s") -> float:
        return statistics.median(
            x[key] / y["records_per_s"] for x, y in zip(runs[a_tool], runs[b_tool], strict=True)
        )

    vrun = max(runs["validate"], key=lambda x: x["tree_pss"])
    print(
        f"file: {path} ({mb(size)}, {records:,} records, {v_report['calls']:,} calls, "
        f"shape {a.shape}); {a.rounds} rounds, medians; {os.cpu_count()} cores"
    )
    print(f"{'':28}{'records/s':>12}{'x orjson':>10}{'x json':>9}")
    for name, tool in (("orjson.loads loop", "orjson"), ("json.loads loop", "json")):
        print(
            f"{name:28}{med(tool):>12,.0f}{ratio(tool, 'orjson'):>10.2f}{ratio(tool, 'json'):>9.2f}"
        )
    print(
        f"{'tracecli validate':28}{med('validate'):>12,.0f}{ratio('validate', 'orjson'):>10.2f}"
        f"{ratio('validate', 'json'):>9.2f}   (wall, start-up included)"
    )
    key = "records_per_s_no_startup"
    print(
        f"{'  without its start-up':28}{med('validate', key):>12,.0f}"
        f"{ratio('validate', 'orjson', key):>10.2f}{ratio('validate', 'json', key):>9.2f}"
        f"   (start-up {startup:.2f} s: validate of a 1-line file)"
    )
    cores = len(os.sched_getaffinity(0))
    cpu_floor = statistics.median(x["cpu_s"] for x in runs["orjson"]) / records * 1e6
    cpu_validate = statistics.median(x["cpu_s"] for x in runs["validate"]) / records * 1e6
    cpu_startup = validate(tiny, env)["cpu_s"] * 1e6 / records
    print(
        f"CPU per record (all processes, start-up included): orjson loop {cpu_floor:.2f} us, "
        f"validate {cpu_validate:.2f} us ({cpu_validate - cpu_startup:.2f} us without its "
        f"start-up); spread over {cores} idle cores, validate would reach "
        f"{cores * cpu_floor / (cpu_validate - cpu_startup):.2f} x orjson at best"
    )
    print(
        f"validate peak memory: largest process {mb(vrun['max_process_rss'])} RSS; whole tree "
        f"({vrun['processes']} processes) {mb(vrun['tree_rss'])} RSS, {mb(vrun['tree_pss'])} PSS"
    )
    print(
        f"validate found {v_report['errors']} errors, {v_report['warnings']} warnings "
        f"(ok={v_report['ok']})"
    )
    result = {
        "file": str(path),
        "bytes": size,
        "records": records,
        "startup_s": startup,
        "runs": runs,
        "ratio_validate_orjson": ratio("validate", "orjson"),
        "ratio_validate_orjson_no_startup": ratio("validate", "orjson", key),
        "cpu_us_per_record_orjson": cpu_floor,
        "cpu_us_per_record_validate": cpu_validate,
    }
    if a.json_out:
        a.json_out.write_text(json.dumps(result, indent=2))
    print("RESULT " + json.dumps({k: v for k, v in result.items() if k != "runs"}))


if __name__ == "__main__":
    main()
