"""Answers that say "200 OK" without being a trace server's acknowledgement.

A gateway in front of the server (or a wrong URL: a sign-in page, a web app) may answer a
write with 200 and a body that is an error, or no trace server's answer at all. Counting
such a request as stored loses its calls for good: the journal then skips them on every
later run. Real `tracecli serve` behind the fault proxy, which answers some writes itself.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.support.faultproxy import FaultProxy, Faults
from tests.support.servers import ServerHandle
from tests.support.uploadkit import (
    diff_calls,
    gen_calls,
    read_back,
    run_cli,
    start_cli,
    wait_forwarded,
    weave_ref,
    write_flat,
)


def upload_args(file: Path, url: str) -> list[str]:
    return ["upload", str(file), "--server", url, "--format", "json", "--chunk-size", "50"]


def test_a_200_with_an_error_body_is_not_stored_and_is_sent_again(
    tmp_path: Path, serve: ServerHandle
) -> None:
    proj = "answers/error-body"
    calls = gen_calls(300, seed=31, project=proj)
    file = write_flat(tmp_path / "calls.jsonl", calls)
    error = b'{"error": "upstream database unavailable"}'
    faults = Faults(fake_ok_nth={2: ("application/json", error), 4: ("application/json", error)})
    with FaultProxy(serve.url, faults) as proxy:
        r = run_cli(*upload_args(file, proxy.url), cwd=tmp_path, TRACECLI_RETRY_BASE_DELAY="0.02")
    assert proxy.stats.injected[200] == 2
    assert r.returncode == 0, r.stderr[-2000:]
    report = orjson.loads(r.stdout)
    assert (report["uploaded"], report["rejected"], report["unsent"]) == (300, 0, 0), report
    assert report["retried"] == 2, report
    assert diff_calls(calls, read_back(serve.url, proj)) == []


def test_a_web_page_that_answers_200_stops_the_upload_and_leaves_everything_unsent(
    tmp_path: Path, serve: ServerHandle
) -> None:
    proj = "answers/web-page"
    calls = gen_calls(120, seed=32, project=proj)
    file = write_flat(tmp_path / "calls.jsonl", calls)
    page = ("text/html; charset=utf-8", b"<!doctype html><html><body>Sign in</body></html>")
    with FaultProxy(serve.url, Faults(fake_ok_nth=dict.fromkeys(range(1, 100), page))) as proxy:
        r = run_cli(*upload_args(file, proxy.url), cwd=tmp_path)
        assert r.returncode == 2, r.stderr[-2000:]
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
        assert "HTTP 200" in r.stderr and "text/html" in r.stderr, r.stderr
        assert read_back(serve.url, proj) == []
        assert not (tmp_path / "tracecli-rejected.jsonl").exists()
        # the page is gone: the same command sends everything, nothing was journaled
        proxy.configure(fake_ok_nth={})
        r = run_cli(*upload_args(file, proxy.url), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    report = orjson.loads(r.stdout)
    assert (report["uploaded"], report["skipped"]) == (120, 0), report
    assert diff_calls(calls, read_back(serve.url, proj)) == []


def test_ctrl_c_with_an_answer_that_never_comes_counts_its_records_unsent(
    tmp_path: Path, serve: ServerHandle
) -> None:
    """The request whose answer never comes is given up at Ctrl-C (after the grace time):
    its records are counted unsent, so every record read is in exactly one count, and the
    same command sends what was not acknowledged."""
    proj = "answers/hang"
    calls = gen_calls(1000, seed=33, project=proj)
    file = write_flat(tmp_path / "calls.jsonl", calls)
    with FaultProxy(serve.url, Faults(hang_nth=(3,), latency=0.05)) as proxy:
        args = [*upload_args(file, proxy.url), "--concurrency", "2"]
        proc = start_cli(args, tmp_path, 0)
        wait_forwarded(proxy, 6, proc)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130
        err = (tmp_path / "err0.txt").read_text()
        assert "Traceback" not in err and "run the same command again" in err, err
        first = orjson.loads((tmp_path / "out0.txt").read_text())
        assert first["interrupted"], first
        counted = first["records_uploaded"] + first["rejected"] + first["unsent"]
        assert counted + first["skipped"] == first["records"], first
        proxy.configure(hang_nth=(), latency=0.0)
        r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert diff_calls(calls, read_back(serve.url, proj)) == []


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    with weave_ref(tmp_path_factory.mktemp("ref")) as handle:
        yield handle


@pytest.mark.weave_ref
@pytest.mark.parametrize("mode", ["auto", "batch"])
def test_answers_cut_half_way_and_200_errors_store_every_call_once_on_weave_ref(
    tmp_path: Path, ref: ServerHandle, mode: str
) -> None:
    """weave's SQLite server stored the request whose answer was cut (a re-send is a 500
    there, settled by asking it what it holds); a 200 error stored nothing: sent again."""
    proj = f"answers/cut-{mode}"
    calls = gen_calls(400, seed=34 if mode == "auto" else 35, project=proj)  # ids: one server
    file = write_flat(tmp_path / "calls.jsonl", calls)
    error = ("application/json", b'{"error": "try again"}')
    faults = Faults(cut_nth=(2, 5), fake_ok_nth={3: error})
    with FaultProxy(ref.url, faults) as proxy:
        args = [*upload_args(file, proxy.url), "--mode", mode]
        r = run_cli(*args, cwd=tmp_path, TRACECLI_RETRY_BASE_DELAY="0.02")
        assert r.returncode == 0, r.stderr[-2000:]
        report = orjson.loads(r.stdout)
        assert (report["uploaded"], report["rejected"], report["unsent"]) == (400, 0, 0)
        assert proxy.duplicates() > 0  # the cut answers' requests went twice
        assert diff_calls(calls, read_back(ref.url, proj)) == []


@pytest.mark.parametrize(
    ("ctype", "text", "verdict"),
    [
        ("application/json", "null", None),  # a FastAPI handler that returns nothing
        ("application/json", "true", None),
        ("text/plain", '"ok"', None),
        ("", "", None),
        ("application/json", '{"error": "upstream down"}', False),
        ("text/html", "<!doctype html><p>Sign in</p>", True),
        ("text/plain", "OK", True),
    ],
)
def test_which_2xx_answers_acknowledge(ctype: str, text: str, verdict: bool | None) -> None:
    """JSON of any kind acknowledges unless it is an error object; a page or plain text is
    no trace server's answer (stop); an error object is retried."""
    from tracecli.targets.outcome import Action, Outcome, not_acknowledged

    body = orjson.loads(text) if text[:1] in ("{", "[") else None
    got = not_acknowledged(
        Outcome(Action.OK, 200, headers={"content-type": ctype}, body=body, text=text)
    )
    assert (got if got is None else got[0]) == verdict
