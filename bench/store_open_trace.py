"""CPU time of the embedded store's id-filtered reads on a large project: opening one trace
(`/calls/stream_query` with `filter.trace_ids`, default order), `/call/read`, a call's
children, `tail --trace`, and an unfiltered `tail` for comparison.

    python3 bench/store_open_trace.py /tmp/s200k.db --calls 200000      # builds it once
    PYTHONPATH=BASELINE python3 bench/store_open_trace.py /tmp/s200k.db  # an earlier checkout

The store is built (when the file does not exist) with traces of ten calls, a root and nine
children, one call every 37 ms, deterministic ids; the reads pick random calls of it. Times
are user + system CPU of this process per read, averaged over `--queries` reads.
"""

from __future__ import annotations

import argparse
import datetime
import random
import resource
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tracecli.store.db import Store

PROJECT = "ent/big"
_NEWEST = [{"field": "started_at", "direction": "desc"}]


def build(path: Path, calls: int) -> None:
    rng = random.Random(7)
    t0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)

    def uid() -> str:
        return uuid.UUID(int=rng.getrandbits(128)).hex

    with Store(path) as store:
        batch: list[dict[str, Any]] = []
        for i in range(calls):
            if i % 10 == 0:
                trace, root = uid(), uid()
            started = t0 + datetime.timedelta(milliseconds=i * 37)
            batch.append(
                {
                    "project_id": PROJECT,
                    "id": root if i % 10 == 0 else uid(),
                    "trace_id": trace,
                    "parent_id": None if i % 10 == 0 else root,
                    "op_name": f"weave:///ent/big/op/op{i % 4}:abc",
                    "started_at": started.isoformat(),
                    "ended_at": (started + datetime.timedelta(milliseconds=30)).isoformat(),
                    "attributes": {"a": 1},
                    "inputs": {"q": "x" * 50},
                    "output": {"r": "y" * 80},
                    "summary": {},
                }
            )
            if len(batch) == 2000:
                store.write(completes=batch)
                batch = []
        store.write(completes=batch)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("db", type=Path)
    ap.add_argument("--calls", type=int, default=200_000, help="calls of a store built anew")
    ap.add_argument("--queries", type=int, default=30)
    args = ap.parse_args()
    if not args.db.exists():
        build(args.db, args.calls)
    raw = sqlite3.connect(args.db)
    children = raw.execute(
        "SELECT trace_id, id, parent_id FROM calls WHERE project_id = ? AND parent_id IS NOT NULL",
        (PROJECT,),
    ).fetchall()
    raw.close()
    rng = random.Random(3)
    picks = [children[rng.randrange(len(children))] for _ in range(args.queries)]
    reads: dict[str, Callable[[tuple[str, str, str]], dict[str, Any]]] = {
        "open a trace": lambda p: {"filter": {"trace_ids": [p[0]]}},
        "read a call": lambda p: {"filter": {"call_ids": [p[1]]}},
        "a call's children": lambda p: {"filter": {"parent_ids": [p[2]]}},
        "tail --trace": lambda p: {
            "filter": {"trace_ids": [p[0]]},
            "limit": 20,
            "sort_by": _NEWEST,
        },
        "tail (no filter)": lambda p: {"limit": 20, "sort_by": _NEWEST},
    }
    with Store(args.db, create=False) as store:
        print(f"{store.count(PROJECT)} calls in {PROJECT}")
        list(store.query(PROJECT, filter={"trace_ids": [picks[0][0]]}))  # readers opened
        for name, selection in reads.items():
            rows = 0
            t = _cpu()
            for p in picks:
                rows += len(list(store.query(PROJECT, **selection(p))))
            per = (_cpu() - t) / len(picks)
            print(f"{name:18s} {per * 1000:9.3f} ms CPU per read ({rows / len(picks):.1f} calls)")


if __name__ == "__main__":
    main()
