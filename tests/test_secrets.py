"""The API key never appears in stdout, stderr, the journal, the rejected file, logs or error
messages, with --verbose too: every run below is grepped for the key, its Basic-auth base64
form and its URL-quoted form, across its output and every file under HOME and the work dir.
"""

from __future__ import annotations

import base64
import random
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest

from tests.support.faultproxy import FaultProxy, Faults
from tests.support.uploadkit import gen_calls, run_cli, tracecli_serve, write_flat

# '+', '/' and '=' so the URL-quoted and base64 forms differ from the key itself
KEY = "sk-Secr3t+key/with=odd_chars-8e1f"
WRONG = "sk-Wr0ng+key/also=odd-4b2d"
FAST = {"TRACECLI_RETRY_BASE_DELAY": "0.01", "TRACECLI_RETRY_MAX_DELAY": "0.1"}


def forms(secret: str) -> dict[str, str]:
    return {
        "raw": secret,
        "basic b64": base64.b64encode(f"api:{secret}".encode()).decode(),
        "b64": base64.b64encode(secret.encode()).decode(),
        "url-quoted": quote(secret, safe=""),
    }


def scan(texts: dict[str, str], roots: list[Path], secret: str) -> list[str]:
    """Where any form of `secret` appears: output streams and every file under `roots`."""
    found = []
    blobs = {name: t.encode() for name, t in texts.items()}
    for root in roots:
        for p in [root] if root.is_file() else root.rglob("*"):
            if p.is_file():
                blobs[str(p)] = p.read_bytes()
    for name, data in blobs.items():
        for form, value in forms(secret).items():
            if value.encode() in data:
                found.append(f"{form} form in {name}")
    return found


@pytest.fixture
def serve(tmp_path):
    with tracecli_serve(tmp_path / "srv", api_key=KEY) as s:
        yield s


@pytest.fixture
def work(tmp_path):
    d = tmp_path / "work"
    d.mkdir()
    return d


def make_file(work: Path, n: int = 600) -> tuple[Path, list]:
    proj = f"sec/p-{random.randrange(1 << 30):x}"
    calls = gen_calls(n, seed=random.randrange(1 << 40), project=proj)
    calls[3][0]["id"] = calls[3][0]["id"].upper()  # refused by validation
    return write_flat(work / "calls.jsonl", calls), calls


@pytest.mark.slow
def test_verbose_upload_with_retries_and_rejections(tmp_path, serve, work, isolated_home):
    """Retries, a server that echoes the Authorization header and the key in its refusal,
    validation rejects, --verbose: the key is nowhere."""
    file, calls = make_file(work)
    refuse = {
        calls[10][0]["id"]: (400, "bad auth header {authorization} for key " + KEY),
        calls[20][0]["id"]: (422, "echo {authorization}"),
    }
    faults = Faults(p_5xx=0.2, p_429=0.1, p_drop=0.05, refuse=refuse, seed=5)
    with FaultProxy(serve.url, faults) as proxy:
        r = run_cli(
            "upload", str(file), "--server", proxy.url, "--api-key", KEY, "--verbose",
            "--chunk-size", "40", cwd=work, **FAST,
        )  # fmt: skip
        assert proxy.stats.refused > 0 and sum(proxy.stats.injected.values()) > 0
    assert r.returncode == 1, r.stderr[-3000:]  # records were rejected
    assert "retry" in r.stderr.lower()  # --verbose said something about the retries
    rejected = (work / "tracecli-rejected.jsonl").read_bytes()
    assert b"***" in rejected  # the echoed key was masked, not dropped silently
    texts = {"stdout": r.stdout, "stderr": r.stderr}
    # what is scanned includes the journal and the server's log
    assert (isolated_home / ".local" / "state" / "tracecli" / "journal.sqlite3").is_file()
    assert serve.log_path.stat().st_size > 0
    assert scan(texts, [isolated_home, work, serve.log_path], KEY) == []
    # JSON summary too
    r = run_cli(
        "upload", str(file), "--server", serve.url, "--api-key", KEY, "--verbose",
        "--format", "json", cwd=work, **FAST,
    )  # fmt: skip
    assert r.stdout.startswith("{") and orjson.loads(r.stdout)["rejected"] >= 1
    texts = {"stdout": r.stdout, "stderr": r.stderr}
    assert scan(texts, [isolated_home, work, serve.log_path], KEY) == []


