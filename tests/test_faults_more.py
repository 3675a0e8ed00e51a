"""Uploads against servers that answer what a trace server should not: redirects.

A server (or a proxy in front of it) that answers a write with 301/302/303/307/308 has not
refused the records: the URL is wrong (http to https, a moved path, a load balancer's sign-in).
tracecli does not follow a redirect (it would carry the API key and the calls elsewhere), so
the upload stops with one line naming where the server points, exit 2, and every record is
left unsent for the next run: none is put in the rejected file, none is journaled.
A real HTTP server on 127.0.0.1 answers the redirects; weave's reference server then takes
the same upload, which must store every call once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.support.answering import answering
from tests.support.otel_spans import bare_span
from tests.support.servers import ServerHandle
from tests.support.uploadkit import (
    gen_calls,
    read_back,
    run_cli,
    tracecli_serve,
    weave_ref,
    write_flat,
)

KEY = "redirect-secret-key-0123456789"


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """One weave reference server for the module (its start is most of a test's time): each
    test uploads to a project and ids of its own, so none sees another's calls."""
    with weave_ref(tmp_path_factory.mktemp("ref")) as handle:
        yield handle


def redirecting(status: int, location: str) -> contextlib.AbstractContextManager[str]:
    """A server answering every request `status` to `location` + its path, with the key in
    the Location's query (neither it nor userinfo there may be shown)."""
    return answering(status, {"Location": f"{location}?key={KEY}"}, b"", location_path=True)


@pytest.mark.parametrize(
    ("status", "location"),
    [
        (308, f"https://api:{KEY}@elsewhere.example"),
        (301, "http://127.0.0.1:1/moved"),
        (307, ""),  # a relative Location: the same host, another path
    ],
)
@pytest.mark.parametrize("mode", ["auto", "single"])
def test_a_redirect_stops_the_upload_and_leaves_every_record_unsent(
    tmp_path: Path, ref: ServerHandle, status: int, location: str, mode: str
) -> None:
    project = f"redirect/{mode}-{status}"
    calls = gen_calls(6, seed=status * 2 + (mode == "single"), project=project)
    trace = write_flat(tmp_path / "t.jsonl", calls)
    with redirecting(status, location) as url:
        r = run_cli(
            "upload", str(trace), "--server", url, "--api-key", KEY, "--mode", mode, cwd=tmp_path
        )
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    out = r.stdout + r.stderr
    assert "Traceback" not in out
    assert KEY not in out
    assert f"HTTP {status}" in out and "redirect" in out.lower(), out
    assert "elsewhere.example" in out or "/moved" in out or location == "", out
    assert "(record)" not in out  # no record is said to be refused
    assert not (tmp_path / "tracecli-rejected.jsonl").exists()
    # nothing was journaled as rejected or stored: the next run, to the right URL, sends all
    r2 = run_cli(
        "upload", str(trace), "--server", ref.url, "--mode", mode, "--format", "json",
        cwd=tmp_path,
    )  # fmt: skip
    assert r2.returncode == 0, r2.stderr
    report = orjson.loads(r2.stdout)
    assert report["uploaded"] == len(calls) and report["skipped"] == 0, report
    assert len(read_back(ref.url, project)) == len(calls)


def test_a_freeplay_upload_stops_at_a_redirect_and_rejects_nothing(tmp_path: Path) -> None:
    trace = write_flat(tmp_path / "t.jsonl", gen_calls(4))
    project = "11111111-1111-4111-8111-111111111111"
    with redirecting(301, "https://freeplay.example") as url:
        r = run_cli(
            "upload", str(trace), "--target", "freeplay", "--server", url + "/api",
            "--api-key", KEY, "-p", project, cwd=tmp_path,
        )  # fmt: skip
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert KEY not in r.stdout + r.stderr and "Traceback" not in r.stderr
    assert "HTTP 301" in r.stderr and "https://freeplay.example/api/" in r.stderr, r.stderr
    assert not (tmp_path / "tracecli-rejected.jsonl").exists()


@pytest.mark.parametrize("command", ["tail", "export"])
def test_tail_and_export_say_a_redirect_not_an_empty_project(tmp_path: Path, command: str) -> None:
    """A redirect's empty body was read as the answer: `tail` said the project had no
    calls, `export` wrote an empty file and exited 0."""
    out = tmp_path / "out.jsonl"
    extra = ["--output", str(out)] if command == "export" else []
    with redirecting(308, "https://moved.example") as url:
        r = run_cli(
            command, "--server", url, "--project", "acme/chaos", "--api-key", KEY, *extra,
            cwd=tmp_path,
        )  # fmt: skip
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert KEY not in r.stdout + r.stderr and "Traceback" not in r.stderr
    assert "HTTP 308" in r.stderr and "https://moved.example/calls/stream_query" in r.stderr
    assert "no calls" not in r.stderr


# -- a server without the route: 404/405 that is no Weave server's word on the calls -----


@pytest.mark.parametrize("mode", ["auto", "single"])
def test_a_server_url_with_a_wrong_path_rejects_nothing(
    tmp_path: Path, ref: ServerHandle, mode: str
) -> None:
    """weave's server under a wrong base path (`--server http://host/api`) answers every
    route FastAPI's 404 `{"detail": "Not Found"}`: each record was split off and rejected
    as "Not Found" (all of them in the rejected file, exit 1)."""
    project = f"wrong-path/{mode}"
    calls = gen_calls(6, seed=1000 + (mode == "single"), project=project)
    trace = write_flat(tmp_path / "t.jsonl", calls)
    r = run_cli(
        "upload", str(trace), "--server", ref.url + "/api", "--api-key", KEY,
        "--mode", mode, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert KEY not in r.stdout + r.stderr and "Traceback" not in r.stderr
    assert f"{ref.url}/api/" in r.stderr and "HTTP 404 Not Found" in r.stderr, r.stderr
    assert "no such route" in r.stderr and "(record)" not in r.stderr
    assert not (tmp_path / "tracecli-rejected.jsonl").exists()
    r2 = run_cli("upload", str(trace), "--server", ref.url, "--mode", mode, cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr
    assert len(read_back(ref.url, project)) == len(calls)


def test_mode_otel_to_tracecli_serve_stops_at_once(tmp_path: Path) -> None:
    """`tracecli serve` has no `/otel/v1/traces`: its 404 was taken for a refusal of each
    span, the requests split down to one span each (some 800 for 400 spans), all rejected."""
    resource = {
        "attributes": [
            {"key": "wandb.entity", "value": {"stringValue": "acme"}},
            {"key": "wandb.project", "value": {"stringValue": "otel"}},
        ]
    }
    with (tmp_path / "s.jsonl").open("wb") as f:
        for line in range(4):
            spans = [bare_span(f"{line * 100 + n + 1:016x}") for n in range(100)]
            f.write(orjson.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [
                {"scope": {"name": "t"}, "spans": spans}]}]}) + b"\n")  # fmt: skip
    with tracecli_serve(tmp_path / "serve") as serve:
        r = run_cli(
            "upload", str(tmp_path / "s.jsonl"), "--server", serve.url, "--mode", "otel",
            "--format", "json", cwd=tmp_path,
        )  # fmt: skip
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "/otel/v1/traces answered HTTP 404" in r.stderr, r.stderr
    assert "tracecli serve has no route POST /otel/v1/traces" in r.stderr
    assert not (tmp_path / "tracecli-rejected.jsonl").exists()


