"""What the real weave 0.54 SDK writes, as a file: read alike by every path, stored as weave does.

tests/support/sdk_program.py runs once per SDK batching mode (`calls/complete`, and the
legacy `call/upsert_batch` with WEAVE_USE_CALLS_COMPLETE=false), both at once, each through
a recording proxy in front of one weave-ref. Each call-writing request body it sent becomes
lines of a file, in the shape of its route (completed calls, `{mode, req}` batch items,
`{start}`/`{end}` requests), once as orjson writes them and once as `json.dumps` with CRLF
(the SDK's own values: uuid7 ids, op refs, `trace_id` and `is_eval` on ends, usage, run
ids, a 2**64 input).
Then:

- validate, upload and the store give the same answers with their fast paths on and off
  (tests/test_producers_audit.py's `audit`), and validate finds no error;
- the same bodies posted as they were to a fresh weave-ref, and the file uploaded by
  tracecli to another, read back the same, call for call (both modes share these two
  servers, a project each).
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import orjson
import pytest

from tests.support.fastpaths import audit
from tests.support.faultproxy import FaultProxy, _Request
from tests.support.servers import ServerHandle, start_all, start_weave_ref
from tests.support.uploadkit import read_back
from tracecli.upload.api import UploadOptions, upload

pytestmark = [pytest.mark.slow, pytest.mark.weave_ref]

PROGRAM = Path(__file__).parent / "support" / "sdk_program.py"
PROJECTS = {"complete": "conformance/sdk-complete", "legacy": "conformance/sdk-legacy"}
BENCH_HOME = Path(
    os.environ.get("BENCH_HOME")
    or Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "tracecli-bench"
)
SDK_PYTHON = BENCH_HOME / "weave-sdk" / "bin" / "python"
CALL_ROUTES = ("/calls/complete", "/call/upsert_batch", "/call/start", "/call/end")


class Recorder(FaultProxy):
    """A pass-through proxy that keeps the body of every call-writing request."""

    bodies: list[tuple[str, bytes]]

    async def _forward(self, req: _Request) -> tuple[int, list[tuple[str, str]], bytes]:
        if req.method == "POST" and req.path.endswith(CALL_ROUTES):
            self.bodies.append((req.path, req.body))
        return await super()._forward(req)


def _lines(path: str, body: bytes) -> list[Any]:
    """The records of one request body, one per line of a file, in the route's shape."""
    doc = orjson.loads(body)
    if path.endswith(("/calls/complete", "/call/upsert_batch")):
        return list(doc["batch"])
    return [doc]  # {"start": {...}} or {"end": {...}}


def _sdk_env(home: Path, legacy: bool) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WANDB_", "WF_", "WEAVE_")) and k != "PYTHONPATH"
    }
    env["HOME"] = str(home)
    if legacy:
        env["WEAVE_USE_CALLS_COMPLETE"] = "false"
    return env


class Refs(NamedTuple):
    """The module's weave-refs, for both batching modes (a project each)."""

    record: ServerHandle  # the SDK programs write here, through the recording proxies
    direct: ServerHandle  # their bodies are posted here again, as they were
    ours: ServerHandle  # tracecli uploads the file here


@pytest.fixture(scope="module")
def refs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Refs]:
    base = tmp_path_factory.mktemp("refs")
    handles = start_all(*(partial(start_weave_ref, base / name) for name in Refs._fields))
    try:
        yield Refs(*handles)
    finally:
        for handle in handles:
            handle.stop()


@pytest.fixture(scope="module")
def recorded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[tuple[str, bytes]]]:
    """Each batching mode's call-writing bodies (route, body), by mode. The two SDK programs
    run side by side, each through its own recording proxy: most of an SDK run is spent
    waiting on its batch timers, not computing."""
    if not SDK_PYTHON.exists():
        pytest.skip(
            f"the weave SDK venv is not at {SDK_PYTHON}: bash ../shared/tools/bench/setup.sh"
        )
    ref = request.getfixturevalue("refs").record
    base = tmp_path_factory.mktemp("sdk")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        with Recorder(ref.url) as complete, Recorder(ref.url) as legacy:
            proxies = {"complete": complete, "legacy": legacy}
            for mode, proxy in proxies.items():
                proxy.bodies = []
                home = base / mode
                home.mkdir()
                with (home / "out.txt").open("wb") as out, (home / "err.txt").open("wb") as err:
                    procs[mode] = subprocess.Popen(
                        [str(SDK_PYTHON), str(PROGRAM), proxy.url, PROJECTS[mode]],
                        stdout=out,
                        stderr=err,
                        env=_sdk_env(home, legacy=mode == "legacy"),
                        cwd=home,
                    )
            for mode, proc in procs.items():
                try:
                    proc.wait(timeout=300)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                err_text = (base / mode / "err.txt").read_text(errors="replace")
                assert proc.returncode == 0, (mode, err_text[-3000:])
            return {mode: list(proxy.bodies) for mode, proxy in proxies.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


class Recording(NamedTuple):
    project: str
    bodies: list[tuple[str, bytes]]  # (route, body) of each call-writing request


@pytest.fixture(scope="module", params=["complete", "legacy"])
def sdk_run(
    request: pytest.FixtureRequest, recorded: dict[str, list[tuple[str, bytes]]]
) -> Recording:
    bodies = recorded[request.param]
    routes = {path.rsplit("/", 1)[-1] for path, _ in bodies}
    want = {"upsert_batch"} if request.param == "legacy" else {"complete"}
    assert want <= routes, routes
    return Recording(PROJECTS[request.param], bodies)


def _write(path: Path, records: list[Any], pretty: bool) -> Path:
    if pretty:
        path.write_bytes(b"".join(json.dumps(r).encode() + b"\r\n" for r in records))
    else:
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def _calls(url: str, project: str) -> list[dict[str, Any]]:
    rows = [{k: v for k, v in r.items() if k != "wb_user_id"} for r in read_back(url, project)]
    return sorted(rows, key=lambda r: r["id"])


@pytest.mark.parametrize("pretty", [False, True], ids=["orjson", "dumps-crlf"])
def test_the_sdk_file_is_read_alike_by_every_path(
    sdk_run: Recording, tmp_path: Path, pretty: bool
) -> None:
    records = [r for path, body in sdk_run.bodies for r in _lines(path, body)]
    path = _write(tmp_path / "sdk.jsonl", records, pretty)
    (_, calls, errors, _, diags), (report, _, rows) = audit(path, tmp_path)
    assert errors == 0, diags[:5]
    assert calls > 10 and report["uploaded"] == calls == len(rows)


def test_the_sdk_file_uploads_as_the_sdk_stored_it(
    sdk_run: Recording, refs: Refs, tmp_path: Path
) -> None:
    direct, ours = refs.direct, refs.ours
    records = [r for path, body in sdk_run.bodies for r in _lines(path, body)]
    path = _write(tmp_path / "sdk.jsonl", records, pretty=True)
    for route, body in sdk_run.bodies:
        r = httpx.post(
            direct.url + route,
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
        assert r.status_code == 200, r.text[:500]
    opts = UploadOptions(
        server=ours.url,
        rejected=tmp_path / "rejected.jsonl",
        journal_path=tmp_path / "journal.db",
        max_retry_time=0,
    )
    report = upload([str(path)], opts)
    assert report.errors == 0 and report.rejected == 0, report.diagnostics[:5]
    want, got = _calls(direct.url, sdk_run.project), _calls(ours.url, sdk_run.project)
    assert len(got) == len(want) > 10
    for a, b in zip(got, want, strict=True):
        assert a == b
