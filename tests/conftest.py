"""Fixtures shared by every test: an isolated HOME, and where ../shared lives (if it does)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support.servers import ServerHandle
from tests.support.uploadkit import tracecli_serve

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TRACECLI_SHARED", ROOT.parent / "shared"))
SAMPLES = ROOT / "samples"

# No per-example time limit: hypothesis's default (200 ms) is a timed assertion, and it
# failed first examples on a loaded machine (imports and caches warming) with nothing wrong.
settings.register_profile("tracecli", deadline=None)
settings.load_profile("tracecli")


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C reaches the `tracecli` processes the tests start, however pytest was started.

    A shell without job control starts a background command (`pytest ... &` in a script)
    with SIGINT ignored, and a child inherits that: the tests that press Ctrl-C on a
    `tracecli` process would then wait for an exit that never comes. A Python handler here
    is reset to the default in each child at exec, as in an interactive terminal.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Tests never touch the user's real home, config, data or state, nor their keys."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for var, sub in (
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_CACHE_HOME", ".cache"),
    ):
        monkeypatch.setenv(var, str(home / sub))
    for var in (
        "WANDB_API_KEY",
        "WF_TRACE_SERVER_URL",
        "TRACECLI_DB",
        "TRACECLI_PROFILE",
        "FREEPLAY_API_KEY",
        "FREEPLAY_API_BASE",
        "FREEPLAY_API_URL",
        "FREEPLAY_PROJECT_ID",
        "NETRC",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    return home


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_shared(*parts: str) -> Path:
    """The path under ../shared, or skip: a user's fresh clone has no ../shared."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: this test needs the project's ../shared folder")
    return path


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private certificate authority (ca.pem) and a server certificate for 127.0.0.1
    signed by it (srv.pem, srv.key): for servers on this machine that speak TLS."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a test certificate authority")
    d = tmp_path_factory.mktemp("certs")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=tracecli test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")  # fmt: skip
    return d


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServerHandle]:
    """`tracecli serve` (no key) on a free port, with its store in this test's tmp_path."""
    with tracecli_serve(tmp_path / "serve") as s:
        yield s
