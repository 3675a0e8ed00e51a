"""`upload --project` on the fast paths: the same requests, rejected file and stored calls
as the way every such record went before (the worker's general reading, the reading
process's general pairing), against `tracecli serve` behind a proxy that refuses a few
calls, so that refused calls must come back in the rejected file exactly as written.

The typed decoder reads a line under --project as written and the quick path sends its
pair with the project_id as read in its unit (`quick_run.as_read`): this module holds the
whole upload to what it sent before either did.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.faultproxy import FaultProxy, Faults
from tests.support.uploadkit import gen_calls, read_back, tracecli_serve, write_flat
from tracecli.upload import blocks
from tracecli.upload import sender as sender_mod
from tracecli.upload.api import UploadOptions, upload
from tracecli.upload.run import Run

WRITTEN = "acme/written"  # the project the file names
OVERRIDE = "other/place"  # --project
VOLATILE = ("elapsed_s", "calls_per_s", "target", "rejected_file", "peak_open_calls")


def _file(path: Path) -> tuple[Path, list[str], list[bytes]]:
    """A flat file of 300 calls of WRITTEN, some of whose records already name OVERRIDE
    (a call wholly, a start alone, an end alone); the ids the proxy refuses (one of each
    kind); the file's lines."""
    calls = gen_calls(300, seed=17, project=WRITTEN)
    for k in range(0, 300, 7):  # whole calls already in the project
        calls[k][0]["project_id"] = calls[k][1]["project_id"] = OVERRIDE
    for k in range(3, 300, 11):  # one half of the call
        calls[k][k % 2]["project_id"] = OVERRIDE
    write_flat(path, calls, lag=2)
    refused = [calls[k][0]["id"] for k in (40, 42, 14, 58, 3, 201)]
    return path, refused, path.read_bytes().splitlines()


@contextmanager
def _general_way(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The code before the fast paths took --project: every line read the general way
    (`prepare_each`) and every pair paired by `Run._pair`."""
    real = blocks._prepare_lines

    def each(data: bytes, path: str, at_start: bool, project: str | None) -> Any:
        if project is not None:
            return blocks.prepare_each(data, path, at_start, project)
        return real(data, path, at_start, project)

    with monkeypatch.context() as m:
        m.setattr(blocks, "_prepare_lines", each)
        m.setattr(Run, "_quick", lambda self: None)
        yield


def _upload(tmp: Path, path: Path, refused: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """upload --project to a fresh `tracecli serve` behind a proxy refusing `refused`:
    (report, rejected file, every request with its records and originals, stored calls,
    how many pairs went one by one)."""
    sent: list[tuple[Any, ...]] = []
    real_submit = sender_mod.Workers.submit
    one_by_one = 0
    real_pair = Run._pair

    def spy(self: Any, job: Any, *a: Any, **k: Any) -> bool:
        extras = sorted(job.extras.items())
        sent.append((job.route, job.body(), list(job.recs), list(job.rec_ends), extras))
        return real_submit(self, job, *a, **k)

    def pair(self: Run, *a: Any) -> None:
        nonlocal one_by_one
        one_by_one += 1
        real_pair(self, *a)

    tmp.mkdir()
    faults = Faults(refuse={cid: (422, "this call is refused") for cid in refused})
    with (
        tracecli_serve(tmp / "serve") as serve,
        FaultProxy(serve.url, faults) as proxy,
        monkeypatch.context() as m,
    ):
        m.setattr(sender_mod.Workers, "submit", spy)
        m.setattr(Run, "_pair", pair)
        m.setattr("tracecli.upload.run.BLOCK_BYTES", 16 * 1024)  # many blocks, pairs cut
        report = upload(
            [str(path)],
            UploadOptions(
                server=proxy.url,
                project=OVERRIDE,
                rejected=tmp / "rej.jsonl",
                journal_path=tmp / "j.db",
                chunk_size=40,
                concurrency=1,
                allow_insecure=True,
            ),
        ).to_dict()
        assert proxy.stats.refused > 0
        stored = sorted(read_back(serve.url, OVERRIDE), key=lambda c: c["id"])
        assert read_back(serve.url, WRITTEN) == []
    for key in VOLATILE:
        report.pop(key, None)
    rejected = (tmp / "rej.jsonl").read_bytes()
    for row in stored:  # what the server stamps on arrival
        for key in ("wb_run_id", "storage_size_bytes", "total_storage_size_bytes"):
            row.pop(key, None)
    return report, rejected.replace(str(tmp).encode(), b"D"), sorted(sent), stored, one_by_one


def test_project_override_sends_and_rejects_as_the_general_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, refused, lines = _file(tmp_path / "t.jsonl")
    fast = _upload(tmp_path / "fast", path, refused, monkeypatch)
    with _general_way(monkeypatch):
        general = _upload(tmp_path / "general", path, refused, monkeypatch)
    report, rejected, sent, stored, one_by_one = fast
    assert fast[:4] == general[:4]
    assert one_by_one < general[4] // 4, (one_by_one, general[4])  # the quick path took most
    assert report["rejected"] == 2 * len(refused)  # (records)
    assert report["uploaded"] == len(stored) == 300 - len(refused)  # (calls)
    assert sum(bool(extras) for *_, extras in sent) > len(sent) // 2  # the origins went along
    assert {c["project_id"] for c in stored} == {OVERRIDE}
    # the rejected file holds each refused record as written: its own project_id, its
    # keys in their order, at its line
    by_line = {}
    for raw in rejected.splitlines():
        rec = orjson.loads(raw)
        meta = rec.pop("_tracecli")
        assert meta["status"] == 422
        by_line[meta["line"]] = rec
    assert {rec["id"] for rec in by_line.values()} == set(refused)
    for n, rec in by_line.items():
        want = orjson.loads(lines[n - 1])
        assert list(rec.items()) == list(want.items()), n
    projects = {rec["project_id"] for rec in by_line.values()}
    assert projects == {WRITTEN, OVERRIDE}  # (both kinds among the refused)
