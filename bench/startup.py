#!/usr/bin/env python3
"""startup: what tracecli costs before it reads its first record, beside bare Python.

    python bench/startup.py [--rounds 9] [--baseline DIR]

Runs, interleaved and rotated each round: `python3 -c pass`, `python3 -c "import orjson"`
(the floor's own start), and `tracecli validate` / `upload --dry-run` of a one-line file,
a real `upload` of it to the shared null server (../shared/tools/bench/nullsink.py; the
row is left out without ../shared) and to the embedded store (`--db`, `--restart` so
each run stores it again), `tracecli tail --help` and `tracecli --help`, each as
`python3 -m tracecli` with PYTHONPATH on this checkout (and on --baseline DIR's, an
earlier checkout, in the same rounds). Every run reads its modules' bytecode as an
installed tracecli does (from a cache the first, uncounted round writes). Prints the
median wall time and CPU time (user + system, from wait4) of each, and the start-up of
each command as its CPU beyond `python3 -c pass`. Most trace files are small, so this
counts in every ratio of run_all.py.
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


def commands(one_line: Path, server: str | None) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "tracecli"]
    upload = [*cli, "upload", str(one_line)]
    runs = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import orjson'": [sys.executable, "-c", "import orjson"],
        "validate 1-line file": [*cli, "validate", str(one_line)],
        "upload --dry-run 1-line file": [*upload, "--dry-run"],
        "upload 1-line file to a server": [*upload, "--server", server or "", "--restart"],
        "upload 1-line file to the store": [*upload, "--restart", "--db", "store.db"],
        "tail --help": [*cli, "tail", "--help"],
        "--help": [*cli, "--help"],
    }
    if server is None:
        del runs["upload 1-line file to a server"]
    return runs


def null_server(work: Path) -> tuple[subprocess.Popen[bytes] | None, str | None]:
    """The shared null Weave server on a free port (bench_upload.py's), or (None, None)
    without ../shared."""
    from bench_upload import BENCH, load_peers, start_sink, venvs

    if not (BENCH / "nullsink.py").exists():
        return None, None
    proc, url = start_sink(load_peers(), venvs()["PY"], work)
    return proc, url


def measure(rounds: int, baseline: str | None) -> dict[str, dict[str, float]]:
    work = Path(tempfile.mkdtemp(prefix="tracecli-startup-"))
    one_line = work / "one.jsonl"
    one_line.write_text(SAMPLE.read_text().splitlines()[0] + "\n")
    home = {"XDG_STATE_HOME": str(work), "XDG_DATA_HOME": str(work)}  # not the user's
    # As installed: modules run from bytecode the first round wrote (here, not beside the
    # sources of a checkout that may be read-only), even where PYTHONDONTWRITEBYTECODE is
    # set, which would make every run compile each module it imports again
    pyc = {"PYTHONPYCACHEPREFIX": str(work / "pycache")}
    plain = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    envs = {"": {**plain, "PYTHONPATH": str(ROOT), **home, **pyc}}
    if baseline:
        envs["before: "] = {**envs[""], "PYTHONPATH": baseline}
    sink, server = null_server(work)
    runs = [
        (prefix + name, cmd, env)
        for name, cmd in commands(one_line, server).items()
        for prefix, env in envs.items()
        if not (prefix and name.startswith("python"))
    ]
    got: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in runs}
    try:
        for r in range(rounds + 1):  # the first round warms the caches, not counted
            shift = r % len(runs)
            for name, cmd, env in runs[shift:] + runs[:shift]:
                wall, cpu = once(cmd, env, work)
                if r:
                    got[name].append((wall, cpu))
    finally:
        if sink is not None:
            sink.terminate()
            sink.wait(timeout=10)
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
