"""A server that dies mid-upload, and SIGTERM: stop soon, say so in one line, lose nothing.

Real processes on 127.0.0.1: `tracecli serve` behind the pass-through fault proxy (its
latency keeps the upload going long enough to kill the server under it), `tracecli upload`
as a subprocess. The server "dies" by the proxy going away and `serve` being killed: every
connection is then refused. The upload must stop within --max-outage, leave what was not
sent out of the rejected file (unsent, not rejected), exit 1 with one line; and once the
server is back on the same store, the same command must store everything exactly once.
"""

from __future__ import annotations

import contextlib
import random
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import freeplay_fixtures
from tests.support.faultproxy import FaultProxy, Faults
from tests.support.freeplay_fixtures import API_KEY, PROJECT, RefServer, write_completions
from tests.support.servers import ServerHandle, start_serve
from tests.support.uploadkit import (
    diff_calls,
    gen_calls,
    read_back,
    run_cli,
    start_cli,
    stop_then_resume,
    wait_forwarded,
    write_flat,
)
from tracecli.upload.api import Progress, UploadOptions, upload

pytestmark = pytest.mark.slow  # servers stopped and started mid-upload: out of the fast loop

refserver_module = freeplay_fixtures.refserver_module
refserver = freeplay_fixtures.refserver

FAST_RETRIES = {"TRACECLI_RETRY_BASE_DELAY": "0.05", "TRACECLI_RETRY_MAX_DELAY": "0.5"}
OUTAGE = 2.0  # --max-outage in these tests


def upload_args(file: Path, url: str, *extra: str) -> list[str]:
    return [
        "upload", str(file), "--server", url, "--format", "json", "--chunk-size", "100",
        "--concurrency", "2", "--max-outage", str(OUTAGE), *extra,
    ]  # fmt: skip


def stop(proxy: FaultProxy) -> None:
    """Stop the proxy, once stopped or not (the server "dies" by it going away)."""
    with contextlib.suppress(RuntimeError):  # its event loop already closed
        proxy.stop()


def die_mid_upload(
    args: list[str], proxy: FaultProxy, serve: ServerHandle, tmp_path: Path, k: int
) -> tuple[dict[str, Any], str]:
    """Start the upload, let a few requests through, then the server dies: nothing listens
    at its address any more. The upload must stop soon after, exit 1, one error line."""
    proc = start_cli(args, tmp_path, k, **FAST_RETRIES)
    before = proxy.stats.forwarded
    wait_forwarded(proxy, before + 4, proc, pause=0.005)
    stop(proxy)
    serve.proc.kill()
    serve.stop()
    died = time.monotonic()
    code = proc.wait(60)
    took = time.monotonic() - died
    err = (tmp_path / f"err{k}.txt").read_text()
    assert code == 1, err[-3000:]
    # within the outage bound (and the grace for requests in flight), not 10 minutes
    assert took < OUTAGE + 20, (took, err[-2000:])
    assert "Traceback" not in err and err.count("error:") == 1, err[-3000:]
    report = orjson.loads((tmp_path / f"out{k}.txt").read_text())
    assert report["halted"] and f"tracecli: error: {report['halted']}" in err
    return report, err


