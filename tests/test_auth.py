"""Auth and transport safety end to end: a refused key stops everything at once (exit 2, one
clear line); the key is found where W&B users keep it; TLS is verified, private CAs work."""

from __future__ import annotations

import random
import ssl
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.support.faultproxy import FaultProxy, Faults
from tests.support.uploadkit import (
    cli_env,
    gen_calls,
    read_back,
    run_cli,
    tracecli,
    tracecli_serve,
    weave_ref,
    write_flat,
)

KEY = "tk-right-7d1f0c9a2b4e6f8a"
WRONG = "tk-wrong-3c5e7a9b1d2f4a6c"


@pytest.fixture
def keyed_serve(tmp_path):
    with tracecli_serve(tmp_path / "serve", api_key=KEY) as s:
        yield s


def calls_file(tmp_path: Path, n: int = 2000) -> tuple[Path, str]:
    proj = f"auth/p-{random.randrange(1 << 30):x}"
    calls = gen_calls(n, seed=random.randrange(1 << 40), project=proj)
    return write_flat(tmp_path / "calls.jsonl", calls), proj


def error_lines(stderr: str) -> list[str]:
    return [x for x in stderr.splitlines() if x.startswith("tracecli: error")]


@pytest.mark.slow
def test_wrong_key_stops_at_the_first_401(tmp_path, keyed_serve):
    file, proj = calls_file(tmp_path)
    with FaultProxy(keyed_serve.url, Faults()) as proxy:
        r = run_cli(
            "upload", str(file), "--server", proxy.url, "--api-key", WRONG,
            "--chunk-size", "50", "--concurrency", "4", cwd=tmp_path,
        )  # fmt: skip
        sent = proxy.stats.forwarded
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    (line,) = error_lines(r.stderr)
    assert "refused the API key" in line and "401" in line and "127.0.0.1" in line
    assert WRONG not in r.stderr + r.stdout
    # 40 chunks to send; only what was already in flight when the 401 came back went out
    assert 1 <= sent <= 4, sent
    assert read_back(keyed_serve.url, proj, api_key=KEY) == []
    assert not (tmp_path / "tracecli-rejected.jsonl").exists()  # not rejected: not sent


