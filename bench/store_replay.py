"""The embedded store's own work, in-process: replay an upload's request bodies into it.

`capture` runs `tracecli upload FILE` to a throwaway store and keeps every (route, body)
the store target was handed (a pickle); `replay` posts them again, in order, to a fresh
store through the same target (`LocalStoreTarget.post`), so the store's per-call cost can
be counted without the reading, checking and encoding in front of it:

    python3 bench/store_replay.py capture FILE BODIES.pickle
    PYTHONHASHSEED=0 valgrind --tool=callgrind python3 bench/store_replay.py replay BODIES.pickle
    PYTHONHASHSEED=0 valgrind --tool=callgrind python3 bench/store_replay.py replay BODIES.pickle \
        --none

`--none` does everything but the posts (imports, opening the store): the difference of the
two counts over the calls stored is the instructions per call. `--times N` replays N times
into N fresh stores and prints the CPU time per call (user + system) of the posts alone.
`--bulk` opens the target as an upload does (`bulk=True`: the id indexes built when it
closes) and counts the close in the CPU time.
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import sys
import tempfile
from pathlib import Path


def capture(src: str, out: str) -> None:
    from tracecli.targets.local import LocalStoreTarget
    from tracecli.upload.api import upload
    from tracecli.upload.report import UploadOptions

    got: list[tuple[str, bytes]] = []
    post = LocalStoreTarget.post

    def keep(self: LocalStoreTarget, route: str, body: bytes, **kw: object) -> object:
        got.append((route, body))
        return post(self, route, body, **kw)  # type: ignore[arg-type]

    LocalStoreTarget.post = keep  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as d:
        report = upload([src], UploadOptions(db=Path(d) / "s.db", rejected=str(Path(d) / "r")))
    Path(out).write_bytes(pickle.dumps(got))
    print(
        f"{len(got)} requests, {sum(map(len, (b for _, b in got)))} bytes, "
        f"{report.calls_sent if hasattr(report, 'calls_sent') else '?'} calls",
        file=sys.stderr,
    )


def replay(bodies: str, none: bool, times: int, bulk: bool = False) -> None:
    from tracecli.targets.local import LocalStoreTarget

    got: list[tuple[str, bytes]] = pickle.loads(Path(bodies).read_bytes())
    user = system = 0.0
    for _ in range(times):
        with tempfile.TemporaryDirectory() as d:
            target = LocalStoreTarget(Path(d) / "s.db", bulk=bulk)
            t0 = resource.getrusage(resource.RUSAGE_SELF)
            if not none:
                for route, body in got:
                    out = target.post(route, body)
                    if out.status != 200:
                        raise SystemExit(f"{route}: {out}")
            if bulk:
                target.close()
            t1 = resource.getrusage(resource.RUSAGE_SELF)
            user += t1.ru_utime - t0.ru_utime
            system += t1.ru_stime - t0.ru_stime
            if bulk:
                target = LocalStoreTarget(Path(d) / "s.db")
            n = target.store.count("acme/agents") if not none else 0
            target.close()
    if times > 1 or os.environ.get("STORE_REPLAY_CPU"):
        per = 1e6 / times / max(n, 1)
        print(f"calls {n}, CPU {(user + system) * per:.2f} us/call (user {user * per:.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture")
    c.add_argument("file")
    c.add_argument("out")
    r = sub.add_parser("replay")
    r.add_argument("bodies")
    r.add_argument("--none", action="store_true", help="open the store, post nothing")
    r.add_argument("--times", type=int, default=1)
    r.add_argument("--bulk", action="store_true", help="as upload opens it; close counted")
    a = ap.parse_args()
    if a.cmd == "capture":
        capture(a.file, a.out)
    else:
        replay(a.bodies, a.none, a.times, a.bulk)


if __name__ == "__main__":
    main()