@pytest.mark.slow  # > 5 s: out of the fast loop (-m "not slow")
def test_a_server_that_dies_mid_upload_stops_it_soon_and_the_rerun_stores_the_rest_once(
    tmp_path: Path,
) -> None:
    n = 4_000
    proj = f"outage/die-{random.randrange(1 << 30):x}"
    calls = gen_calls(n, seed=random.randrange(1 << 40), project=proj)
    file = write_flat(tmp_path / "calls.jsonl", calls)
    store = tmp_path / "serve"
    serve = start_serve(store)
    proxy = FaultProxy(serve.url, Faults(latency=0.1)).start()
    port = proxy.port
    args = upload_args(file, proxy.url)
    stored = 0
    try:
        # twice: the second run resumes, then the server dies again
        for k in range(2):
            if k:  # back on the same store (and address)
                serve = start_serve(store, db_path=serve.db_path)
                proxy = FaultProxy(serve.url, Faults(latency=0.1), port=port).start()
            report, err = die_mid_upload(args, proxy, serve, tmp_path, k)
            assert report["rejected"] == 0 and report["unsent"] > 0, report
            assert not (tmp_path / "tracecli-rejected.jsonl").exists()
            stored += report["records_uploaded"]
            assert report["skipped"] >= stored - report["records_uploaded"], report
            line = re.search(
                r"server unreachable since \d\d:\d\d:\d\d; ([\d,]+) records unsent"
                r"; run the same command again to resume",
                err,
            )
            assert line, err[-3000:]
            # every record not stored: read and not sent, or not read yet (counted)
            assert int(line.group(1).replace(",", "")) == 2 * n - stored, (k, stored)

        # the server comes back: the same command sends the rest
        serve = start_serve(store, db_path=serve.db_path)
        proxy = FaultProxy(serve.url, Faults(), port=port).start()
        r = run_cli(*args, cwd=tmp_path, **FAST_RETRIES)
        assert r.returncode == 0, r.stderr[-3000:]
        last = orjson.loads(r.stdout)
        assert last["skipped"] >= stored and last["rejected"] == 0, last
        assert diff_calls(calls, read_back(serve.url, proj)) == []  # each stored exactly once
    finally:
        stop(proxy)
        serve.stop()


def test_the_progress_record_says_the_server_is_unreachable_and_when_it_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process, through the library: the progress record carries a short status while
    the requests wait, and the report says where every record went."""
    for k, v in FAST_RETRIES.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    proj = f"outage/status-{random.randrange(1 << 30):x}"
    calls = gen_calls(1_500, seed=7, project=proj)
    file = write_flat(tmp_path / "calls.jsonl", calls)
    serve = start_serve(tmp_path / "serve")
    proxy = FaultProxy(serve.url, Faults(latency=0.1)).start()
    statuses: list[str] = []

    def on_progress(p: Progress) -> None:
        if p.status:
            statuses.append(p.status)
        if p.uploaded and not stopper.is_alive() and not stopped.is_set():
            stopped.set()
            stopper.start()

    stopped = threading.Event()
    stopper = threading.Thread(target=stop, args=(proxy,))
    try:
        opts = UploadOptions(
            server=proxy.url,
            chunk_size=50,
            concurrency=2,
            max_outage=1.5,
            journal_path=tmp_path / "journal.db",
        )
        t0 = time.monotonic()
        report = upload([str(file)], opts, on_progress=on_progress)
        took = time.monotonic() - t0
    finally:
        stop(proxy)
        serve.stop()
    assert stopped.is_set()
    assert took < 40
    assert report.exit_code == 1 and report.rejected == 0 and report.unsent > 0
    assert report.halted and report.halted.startswith("server unreachable since ")
    assert any(
        re.fullmatch(r"server unreachable \(connection refused\); retry \d+ (in \d+ s|sent)", s)
        for s in statuses
    ), statuses[-10:]
    assert report.rejected_file is None and not (tmp_path / "tracecli-rejected.jsonl").exists()
    acked_or_unsent = report.acked_records + report.unsent
    assert acked_or_unsent <= report.records


def test_sigterm_is_ctrl_c_exit_143_journal_saved_and_the_rerun_resends_nothing(
    tmp_path: Path,
) -> None:
    n = 4_000
    proj = f"outage/term-{random.randrange(1 << 30):x}"
    calls = gen_calls(n, seed=random.randrange(1 << 40), project=proj)
    file = write_flat(tmp_path / "calls.jsonl", calls)
    serve = start_serve(tmp_path / "serve")
    try:
        with FaultProxy(serve.url, Faults(latency=0.05)) as proxy:
            args = upload_args(file, proxy.url)
            first, second = stop_then_resume(
                args, proxy, tmp_path, signal.SIGTERM, n, pause=0.005, **FAST_RETRIES
            )
        assert first["uploaded"] + second["uploaded"] == n
        assert second["skipped"] == 2 * first["uploaded"]
        assert diff_calls(calls, read_back(serve.url, proj)) == []
    finally:
        serve.stop()


def test_freeplay_that_dies_mid_upload_stops_it_and_the_rerun_records_each_once(
    refserver: RefServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same against Freeplay's reference server: its address stops answering (the
    proxy in front of it goes away) mid-upload; the run stops within --max-outage, nothing
    rejected; back at the same address, the same command records every completion (once,
    but for what was in flight when the address went away)."""
    monkeypatch.chdir(tmp_path)
    n = 120
    session = "0d0b2b4c-5f7e-4c1a-9d3e-2a1b3c4d5e6f"
    src = write_completions(tmp_path / "c.jsonl", n, session)
    proxy = FaultProxy(refserver.base, Faults(latency=0.05)).start()
    port = proxy.port
    stopped = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.uploaded >= 10 and not stopped.is_set():
            stopped.set()
            threading.Thread(target=stop, args=(proxy,)).start()

    def opts() -> UploadOptions:
        return UploadOptions(
            target="freeplay",
            server=f"http://127.0.0.1:{port}/api",
            api_key=API_KEY,
            project=PROJECT,
            concurrency=2,
            max_outage=1.5,
            journal_path=tmp_path / "journal.sqlite3",
        )

    try:
        t0 = time.monotonic()
        first = upload([str(src)], opts(), on_progress=on_progress)
        took = time.monotonic() - t0
        assert stopped.is_set() and took < 40
        assert first.exit_code == 1 and first.rejected == 0 and first.unsent > 0, first
        assert first.halted and first.halted.startswith("server unreachable since ")
        # the lines not read are counted in, as for Weave
        assert first.unread is not None
        assert f"; {first.unsent + first.unread:,} records unsent;" in first.halted
        assert not (tmp_path / "tracecli-rejected.jsonl").exists()
        proxy = FaultProxy(refserver.base, Faults(), port=port).start()
        second = upload([str(src)], opts())
    finally:
        stop(proxy)
    assert second.exit_code == 0, second.diagnostics[:3]
    ids = [c["completion_id"] for c in refserver.records()["completions"]]
    assert len(set(ids)) == n  # every completion recorded
    # and none twice, but for a request in flight when the address went away: forwarded,
    # never answered, so not known to be stored (at most one per request in flight)
    assert len(ids) - n <= 2, len(ids)


