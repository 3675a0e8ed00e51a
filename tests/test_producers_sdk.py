"""What the real weave 0.54 SDK writes, as a file: read alike by every path, stored as weave does.

tests/support/sdk_program.py runs once per SDK batching mode (`calls/complete`, and the
legacy `call/upsert_batch` with WEAVE_USE_CALLS_COMPLETE=false) through a recording proxy
in front of weave-ref. Each call-writing request body it sent becomes lines of a file, in
the shape of its route (completed calls, `{mode, req}` batch items, `{start}`/`{end}`
requests), once as orjson writes them and once as `json.dumps` with CRLF (the SDK's own
values: uuid7 ids, op refs, `trace_id` and `is_eval` on ends, usage, run ids, a 2**64 input).
Then:

- validate, upload and the store give the same answers with their fast paths on and off
  (tests/test_producers_audit.py's `audit`), and validate finds no error;
- the same bodies posted as they were to a fresh weave-ref, and the file uploaded by
  tracecli to another, read back the same, call for call.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.fastpaths import audit
from tests.support.faultproxy import FaultProxy, _Request
from tests.support.servers import start_weave_ref
from tests.support.uploadkit import read_back
from tracecli.upload.api import UploadOptions, upload

pytestmark = [pytest.mark.slow, pytest.mark.weave_ref]

PROGRAM = Path(__file__).parent / "support" / "sdk_program.py"
PROJECT = "conformance/sdk"
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


def _record(python: Path, home: Path, legacy: bool) -> list[tuple[str, bytes]]:
    ref = start_weave_ref(home / "ref")
    try:
        with Recorder(ref.url) as proxy:
            proxy.bodies = []
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("WANDB_", "WF_", "WEAVE_")) and k != "PYTHONPATH"
            }
            env["HOME"] = str(home)
            if legacy:
                env["WEAVE_USE_CALLS_COMPLETE"] = "false"
            proc = subprocess.run(
                [str(python), str(PROGRAM), proxy.url, PROJECT],
                capture_output=True,
                text=True,
                timeout=300,
                env=env,
                cwd=home,
            )
            assert proc.returncode == 0, proc.stderr[-3000:]
            return list(proxy.bodies)
    finally:
        ref.stop()


@pytest.fixture(scope="module", params=["complete", "legacy"])
def sdk_bodies(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> list[tuple[str, bytes]]:
    if not SDK_PYTHON.exists():
        pytest.skip(
            f"the weave SDK venv is not at {SDK_PYTHON}: bash ../shared/tools/bench/setup.sh"
        )
    home = tmp_path_factory.mktemp(f"sdk-{request.param}")
    bodies = _record(SDK_PYTHON, home, legacy=request.param == "legacy")
    routes = {path.rsplit("/", 1)[-1] for path, _ in bodies}
    want = {"upsert_batch"} if request.param == "legacy" else {"complete"}
    assert want <= routes, routes
    return bodies


def _write(path: Path, records: list[Any], pretty: bool) -> Path:
    if pretty:
        path.write_bytes(b"".join(json.dumps(r).encode() + b"\r\n" for r in records))
    else:
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def _calls(url: str) -> list[dict[str, Any]]:
    rows = [{k: v for k, v in r.items() if k != "wb_user_id"} for r in read_back(url, PROJECT)]
    return sorted(rows, key=lambda r: r["id"])


@pytest.mark.parametrize("pretty", [False, True], ids=["orjson", "dumps-crlf"])
def test_the_sdk_file_is_read_alike_by_every_path(
    sdk_bodies: list[tuple[str, bytes]], tmp_path: Path, pretty: bool
) -> None:
    records = [r for path, body in sdk_bodies for r in _lines(path, body)]
    path = _write(tmp_path / "sdk.jsonl", records, pretty)
    (_, calls, errors, _, diags), (report, _, rows) = audit(path, tmp_path)
    assert errors == 0, diags[:5]
    assert calls > 10 and report["uploaded"] == calls == len(rows)


def test_the_sdk_file_uploads_as_the_sdk_stored_it(
    sdk_bodies: list[tuple[str, bytes]], tmp_path: Path
) -> None:
    records = [r for path, body in sdk_bodies for r in _lines(path, body)]
    path = _write(tmp_path / "sdk.jsonl", records, pretty=True)
    direct = start_weave_ref(tmp_path / "direct")
    try:
        ours = start_weave_ref(tmp_path / "ours")
        try:
            for route, body in sdk_bodies:
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
            want, got = _calls(direct.url), _calls(ours.url)
            assert len(got) == len(want) > 10
            for a, b in zip(got, want, strict=True):
                assert a == b
        finally:
            ours.stop()
    finally:
        direct.stop()
