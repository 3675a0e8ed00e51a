"""The Freeplay reference server (../shared/tools/freeplay-ref/refserver.py) on a free port.

A real HTTP server that validates request bodies like Freeplay (pydantic models checked
against the official SDK), stores what it accepted (`GET /_records`) and injects faults
(`POST /_faults`). It needs fastapi, uvicorn and pydantic, which the dev venv has; the
test's own interpreter runs it. Tests using it skip when ../shared is absent.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import free_port, require_shared
from tests.support.answering import answering
from tests.support.freeplay_golden import SESSION
from tracecli.upload.api import UploadOptions, UploadReport, upload

API_KEY = "fp-test-key"
PROJECT = "4a6c1f1e-8f0b-4a7e-9a51-3b1d2c9e7f10"  # the project of SCHEMA.md §6
OTHER_PROJECT = "5b7d2a2f-9c1b-4b8f-8a62-4c2e3d0f8a21"


@dataclass
class RefServer:
    base: str  # http://127.0.0.1:PORT
    log: Path

    @property
    def api_base(self) -> str:
        return f"{self.base}/api"

    def records(self) -> dict[str, Any]:
        return httpx.get(f"{self.base}/_records", timeout=10).json()

    def clear(self) -> None:
        httpx.delete(f"{self.base}/_records", timeout=10).raise_for_status()

    def faults(self, codes: list[int], retry_after: float | None = None) -> int:
        """Queue faults for the next requests; the number still pending (codes=[]: ask)."""
        body: dict[str, Any] = {"codes": codes}
        if retry_after is not None:
            body["retry_after"] = retry_after
        res = httpx.post(f"{self.base}/_faults", json=body, timeout=10)
        res.raise_for_status()
        return int(res.json()["pending_faults"])


def start_refserver(tmp: Path) -> Iterator[RefServer]:
    script = require_shared("tools", "freeplay-ref", "refserver.py")
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:  # pragma: no cover - the dev venv has them
        pytest.skip("the Freeplay reference server needs fastapi and uvicorn")
    port = free_port()
    log = tmp / "refserver.log"
    env = {
        **os.environ,
        "REFSERVER_API_KEY": API_KEY,
        "REFSERVER_PROJECTS": f"{PROJECT},{OTHER_PROJECT}",
        "REFSERVER_STRICT": "1",
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(script), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = RefServer(f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"refserver exited: {log.read_text()[-2000:]}")
            try:
                httpx.get(f"{server.base}/_records", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail(f"refserver did not start: {log.read_text()[-2000:]}")
                time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def refserver_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RefServer]:
    yield from start_refserver(tmp_path_factory.mktemp("freeplay-ref"))


@pytest.fixture
def refserver(refserver_module: RefServer, monkeypatch: pytest.MonkeyPatch) -> RefServer:
    """The module's server, emptied, with fast retries for this test."""
    refserver_module.clear()
    monkeypatch.setenv("TRACECLI_RETRY_BASE_DELAY", "0.01")
    monkeypatch.setenv("TRACECLI_RETRY_MAX_DELAY", "0.05")
    return refserver_module


@contextlib.contextmanager
def web_page_server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 that answers every request 200 with an HTML page, as
    a web app does at an API base missing its `/api`. Yields its base URL."""
    body = b"<!doctype html><title>Freeplay</title><div id=root></div>"
    with answering(200, {"content-type": "text/html; charset=utf-8"}, body) as url:
        yield url


def write_completions(path: Path, n: int, session: str) -> Path:
    """`n` one-question completions of one session, as Freeplay records (JSON lines)."""
    rows = [
        {
            "session_id": session,
            "messages": [
                {"role": "user", "content": f"question {i}"},
                {"role": "assistant", "content": f"answer {i}"},
            ],
            "call_info": {"start_time": 1767268800.0 + i, "end_time": 1767268800.5 + i},
        }
        for i in range(n)
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


# --------------------------------------------------------------------------- uploads
def fp_upload(paths: list[Path], tmp: Path, server: RefServer, **kw: Any) -> UploadReport:
    opts = UploadOptions(
        target="freeplay",
        server=server.api_base,
        api_key=API_KEY,
        project=kw.pop("project", PROJECT),
        rejected=tmp / "rejected.jsonl",
        journal_path=tmp / "journal.sqlite3",
        **kw,
    )
    return upload([str(p) for p in paths], opts)


def completions_file(tmp: Path, n: int, name: str = "c.jsonl") -> Path:
    return write_completions(tmp / name, n, SESSION)
