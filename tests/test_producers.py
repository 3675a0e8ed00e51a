"""What real producers write, through `validate` and `upload` against weave's own server.

- a record nested ~300 levels deep among good records: no traceback, the good records
  stored, the deep one sent (weave-ref stores it) with a warning naming its field, and
  `validate` and `upload` saying the same; a deep record that is refused lands whole in
  the rejected file (orjson cannot write it);
- integers beyond 64 bits keep their digits, also in the rejected file;
- what the weave SDK writes (`trace_id` and `is_eval` on ends, `wb_run_id` as
  entity/project/run) validates clean and is stored;
- a project dumped with `/calls/stream_query` validates clean and uploads into an empty
  server back identical, field by field.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.servers import ServerHandle, start_weave_ref
from tests.support.uploadkit import diff_calls, gen_calls, read_back
from tracecli.diagnostics import Severity
from tracecli.upload.api import UploadOptions, upload
from tracecli.upload.validate import validate_paths

pytestmark = pytest.mark.slow  # weave-ref and large inputs: out of the fast loop

WARN = Severity.WARNING
GOOD = "acme/good"
DEEP = "acme/deep"


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> Any:
    handle = start_weave_ref(tmp_path_factory.mktemp("ref"))
    yield handle
    handle.stop()


def opts(tmp: Path, url: str, **kw: Any) -> UploadOptions:
    work = tmp / f"work-{uuid.uuid4().hex[:6]}"
    work.mkdir()
    kw.setdefault("rejected", work / "rejected.jsonl")
    kw.setdefault("journal_path", work / "journal.db")
    return UploadOptions(server=url, max_retry_time=0, **kw)


def flat(rec: dict[str, Any], kind: str) -> bytes:
    return orjson.dumps({"type": kind, **rec}) + b"\n"


def count(url: str, project: str) -> int:
    r = httpx.post(url + "/calls/query_stats", json={"project_id": project}, timeout=60)
    r.raise_for_status()
    return int(r.json()["count"])


def triples(diags: list[Any]) -> list[tuple[int, str, str, str]]:
    """What validate and upload both report (upload also names the refused call's end)."""
    return sorted(
        (d.line, d.field, d.code, d.severity.value)
        for d in diags
        if d.code != "other-half-rejected"
    )


def test_deep_record_among_good_ones(ref: ServerHandle, tmp_path: Path) -> None:
    calls = gen_calls(12, seed=7, project=GOOD)
    lines = [flat(s, "start") + flat(e, "end") for s, e in calls]
    deep_start, deep_end = gen_calls(1, seed=8, project=DEEP)[0]
    deep_start["inputs"] = {"tree": "DEEP"}
    deep = flat(deep_start, "start").replace(b'"DEEP"', b'{"a":' * 300 + b"1" + b"}" * 300)
    lines.insert(5, deep + flat(deep_end, "end"))
    bad_start, bad_end = gen_calls(1, seed=9, project=GOOD)[0]
    bad_start["inputs"] = {"tree": "DEEP"}
    bad_start["started_at"] = "yesterday"  # refused: the deep record goes to the rejected file
    bad = flat(bad_start, "start").replace(b'"DEEP"', b"[" * 300 + b"1" + b"]" * 300)
    lines.append(bad + flat(bad_end, "end"))
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join(lines))

    report = validate_paths([str(path)], jobs=0)
    deep_warnings = [d for d in report.diagnostics if d.code == "depth"]
    # the refused record (line 27) is deep as well: its warning comes with its error
    assert [(d.line, d.severity) for d in deep_warnings] == [(11, WARN), (27, WARN)]
    assert deep_warnings[0].field.startswith("inputs.tree.a.a.(... 293 more ...)")
    assert "nests 301 levels deep" in deep_warnings[0].message

    o = opts(tmp_path, ref.url)
    up = upload([str(path)], o)
    assert triples(up.diagnostics) == triples(report.diagnostics)  # they agree
    assert (up.uploaded, up.rejected) == (13, 2)  # the refused start and its end
    assert diff_calls(calls, read_back(ref.url, GOOD)) == []
    assert count(ref.url, DEEP) == 1  # stored; weave-ref cannot read it back (the warning)
    rejected = [json.loads(x) for x in Path(str(o.rejected)).read_text().splitlines()]
    again = next(r for r in rejected if r.get("type") == "start")
    assert again["id"] == bad_start["id"]
    assert json.dumps(again["inputs"]) == json.dumps(json.loads(bad)["inputs"])


def test_wide_integers_keep_their_digits_in_the_rejected_file(tmp_path: Path) -> None:
    start, end = gen_calls(1, seed=3)[0]
    start["started_at"] = "yesterday"
    raw = flat(start, "start").replace(
        b'"inputs": {', b'"inputs": {"seed": 2361183241434822606848, '
    )
    raw = raw.replace(b'"inputs":{', b'"inputs":{"seed":2361183241434822606848,')
    path = tmp_path / "t.jsonl"
    path.write_bytes(raw + flat(end, "end"))
    assert b"2361183241434822606848" in raw
    o = UploadOptions(
        db=tmp_path / "s.db", rejected=tmp_path / "rej.jsonl", journal_path=tmp_path / "j.db"
    )
    up = upload([str(path)], o)
    assert up.rejected == 2
    assert b"2361183241434822606848," in (tmp_path / "rej.jsonl").read_bytes()


