"""`tracecli upload --follow`: files shipped as they are written, against real servers on
127.0.0.1 (`tracecli serve`, weave-ref) behind the fault proxy, which also counts what the
server received per call id (and, polled here, when)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.faultproxy import FaultProxy, Faults
from tests.support.follow_kit import (
    CHUNK,
    CONCURRENCY,
    line,
    received,
    start_follower,
    stop,
    wait_for,
)
from tests.support.uploadkit import (
    cli_env,
    diff_calls,
    gen_calls,
    read_back,
    tracecli,
    tracecli_serve,
    weave_ref,
)


def _last_status(path: Path) -> dict[str, Any]:
    """The last whole JSON status line the follower wrote ({} before the first)."""
    lines = path.read_bytes().split(b"\n")[:-1]  # the last piece may be half-written
    return orjson.loads(lines[-1]) if lines else {}


def _recovered(status: dict[str, Any]) -> bool:
    return status.get("calls_shipped") == 20 and status.get("outage_since", 0) is None


def test_follow_ships_appends_and_rotations_then_stops_on_sigterm(tmp_path):
    calls = gen_calls(150, seed=51)
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.jsonl"
    app.write_bytes(b"".join(line("call", {**s, **e}) for s, e in calls[:50]))
    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url) as proxy:
        proc = start_follower(tmp_path, proxy.url, logs)
        try:
            wait_for(lambda: len(received(proxy)) == 50, 60, proc)
            with app.open("ab") as f:
                f.write(b"".join(line("call", {**s, **e}) for s, e in calls[50:100]))
            wait_for(lambda: len(received(proxy)) == 100, 30, proc)
            app.rename(logs / "app-1.jsonl")  # rotation: the new file appears in the folder
            (logs / "app.jsonl").write_bytes(
                b"".join(line("call", {**s, **e}) for s, e in calls[100:])
            )
            wait_for(lambda: len(received(proxy)) == 150, 30, proc)
        finally:
            code = stop(proc)
        assert code == 0, (tmp_path / "follow0.err").read_text()
        assert proxy.duplicates() == 0
        assert diff_calls(calls, read_back(serve.url)) == []
    status = [orjson.loads(x) for x in (tmp_path / "follow0.out").read_bytes().splitlines()]
    assert status and status[-1]["event"] == "follow_status"
    assert status[-1]["calls_shipped"] == 150


@pytest.mark.slow
def test_a_start_waits_for_its_end_then_goes_running_after_pair_wait(tmp_path):
    calls = gen_calls(2, seed=52)
    app = tmp_path / "app.jsonl"
    app.write_bytes(line("start", calls[0][0]) + line("start", calls[1][0]))
    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url) as proxy:
        proc = start_follower(tmp_path, proxy.url, app, extra=("--pair-wait", "4"))
        try:
            time.sleep(2.0)
            with app.open("ab") as f:
                f.write(line("end", calls[0][1]))  # within --pair-wait: one completed call
            wait_for(lambda: proxy.sends(calls[1][0]["id"]) == 1, 30, proc)  # went running
            with app.open("ab") as f:
                f.write(line("end", calls[1][1]))
            wait_for(lambda: proxy.sends(calls[1][0]["id"]) == 2, 30, proc)
        finally:
            assert stop(proc) == 0
        assert proxy.sends(calls[0][0]["id"], "complete") == 1
        assert proxy.sends(calls[0][0]["id"]) == 1
        assert proxy.sends(calls[1][0]["id"], "start") == 1
        assert proxy.sends(calls[1][0]["id"], "end") == 1
        assert diff_calls(calls, read_back(serve.url)) == []


@pytest.mark.slow
def test_ctrl_c_exits_130_and_a_bad_server_exits_2(tmp_path):
    app = tmp_path / "app.jsonl"
    app.write_bytes(b"")
    with tracecli_serve(tmp_path / "serve") as serve:
        proc = start_follower(tmp_path, serve.url, app)
        time.sleep(2.0)
        assert stop(proc, signal.SIGINT) == 130
    r = subprocess.run(
        tracecli("upload", "--follow", str(app), "--dry-run"),
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )
    assert r.returncode == 2 and "--dry-run" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("watch", [(), ("--poll",)], ids=["events", "polling"])
def test_a_half_written_line_waits_and_a_bad_line_is_said_once(tmp_path, watch):
    calls = gen_calls(3, seed=53)
    app = tmp_path / "app.jsonl"
    first = line("call", {**calls[0][0], **calls[0][1]})
    app.write_bytes(first + b'{"type": "call", not json\n')
    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url) as proxy:
        proc = start_follower(tmp_path, proxy.url, app, extra=("-v", *watch))
        try:
            wait_for(lambda: len(received(proxy)) == 1, 30, proc)
            half = line("call", {**calls[1][0], **calls[1][1]})
            with app.open("ab") as f:
                f.write(half[:30])  # the writer is in the middle of a line
            time.sleep(2.5)  # two looks at least: nothing is said or sent for it
            with app.open("ab") as f:
                f.write(half[30:] + line("call", {**calls[2][0], **calls[2][1]}))
            wait_for(lambda: len(received(proxy)) == 3, 30, proc)
        finally:
            assert stop(proc) == 0
        assert proxy.duplicates() == 0
        assert diff_calls(calls, read_back(serve.url)) == []
    err = (tmp_path / "follow0.err").read_text()
    assert err.count(":2: error:") == 1, err  # the bad line, said once
    rejected = (tmp_path / "tracecli-rejected.jsonl").read_bytes().splitlines()
    assert [orjson.loads(x)["_tracecli"]["line"] for x in rejected] == [2]  # kept, once
    assert ":3: error:" not in err  # the half-written line was never read half


@pytest.mark.slow
def test_a_record_the_server_refuses_is_not_sent_again_by_every_pass(tmp_path):
    calls = gen_calls(4, seed=54)
    app = tmp_path / "app.jsonl"
    app.write_bytes(line("call", {**calls[0][0], **calls[0][1]}))
    bad = calls[0][0]["id"]
    faults = Faults(refuse={bad: (422, "this call is refused")})
    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url, faults) as proxy:
        proc = start_follower(tmp_path, proxy.url, app, extra=("--chunk-size", "1"))
        try:
            wait_for(lambda: proxy.stats.refused == 1, 30, proc)
            for s, e in calls[1:]:  # three more passes
                with app.open("ab") as f:
                    f.write(line("call", {**s, **e}))
                time.sleep(1.5)
            wait_for(lambda: len(received(proxy)) == 3, 30, proc)
        finally:
            assert stop(proc) == 0
        assert proxy.stats.refused == 1
        assert diff_calls(calls[1:], read_back(serve.url)) == []


@pytest.mark.slow
def test_an_outage_is_ridden_out_and_max_outage_gives_up(tmp_path):
    calls = gen_calls(20, seed=55)
    app = tmp_path / "app.jsonl"
    app.write_bytes(b"".join(line("call", {**s, **e}) for s, e in calls))
    faults = Faults(p_drop_before=1.0)  # every write lost in transit: no answer at all
    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url, faults) as proxy:
        # the outage stop of each pass after 2 s (the variable), but no give-up: it retries
        env_proc = subprocess.Popen(
            tracecli("upload", "--follow", str(app), "--server", proxy.url, "--format", "json"),
            stdout=(tmp_path / "o.out").open("wb"),
            stderr=(tmp_path / "o.err").open("wb"),
            stdin=subprocess.DEVNULL,
            env=cli_env(TRACECLI_MAX_OUTAGE="2", TRACECLI_FOLLOW_STATUS_EVERY="1"),
            cwd=tmp_path,
        )
        try:
            time.sleep(6.0)
            assert env_proc.poll() is None  # still there, retrying
            proxy.configure(p_drop_before=0.0)  # the server is back
            wait_for(lambda: len(received(proxy)) == 20, 60, env_proc)
            # forwarded is not yet answered: wait for the pass that ships them to say so
            wait_for(lambda: _recovered(_last_status(tmp_path / "o.out")), 60, env_proc)
        finally:
            assert stop(env_proc) == 0
        status = [orjson.loads(x) for x in (tmp_path / "o.out").read_bytes().splitlines()]
        assert any(x["outage_since"] is not None for x in status)
        assert status[-1]["outage_since"] is None and status[-1]["calls_shipped"] == 20
        assert diff_calls(calls, read_back(serve.url)) == []
        proxy.configure(p_drop_before=1.0)
        with app.open("ab") as f:
            f.write(line("call", {**gen_calls(1, seed=56)[0][0], **gen_calls(1, seed=56)[0][1]}))
        r = subprocess.run(
            tracecli("upload", "--follow", str(app), "--server", proxy.url, "--max-outage", "2"),
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=90,
            cwd=tmp_path,
        )
        assert r.returncode == 1, r.stderr
        assert "gave up after --max-outage" in r.stderr and "Traceback" not in r.stderr


# -- the soak --------------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import os, sys, time, orjson
    sys.path.insert(0, sys.argv[1])
    from tests.support.uploadkit import gen_calls
    logs, seconds, rate, seed = sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    n = int(seconds * rate / 2) + 10
    calls = gen_calls(n, seed=seed)
    long_ids = {calls[i][0]["id"] for i in range(5, n, max(1, n // 4))}
    app = os.path.join(logs, "app.jsonl")
    f = open(app, "ab")
    times = open(os.path.join(logs, "..", "writes.log"), "a")
    t0 = time.time()
    rotations = 0
    pending = []  # (due time, end body)
    i = 0
    while True:
        now = time.time()
        if now - t0 >= seconds and not pending:
            break
        if now - t0 >= 15 * (rotations + 1):
            rotations += 1
            f.close()
            os.rename(app, os.path.join(logs, "app-%d.jsonl" % rotations))
            f = open(app, "ab")
        batch = []
        while pending and pending[0][0] <= now:
            batch.append((b"end", pending.pop(0)[1]))
        for _ in range(max(1, rate // 200)):  # ~100 writes a second of 2 records a call
            if i >= n or now - t0 >= seconds:
                break
            s, e = calls[i]
            i += 1
            if s["id"] in long_ids:
                batch.append((b"start", s))
                pending.append((now + 20.0, e))
            else:
                batch.append((b"start", s))
                batch.append((b"end", e))
        for kind, body in batch:
            f.write(orjson.dumps({"type": kind.decode(), **body}) + b"\\n")
        f.flush()
        for kind, body in batch:
            if kind == b"end":
                times.write("%s %.4f\\n" % (body["id"], time.time()))
        times.flush()
        time.sleep(0.01)
    f.close()
    print(i, flush=True)
    """
)


