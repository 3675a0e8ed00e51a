"""Weave's own server judges what producers write: times, escapes, numbers, kills.

tests/test_edge_values.py holds odd *values* to weave-ref; this module adds what it leaves
out, each case one call in a project of its own, written as raw JSON text:

- times as producers write them (offsets, 1-9 fraction digits, lowercase `t`/`z`, a space,
  no zone, a date alone, epoch numbers, escapes) and ids, names and numbers spelled other
  ways. Each is posted to weave-ref directly (`calls/complete`); then `validate` must call
  it an error exactly when weave-ref refuses it (a call that ends before it starts, which
  weave's server stores with a negative latency, is a `time-order` warning), and
  `upload` to weave-ref must store what the direct post stored, field by field, times
  included (tracecli sends the time as written);
- `tracecli serve` stores the same, except that it answers a time with an offset in UTC
  (docs/serve-and-tail.md) and reads back a zoneless time that weave-ref stores but then
  cannot read back (its `stream_query` fails on the project);
- an upload of an odd-shaped file (tests/support/producer_files.py) killed with `kill -9`
  at random moments, then resumed, stores exactly what one uninterrupted upload of the
  same file stores on another weave-ref, and refuses the same records.

Run with TZ=UTC (weave-ref's times are naive otherwise).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import orjson
import pytest

from tests.support.faultproxy import FaultProxy, Faults
from tests.support.producer_files import odd_lines
from tests.support.servers import ServerHandle, start_all, start_serve, start_weave_ref
from tests.support.uploadkit import read_back, run_cli, start_cli, wait_forwarded
from tracecli.upload.api import UploadOptions, upload
from tracecli.upload.validate import validate_paths

pytestmark = [pytest.mark.slow, pytest.mark.weave_ref]

START_FIELDS = {
    "project_id", "id", "trace_id", "op_name", "started_at", "attributes", "inputs",
    "parent_id", "display_name", "thread_id", "turn_id", "wb_run_id", "wb_run_step",
}  # fmt: skip
SERVER_STAMPED = ("id", "trace_id", "project_id", "wb_user_id")
UNREADABLE = "(stream_query broke)"
ABSENT = "(not stored)"
# One client for the module's requests: httpx.post() builds a client each time, and with it
# an SSL context that loads the CA bundle (~25 ms), unused on http://127.0.0.1. No
# keep-alive: each request still has a connection of its own.
HTTP = httpx.Client(timeout=60, limits=httpx.Limits(max_keepalive_connections=0))


@dataclass(frozen=True)
class Case:
    field: str
    raw: str  # JSON text spliced in as it is


CASES = [
    Case("started_at", '"2025-10-09T08:53:20.5+02:00"'),
    Case("started_at", '"2025-10-09T08:53:20-05:30"'),  # after the end: time-order warning
    Case("started_at", '"2025-10-09T08:53:20.5+0200"'),
    Case("started_at", '"2025-10-09T08:53:20.5+14:00"'),
    Case("started_at", '"2025-10-09T08:53:20.5-00:00"'),
    Case("started_at", '"2025-10-09T08:53:20+00:00"'),
    Case("started_at", '"2025-10-09T08:53:20.1Z"'),
    Case("started_at", '"2025-10-09T08:53:20.1234567Z"'),
    Case("started_at", '"2025-10-09T08:53:20.123456789Z"'),
    Case("started_at", '"2025-10-09T08:53:20.9999999Z"'),
    Case("started_at", '"2025-10-09t08:53:20.5z"'),
    Case("started_at", '"2025-10-09 08:53:20.5Z"'),
    Case("started_at", '"2025-10-09T08:53Z"'),
    Case("started_at", '"2025-10-09T08:53:20,5Z"'),
    Case("started_at", '"2025-10-09T08:53:20\\u002e5Z"'),
    Case("started_at", '"2025-10-09T08:53:20.5"'),  # no zone
    Case("started_at", '"2025-10-09"'),  # a date alone
    Case("started_at", '"0001-01-01T00:00:00Z"'),
    Case("started_at", '"2024-02-29T23:59:60Z"'),  # a leap second: refused
    Case("started_at", "1760000000"),
    Case("started_at", "1760000000.5"),
    Case("started_at", '"1760000000"'),
    Case("started_at", "1e9"),
    Case("started_at", "17600000000000"),  # epoch ms read as s: after the end (a warning)
    Case("started_at", "true"),
    Case("ended_at", '"2025-10-09T08:53:21.123456789Z"'),
    Case("ended_at", '"2025-10-09T13:53:20.5+02:00"'),
    Case("ended_at", "1760030000"),
    Case("op_name", '"op\\u00e9 \\ud83d\\ude00"'),
    Case("op_name", json.dumps("\u00e9" * 128, ensure_ascii=False)),
    Case("op_name", json.dumps("\u00e9" * 129)),  # 129 characters: refused
    Case("display_name", json.dumps("\U0001f600" * 1024)),
    Case("display_name", json.dumps("\U0001f600" * 1025)),
    Case("thread_id", '"th\\u00e9"'),
    Case("turn_id", '"0123456789abcdef"'),
    Case("parent_id", '"0123456789abcdef"'),
    Case("wb_run_step", "1.0"),
    Case("wb_run_step", "1e2"),
    Case("wb_run_step", "true"),
    Case("wb_run_step", "-0"),
    Case("wb_run_step", "5.5"),
    Case("exception", '""'),
    Case("exception", "5"),
    Case("output", "1E5"),
    Case("output", "0.1e1"),
    Case("output", "100000000000000000000.0"),
    Case("output", "5e-324"),
    Case("output", "2.5e-400"),
    Case("output", "-0"),
    Case("summary", '{"usage": {"m": {"total_tokens": 1.0}}}'),  # stored as 1
    Case("summary", '{"usage": {"m": {"requests": 1e2, "prompt_tokens": true, "cost": 1.0}}}'),
    Case("summary", '{"usage": {"m": {"input_tokens": "7", "output_tokens": -0.0}}}'),
    Case("summary", '{"usage": {"m": {"requests": "7.0", "total_tokens": "1_000"}}}'),
    Case("summary", '{"status_counts": {"success": 1.0}, "other": {"total_tokens": 1.0}}'),
    Case("summary", '{"usage": {"m": {"requests": 1.5}}}'),
    Case("summary", '{"usage": {"m": {"prompt_tokens": null}}}'),
    Case("summary", '{"status_counts": {"bogus": 1}}'),
    Case("inputs", '{"\\u0000": 1}'),
    Case("inputs", '{"a.b": 1, "a": {"b": 2}}'),
    Case("inputs", '{"x": "' + "\u00e9" * 100_000 + '"}'),
    Case("inputs", '{"\\u0069d": "escaped key", "q\\/r": "<\\u003c>"}'),
]
# What weave's server stores (200) with a negative latency: a warning, sent as written.
TIME_ORDER = "warning:ended_at:time-order"
# A zoneless time: weave-ref stores it, then its stream_query fails on the project.
ZONELESS = {'"2025-10-09T08:53:20.5"', '"2025-10-09"'}

_ids = itertools.count()


def _call(case: Case, tag: str) -> tuple[str, dict[str, str]]:
    project = f"judge/c{next(_ids)}-{tag}"
    fields = {
        "project_id": json.dumps(project),
        "id": f'"{uuid.uuid4()}"',
        "trace_id": f'"{uuid.uuid4()}"',
        "op_name": '"judge.case"',
        "started_at": '"2025-10-09T08:00:00.000000Z"',
        "attributes": "{}",
        "inputs": '{"q": 1}',
        "ended_at": '"2025-10-09T10:00:00.000000Z"',
        "output": "null",
        "summary": "{}",
    }
    fields[case.field] = case.raw
    return project, fields


def _obj(fields: dict[str, str], keys: set[str] | None = None) -> str:
    inner = ", ".join(f'"{k}": {v}' for k, v in fields.items() if keys is None or k in keys)
    return "{" + inner + "}"


def _read(url: str, project: str) -> Any:
    """The one call of `project`, less what each server stamps; ABSENT or UNREADABLE else."""
    try:
        r = HTTP.post(
            url + "/calls/stream_query",
            json={"project_id": project},
            headers={"Accept": "application/jsonl"},
        )
        rows = [orjson.loads(x) for x in r.content.splitlines() if x.strip()]
    except (httpx.HTTPError, orjson.JSONDecodeError):
        return UNREADABLE
    if r.status_code != 200 or (rows and "id" not in rows[0]):
        return UNREADABLE
    if not rows:
        return ABSENT
    return {k: _typed(v) for k, v in rows[0].items() if k not in SERVER_STAMPED}


def _typed(value: Any) -> Any:
    """`value` with floats and booleans told from integers (1.0 == 1 == True in Python)."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, bool | float):
        return (type(value).__name__, repr(value))
    return value