@pytest.mark.slow
def test_no_key_for_a_server_that_wants_one(tmp_path, keyed_serve):
    file, _ = calls_file(tmp_path, 50)
    r = run_cli("upload", str(file), "--server", keyed_serve.url, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    (line,) = error_lines(r.stderr)
    assert "requires an API key" in line and "--api-key" in line


@pytest.mark.slow
def test_tail_without_a_key_says_the_server_requires_one(tmp_path, keyed_serve):
    """No key sent: the server requires one; it did not refuse one (there was none)."""
    r = run_cli("tail", "--server", keyed_serve.url, "-p", "acme/none", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    (line,) = error_lines(r.stderr)
    assert "requires an API key" in line and "refused" not in line, line


@pytest.mark.slow
@pytest.mark.parametrize("where", ["flag", "env", "netrc"])
def test_the_right_key_from_each_place(tmp_path, keyed_serve, where, isolated_home):
    file, proj = calls_file(tmp_path, 100)
    args = ["upload", str(file), "--server", keyed_serve.url, "--format", "json"]
    env: dict[str, str] = {}
    if where == "flag":
        args += ["--api-key", KEY]
    elif where == "env":
        env["WANDB_API_KEY"] = KEY
    else:
        netrc = isolated_home / ".netrc"
        netrc.write_text(f"machine 127.0.0.1\n  login api\n  password {KEY}\n")
        netrc.chmod(0o600)
    r = run_cli(*args, cwd=tmp_path, **env)
    assert r.returncode == 0, r.stderr
    assert orjson.loads(r.stdout)["uploaded"] == 100
    assert len(read_back(keyed_serve.url, proj, api_key=KEY)) == 100


@pytest.mark.slow
@pytest.mark.weave_ref
def test_wrong_key_weave_reference_server(tmp_path):
    file, _ = calls_file(tmp_path, 200)
    with weave_ref(tmp_path / "ref", api_key=KEY) as ref:
        r = run_cli("upload", str(file), "--server", ref.url, "--api-key", WRONG, cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        (line,) = error_lines(r.stderr)
        assert "refused the API key" in line
        r = run_cli("upload", str(file), "--server", ref.url, "--api-key", KEY, cwd=tmp_path)
        assert r.returncode == 0, r.stderr


def test_no_key_over_plain_http_to_a_remote_host(tmp_path):
    file, _ = calls_file(tmp_path, 5)
    r = run_cli(
        "upload", str(file), "--server", "http://trace.example.invalid", "--api-key", KEY,
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    (line,) = error_lines(r.stderr)
    assert "plain http" in line and "--allow-insecure" in line and KEY not in r.stderr


# -- TLS -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_https_with_a_private_ca(tmp_path, keyed_serve, certs):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certs / "srv.pem", certs / "srv.key")
    file, proj = calls_file(tmp_path, 100)
    with FaultProxy(keyed_serve.url, Faults(), ssl_context=ctx) as tls:
        assert tls.url.startswith("https://")
        args = ["upload", str(file), "--server", tls.url, "--api-key", KEY]
        r = run_cli(*args, cwd=tmp_path)
        assert r.returncode == 2, r.stderr  # verification is on: the CA is unknown
        (line,) = error_lines(r.stderr)
        assert "certificate" in line and "--ca-bundle" in line
        assert tls.stats.forwarded == 0  # the key never left
        r = run_cli(*args, "--ca-bundle", str(certs / "ca.pem"), cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    assert len(read_back(keyed_serve.url, proj, api_key=KEY)) == 100


# -- one client: tail, export and login as upload ------------------------------------------


def login_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`tracecli login ARGS` with the key typed on stdin."""
    return subprocess.run(
        tracecli(*args), input=KEY + "\n", capture_output=True, text=True, timeout=60,
        env=cli_env(), cwd=cwd,
    )  # fmt: skip


@pytest.fixture
def tls_serve(tmp_path, keyed_serve, certs):
    """The keyed `tracecli serve` behind TLS signed by the test CA, holding 20 calls."""
    file, proj = calls_file(tmp_path, 20)
    r = run_cli("upload", str(file), "--server", keyed_serve.url, "--api-key", KEY, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certs / "srv.pem", certs / "srv.key")
    with FaultProxy(keyed_serve.url, Faults(), ssl_context=ctx) as tls:
        yield tls, proj


@pytest.mark.slow
@pytest.mark.parametrize("command", ["tail", "export"])
def test_tail_and_export_honour_the_ca_bundle(tmp_path, tls_serve, certs, command):
    tls, proj = tls_serve
    args = [command, "--server", tls.url, "--api-key", KEY, "-p", proj]
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr  # verification is on: the CA is unknown
    (line,) = error_lines(r.stderr)
    assert "certificate" in line and "--ca-bundle" in line, line
    assert "Traceback" not in r.stderr and KEY not in r.stderr
    assert tls.stats.forwarded == 0  # the key never left
    fmt = ["--format", "json"] if command == "tail" else []
    r = run_cli(*args, "--ca-bundle", str(certs / "ca.pem"), *fmt, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 20  # every call (tail: its default --limit 20)


@pytest.mark.slow
def test_login_honours_the_ca_bundle(tmp_path, tls_serve, certs):
    tls, _ = tls_serve
    args = ["login", "--server", tls.url, "--relogin"]
    r = login_cli(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    (line,) = error_lines(r.stderr)
    assert "certificate" in line and "--ca-bundle" in line and KEY not in r.stderr
    r = login_cli(*args, "--ca-bundle", str(certs / "ca.pem"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "accepted the key" in r.stderr


@pytest.mark.parametrize("command", ["tail", "export", "login"])
def test_no_key_over_plain_http_to_a_remote_host_from_any_command(tmp_path, command):
    """The same refusal, in the same words, as upload's: the key never leaves."""
    server = "http://trace.example.invalid"
    args = [command, "--server", server]
    if command == "login":
        r = login_cli(*args, cwd=tmp_path)
    else:
        r = run_cli(*args, "--api-key", KEY, "-p", "a/b", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    (line,) = error_lines(r.stderr)
    assert "refusing to send the API key over plain http to trace.example.invalid" in line
    assert "--allow-insecure" in line and KEY not in r.stderr