class Watch:
    """When the server first received each call complete (a completed call or an end),
    polled from the proxy's counters."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.first: dict[str, float] = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            with self.proxy._lock:
                keys = [k for k in self.proxy.forwarded_ids if k[0] in ("complete", "end")]
            for _, cid in keys:
                self.first.setdefault(cid, now)
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._t.join(5)


def soak(tmp_path: Path, url: str, proxy: FaultProxy, seconds: float, rate: int) -> dict:
    logs = tmp_path / "logs"
    logs.mkdir()
    root = str(Path(__file__).resolve().parent.parent)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    watch = Watch(proxy)
    follower = start_follower(tmp_path, url, logs, n=0)
    writer = subprocess.Popen(
        [sys.executable, str(script), root, str(logs), str(seconds), str(rate), "61"],
        stdout=subprocess.PIPE,
        env=cli_env(),
    )
    kills = 0
    try:
        time.sleep(seconds / 2)
        follower.kill()  # kill -9 midway
        follower.wait(10)
        kills += 1
        follower = start_follower(tmp_path, url, logs, n=1)
        out, _ = writer.communicate(timeout=seconds + 60)
        written = int(out.decode().strip())
        calls = gen_calls(int(seconds * rate / 2) + 10, seed=61)[:written]
        ids = {s["id"] for s, _ in calls}
        wait_for(lambda: ids <= watch.first.keys(), 60, follower)
    finally:
        code = stop(follower)
        watch.stop()
        if writer.poll() is None:
            writer.kill()
    assert code == 0, (tmp_path / "follow1.err").read_text()
    writes = dict(x.split() for x in (tmp_path / "writes.log").read_text().splitlines())
    lat = sorted(watch.first[c] - float(t) for c, t in writes.items() if c in watch.first)
    p95 = lat[int(len(lat) * 0.95)]
    return {
        "calls": calls,
        "written": written,
        "p95": p95,
        "p50": lat[len(lat) // 2],
        "kills": kills,
        "duplicates": proxy.duplicates(),
        "dropped": proxy.stats.dropped_after,
    }


@pytest.mark.slow
def test_soak_against_tracecli_serve_with_faults_and_a_kill(tmp_path):
    faults = Faults(p_5xx=0.03, p_429=0.03, p_drop=0.02, seed=7)
    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url, faults) as proxy:
        r = soak(tmp_path, proxy.url, proxy, seconds=45, rate=1000)
        proxy.configure(p_5xx=0, p_429=0, p_drop=0)
        assert diff_calls(r["calls"], read_back(serve.url)) == []
    print(
        f"\nsoak: {r['written']} calls, p50 {r['p50']:.2f} s, p95 {r['p95']:.2f} s, "
        f"{r['duplicates']} re-sent items ({r['dropped']} dropped answers, {r['kills']} kill)"
    )
    assert r["duplicates"] <= r["kills"] * CONCURRENCY * CHUNK + r["dropped"] * CHUNK
    assert r["p95"] < 5.0


@pytest.mark.slow
@pytest.mark.weave_ref
def test_soak_against_weave_ref(tmp_path):
    with weave_ref(tmp_path / "ref") as ref, FaultProxy(ref.url) as proxy:
        r = soak(tmp_path, proxy.url, proxy, seconds=15, rate=300)
        assert diff_calls(r["calls"], read_back(ref.url)) == []
    print(f"\nsoak (weave-ref): {r['written']} calls, p95 {r['p95']:.2f} s")
    assert r["p95"] < 5.0


def test_follow_needs_files_not_stdin(tmp_path):
    r = subprocess.run(
        tracecli("upload", "--follow", "-", "--db", str(tmp_path / "s.db")),
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 2 and "stdin" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_complete_mode_waits_for_an_end_appended_later(tmp_path):
    """--mode complete sends completed calls only: a start waits (--pair-wait) for its end
    rather than being rejected at once, and the two go as one completed call."""
    calls = gen_calls(2, seed=57)
    app = tmp_path / "app.jsonl"
    app.write_bytes(line("call", {**calls[0][0], **calls[0][1]}) + line("start", calls[1][0]))
    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url) as proxy:
        proc = start_follower(tmp_path, proxy.url, app, extra=("--mode", "complete"))
        try:
            wait_for(lambda: len(received(proxy)) == 1, 30, proc)
            time.sleep(2.0)
            with app.open("ab") as f:
                f.write(line("end", calls[1][1]))
            wait_for(lambda: len(received(proxy)) == 2, 30, proc)
        finally:
            assert stop(proc) == 0
        assert proxy.sends(calls[1][0]["id"], "complete") == 1
        assert proxy.duplicates() == 0
        assert diff_calls(calls, read_back(serve.url)) == []
    assert "no end" not in (tmp_path / "follow0.err").read_text()
    assert not (tmp_path / "tracecli-rejected.jsonl").exists()
