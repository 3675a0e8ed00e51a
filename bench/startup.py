#!/usr/bin/env python3
"""startup: what tracecli costs before it reads its first record, beside bare Python.

    python bench/startup.py [--rounds 9] [--baseline DIR]

Runs, interleaved and rotated each round: `python3 -c pass`, `python3 -c "import orjson"`
(the floor's own start), and `tracecli validate` / `upload --dry-run` of a one-line file,
`tracecli tail --help` and `tracecli --help`, each as `python3 -m tracecli` with
PYTHONPATH on this checkout (and on --baseline DIR's, an earlier checkout, in the same
rounds). Prints the median wall time and CPU time (user + system, from wait4) of each, and
the start-up of each command as its CPU beyond `python3 -c pass`. Most trace files are
small, so this counts in every ratio of run_all.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "weave" / "agent_complete.jsonl"  # its first line is the file


def once(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run, from outside. Not run from a checkout:
    `python -m` would put the working directory's tracecli before PYTHONPATH's."""
    t = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=cwd
    )
    _, _, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - t, usage.ru_utime + usage.ru_stime


def commands(one_line: Path) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "tracecli"]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import orjson'": [sys.executable, "-c", "import orjson"],
        "validate 1-line file": [*cli, "validate", str(one_line)],
        "upload --dry-run 1-line file": [*cli, "upload", str(one_line), "--dry-run"],
        "tail --help": [*cli, "tail", "--help"],
        "--help": [*cli, "--help"],
    }


def measure(rounds: int, baseline: str | None) -> dict[str, dict[str, float]]:
    work = Path(tempfile.mkdtemp(prefix="tracecli-startup-"))
    one_line = work / "one.jsonl"
    one_line.write_text(SAMPLE.read_text().splitlines()[0] + "\n")
    home = {"XDG_STATE_HOME": str(work), "XDG_DATA_HOME": str(work)}  # not the user's
    envs = {"": {**os.environ, "PYTHONPATH": str(ROOT), **home}}
    if baseline:
        envs["before: "] = {**envs[""], "PYTHONPATH": baseline}
    runs = [
        (prefix + name, cmd, env)
        for name, cmd in commands(one_line).items()
        for prefix, env in envs.items()
        if not (prefix and name.startswith("python"))
    ]
    got: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in runs}
    for r in range(rounds + 1):  # the first round warms the caches, not counted
        shift = r % len(runs)
        for name, cmd, env in runs[shift:] + runs[:shift]:
            wall, cpu = once(cmd, env, work)
            if r:
                got[name].append((wall, cpu))
    return {
        name: {
            "wall": statistics.median(w for w, _ in v),
            "cpu": statistics.median(c for _, c in v),
        }
        for name, v in got.items()
    }


def report(figures: dict[str, dict[str, float]]) -> list[str]:
    floor = figures["python -c pass"]["cpu"]
    lines = [f"{'start-up (medians)':<40} {'wall s':>7} {'CPU s':>7} {'CPU beyond python':>18}"]
    for name, f in figures.items():
        beyond = f["cpu"] - floor
        lines.append(f"{name:<40} {f['wall']:7.3f} {f['cpu']:7.3f} {beyond:18.3f}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--baseline", default=None, help="an earlier checkout: its figures too")
    a = ap.parse_args()
    print("\n".join(report(measure(a.rounds, a.baseline))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
