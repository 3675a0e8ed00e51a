#!/usr/bin/env python3
"""upload_jobs: `tracecli upload` with different worker counts, interleaved, on given files.

    python bench/upload_jobs.py FILE [FILE ...] [--jobs 1,2] [--rounds 2] [--db]

For each file and round, one run per TRACECLI_JOBS value (the order rotated each round), to
a fresh null Weave server (../shared/tools/bench/nullsink.py; every call verified there) or,
with --db, to a new embedded store. Prints work time (the report's elapsed_s), CPU time per
call of the whole process tree (wait4), peak memory (the largest process's RSS, the tree's
RSS and PSS, sampled every 50 ms) and the load average, so that the default worker count
can be chosen on the memory aims (1M calls, ends 100k records late) as well as speed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run_all import BENCH, ROOT, load_peers, log, result_line, table, timed, venvs  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--jobs", default="1,2")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--db", action="store_true", help="to the embedded store instead")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "tracecli-bench-jobs"))
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    jobs = a.jobs.split(",")
    peers, v = load_peers(), venvs()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_STATE_HOME": str(work / "state")}
    port = peers.free_port()
    url = f"http://127.0.0.1:{port}"
    sink = subprocess.Popen(
        [v["PY"], str(BENCH / "nullsink.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    rows = []
    try:
        peers.wait_health(url, sink)
        for f in a.files:
            expected = peers.count_calls(f)[0]
            runs: dict[str, list[dict[str, Any]]] = {j: [] for j in jobs}
            for rnd in range(a.rounds):
                k = rnd % len(jobs)
                for j in jobs[k:] + jobs[:k]:
                    cmd = [sys.executable, "-m", "tracecli", "upload", f, "--restart"]
                    cmd += ["--format", "json", "--quiet", "--rejected", str(work / "rej.jsonl")]
                    if a.db:
                        for p in work.glob("store.db*"):
                            p.unlink()
                        cmd += ["--db", str(work / "store.db")]
                    else:
                        cmd += ["--server", url]
                        peers.http(url + "/stats/reset", "POST", {})
                    r = timed(cmd, {**env, "TRACECLI_JOBS": j}, work)
                    res = result_line(r["out"])
                    if a.db:
                        ok = r["rc"] == 0 and res.get("uploaded") == expected
                    else:
                        st = peers.http_json(url + "/stats")["calls"]
                        ok = r["rc"] == 0 and st["whole_calls"] == expected and not st["duplicates"]
                    r.update(ok=ok, work_s=float(res.get("elapsed_s", "nan")), n=expected)
                    log(
                        f"  {Path(f).name} round {rnd + 1} jobs {j}: work {r['work_s']:.2f}s "
                        f"cpu {r['cpu']:.2f}s largest {r['max_one'] / 2**20:.0f} MiB tree rss "
                        f"{r['tree_rss'] / 2**20:.0f} pss {r['tree_pss'] / 2**20:.0f} MiB "
                        f"load {r['load']:.2f} {'ok' if ok else 'FAILED ' + r['err'][-300:]}"
                    )
                    runs[j].append(r)
            for j, rs in runs.items():
                med = statistics.median
                n = rs[0]["n"]
                rows.append(
                    [
                        Path(f).name,
                        j,
                        " / ".join(f"{r['work_s']:.2f}" for r in rs),
                        f"{n / med(r['work_s'] for r in rs):,.0f}",
                        f"{med(r['cpu'] for r in rs) / n * 1e6:.1f}",
                        f"{max(r['max_one'] for r in rs) / 2**20:.0f}",
                        f"{max(r['tree_rss'] for r in rs) / 2**20:.0f}",
                        f"{max(r['tree_pss'] for r in rs) / 2**20:.0f}",
                        f"{min(r['load'] for r in rs):.1f}-{max(r['load'] for r in rs):.1f}",
                        "ok" if all(r["ok"] for r in rs) else "FAILED",
                    ]
                )
    finally:
        peers.stop(sink)
    head = ["file", "TRACECLI_JOBS", "work s per round", "calls/s (median)", "CPU us/call"]
    head += ["peak RSS largest MiB", "tree RSS MiB", "tree PSS MiB", "load", "verified"]
    print(table(head, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
