"""`tracecli login` against real servers on 127.0.0.1: our `tracecli serve --api-key` for
Weave, the Freeplay reference server for Freeplay."""

from __future__ import annotations

import os
import pty
import select
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.conftest import ROOT, free_port, require_shared
from tests.support.servers import start_serve, start_weave_ref
from tracecli.cli import app
from tracecli.config import netrc_file
from tracecli.config.settings import load_settings, user_config_path

KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
FP_KEY = "fp-test-key-0123456789"
FP_PROJECT = "4a6c1f1e-8f0b-4a7e-9a51-3b1d2c9e7f10"


def _wait(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"{what} exited early: {out}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def weave_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`tracecli serve --api-key KEY`: a real server with real auth."""
    handle = start_serve(tmp_path_factory.mktemp("serve"), api_key=KEY)
    try:
        yield handle.url
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def weave_ref_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Weave's own server (../shared/tools/weave-ref) with --api-key KEY, or skip."""
    handle = start_weave_ref(tmp_path_factory.mktemp("weave-ref"), api_key=KEY)
    try:
        yield handle.url
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def freeplay_server() -> Iterator[str]:
    """The Freeplay reference server, requiring FP_KEY."""
    script = require_shared("tools", "freeplay-ref", "refserver.py")
    port = free_port()
    env = {**os.environ, "REFSERVER_API_KEY": FP_KEY}
    proc = subprocess.Popen(
        [sys.executable, str(script), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url + "/_records", proc, "freeplay refserver")
        yield url + "/api"
    finally:
        _stop(proc)


def run(args: list[str], key: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, args, input=(key + "\n") if key is not None else "")
    return result.exit_code, result.stdout, result.stderr


def netrc_mode() -> int:
    return stat.S_IMODE((Path.home() / ".netrc").stat().st_mode)


# -- Weave --------------------------------------------------------------------------------


def test_weave_login_checks_and_stores_the_key_in_netrc(weave_server: str) -> None:
    code, out, err = run(["login", "--server", weave_server], KEY)
    assert code == 0, err
    assert out == ""
    assert err.strip() == (
        f"tracecli: {weave_server} accepted the key; key for 127.0.0.1 saved in ~/.netrc (mode 600)"
    )
    assert netrc_file.lookup("127.0.0.1") == KEY
    assert netrc_mode() == 0o600
    assert KEY not in out + err
    # ... and the next command finds it there.
    s = load_settings({"server": weave_server})
    assert s.api_key is not None and s.api_key.get_secret_value() == KEY
    assert str(s.origin("api_key")) == "~/.netrc (machine 127.0.0.1)"


@pytest.mark.slow
def test_weave_reference_server_accepts_the_right_key_only(weave_ref_url: str) -> None:
    code, _, err = run(["login", "--server", weave_ref_url], "wrong" + KEY)
    assert code == 2, err
    assert "refused the key (401 Unauthorized)" in err
    code, _, err = run(["login", "--server", weave_ref_url], KEY)
    assert code == 0, err
    assert f"{weave_ref_url} accepted the key" in err
    assert netrc_file.lookup("127.0.0.1") == KEY


def test_wrong_key_is_exit_2_and_stores_nothing(weave_server: str) -> None:
    code, out, err = run(["login", "--server", weave_server], "wrong" + KEY)
    assert code == 2
    assert err.strip() == (
        f"tracecli: error: {weave_server} refused the key (401 Unauthorized): nothing was stored"
    )
    assert not (Path.home() / ".netrc").exists()
    assert "wrong" not in out + err


def test_already_logged_in_then_relogin_replaces(weave_server: str) -> None:
    other = "machine github.com login me password ghp_x\n"
    (Path.home() / ".netrc").write_text(other + "machine 127.0.0.1 login user password old\n")
    code, _, err = run(["login", "--server", weave_server], KEY)
    assert code == 0
    assert "already logged in to" in err and "pass --relogin to replace it" in err
    assert netrc_file.lookup("127.0.0.1") == "old"
    code, _, err = run(["login", "--server", weave_server, "--relogin"], KEY)
    assert code == 0, err
    assert netrc_file.lookup("127.0.0.1") == KEY
    assert (Path.home() / ".netrc").read_text().startswith(other)
    assert netrc_mode() == 0o600


def test_server_and_target_come_from_the_settings(
    weave_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tracecli.yaml").write_text(f"profiles:\n  dev:\n    server: {weave_server}\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["login", "--profile", "dev"], KEY)
    assert code == 0, err
    assert netrc_file.lookup("127.0.0.1") == KEY
    assert KEY not in (tmp_path / "tracecli.yaml").read_text()


def test_unreachable_server_is_exit_2_unless_no_verify() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = run(["login", "--server", url], KEY)
    assert code == 2
    assert err.startswith(f"tracecli: error: could not check the key: {url} did not answer")
    assert "--no-verify" in err
    code, _, err = run(["login", "--server", url, "--no-verify"], KEY)
    assert code == 0, err
    assert "key not checked; key for 127.0.0.1 saved" in err


def test_wandb_cloud_login_uses_the_wandb_machine_name() -> None:
    code, _, err = run(["login", "--no-verify"], KEY)
    assert code == 0, err
    assert "key for api.wandb.ai saved in ~/.netrc" in err
    s = load_settings({"target": "weave"})
    assert s.api_key is not None and s.api_key.get_secret_value() == KEY


def test_plain_http_to_a_remote_host_is_refused() -> None:
    code, _, err = run(["login", "--server", "http://weave.example.com"], KEY)
    assert code == 2
    assert "refusing to send the API key over plain http to weave.example.com" in err


@pytest.mark.parametrize("key", ["", "two words", '"quoted"'])
def test_bad_keys_are_refused(key: str) -> None:
    code, _, err = run(["login", "--no-verify"], key)
    assert code == 2
    assert err.startswith("tracecli: error: ")
    assert not (Path.home() / ".netrc").exists()


def test_the_prompt_does_not_echo_the_key(weave_server: str) -> None:
    """On a terminal the key is read with getpass: typed, but never shown."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    pid, fd = pty.fork()
    if pid == 0:  # the child: tracecli login on a real terminal
        os.execvpe(
            sys.executable,
            [sys.executable, "-m", "tracecli", "login", "--server", weave_server],
            env,
        )
    output = b""
    sent = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
        if not sent and b"(input hidden): " in output:
            os.write(fd, KEY.encode() + b"\r")
            sent = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = output.decode(errors="replace")
    assert sent, text
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert f"W&B API key for {weave_server} (input hidden): " in text
    assert "accepted the key" in text
    assert KEY not in text
    assert netrc_file.lookup("127.0.0.1") == KEY


# -- Freeplay -------------------------------------------------------------------------------


def test_freeplay_login_stores_the_key_in_the_user_config(freeplay_server: str) -> None:
    args = ["login", "--target", "freeplay", "--server", freeplay_server]
    code, _, err = run(args, FP_KEY)
    assert code == 0, err
    assert f"{freeplay_server} accepted the key; key for 127.0.0.1 saved in " in err
    assert "~/.config/tracecli/config.yaml (mode 600)" in err
    path = user_config_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (Path.home() / ".netrc").exists()
    s = load_settings({"target": "freeplay", "server": freeplay_server, "project": FP_PROJECT})
    assert s.api_key is not None and s.api_key.get_secret_value() == FP_KEY
    assert str(s.origin("api_key")) == "~/.config/tracecli/config.yaml:2 (credentials)"
    assert FP_KEY not in err


def test_freeplay_wrong_key_is_exit_2(freeplay_server: str) -> None:
    args = ["login", "--target", "freeplay", "--server", freeplay_server]
    code, _, err = run(args, "nope")
    assert code == 2
    assert "refused the key (401 Unauthorized): nothing was stored" in err
    assert not user_config_path().exists()


def test_freeplay_login_with_a_project_keeps_the_users_comments(
    freeplay_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = user_config_path()
    path.parent.mkdir(parents=True)
    path.write_text("# mine\nconcurrency: 2  # slow link\n")
    monkeypatch.setenv("FREEPLAY_PROJECT_ID", FP_PROJECT)
    code, _, err = run(["login", "--target", "freeplay", "--server", freeplay_server], FP_KEY)
    assert code == 0, err
    text = path.read_text()
    assert text.startswith("# mine\nconcurrency: 2  # slow link\n")
    assert load_settings({}).concurrency == 2
