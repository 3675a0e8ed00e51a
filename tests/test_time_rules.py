"""Two time rules, judged by weave's own server (weave-ref):

- a call that ends before it starts: weave's server stores it through every write route
  (`calls/complete`, `call/upsert_batch`, `call/start` + `call/end`), with a negative
  latency. `validate` says so as a `time-order` warning (an error with `--strict`),
  `upload` sends it as written, `tracecli serve` stores and answers it as weave-ref does,
  and Freeplay's reference server takes it too (with its own warning);
- a time without a zone, or a date alone: weave's server stores it and answers it without
  a zone, but its `calls/stream_query` fails (500) for the whole project when the call's
  other time has a zone. `validate` warns (`time-no-zone`), `upload` sends it as written;
  `tracecli serve` reads such a time as UTC (docs/serve-and-tail.md). Freeplay's
  reference server stores a trace time without a UTC offset (with a warning) but fails on
  a record whose other time has one: tracecli warns of the first and refuses the second;
  a Weave time converted for Freeplay is read as UTC.

Run with TZ=UTC (weave-ref's times are naive otherwise).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from tests.support import freeplay_fixtures
from tests.support.freeplay_fixtures import RefServer, fp_upload
from tests.support.freeplay_golden import GOLDEN
from tests.support.servers import ServerHandle, start_serve
from tests.support.uploadkit import tracecli_serve, weave_ref
from tests.support.validate_kit import P, body, complete, end, new_id, start, write_jsonl
from tracecli.cli import app
from tracecli.schema.rules import _zoneless
from tracecli.upload.api import UploadOptions, upload
from tracecli.upload.validate import validate_paths

refserver_module = freeplay_fixtures.refserver_module
refserver = freeplay_fixtures.refserver

EARLY, LATE = "2026-03-02T09:14:05Z", "2026-03-02T10:14:05.5Z"  # LATE - EARLY = 3600.5 s
LATE_READ = "2026-03-02T10:14:05.500000Z"  # as both servers answer it


def _reversed_calls(project: str = P) -> list[Any]:
    """One call ending before it starts in each shape a file may hold it: a completed call,
    a flat start and end, the batch form, and an end read before its start."""
    a, b, c, d = new_id(), new_id(), new_id(), new_id()
    late = {"project_id": project, "started_at": LATE}
    return [
        complete(a, new_id(), project_id=project, started_at=LATE, ended_at=EARLY),
        start(b, new_id(), project_id=project, started_at=LATE),
        end(b, project_id=project, ended_at=EARLY),
        {"mode": "start", "req": {"start": body(start(c, new_id(), **late))}},
        {"mode": "end", "req": {"end": body(end(c, project_id=project, ended_at=EARLY))}},
        end(d, project_id=project, ended_at=EARLY),
        start(d, new_id(), project_id=project, started_at=LATE),
    ]


# -- validate -------------------------------------------------------------------------------


def _validate(path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    r = CliRunner().invoke(app, ["validate", str(path), "--format", "json", *extra])
    assert "Traceback" not in r.stdout + r.stderr
    return r.exit_code, json.loads(r.stdout)


def test_validate_warns_of_a_call_that_ends_before_it_starts(tmp_path: Path) -> None:
    recs = _reversed_calls()
    src = write_jsonl(tmp_path / "t.jsonl", recs)
    code, out = _validate(src)
    assert code == 0 and out["errors"] == 0 and out["warnings"] == 4, out
    got = [(d["line"], d["severity"], d["field"], d["code"]) for d in out["diagnostics"]]
    assert got == [
        (1, "warning", "ended_at", "time-order"),
        (3, "warning", "ended_at", "time-order"),
        (5, "warning", "ended_at", "time-order"),
        (7, "warning", "started_at", "time-order"),
    ]
    stored = "weave's server stores the call so, with a negative latency"
    assert out["diagnostics"][1]["message"] == (
        f"2026-03-02T09:14:05Z is before the call's started_at 2026-03-02T10:14:05.5Z "
        f"(start at {src}:2): {stored}"
    )
    code, out = _validate(src, "--strict")
    assert code == 1 and out["errors"] == 4 and out["warnings"] == 0, out


def test_validate_fast_paths_agree_on_a_rare_reversed_call(tmp_path: Path) -> None:
    """Among many usual calls (validate's bulk loop, the workers' blocks), one reversed
    call is the same warning at the same line."""
    recs: list[Any] = []
    for i in range(400):
        cid = new_id()
        recs += [start(cid, new_id()), end(cid)]
        if i == 250:
            recs[-1]["ended_at"] = "2026-03-02T09:14:04.999Z"
    src = write_jsonl(tmp_path / "many.jsonl", recs)
    for jobs in (0, 2):
        report = validate_paths([str(src)], jobs=jobs, max_errors=0)
        got = [(d.line, d.severity.value, d.code) for d in report.diagnostics]
        assert got == [(502, "warning", "time-order")]


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("2026-03-02T09:14:05", "started_at"),
        ("2026-03-02 09:14:05.123456789", "started_at"),
        ("2026-03-02T09:14", "started_at"),
        ("2026-03-03", "ended_at"),
    ],
)
def test_validate_warns_of_a_time_without_a_zone(tmp_path: Path, value: str, field: str) -> None:
    cid = new_id()
    recs = [start(cid, new_id()), end(cid, ended_at="2026-03-03T00:00:00Z")]
    recs[0 if field == "started_at" else 1][field] = value
    src = write_jsonl(tmp_path / "z.jsonl", recs)
    code, out = _validate(src)
    assert code == 0 and out["errors"] == 0, out
    [d] = out["diagnostics"]
    line = 1 if field == "started_at" else 2
    assert (d["line"], d["field"], d["code"], d["severity"]) == (
        line,
        field,
        "time-no-zone",
        "warning",
    )
    assert d["message"].startswith(repr(value)) and "weave's server stores it" in d["message"]
    code, out = _validate(src, "--strict")
    assert code == 1 and out["errors"] == 1


@pytest.mark.parametrize(
    "value",
    [
        "2025-10-09T08:53:20.5",
        "2025-10-09",
        "2025-10-09 08:53",
        "2025-10-09T08:53:20.123456789",
        "2025-10-09T08:53:20.5+02:00",
        "2025-10-09T08:53:20.5-0530",
        "2025-10-09t08:53:20.5z",
        "2025-10-09T08:53Z",
        "1760000000",
        "1760000000.5",
        "20251009",
    ],
)
def test_zoneless_is_what_weaves_parser_reads_without_a_zone(value: str) -> None:
    from pydantic import TypeAdapter

    read = TypeAdapter(dt.datetime).validate_python(value)
    assert _zoneless(value) == (read.tzinfo is None)


# -- weave-ref and tracecli serve ----------------------------------------------------------


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerHandle]]:
    tmp = tmp_path_factory.mktemp("times")
    with weave_ref(tmp / "ref") as ref, tracecli_serve(tmp / "serve") as serve:
        yield {"weave-ref": ref, "serve": serve}


def _query(url: str, project: str) -> tuple[int, list[dict[str, Any]]]:
    r = httpx.post(
        url + "/calls/stream_query",
        json={"project_id": project, "sort_by": [{"field": "started_at", "direction": "asc"}]},
        headers={"Accept": "application/jsonl"},
        timeout=60,
    )
    if r.status_code != 200:
        return r.status_code, []
    rows = [orjson.loads(x) for x in r.content.splitlines() if x.strip()]
    return 200, [{k: v for k, v in row.items() if k != "wb_user_id"} for row in rows]


def _post_routes(url: str, project: str, st: str, en: str) -> list[int]:
    """One call with these times through each write route; the statuses, in order."""
    codes = []
    for route in ("complete", "batch", "start+end"):
        cid, tid = new_id(), new_id()
        s = {"project_id": project, "id": cid, "trace_id": tid, "op_name": route,
             "started_at": st, "attributes": {}, "inputs": {"q": 1}}  # fmt: skip
        e = {"project_id": project, "id": cid, "ended_at": en, "output": 1, "summary": {}}
        if route == "complete":
            entity, name = project.split("/")
            path, req = f"/v2/{entity}/{name}/calls/complete", {"batch": [{**s, **e}]}
            codes.append(httpx.post(url + path, json=req, timeout=60).status_code)
        elif route == "batch":
            req = {"batch": [{"mode": "start", "req": {"start": s}},
                             {"mode": "end", "req": {"end": e}}]}  # fmt: skip
            codes.append(httpx.post(url + "/call/upsert_batch", json=req, timeout=60).status_code)
        else:
            codes.append(httpx.post(url + "/call/start", json={"start": s}, timeout=60).status_code)
            codes.append(httpx.post(url + "/call/end", json={"end": e}, timeout=60).status_code)
    return codes


def _times(rows: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(r["started_at"], r["ended_at"], r["summary"]["weave"]["latency_ms"]) for r in rows]


@pytest.mark.weave_ref
@pytest.mark.slow  # weave-ref beside serve (the module's two servers: ~15 s)
def test_every_write_route_stores_a_negative_latency_as_weave_does(
    servers: dict[str, ServerHandle],
) -> None:
    seen = {}
    for name, h in servers.items():
        project = f"times/routes-{name}"
        assert _post_routes(h.url, project, LATE, EARLY) == [200, 200, 200, 200], name
        status, rows = _query(h.url, project)
        assert status == 200 and len(rows) == 3
        seen[name] = sorted((r["op_name"], *t) for r, t in zip(rows, _times(rows), strict=True))
    assert seen["serve"] == seen["weave-ref"]
    assert {t[1:] for t in seen["weave-ref"]} == {(LATE_READ, EARLY, -3600500)}


@pytest.mark.weave_ref
@pytest.mark.slow  # weave-ref beside serve (the module's two servers: ~15 s)
def test_upload_sends_reversed_calls_unchanged_to_weave_and_serve(
    servers: dict[str, ServerHandle], tmp_path: Path
) -> None:
    stored = {}
    text = json.dumps(_reversed_calls("times/PROJECT"))  # the same calls (ids) for both
    for name, h in servers.items():
        project = f"times/upload-{name}"
        recs = json.loads(text.replace("times/PROJECT", project))
        src = write_jsonl(tmp_path / f"{name}.jsonl", recs)
        report = upload([str(src)], _opts(tmp_path / name, h.url))
        assert report.exit_code == 0 and report.uploaded == 4, report.diagnostics
        assert [d.code for d in report.diagnostics] == ["time-order"] * 4
        status, rows = _query(h.url, project)
        assert status == 200
        stored[name] = sorted(
            ({k: v for k, v in r.items() if k != "project_id"} for r in rows),
            key=lambda r: r["id"],
        )
    ref, serve = stored["weave-ref"], stored["serve"]
    assert serve == ref
    assert sorted(t[2] for t in _times(ref)) == [-3600500] * 4


@pytest.mark.weave_ref
@pytest.mark.slow  # weave-ref beside serve (the module's two servers: ~15 s)
def test_upload_sends_a_rare_reversed_call_among_usual_ones(
    servers: dict[str, ServerHandle], tmp_path: Path
) -> None:
    """Upload's quick path of usual calls hands the reversed pair to the general path:
    every call sent, the same rows on weave-ref, serve and the embedded store (`--db`)."""
    recs: list[Any] = []
    for i in range(300):
        cid = new_id()
        recs += [start(cid, new_id(), project_id="times/PROJECT"), end(cid)]
        recs[-1]["project_id"] = "times/PROJECT"
        if i == 170:
            recs[-1]["ended_at"] = "2026-03-02T09:14:04.999Z"
    text = json.dumps(recs)
    stored = {}
    for name, url in (*((n, h.url) for n, h in servers.items()), ("db", None)):
        project = f"times/many-{name}"
        src = write_jsonl(
            tmp_path / f"m-{name}.jsonl", json.loads(text.replace("times/PROJECT", project))
        )
        work = tmp_path / f"m-{name}"
        if url is None:
            work.mkdir()
            opts = UploadOptions(db=work / "t.db", rejected=work / "rejected.jsonl", jobs=1)
        else:
            opts = _opts(work, url)
        report = upload([str(src)], opts)
        assert report.exit_code == 0 and report.uploaded == 300, report.diagnostics
        assert [(d.line, d.code) for d in report.diagnostics] == [(342, "time-order")]
        if url is None:
            reader = start_serve(work / "serve", db_path=work / "t.db")
            try:
                rows = _query(reader.url, project)[1]
            finally:
                reader.stop()
        else:
            rows = _query(url, project)[1]
        stored[name] = sorted(
            ({k: v for k, v in r.items() if k != "project_id"} for r in rows), key=lambda r: r["id"]
        )
    assert len(stored["weave-ref"]) == 300
    assert stored["serve"] == stored["weave-ref"] == stored["db"]
    assert sorted(t[2] for t in _times(stored["serve"]))[0] == -1


@pytest.mark.weave_ref
@pytest.mark.slow  # weave-ref beside serve (the module's two servers: ~15 s)
def test_upload_strict_refuses_a_reversed_call(
    servers: dict[str, ServerHandle], tmp_path: Path
) -> None:
    project = "times/strict"
    src = write_jsonl(tmp_path / "s.jsonl", _reversed_calls(project)[:1])
    report = upload([str(src)], _opts(tmp_path / "w", servers["weave-ref"].url, strict=True))
    assert report.exit_code == 1 and report.uploaded == 0
    assert _query(servers["weave-ref"].url, project) == (200, [])


@pytest.mark.weave_ref
@pytest.mark.slow  # weave-ref beside serve (the module's two servers: ~15 s)
def test_a_time_without_a_zone_is_stored_and_read_back_as_documented(
    servers: dict[str, ServerHandle], tmp_path: Path
) -> None:
    ref, serve = servers["weave-ref"].url, servers["serve"].url
    # one zoneless time beside a zoned one: stored, then weave-ref cannot read the project
    for st, en in (("2025-10-09T08:00:00", "2025-10-09T10:00:00Z"), ("2025-10-08", EARLY)):
        project = f"times/mixed-{len(st)}"
        assert _post_routes(ref, project, st, en) == [200, 200, 200, 200]
        assert _query(ref, project)[0] == 500
        assert _post_routes(serve, project, st, en) == [200, 200, 200, 200]
        status, rows = _query(serve, project)  # serve reads the zoneless time as UTC
        utc = st + "Z" if len(st) > 10 else st + "T00:00:00Z"
        assert status == 200 and {r["started_at"] for r in rows} == {utc}
    # both zoneless: weave-ref answers them without a zone, serve in UTC
    project = "times/naive"
    for url in (ref, serve):
        assert _post_routes(url, project, "2025-10-09T08:00:00", "2025-10-09T10:00:00.5") == [
            200, 200, 200, 200
        ]  # fmt: skip
    want = ("2025-10-09T08:00:00", "2025-10-09T10:00:00.500000", 7200500)
    assert set(_times(_query(ref, project)[1])) == {want}
    assert set(_times(_query(serve, project)[1])) == {(want[0] + "Z", want[1] + "Z", want[2])}
    # upload sends such a file as written, with its warnings
    for name, url in (("ref", ref), ("serve", serve)):
        project = f"times/zoneless-upload-{name}"
        cid = new_id()
        recs = [start(cid, new_id(), project_id=project, started_at="2026-03-02"), end(cid)]
        recs[1]["project_id"] = project
        src = write_jsonl(tmp_path / f"z-{name}.jsonl", recs)
        report = upload([str(src)], _opts(tmp_path / f"z-{name}", url))
        assert report.exit_code == 0 and report.uploaded == 1, report.diagnostics
        assert [d.code for d in report.diagnostics] == ["time-no-zone"]
        status, rows = _query(url, project)
        if name == "ref":
            assert status == 500  # what weave's server does with it
        else:
            assert _times(rows) == [
                ("2026-03-02T00:00:00Z", "2026-03-02T09:14:06.500000Z", 33246500)
            ]


def _opts(work: Path, url: str, **kw: Any) -> UploadOptions:
    work.mkdir(parents=True, exist_ok=True)
    return UploadOptions(
        server=url,
        rejected=work / "rejected.jsonl",
        journal_path=work / "journal.db",
        max_retry_time=0,
        jobs=1,
        **kw,
    )


# -- Freeplay ---------------------------------------------------------------------------------


@pytest.mark.slow  # Freeplay's reference server
def test_freeplay_takes_a_converted_call_that_ends_before_it_starts(
    refserver: RefServer, tmp_path: Path
) -> None:
    """Freeplay's reference server stores a completion whose end_time is before its
    start_time (with a warning of its own): tracecli sends it, the time-order warning said."""
    first = json.loads((GOLDEN / "weave_sdk_examples.jsonl").read_text().splitlines()[0])
    first["started_at"], first["ended_at"] = first["ended_at"], first["started_at"]
    src = write_jsonl(tmp_path / "fp.jsonl", [first])
    report = fp_upload([src], tmp_path, refserver)
    assert report.exit_code == 0 and report.uploaded == 1, report.diagnostics
    # sent as any call (it never was refused for Freeplay), its record's time-order said
    said = [(d.line, d.field, d.code, d.severity.value) for d in report.diagnostics]
    assert said == [(1, "call_info.end_time", "time-order", "warning")]
    assert "Freeplay's reference server stores the record so" in report.diagnostics[0].message
    [rec] = refserver.records()["completions"]
    info = rec["body"]["call_info"]
    assert info["end_time"] < info["start_time"]
    assert "call_info.end_time < call_info.start_time" in rec["warnings"]


FP_TRACES = [f"9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6{c}" for c in "abcd"]


def _fp_trace(trace_id: str, start: str, end: str) -> dict[str, Any]:
    return {"session_id": freeplay_fixtures.SESSION, "trace_id": trace_id, "input": "q",
            "output": "a", "start_time": start, "end_time": end}  # fmt: skip


def test_freeplay_stores_a_trace_time_without_an_offset_and_fails_on_a_mixed_pair(
    refserver: RefServer, tmp_path: Path
) -> None:
    """Freeplay's reference server stores trace times without a UTC offset (with its own
    warning), but fails (500) on a record whose other time has one. tracecli sends the
    first unchanged with a `time-no-zone` warning per time, and refuses the second,
    saying why, before sending it."""
    naive = _fp_trace(FP_TRACES[0], "2026-01-01T12:00:00", "2026-01-01T12:00:01.5")
    mixed = _fp_trace(FP_TRACES[1], "2026-01-01T12:00:00", "2026-01-01T12:00:01.5Z")
    zoned = _fp_trace(FP_TRACES[2], "2026-01-01T12:00:00Z", "2026-01-01T12:00:01.5+00:00")
    backwards = _fp_trace(FP_TRACES[3], "2026-01-01T12:00:01.5Z", "2026-01-01T12:00:00Z")
    headers = {"Authorization": f"Bearer {freeplay_fixtures.API_KEY}"}
    url = (f"{refserver.api_base}/v2/projects/{freeplay_fixtures.PROJECT}/sessions/"
           f"{freeplay_fixtures.SESSION}/traces/id/")  # fmt: skip
    body = {k: v for k, v in mixed.items() if k not in ("session_id", "trace_id")}
    assert httpx.post(url + FP_TRACES[1], json=body, headers=headers).status_code == 500
    src = write_jsonl(tmp_path / "traces.jsonl", [naive, mixed, zoned, backwards])
    report = fp_upload([src], tmp_path, refserver)
    assert (report.uploaded, report.rejected, report.exit_code) == (3, 1, 1), report.diagnostics
    said = [(d.path, d.line, d.field, d.code, d.severity.value) for d in report.diagnostics]
    assert said == [
        (str(src), 1, "start_time", "time-no-zone", "warning"),
        (str(src), 1, "end_time", "time-no-zone", "warning"),
        (str(src), 2, "start_time", "freeplay.iso_time", "error"),
        (str(src), 4, "end_time", "time-order", "warning"),
    ]
    assert "end_time has one" in report.diagnostics[2].message
    stored = {t["trace_id"]: t for t in refserver.records()["traces"]}
    assert stored.keys() == {FP_TRACES[0], FP_TRACES[2], FP_TRACES[3]}
    assert stored[FP_TRACES[3]]["warnings"] == ["end_time < start_time"]
    got = stored[FP_TRACES[0]]
    assert (got["body"]["start_time"], got["body"]["end_time"]) == (
        "2026-01-01T12:00:00",
        "2026-01-01T12:00:01.5",
    )  # fmt: skip  (sent as written)
    assert any("no UTC offset" in w for w in got["warnings"])
    assert stored[FP_TRACES[2]]["warnings"] == []
    (tmp_path / "strict").mkdir()
    strict = fp_upload([src], tmp_path / "strict", refserver, strict=True)
    assert strict.exit_code == 1 and strict.uploaded == 0


def test_weave_times_without_a_zone_or_as_epoch_seconds_convert_for_freeplay(
    refserver: RefServer, tmp_path: Path
) -> None:
    """A Weave time without a zone is read as UTC for Freeplay (the warning says so, not
    weave's read-back trouble); epoch seconds, which weave reads as times, keep their
    time too (they were dropped). Freeplay's reference server stores them without a word."""
    lines = (GOLDEN / "weave_sdk_examples.jsonl").read_text().splitlines()
    recs = []
    for i, when in enumerate(["2026-01-01T12:00:00", "2026-01-01", 1767268800.25, "1767268800"]):
        call = json.loads(lines[0])
        call["id"] = call["id"][:-1] + str(i)
        call["started_at"] = when
        recs.append(call)
    src = write_jsonl(tmp_path / "weave.jsonl", recs)
    report = fp_upload([src], tmp_path, refserver)
    assert report.exit_code == 0 and report.uploaded == 4, report.diagnostics
    said = [(d.line, d.field, d.code, d.severity.value) for d in report.diagnostics]
    assert said == [(1, "started_at", "time-no-zone", "warning"),
                    (2, "started_at", "time-no-zone", "warning")]  # fmt: skip
    assert report.diagnostics[0].message == (
        "'2026-01-01T12:00:00' has no time zone: read as UTC for Freeplay "
        "(2026-01-01T12:00:00+00:00); write it with a 'Z' (or its offset) to say so"
    )
    done = refserver.records()["completions"]
    starts = sorted(c["body"]["call_info"]["start_time"] for c in done)
    assert starts == [1767225600.0, 1767268800.0, 1767268800.0, 1767268800.25]
    assert all(c["warnings"] == [] for c in done)