# -- login: a key is "accepted" only by a server that answered the probe -----------------


def _login(url: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from tracecli.cli import app

    result = CliRunner().invoke(app, ["login", "--server", url], input=KEY + "\n")
    return result.exit_code, result.stdout + result.stderr


def test_login_to_a_redirect_stores_no_key(tmp_path: Path) -> None:
    """A redirect answers nothing about the key (the client follows none, so the key never
    reached the server it points to): it was "accepted" and stored."""
    with redirecting(308, "https://login.example") as url:
        code, out = _login(url)
    assert code == 2, out
    assert "HTTP 308" in out and "https://login.example/calls/stream_query" in out, out
    assert "accepted" not in out and KEY not in out
    assert not (Path.home() / ".netrc").exists()


def test_login_to_a_wrong_path_stores_no_key(tmp_path: Path, ref: ServerHandle) -> None:
    code, out = _login(ref.url + "/api")
    assert code == 2, out
    assert "HTTP 404" in out and "--no-verify" in out, out
    assert "accepted" not in out and KEY not in out
    assert not (Path.home() / ".netrc").exists()


# -- https:// to a server that speaks plain HTTP --------------------------------------------


@pytest.mark.parametrize("command", ["upload", "tail"])
def test_https_to_a_plain_http_server_is_said_at_once(tmp_path: Path, command: str) -> None:
    """The TLS handshake gets an HTTP answer (`WRONG_VERSION_NUMBER`): no retry can change
    that. `upload` retried it as a network fault until --max-outage (60 s), then said the
    server was unreachable."""
    trace = write_flat(tmp_path / "t.jsonl", gen_calls(3))
    with tracecli_serve(tmp_path / "serve") as serve:
        url = serve.url.replace("http://", "https://")
        args = ["upload", str(trace)] if command == "upload" else ["tail", "-p", "acme/chaos"]
        t0 = time.monotonic()
        r = run_cli(*args, "--server", url, "--api-key", KEY, cwd=tmp_path, timeout=120)
        took = time.monotonic() - t0
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert took < 30, took  # not after --max-outage
    assert "does not speak TLS" in r.stderr and "starts with http://" in r.stderr, r.stderr
    assert KEY not in r.stdout + r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "tracecli-rejected.jsonl").exists()