def sdk_records(project: str) -> list[dict[str, Any]]:
    """Calls as the weave 0.54 SDK sends them (upsert_batch items): a run id in its form,
    thread and turn ids, `trace_id` and `is_eval` on the end, usage and status counts."""
    out: list[dict[str, Any]] = []
    trace = str(uuid.uuid4())
    root = str(uuid.uuid4())
    for i, cid in enumerate([root, str(uuid.uuid4()), str(uuid.uuid4())]):
        start = {
            "project_id": project,
            "id": cid,
            "op_name": f"weave:///{project}/op/step_{i}:0123456789abcdef",
            "display_name": f"step {i}" if i else None,
            "trace_id": trace,
            "parent_id": None if i == 0 else root,
            "thread_id": "thread-1",
            "turn_id": cid if i == 0 else None,
            "started_at": f"2026-03-02T09:14:0{5 + i}.123456Z",
            "attributes": {"weave": {"client_version": "0.54.0", "os_name": "Linux"}},
            "inputs": {"n": i, "big": 2**64 if i == 2 else i},
            "wb_run_id": f"{project}/1mzq0k2x",
            "wb_run_step": i,
        }
        end = {
            "project_id": project,
            "id": cid,
            "trace_id": trace,
            "ended_at": f"2026-03-02T09:14:0{6 + i}.5Z",
            "exception": "ValueError: boom" if i == 1 else None,
            "output": None if i == 1 else {"answer": i},
            "summary": {
                "usage": {"gpt-4o-mini": {"prompt_tokens": 3, "total_tokens": 5, "requests": 1}}
            }
            if i
            else {"status_counts": {"success": 2, "error": 1}},
            "wb_run_step_end": i + 1,
            "is_eval": False,
        }
        out.append({"mode": "start", "req": {"start": start}})
        out.append({"mode": "end", "req": {"end": end}})
    return out


def write_json_lines(path: Path, records: list[Any]) -> Path:
    # json, not orjson: 2**64 + 0 fits orjson, but keep the writer the SDK's own
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def dump(url: str, project: str) -> bytes:
    r = httpx.post(
        url + "/calls/stream_query",
        json={
            "project_id": project,
            "sort_by": [{"field": "started_at", "direction": "asc"}],
            "include_costs": True,
            "include_storage_size": True,
            "include_total_storage_size": True,
            "include_feedback": True,
        },
        headers={"Accept": "application/jsonl"},
        timeout=60,
    )
    r.raise_for_status()
    return r.content


def same_prices(row: dict[str, Any]) -> dict[str, Any]:
    """`row` without the dates of the price rows its costs were computed from (each server
    creates its price table when it starts): not part of the call."""
    costs = ((row.get("summary") or {}).get("weave") or {}).get("costs") or {}
    for price in costs.values():
        price.pop("effective_date", None)
        price.pop("created_at", None)
    return row


@pytest.mark.slow
def test_sdk_records_and_a_stream_query_dump_round_trip(ref: ServerHandle, tmp_path: Path) -> None:
    project = "acme/sdk"
    src = write_json_lines(tmp_path / "sdk.jsonl", sdk_records(project))
    report = validate_paths([str(src)], jobs=0)
    assert report.diagnostics == []  # trace_id, is_eval and the run id are the SDK's own
    up = upload([str(src)], opts(tmp_path, ref.url, mode="batch"))
    assert (up.uploaded, up.rejected, up.warnings) == (3, 0, 0)

    exported = dump(ref.url, project)
    rows = [json.loads(x) for x in exported.splitlines() if x.strip()]
    assert len(rows) == 3 and rows[2]["inputs"]["big"] == 2**64
    assert {"deleted_at", "storage_size_bytes", "total_storage_size_bytes"} <= rows[0].keys()
    assert "weave" in rows[0]["summary"]
    path = tmp_path / "dump.jsonl"
    path.write_bytes(exported)
    report = validate_paths([str(path)], jobs=0)
    assert report.diagnostics == []  # the server's own read-only fields are no warning

    empty = start_weave_ref(tmp_path / "empty")
    try:
        for mode in ("complete", "batch"):
            if mode == "batch":  # the same ids again: a second empty server
                empty.stop()
                empty = start_weave_ref(tmp_path / "empty2")
            up = upload([str(path)], opts(tmp_path, empty.url, mode=mode))
            assert (up.uploaded, up.rejected, up.warnings) == (3, 0, 0), up.diagnostics
            back = [json.loads(x) for x in dump(empty.url, project).splitlines() if x.strip()]
            assert len(back) == len(rows)
            for want, got in zip(map(same_prices, rows), map(same_prices, back), strict=True):
                diff = {k for k in want.keys() | got.keys() if want.get(k) != got.get(k)}
                assert diff == set(), repr((mode, {k: (want.get(k), got.get(k)) for k in diff}))
    finally:
        empty.stop()
