"""Real HTTP servers on 127.0.0.1 for tests: `tracecli serve` and weave's reference server.

Both run as subprocesses on a free port, exactly as a user would start them, and are
stopped (SIGINT, then kill) when the test ends. Register the fixtures in a test module with

    pytest_plugins = ["tests.support.servers"]

and use `serve_server` / `weave_ref_server` (one fresh server per test), the factories
`serve_server_factory(api_key=..., db_path=...)` / `weave_ref_server_factory(*options,
api_key=...)`, or call `start_serve(dir)` / `start_weave_ref(dir, ...)` directly for servers
that live longer (module- or session-scoped fixtures of your own). Every one returns a
`ServerHandle(url, db_path, api_key, ...)` with `stop()`, `client()` and `log()`.

Options for the function-scoped fixtures can also come from indirect parametrisation:
    @pytest.mark.parametrize("weave_ref_server", [["--dedupe-call-ids"]], indirect=True)
    @pytest.mark.parametrize("serve_server", [{"api_key": "k"}], indirect=True)

PYTEST_DONT_REWRITE: modules import helpers from here before pytest_plugins registers it.
"""

from __future__ import annotations

import datetime
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from tracecli.serve.listen import bind, url_of

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("TRACECLI_SHARED", ROOT.parent / "shared"))
REFSERVER = SHARED / "tools" / "weave-ref" / "refserver.py"
# Resolved now, at import (collection) time: the autouse fixture of conftest.py points HOME
# at a temporary directory before any test runs, and the venv lives in the real home.
WEAVE_REF_VENV = Path(
    os.environ.get("WEAVE_REF_VENV")
    or Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "tracecli-weave-ref" / "venv-server"
)
_LISTENING = re.compile(r"listening on (http://\S+?)[ ;)]")
# httpx builds an SSL context for each client it makes (httpx.get() too), loading the CA
# bundle: ~25 ms of CPU, for clients that talk http:// to 127.0.0.1. The helpers' clients
# share this one, made once.
TLS = httpx.create_ssl_context()
# weave's server code reports its errors to Sentry unless told not to: a test server sends
# nothing off this machine (and its exit no longer waits for that report's flush).
NO_TELEMETRY = {"WANDB_ERROR_REPORTING": "false"}
# Secrets and targets of the developer's shell never reach a test server.
_SCRUB = ("WANDB_API_KEY", "WF_TRACE_SERVER_URL", "TRACECLI_DB", "TRACECLI_SERVE_API_KEY")