def test_the_transport_gives_up_on_an_address_that_answers_nothing_after_max_outage() -> None:
    """Nothing listens at the port: connection refused on every attempt. The request ends
    UNREACHABLE after --max-outage (not --max-retry-time), and says since when."""
    from tests.support.servers import free_port
    from tracecli.targets.retry import Action, Backoff
    from tracecli.targets.transport import Transport

    url = f"http://127.0.0.1:{free_port()}"
    with Transport(
        url, api_key=None, max_outage=1.0, max_retry_time=300, backoff=Backoff(0.05, 0.2)
    ) as t:
        seen: list[str] = []
        t.on_retry = lambda ev: seen.append(t.status())
        t0 = time.monotonic()
        out = t.post("/call/start", b"{}")
        took = time.monotonic() - t0
        assert out.action is Action.UNREACHABLE and out.status is None
        assert 1.0 <= took < 10
        assert re.fullmatch(r"server unreachable since \d\d:\d\d:\d\d", t.status())
        assert t.unreachable_since is not None
        assert seen and seen[0].startswith("server unreachable (connection refused); retry 1 in")
        # and every request after that ends at once, unsent
        assert t.post("/call/start", b"{}").action is Action.UNREACHABLE
    # a long backoff does not push the stop past --max-outage: it is cut short
    with Transport(url, api_key=None, max_outage=1.0, backoff=Backoff(20.0, 20.0)) as t:
        t0 = time.monotonic()
        out = t.post("/call/start", b"{}")
        assert out.action is Action.UNREACHABLE and time.monotonic() - t0 < 8
        # a shorter --max-retry-time ends the request first: given up (unsent too), not down
    with Transport(
        url, api_key=None, max_outage=60, max_retry_time=0.3, backoff=Backoff(0.05, 0.1)
    ) as t:
        out = t.post("/call/start", b"{}")
        assert out.action is Action.GIVE_UP and t.unreachable_since is None