@pytest.mark.slow
def test_wrong_key_verbose(tmp_path, serve, work, isolated_home):
    file, _ = make_file(work, 50)
    r = run_cli(
        "upload", str(file), "--server", serve.url, "--api-key", WRONG, "--verbose", cwd=work
    )
    assert r.returncode == 2, r.stderr
    texts = {"stdout": r.stdout, "stderr": r.stderr}
    assert scan(texts, [isolated_home, work, serve.log_path], WRONG) == []
    assert scan(texts, [isolated_home, work], KEY) == []


@pytest.mark.slow
@pytest.mark.parametrize("where", ["url", "env", "netrc"])
def test_key_from_url_env_or_netrc(tmp_path, serve, work, isolated_home, where):
    file, _ = make_file(work, 50)
    server, env = serve.url, {}
    if where == "url":
        server = serve.url.replace("http://", f"http://api:{quote(KEY, safe='')}@")
    elif where == "env":
        env["WANDB_API_KEY"] = KEY
    else:
        netrc = isolated_home / ".netrc"
        netrc.write_text(f"machine 127.0.0.1 login api password {KEY}\n")
        netrc.chmod(0o600)
    r = run_cli("upload", str(file), "--server", server, "--verbose", cwd=work, **env, **FAST)
    assert r.returncode == 1, r.stderr[-3000:]  # the one invalid record; the rest stored
    texts = {"stdout": r.stdout, "stderr": r.stderr}
    roots = [work, serve.log_path]
    if where != "netrc":  # (the netrc file itself holds the key, of course)
        roots.append(isolated_home)
    else:
        roots += [p for p in isolated_home.iterdir() if p.name != ".netrc"]
    assert scan(texts, roots, KEY) == []


def test_unreachable_server_with_the_key_in_its_url(tmp_path, work, isolated_home):
    from tests.support.servers import free_port

    file, _ = make_file(work, 20)
    url = f"http://api:{quote(KEY, safe='')}@127.0.0.1:{free_port()}"
    r = run_cli(
        "upload", str(file), "--server", url, "--verbose", "--max-retry-time", "0.5",
        cwd=work, **FAST,
    )  # fmt: skip
    assert r.returncode in (1, 2), r.stderr
    assert "Traceback" not in r.stderr
    texts = {"stdout": r.stdout, "stderr": r.stderr}
    assert scan(texts, [isolated_home, work], KEY) == []


@pytest.mark.slow
def test_debug_logging_of_a_library_caller(tmp_path, serve, work, caplog, monkeypatch):
    """With every logger at DEBUG (httpx and httpcore included) the key stays out of logs."""
    import logging

    from tracecli.diagnostics import UsageError
    from tracecli.upload.api import UploadOptions, upload

    monkeypatch.chdir(work)
    for k, v in FAST.items():
        monkeypatch.setenv(k, v)
    file, calls = make_file(work, 200)
    refuse = {calls[10][0]["id"]: (422, "echo {authorization} " + KEY)}
    caplog.set_level(logging.DEBUG)
    with FaultProxy(serve.url, Faults(p_5xx=0.3, p_drop=0.1, refuse=refuse, seed=2)) as proxy:
        report = upload([str(file)], UploadOptions(server=proxy.url, api_key=KEY, chunk_size=20))
        assert report.rejected >= 2 and report.uploaded >= 190
        # (a server echoing the right key to a request with the wrong one is not a thing)
        proxy.configure(refuse={calls[10][0]["id"]: (422, "echo {authorization}")})
        with pytest.raises(UsageError) as info:
            upload([str(file)], UploadOptions(server=proxy.url, api_key=WRONG, restart=True))
    assert "retrying" in caplog.text and "httpcore" in " ".join(r.name for r in caplog.records)
    texts = {"logs": caplog.text, "error": str(info.value), "report": repr(report)}
    assert scan(texts, [work], KEY) == []
    assert scan(texts, [work], WRONG) == []