@dataclass
class ServerHandle:
    """A running server: where it listens, its store (serve only) and how to stop it."""

    url: str
    db_path: Path | None
    api_key: str | None
    proc: subprocess.Popen[bytes]
    log_path: Path
    kind: str  # "serve" or "weave-ref"
    _log_file: object = field(default=None, repr=False)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def auth(self) -> tuple[str, str] | None:
        """httpx auth as the weave SDK sends it: Basic api:KEY."""
        return ("api", self.api_key) if self.api_key else None

    def client(self, **kwargs: object) -> httpx.Client:
        kwargs.setdefault("timeout", 30.0)
        kwargs.setdefault("verify", TLS)
        return httpx.Client(base_url=self.url, auth=self.auth, **kwargs)  # type: ignore[arg-type]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGINT (Ctrl-C), then kill after `timeout`; returns the exit status.

        weave-ref gets SIGTERM instead, which ends it at once: its store is in memory, so
        there is nothing to keep, and its Ctrl-C shutdown (uvicorn's, then the telemetry
        flush of weave's server code) takes 1-5 s, paid by every test that starts one."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM if self.kind == "weave-ref" else signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        close = getattr(self._log_file, "close", None)
        if close is not None:
            close()
        return self.proc.returncode


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# The /health probe's client, one for every server start (threads of start_all share it),
# polled every 50 ms while a server starts. No keep-alive: each probe has a connection of
# its own, as before.
_PROBE = httpx.Client(timeout=2.0, verify=TLS, limits=httpx.Limits(max_keepalive_connections=0))


def _wait_healthy(handle: ServerHandle, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if handle.proc.poll() is not None:
            break
        try:
            if _PROBE.get(handle.url + "/health").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    handle.stop()
    raise RuntimeError(
        f"{handle.kind} server did not become healthy at {handle.url} "
        f"(exit status {handle.proc.returncode}); its log:\n{handle.log()}"
    )


def start_serve(
    directory: Path,
    api_key: str | None = None,
    *,
    db_path: Path | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
) -> ServerHandle:
    """Start `python -m tracecli serve --port 0` (the OS picks a free port; the server
    prints it) on a store in `directory`, and wait for /health."""
    directory.mkdir(parents=True, exist_ok=True)
    db = db_path or directory / "traces.db"
    log_path = directory / f"serve-{time.monotonic_ns()}.log"
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed by ServerHandle.stop
    cmd = [sys.executable, "-m", "tracecli", "serve", "--db", str(db), "--port", "0"]
    if api_key:
        cmd += ["--api-key", api_key]
    proc = subprocess.Popen(
        [*cmd, *extra_args], stdout=log_file, stderr=subprocess.STDOUT, env=_env(), cwd=directory
    )
    deadline = time.monotonic() + timeout
    url = None
    while url is None and time.monotonic() < deadline and proc.poll() is None:
        match = _LISTENING.search(log_path.read_text(errors="replace"))
        url = match.group(1) if match else None
        if url is None:
            time.sleep(0.05)
    handle = ServerHandle(url or "http://127.0.0.1:0", db, api_key, proc, log_path, "serve")
    handle._log_file = log_file
    if url is None:
        handle.stop()
        raise RuntimeError(f"tracecli serve did not start; its log:\n{handle.log()}")
    _wait_healthy(handle, max(1.0, deadline - time.monotonic()))
    return handle


def weave_ref_python() -> Path:
    """The reference server's interpreter, or skip with the reason (no ../shared, no venv)."""
    if not REFSERVER.exists():
        pytest.skip(f"{REFSERVER} not found: this test needs the project's ../shared folder")
    python = WEAVE_REF_VENV / "bin" / "python"
    if not python.exists():
        pytest.skip(
            f"weave reference server venv not found at {WEAVE_REF_VENV}: build it with "
            f"bash {REFSERVER.parent / 'setup.sh'} (or set WEAVE_REF_VENV)"
        )
    return python


def start_weave_ref(
    directory: Path,
    *options: str,
    api_key: str | None = None,
    timeout: float = 90.0,
) -> ServerHandle:
    """Start ../shared/tools/weave-ref/refserver.py (weave's own SqliteTraceServer) with
    `--db :memory:` and `options` (e.g. "--dedupe-call-ids"), and wait for /health."""
    python = weave_ref_python()
    directory.mkdir(parents=True, exist_ok=True)
    last = ""
    for _attempt in range(3):  # a free port can be taken between probing and binding
        port = free_port()
        log_path = directory / f"weave-ref-{port}.log"
        log_file = open(log_path, "wb")  # noqa: SIM115 - closed by ServerHandle.stop
        cmd = [str(python), str(REFSERVER), "--port", str(port), "--db", ":memory:"]
        cmd += ["--log-level", "warning"]
        if api_key:
            cmd += ["--api-key", api_key]
        proc = subprocess.Popen(
            [*cmd, *options],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=_env(**NO_TELEMETRY),
            cwd=directory,
        )
        handle = ServerHandle(
            f"http://127.0.0.1:{port}", None, api_key, proc, log_path, "weave-ref"
        )
        handle._log_file = log_file
        try:
            _wait_healthy(handle, timeout)
            return handle
        except RuntimeError as exc:
            last = str(exc)
            if "address already in use" not in last.lower():
                break
    raise RuntimeError(last)


def start_all(*starts: Callable[[], ServerHandle]) -> list[ServerHandle]:
    """Start several servers at once (each `start` is e.g. a `start_weave_ref` call with
    its arguments bound): a server's start is mostly imports and waiting for /health, so
    they overlap on the machine's two cores. Either all start or none is left running."""
    with ThreadPoolExecutor(max_workers=len(starts)) as pool:
        futures = [pool.submit(start) for start in starts]
    handles: list[ServerHandle] = []
    error: BaseException | None = None
    for future in futures:
        exc = future.exception()
        if exc is None:
            handles.append(future.result())
        elif error is None:
            error = exc
    if error is not None:
        for handle in handles:
            handle.stop()
        raise error
    return handles


# ---- fixtures ---------------------------------------------------------------------------


class _Started:
    """The servers a factory fixture started, each in its own folder; stopped at the end."""

    def __init__(self, tmp_path: Path, name: str) -> None:
        self.tmp_path, self.name = tmp_path, name
        self.handles: list[ServerHandle] = []

    def folder(self) -> Path:
        return self.tmp_path / f"{self.name}{len(self.handles)}"

    def keep(self, handle: ServerHandle) -> ServerHandle:
        self.handles.append(handle)
        return handle

    def stop(self) -> None:
        for handle in self.handles:
            handle.stop()


@pytest.fixture
def serve_server_factory(tmp_path: Path) -> Iterator[Callable[..., ServerHandle]]:
    """`make(api_key=None, db_path=None, extra_args=())` → a running `tracecli serve`."""
    started = _Started(tmp_path, "serve")

    def make(api_key: str | None = None, **kwargs: object) -> ServerHandle:
        return started.keep(start_serve(started.folder(), api_key, **kwargs))  # type: ignore[arg-type]

    yield make
    started.stop()


@pytest.fixture
def serve_server(
    request: pytest.FixtureRequest, serve_server_factory: Callable[..., ServerHandle]
) -> ServerHandle:
    """A fresh `tracecli serve` on a free port with an empty store (kwargs via indirect)."""
    return serve_server_factory(**getattr(request, "param", {}))


@pytest.fixture
def weave_ref_server_factory(tmp_path: Path) -> Iterator[Callable[..., ServerHandle]]:
    """`make(*options, api_key=None)` → a running weave reference server (or skip)."""
    started = _Started(tmp_path, "weave-ref")

    def make(*options: str, api_key: str | None = None) -> ServerHandle:
        return started.keep(start_weave_ref(started.folder(), *options, api_key=api_key))

    yield make
    started.stop()


@pytest.fixture
def weave_ref_server(
    request: pytest.FixtureRequest, weave_ref_server_factory: Callable[..., ServerHandle]
) -> ServerHandle:
    """A fresh weave reference server, `--db :memory:` (options via indirect)."""
    return weave_ref_server_factory(*getattr(request, "param", ()))


# ---- calls to write ---------------------------------------------------------------------

_T0 = datetime.datetime(2026, 1, 1, 10, 0, 0, tzinfo=datetime.UTC)


def iso(dt: datetime.datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def make_call(
    project: str,
    *,
    op: str = "llm.chat",
    at: float = 0.0,
    duration: float | None = 1.5,
    trace_id: str | None = None,
    parent_id: str | None = None,
    exception: str | None = None,
    tokens: tuple[int, int] | None = None,
    call_id: str | None = None,
) -> dict[str, Any]:
    """A CompletedCallSchemaForInsert dict the real server accepts (lowercase UUID ids),
    starting `at` seconds after 2026-01-01T10:00:00Z; `duration=None` leaves it running
    (use `start_half` to send it)."""
    started = _T0 + datetime.timedelta(seconds=at)
    call: dict[str, Any] = {
        "project_id": project,
        "id": call_id or str(uuid.uuid4()),
        "trace_id": trace_id or str(uuid.uuid4()),
        "parent_id": parent_id,
        "op_name": op,
        "started_at": iso(started),
        "attributes": {"env": "test"},
        "inputs": {"prompt": f"question at {at}"},
    }
    if duration is not None:
        summary: dict[str, Any] = {}
        if tokens:
            summary["usage"] = {
                "gpt-x": {
                    "prompt_tokens": tokens[0],
                    "completion_tokens": tokens[1],
                    "total_tokens": sum(tokens),
                    "requests": 1,
                }
            }
        call.update(
            ended_at=iso(started + datetime.timedelta(seconds=duration)),
            output=None if exception else {"text": "answer"},
            exception=exception,
            summary=summary,
        )
    return call


def start_half(call: dict[str, Any]) -> dict[str, Any]:
    """The StartedCallSchemaForInsert part of a call."""
    keys = ("project_id", "id", "trace_id", "parent_id", "op_name", "started_at")
    return {k: call[k] for k in (*keys, "attributes", "inputs") if k in call}


def end_half(call: dict[str, Any]) -> dict[str, Any]:
    """The EndedCallSchemaForInsert part of a completed call."""
    keys = ("project_id", "id", "ended_at", "exception", "output", "summary")
    return {k: call[k] for k in keys if k in call}


@contextmanager
def app_server(app: Any) -> Iterator[str]:
    """The same ASGI app under uvicorn in a thread (real sockets), for options `serve` keeps
    fixed, such as a tiny body limit."""
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started and thread.is_alive():
            threading.Event().wait(0.02)
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def query_answer(
    server: ServerHandle, project: str, route: str, body: dict[str, Any], key: str
) -> tuple[int, Any]:
    """A calls route's answer as two servers can be compared: the status, and (when 200)
    each call's `key` (`/call/read`: the one call's), or the whole body of other routes."""
    with server.client() as client:
        r = client.post(route, json={"project_id": project, **body})
    if r.status_code != 200:
        return r.status_code, None
    if route == "/calls/stream_query":
        return 200, [orjson.loads(line)[key] for line in r.content.splitlines() if line]
    if route == "/calls/query":
        return 200, [c[key] for c in r.json()["calls"]]
    if route == "/call/read":
        return 200, (r.json()["call"] or {}).get(key)
    return 200, r.json()


@contextmanager
def loaded_pair(
    root: Path, project: str, calls: list[dict[str, Any]]
) -> Iterator[dict[str, ServerHandle]]:
    """weave-ref and `tracecli serve` side by side, each holding `calls` (sent through
    calls/complete), for differential tests: {"weave-ref": ..., "serve": ...}."""
    ref, serve = start_all(
        lambda: start_weave_ref(root / "ref"), lambda: start_serve(root / "serve")
    )
    try:
        for server in (ref, serve):
            with server.client() as client:
                r = client.post(f"/v2/{project}/calls/complete", json={"batch": calls})
                assert r.status_code == 200, r.text
        yield {"weave-ref": ref, "serve": serve}
    finally:
        ref.stop()
        serve.stop()