def _utc(value: Any) -> Any:
    """An ISO time with an offset as serve answers it: the same instant in UTC."""
    if isinstance(value, str):
        try:
            t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if t.tzinfo is not None:
            return t.timestamp()
    return value


@dataclass
class Judged:
    status: int  # weave-ref's answer to the direct post
    stored: Any  # and what it then reads back
    codes: list[str]  # validate's "severity:field:code" for the case
    uploaded: dict[str, Any]  # "weave" | "serve" -> what upload stored there


class Servers(NamedTuple):
    """The module's servers, started at once; every case and the kill test write projects
    of their own."""

    ref: ServerHandle  # weave-ref, a re-sent call id replacing the stored call
    plain: ServerHandle  # weave-ref answering a re-sent call id with a 500 (its default)
    serve: ServerHandle  # tracecli serve


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("servers")
    handles = start_all(
        partial(start_weave_ref, tmp / "ref", "--dedupe-call-ids"),
        partial(start_weave_ref, tmp / "plain"),
        partial(start_serve, tmp / "serve"),
    )
    try:
        yield Servers(*handles)
    finally:
        for handle in handles:
            handle.stop()


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory, servers: Servers) -> dict[Case, Judged]:
    tmp = tmp_path_factory.mktemp("judge")
    ref, serve = servers.ref, servers.serve
    direct: dict[Case, tuple[int, Any]] = {}
    for case in CASES:
        project, f = _call(case, "direct")
        entity, name = project.split("/")
        r = HTTP.post(
            f"{ref.url}/v2/{entity}/{name}/calls/complete",
            content=('{"batch": [' + _obj(f) + "]}").encode(),
            headers={"Content-Type": "application/json"},
        )
        direct[case] = (r.status_code, _read(ref.url, project))
    codes: dict[Case, list[str]] = {c: [] for c in CASES}
    uploaded: dict[Case, dict[str, Any]] = {c: {} for c in CASES}
    for tag, url in (("weave", ref.url), ("serve", serve.url)):
        lines, projects = [], {}
        for case in CASES:
            project, f = _call(case, tag)
            projects[case] = project
            ends = (set(f) - START_FIELDS) | {"project_id", "id"}
            lines.append('{"type": "start", ' + _obj(f, START_FIELDS)[1:])
            lines.append('{"type": "end", ' + _obj(f, ends)[1:])
        src = tmp / f"cases-{tag}.jsonl"
        src.write_text("\n".join(lines) + "\n")
        if tag == "weave":
            for d in validate_paths([str(src)], jobs=0, max_errors=0).diagnostics:
                code = f"{d.severity.value}:{d.field}:{d.code}"
                codes[CASES[(d.line - 1) // 2]].append(code)
        work = tmp / f"work-{tag}"
        work.mkdir()
        opts = UploadOptions(
            server=url,
            rejected=work / "rejected.jsonl",
            journal_path=work / "journal.db",
            max_retry_time=0,
            jobs=1,
        )
        upload([str(src)], opts)
        for case in CASES:
            uploaded[case][tag] = _read(url, projects[case])
    return {c: Judged(*direct[c], codes[c], uploaded[c]) for c in CASES}


def _name(case: Case) -> str:
    return f"{case.field}={case.raw[:40]}"


@pytest.mark.parametrize("case", CASES, ids=_name)
def test_validate_refuses_what_weave_refuses(judged: dict[Case, Judged], case: Case) -> None:
    j = judged[case]
    errors = [c for c in j.codes if c.startswith("error:")]
    assert bool(errors) == (j.status != 200), (j.status, j.codes)
    if TIME_ORDER in j.codes:  # a call that ends before it starts: weave stores it
        assert j.status == 200 and j.stored["summary"]["weave"]["latency_ms"] < 0
    if case.raw in ZONELESS:  # stored, then unreadable beside the call's zoned time
        assert j.status == 200 and j.stored == UNREADABLE
        assert j.codes == [f"warning:{case.field}:time-no-zone"], j.codes


@pytest.mark.parametrize("case", CASES, ids=_name)
def test_upload_stores_what_weave_stores(judged: dict[Case, Judged], case: Case) -> None:
    j = judged[case]
    want = j.stored if j.status == 200 else ABSENT
    assert j.uploaded["weave"] == want


@pytest.mark.parametrize("case", CASES, ids=_name)
def test_serve_stores_what_weave_stores(judged: dict[Case, Judged], case: Case) -> None:
    j = judged[case]
    want = j.stored if j.status == 200 else ABSENT
    got = j.uploaded["serve"]
    if case.raw in ZONELESS:  # weave-ref cannot read it back; serve reads it as UTC
        assert want == UNREADABLE and isinstance(got, dict), got
        return
    if isinstance(want, dict) and isinstance(got, dict):
        want = {k: _utc(v) for k, v in want.items()}
        got = {k: _utc(v) for k, v in got.items()}
    assert got == want


# -- kill -9 on an odd-shaped file, against weave's server ---------------------------------


def _odd_big_file(path: Path, seed: int, calls: int, project: str) -> Path:
    """Odd shapes (producer_files.odd_lines), many of them: parts of `calls // 24` calls."""
    parts = [odd_lines(seed * 1000 + i, 24, project, readable=True) for i in range(calls // 24)]
    path.write_bytes(b"\n".join(p.removeprefix(b"\xef\xbb\xbf") for p in parts) + b"\n")
    return path


def _rows(url: str, project: str) -> list[dict[str, Any]]:
    rows = [{k: v for k, v in r.items() if k != "wb_user_id"} for r in read_back(url, project)]
    return sorted(rows, key=lambda r: r["id"])


def _rejected_lines(work: Path) -> list[int]:
    """The source lines of the records in the rejected file a run left in `work`."""
    text = (work / "tracecli-rejected.jsonl").read_bytes()
    return sorted(orjson.loads(x)["_tracecli"]["line"] for x in text.splitlines())


def _args(path: Path, url: str) -> list[str]:
    return ["upload", str(path), "--server", url, "--format", "json", "--chunk-size", "40"]


# The control upload takes seconds (4 on a quiet machine, 20 under a load of 15). It once
# ran past 170 s while using little CPU and has not done so again in a hundred runs since,
# under load too: should it happen again, the failure says where it waited.
CONTROL_TIMEOUT = 300


def _server_view(ref: ServerHandle, since: float) -> str:
    """What weave-ref answered since `since` (route and status, counted; the slowest
    requests), and the end of its log: for a failure message."""
    try:
        seen = httpx.get(ref.url + "/__refserver/requests", timeout=10).json()
    except (httpx.HTTPError, ValueError) as exc:
        return f"weave-ref's requests: not available ({exc!r})\n{ref.log()[-3000:]}"
    seen = [r for r in seen if r["ts"] >= since]
    answers = Counter(f"{r['path'].rsplit('/', 1)[-1]} {r['status']}" for r in seen)
    slowest = sorted(seen, key=lambda r: -r["ms"])[:5]
    slow = [f"{r['path']} {r['status']} {r['ms']} ms" for r in slowest]
    return f"weave-ref answered {dict(answers)}; slowest: {slow}\nits log:\n{ref.log()[-3000:]}"


def _control(src: Path, ref: ServerHandle, cwd: Path) -> subprocess.CompletedProcess[str]:
    """One uninterrupted upload of `src` to `ref`; a stall fails with every thread's stack
    (uploadkit.run_cli) and what weave-ref answered meanwhile."""
    since = time.time()
    try:
        return run_cli(*_args(src, ref.url), cwd=cwd, timeout=CONTROL_TIMEOUT)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_server_view(ref, since)}") from None


def test_kill_9_on_an_odd_file_then_resume_stores_what_one_run_stores(
    tmp_path: Path, servers: Servers
) -> None:
    """The control upload goes to the module's weave-ref; the killed ones to a weave-ref
    that answers a re-sent call id with a 500, as weave's SQLite server does."""
    rng = random.Random()
    seed = rng.randrange(1 << 20)
    print(f"odd file seed {seed}")  # shown when the test fails
    project = f"audit/kill-{seed:x}"
    src = _odd_big_file(tmp_path / "odd.jsonl", seed, 2400, project)
    one, killed = tmp_path / "one", tmp_path / "killed"
    one.mkdir(), killed.mkdir()
    ref_a, ref_b = servers.ref, servers.plain
    control = _control(src, ref_a, one)
    assert "Traceback" not in control.stderr
    want = orjson.loads(control.stdout)
    with FaultProxy(ref_b.url, Faults(latency=0.01)) as proxy:
        for k in range(2):
            proc = start_cli(_args(src, proxy.url), killed, k)
            wait_forwarded(proxy, proxy.stats.forwarded + rng.randint(2, 12), proc)
            time.sleep(rng.uniform(0, 0.05))
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(30) == -signal.SIGKILL, "the upload finished before the kill"
        last = run_cli(*_args(src, proxy.url), cwd=killed, timeout=CONTROL_TIMEOUT)
    assert "Traceback" not in last.stderr
    got = orjson.loads(last.stdout)
    assert got["unsent"] == 0 and got["skipped"] > 0, got
    assert last.returncode == control.returncode, last.stderr[-2000:]
    assert want["uploaded"] > 2000 and want["errors"] > 0, want  # the odd cases ran
    stored_once, stored_killed = _rows(ref_a.url, project), _rows(ref_b.url, project)
    assert len(stored_killed) == len(stored_once) == want["uploaded"]
    assert stored_killed == stored_once
    assert _rejected_lines(killed) == _rejected_lines(one)
