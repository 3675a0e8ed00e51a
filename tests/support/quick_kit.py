"""The quick path's differential runs: a file of the odd cases the quick path hands to
the general one, and an upload's every request, report and rejected file to compare
(tests/test_upload_quick.py, tests/test_upload_quick_run.py)."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.uploadkit import gen_calls, write_flat
from tracecli.upload import sender as sender_mod
from tracecli.upload.api import UploadOptions, upload
from tracecli.upload.run import Run


def odd_file(path: Path, seed: int) -> Path:
    """A generated file with the cases the quick path must hand to the general one:
    duplicates, ends before starts, trace mismatches, starts holding an end field, ends
    with fields a completed call drops, own parents, refused lines, moved ends."""
    rng = random.Random(seed)
    src = write_flat(path.with_suffix(".src"), gen_calls(300, seed=seed), lag=3)
    out: list[bytes] = []
    moved: list[bytes] = []
    for raw in src.read_bytes().splitlines():
        d: dict[str, Any] = orjson.loads(raw)
        body = d.get("start") or d.get("end") or d
        kind = "start" if "start" in d or d.get("type") == "start" else "end"
        r = rng.random()
        if r < 0.02:
            out.append(b"{not json")
            continue
        if r < 0.04:
            out += [raw, raw]
            continue
        if r < 0.06 and kind == "end":
            body["ended_at"] = "2020-01-01T00:00:00.000000Z"
        elif r < 0.08 and kind == "start" and body.get("parent_id"):
            body["trace_id"] = "6513270e-269e-4d37-b2a7-000000000000"
        elif r < 0.10 and kind == "start":
            body["ended_at"] = body["started_at"]
        elif r < 0.12 and kind == "end":
            body["op_name"] = "x"
        elif r < 0.14 and kind == "start":
            body["parent_id"] = body["id"]
        elif r < 0.16 and kind == "end":
            moved.append(orjson.dumps(d))
            continue
        out.append(orjson.dumps(d))
    path.write_bytes(b"\n".join(out + moved) + b"\n")
    return path


def run_upload(
    tmp: Path, path: Path, quick: bool, monkeypatch: pytest.MonkeyPatch, **kw: Any
) -> Any:
    """The upload's report, rejected file and every request it made (route, body, records,
    what each unit keeps to rebuild its records as read)."""
    sent: list[tuple[str, str, list[int], list[int], Any]] = []
    real = sender_mod.Workers.submit

    def spy(self: Any, job: Any, *a: Any, **k: Any) -> bool:
        body = hashlib.sha1(job.body()).hexdigest()
        extras = sorted(job.extras.items())
        sent.append((job.route, body, list(job.recs), list(job.rec_ends), extras))
        return real(self, job, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(sender_mod.Workers, "submit", spy)
        m.setattr("tracecli.upload.run.BLOCK_BYTES", 16 * 1024)  # many blocks, pairs cut
        if not quick:
            m.setattr(Run, "_quick", lambda self: None)
        d = tmp / ("quick" if quick else "general")
        d.mkdir(exist_ok=True)
        report = upload(
            [str(path)],
            UploadOptions(
                db=d / "store.db", rejected=d / "rej.jsonl", journal_path=d / "j.db", **kw
            ),
        )
    summary = report.to_dict()
    for key in ("elapsed_s", "calls_per_s", "target", "rejected_file"):
        summary.pop(key)
    rejected = (d / "rej.jsonl").read_bytes() if (d / "rej.jsonl").exists() else b""
    return summary, rejected.replace(str(d).encode(), b"D"), sent
