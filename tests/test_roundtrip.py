"""Upload, read everything back through /calls/stream_query, compare field by field.

Against `tracecli serve` and against the Weave reference server (weave's own
SqliteTraceServer), in every mode: none missing, none twice, none changed. The reference
server keys calls by id globally (a re-sent id is a 500), so every test gets a fresh one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import SAMPLES, require_shared
from tests.support.servers import start_serve, start_weave_ref
from tests.support.uploadkit import read_back
from tracecli.check.records import parse_record
from tracecli.inputs.reader import expand_paths, read_items
from tracecli.schema.fields import END_FIELDS
from tracecli.upload.api import UploadOptions, upload

MODES = ["auto", "complete", "batch", "single"]
# 5 000 calls are 20 requests of 500 records (10 000 in batch, by 4 workers): enough for ends
# to overtake their starts and for every mode's paths; test_chaos.py sends 20 000 per run.
GEN_CALLS = 5_000
SIZE = {"auto": GEN_CALLS, "batch": GEN_CALLS, "complete": GEN_CALLS, "single": 1_500}
PROJECT = "acme/agents"  # gen_traces.py's


# -- expected content -------------------------------------------------------------------


def expected_calls(paths: list[str], project: str | None = None) -> dict[tuple[str, str], dict]:
    """(project, id) → the call as the inputs describe it (start and end merged)."""
    calls: dict[tuple[str, str], dict] = {}
    for _, item in read_items(paths):
        assert isinstance(item, tuple), item
        loc, value = item
        rec = parse_record(loc, value).record
        assert rec is not None, f"{loc}: invalid sample"
        if rec.kind == "freeplay":
            continue
        data = dict(rec.data)
        if project is not None:
            data["project_id"] = project
        key = (data["project_id"], data["id"])
        call = calls.setdefault(key, {})
        if rec.kind == "end":
            call.update({k: data[k] for k in ("project_id", "id", *END_FIELDS) if k in data})
        elif rec.kind == "start":
            call.update({k: v for k, v in data.items() if k not in END_FIELDS})
        else:
            call.update(data)
    return calls


def instant(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    t = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.timestamp()


def compare(expected: dict[tuple[str, str], dict], stored: list[dict]) -> list[str]:
    problems: list[str] = []
    seen: dict[tuple[str, str], dict] = {}
    for row in stored:
        key = (row["project_id"], row["id"])
        if key in seen:
            problems.append(f"stored twice: {key}")
        seen[key] = row
    missing = expected.keys() - seen.keys()
    extra = seen.keys() - expected.keys()
    if missing:
        problems.append(f"{len(missing)} missing, e.g. {sorted(missing)[:3]}")
    if extra:
        problems.append(f"{len(extra)} unexpected, e.g. {sorted(extra)[:3]}")
    changed = 0
    for key, want in expected.items():
        row = seen.get(key)
        if row is None:
            continue
        bad = [
            f
            for f in ("trace_id", "parent_id", "op_name", "inputs", "output", "exception")
            if row.get(f) != want.get(f)
        ]
        if want.get("display_name") is not None and row.get("display_name") != want["display_name"]:
            bad.append("display_name")
        for f in ("started_at", "ended_at"):
            if instant(row.get(f)) != pytest.approx(instant(want.get(f)), abs=1e-6):
                bad.append(f)
        want_usage = (want.get("summary") or {}).get("usage") or {}
        got_usage = (row.get("summary") or {}).get("usage") or {}
        if {m: {k: v for k, v in u.items() if v is not None} for m, u in got_usage.items()} != {
            m: {k: v for k, v in u.items() if v is not None} for m, u in want_usage.items()
        }:
            bad.append("summary.usage")
        for f in ("thread_id", "turn_id", "wb_run_id", "wb_run_step", "wb_run_step_end"):
            if row.get(f) != want.get(f):
                bad.append(f)
        for k, v in (want.get("attributes") or {}).items():
            if (row.get("attributes") or {}).get(k) != v:
                bad.append(f"attributes.{k}")
        if bad:
            changed += 1
            if changed <= 5:
                problems.append(f"{key} differs in {bad}: stored {row} / input {want}")
    return problems


def read_all(url: str, projects: set[str]) -> list[dict]:
    rows: list[dict] = []
    for p in sorted(projects):
        rows.extend(read_back(url, p))
    return rows


# -- inputs -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gen_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gen = require_shared("tools", "gen_traces.py")
    path = tmp_path_factory.mktemp("gen") / "flat.jsonl"
    with path.open("wb") as f:
        subprocess.run(
            [sys.executable, str(gen), "--calls", str(GEN_CALLS), "--seed", "11"],
            stdout=f,
            check=True,
        )
    return path


def head_calls(src: Path, n: int, dest: Path) -> Path:
    """The records of the first `n` calls of a flat file (starts with their ends)."""
    keep: set[str] = set()
    with src.open("rb") as f, dest.open("wb") as out:
        for line in f:
            rec = orjson.loads(line)
            if rec["type"] == "start" and len(keep) < n:
                keep.add(rec["id"])
            if rec["id"] in keep:
                out.write(line)
    return dest


def samples_weave() -> list[str]:
    folder = SAMPLES / "weave"
    if not folder.is_dir() or not expand_paths([str(folder)]):
        pytest.skip("samples/weave is not there yet")
    return [str(folder)]


# -- servers ------------------------------------------------------------------------------


@contextlib.contextmanager
def server(kind: str, tmp: Path, *extra: str) -> Iterator[str]:
    """A fresh `tracecli serve` or weave reference server (tests/support/servers.py),
    stopped after."""
    handle = start_serve(tmp / "serve") if kind == "serve" else start_weave_ref(tmp / "ref", *extra)
    try:
        yield handle.url
    finally:
        handle.stop()


def run_upload(url: str, paths: list[str], tmp: Path, **kw: Any):
    opts = UploadOptions(
        server=url,
        rejected=tmp / "rejected.jsonl",
        journal_path=tmp / "journal.db",
        **kw,
    )
    return upload(paths, opts)


# -- the tests ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["serve", "weave_ref"])
def test_generated_file_roundtrip(kind: str, mode: str, gen_file: Path, tmp_path: Path) -> None:
    path = gen_file if SIZE[mode] >= GEN_CALLS else head_calls(gen_file, SIZE[mode], tmp_path / "f")
    expected = expected_calls([str(path)])
    assert len(expected) >= SIZE[mode]
    # The reference server in strict order loses an end sent before its start: proof of order.
    extra = ("--strict-order",) if mode in ("batch", "single") else ()
    with server(kind, tmp_path, *extra) as url:
        report = run_upload(url, [str(path)], tmp_path, mode=mode)
        assert report.exit_code == 0, report.to_dict()
        assert report.uploaded == len(expected)
        assert report.rejected == 0 and report.unsent == 0
        stored = read_all(url, {PROJECT})
    assert compare(expected, stored) == []
    endpoint = {
        "auto": "calls/complete",
        "complete": "calls/complete",
        "batch": "call/upsert_batch",
        "single": "call/end",
    }[mode]
    assert endpoint in report.by_endpoint


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["serve", "weave_ref"])
def test_samples_roundtrip(kind: str, mode: str, tmp_path: Path) -> None:
    paths = samples_weave()
    expected = expected_calls(paths)
    complete_only = {k: c for k, c in expected.items() if "ended_at" in c and "op_name" in c}
    with server(kind, tmp_path, *(("--strict-order",) if mode == "batch" else ())) as url:
        report = run_upload(url, paths, tmp_path, mode=mode)
        stored = read_all(url, {p for p, _ in expected})
    if mode == "complete":
        # only completed calls go; a running call or a lone end is rejected with the reason
        assert report.rejected == sum(
            1 for c in expected.values() if c not in complete_only.values()
        )
        assert compare(complete_only, stored) == []
    else:
        assert report.exit_code == 0, report.to_dict()
        assert compare(expected, stored) == []


@pytest.mark.slow
def test_project_flag_rewrites_every_record(tmp_path: Path, gen_file: Path) -> None:
    path = head_calls(gen_file, 300, tmp_path / "small.jsonl")
    with server("serve", tmp_path) as url:
        report = run_upload(url, [str(path)], tmp_path, project="other/place")
        assert report.exit_code == 0
        assert read_back(url, PROJECT) == []
        stored = read_back(url, "other/place")
    assert compare(expected_calls([str(path)], project="other/place"), stored) == []


def test_calls_of_several_projects_go_to_their_own_routes(tmp_path: Path) -> None:
    lines = []
    for i, project in enumerate(["e/one", "e/two", "f/three"]):
        cid = f"{i:016x}"
        lines.append(
            {
                "project_id": project,
                "id": cid,
                "trace_id": f"{i:032x}",
                "op_name": "op",
                "started_at": "2025-01-01T00:00:00Z",
                "ended_at": "2025-01-01T00:00:01Z",
                "attributes": {},
                "inputs": {"i": i},
                "summary": {},
            }
        )
    path = tmp_path / "multi.jsonl"
    path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    with server("serve", tmp_path) as url:
        report = run_upload(url, [str(path)], tmp_path)
        assert report.exit_code == 0
        assert report.requests == 3  # calls/complete is per project
        stored = read_all(url, {"e/one", "e/two", "f/three"})
    assert compare(expected_calls([str(path)]), stored) == []


GEN_LAGGED = ("--calls", "1500", "--seed", "21", "--lag", "300", "--open", "0.05")


def lagged_split_inputs(tmp: Path) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """gen_traces.py with ends 300 records late and 5% of calls left running, every field
    a call can carry set on some calls, split as a logger rotating files would: the starts
    in a .jsonl.gz, the ends in a YAML file and a .jsonl, given ends first. One start lacks
    its op_name (refused by validation). Returns the paths, the refused start and its end."""
    import gzip
    import random

    import yaml

    gen = require_shared("tools", "gen_traces.py")
    out = subprocess.run(
        [sys.executable, str(gen), *GEN_LAGGED],
        capture_output=True,
        check=True,
    ).stdout
    rng = random.Random(21)
    starts, ends = [], []
    for line in out.splitlines():
        rec = orjson.loads(line)
        if rec["type"] == "start":
            if rng.random() < 0.3:
                rec["display_name"] = "Résumé ✓ " + rec["id"][:6]
                rec["thread_id"] = "thread-" + rec["trace_id"][:8]
                rec["turn_id"] = rec["id"]
            if rng.random() < 0.2:
                rec["wb_run_id"], rec["wb_run_step"] = "acme/agents/run-1", rng.randint(0, 99)
            starts.append(rec)
        else:
            if rng.random() < 0.1:
                rec["exception"] = "ValueError: boom\nTraceback (most recent call last): ..."
                rec["wb_run_step_end"] = rng.randint(100, 199)
            if rng.random() < 0.1:
                rec["output"] = rng.choice([None, "plain", [1, "two", {"three": 3.5}]])
            ends.append(rec)
    ended = {e["id"] for e in ends}
    bad = next(r for r in starts[100:] if r["id"] in ended)
    bad_end = next(e for e in ends if e["id"] == bad["id"])
    del bad["op_name"]
    with gzip.open(tmp / "starts.jsonl.gz", "wb") as f:
        f.writelines(orjson.dumps(r) + b"\n" for r in starts)
    (tmp / "ends-1.yaml").write_text(yaml.safe_dump(ends[:150], allow_unicode=True))
    (tmp / "ends-2.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in ends[150:]))
    paths = [str(tmp / "ends-1.yaml"), str(tmp / "ends-2.jsonl"), str(tmp / "starts.jsonl.gz")]
    return paths, bad, bad_end


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["auto", "batch"])
@pytest.mark.parametrize("kind", ["serve", "weave_ref"])
def test_lagged_running_split_and_compressed_inputs_roundtrip(
    kind: str, mode: str, tmp_path: Path
) -> None:
    """Ends before their starts across files and formats, running calls, every field: all
    stored once and unchanged; the refused start takes its end into the rejected file (no
    lone end on the server) and the fixed pair, replayed, stores the whole call."""
    paths, bad, bad_end = lagged_split_inputs(tmp_path)
    key = (bad["project_id"], bad["id"])
    good = {k: c for k, c in expected_calls_valid(paths).items() if k != key}
    running = sum(1 for c in good.values() if "ended_at" not in c)
    assert running > 40 and len(good) > 1400
    with server(kind, tmp_path) as url:
        report = run_upload(url, paths, tmp_path, mode=mode)
        assert report.exit_code == 1
        assert (report.invalid, report.rejected, report.unsent) == (1, 2, 0)
        assert (report.uploaded, report.ends_uploaded) == (len(good), 0)
        assert report.records == report.acked_records + report.rejected
        if mode == "auto":
            assert report.by_endpoint == {
                "calls/complete": len(good) - running,
                "call/upsert_batch": running,
            }
        assert compare(good, read_all(url, {key[0]})) == []
        rejected_file = (tmp_path / "rejected.jsonl").read_bytes()
        rejected = [orjson.loads(x) for x in rejected_file.splitlines()]
        assert sorted((r["type"], r["id"]) for r in rejected) == [
            ("end", bad["id"]),
            ("start", bad["id"]),
        ]
        fixed = tmp_path / "fixed.jsonl"
        fixed.write_bytes(
            b"".join(
                orjson.dumps({**{k: v for k, v in r.items() if k != "_tracecli"}, "op_name": "x"})
                + b"\n"
                if r["type"] == "start"
                else orjson.dumps({k: v for k, v in r.items() if k != "_tracecli"}) + b"\n"
                for r in rejected
            )
        )
        (tmp_path / "again").mkdir()
        again = run_upload(url, [str(fixed)], tmp_path / "again", mode=mode)
        assert again.exit_code == 0 and again.uploaded == 1, again.to_dict()
        (row,) = [r for r in read_all(url, {key[0]}) if r["id"] == bad["id"]]
    assert row["op_name"] == "x" and instant(row["ended_at"]) == instant(bad_end["ended_at"])


def expected_calls_valid(paths: list[str]) -> dict[tuple[str, str], dict]:
    """expected_calls for inputs holding refused records (skipped here)."""
    calls: dict[tuple[str, str], dict] = {}
    for _, item in read_items(paths):
        loc, value = item
        rec = parse_record(loc, value).record
        if rec is None:
            continue
        data = dict(rec.data)
        call = calls.setdefault((data["project_id"], data["id"]), {})
        if rec.kind == "end":
            call.update({k: data[k] for k in ("project_id", "id", *END_FIELDS) if k in data})
        else:
            call.update({k: v for k, v in data.items() if k not in END_FIELDS})
    return calls