# -- a 4xx web page: a proxy's or load balancer's, not a trace server's word on the calls --

NGINX_400 = (
    b"<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>"
    b"\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>The plain HTTP "
    b"request was sent to HTTPS port</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n"
    b"</html>\r\n"
)


def nginx_page() -> contextlib.AbstractContextManager[str]:
    return answering(400, {"Content-Type": "text/html"}, NGINX_400)


def test_a_400_web_page_rejects_no_record(tmp_path: Path) -> None:
    """nginx's answer to http:// on its TLS port (a 400 page): every record was split off
    and rejected with it, though no trace server saw any of them."""
    trace = write_flat(tmp_path / "t.jsonl", gen_calls(6))
    with nginx_page() as url:
        r = run_cli("upload", str(trace), "--server", url, "--api-key", KEY, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "HTTP 400" in r.stderr and "text/html" in r.stderr, r.stderr
    assert "(record)" not in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "tracecli-rejected.jsonl").exists()


# -- a key in the server URL's userinfo: never shown, even when the URL is bad ---------------


@pytest.mark.parametrize(
    "url",
    [
        f"http://api:{KEY}@[::1",  # urlsplit: Invalid IPv6 URL (was a traceback)
        f"http://api:{KEY}@127.0.0.1:99999",  # port out of range (was a traceback)
        f"http://api:{KEY}@127.0.0.1:6345:1",  # httpx: invalid port (was a traceback)
        f"htp://api:{KEY}@127.0.0.1:6345",  # not http(s): the refusal showed the key
        f"http://api:{KEY}@exa mple.com",  # a space in the host: "no API key for <the key>"
    ],
)
@pytest.mark.parametrize("command", ["upload", "tail"])
def test_a_bad_server_url_is_one_line_without_the_key(
    tmp_path: Path, url: str, command: str
) -> None:
    trace = write_flat(tmp_path / "t.jsonl", gen_calls(2))
    args = ["upload", str(trace)] if command == "upload" else ["tail", "-p", "acme/chaos"]
    r = run_cli(*args, "--server", url, cwd=tmp_path, timeout=60, WANDB_API_KEY="")
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "Traceback" not in out and KEY not in out, out
    assert "--server" in out and "URL" in out, out


def test_the_key_in_a_remote_servers_url_is_its_key(tmp_path: Path) -> None:
    """`https://api:KEY@host` gives the key (the client sends it as upload's --api-key): it
    was refused with "no API key for https://api:KEY@host", the key in the message."""
    trace = write_flat(tmp_path / "t.jsonl", gen_calls(2))
    url = f"https://api:{KEY}@weave.example.invalid"
    r = run_cli("upload", str(trace), "--server", url, "--dry-run", cwd=tmp_path, WANDB_API_KEY="")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert KEY not in out and "no API key" not in out, out


def test_a_400_web_page_rejects_no_freeplay_record(tmp_path: Path) -> None:
    trace = write_flat(tmp_path / "t.jsonl", gen_calls(4))
    with nginx_page() as url:
        r = run_cli(
            "upload", str(trace), "--target", "freeplay", "--server", url + "/api",
            "--api-key", KEY, "-p", "11111111-1111-4111-8111-111111111111", cwd=tmp_path,
        )  # fmt: skip
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "HTTP 400" in r.stderr and "text/html" in r.stderr, r.stderr
    assert "<html>" not in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "tracecli-rejected.jsonl").exists()
