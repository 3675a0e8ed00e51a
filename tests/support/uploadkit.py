"""Helpers for the end-to-end upload tests (chaos, crash, rejection, auth, secrets).

Real processes on 127.0.0.1: `python -m tracecli serve` and the weave reference server when
its venv exists (both started by tests/support/servers.py), and `python -m tracecli
upload` itself as a subprocess (so signals, stdout, stderr and exit codes are the user's).
Trace files are generated here, deterministically, so these tests need nothing from
../shared except for the reference server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from tests.support.servers import TLS, ServerHandle, start_serve, start_weave_ref

if TYPE_CHECKING:
    from tests.support.faultproxy import FaultProxy

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "acme/chaos"


# -- trace files ---------------------------------------------------------------------------


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def gen_calls(
    n: int, *, seed: int = 1, project: str = PROJECT, big_every: int = 0, big_bytes: int = 0
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """`n` calls as (start, end) bodies: traces of a root and 1-4 children, some errors,
    some LLM usage; every `big_every`-th call carries an input of about `big_bytes`."""
    rng = random.Random(seed)

    def uid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    calls: list[tuple[dict[str, Any], dict[str, Any]]] = []
    t = 1_760_000_000.0
    while len(calls) < n:
        trace = uid()
        root = uid()
        kids = [uid() for _ in range(rng.randint(1, 4))]
        for i, cid in enumerate([root, *kids]):
            if len(calls) >= n:
                break
            llm = i > 0 and rng.random() < 0.5
            inputs: dict[str, Any] = {"q": f"question {len(calls)} " + "x" * rng.randint(50, 200)}
            if big_every and len(calls) % big_every == big_every - 1:
                inputs["blob"] = "y" * big_bytes
            start = {
                "project_id": project,
                "id": cid,
                "op_name": "openai.chat" if llm else ("agent.run" if i == 0 else "tool.search"),
                "trace_id": trace,
                "parent_id": None if i == 0 else root,
                "started_at": _iso(t + i * 0.01),
                "attributes": {"n": len(calls)},
                "inputs": inputs,
            }
            failed = rng.random() < 0.03
            summary: dict[str, Any] = {}
            if llm:
                p, c = rng.randint(10, 900), rng.randint(1, 300)
                summary = {
                    "usage": {
                        "gpt-4o-mini": {
                            "prompt_tokens": p,
                            "completion_tokens": c,
                            "total_tokens": p + c,
                            "requests": 1,
                        }
                    }
                }
            end = {
                "project_id": project,
                "id": cid,
                "ended_at": _iso(t + 1.0 + i * 0.01),
                "exception": "TimeoutError: upstream" if failed else None,
                "output": None if failed else {"answer": f"a{len(calls)}"},
                "summary": summary,
            }
            calls.append((start, end))
        t += 5
    return calls


def write_flat(
    path: Path, calls: list[tuple[dict[str, Any], dict[str, Any]]], *, lag: int = 3
) -> Path:
    """Flat JSONL: each call's start, its end `lag` calls later (as a logger writes them)."""
    with path.open("wb") as f:
        pending: list[dict[str, Any]] = []
        for start, end in calls:
            f.write(orjson.dumps({"type": "start", **start}) + b"\n")
            pending.append(end)
            if len(pending) > lag:
                f.write(orjson.dumps({"type": "end", **pending.pop(0)}) + b"\n")
        for end in pending:
            f.write(orjson.dumps({"type": "end", **end}) + b"\n")
    return path


# -- reading back and comparing ------------------------------------------------------------


def read_back(url: str, project: str = PROJECT, api_key: str | None = None) -> list[dict]:
    """Every call of `project` as the server returns it from /calls/stream_query."""
    auth = ("api", api_key) if api_key else None
    out: list[dict] = []
    page = 10_000
    with httpx.Client(base_url=url, timeout=120, auth=auth, trust_env=False, verify=TLS) as c:
        offset = 0
        while True:
            body = {
                "project_id": project,
                "limit": page,
                "offset": offset,
                "sort_by": [{"field": "started_at", "direction": "asc"}],
            }
            r = c.post("/calls/stream_query", json=body, headers={"Accept": "application/jsonl"})
            r.raise_for_status()
            rows = [orjson.loads(x) for x in r.content.splitlines() if x.strip()]
            out.extend(rows)
            if len(rows) < page:
                return out
            offset += page


def read_jsonl(path: Path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]


def _ts(value: Any) -> Any:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return value


FIELDS = ("trace_id", "parent_id", "op_name", "inputs", "output", "exception", "attributes")


def diff_calls(calls: list[tuple[dict[str, Any], dict[str, Any]]], stored: list[dict]) -> list[str]:
    """Problems, empty when every call is stored exactly once with the same content."""
    problems: list[str] = []
    by_id: dict[str, list[dict]] = {}
    for row in stored:
        by_id.setdefault(row["id"], []).append(row)
    dupes = [i for i, rows in by_id.items() if len(rows) > 1]
    if dupes:
        problems.append(f"{len(dupes)} calls stored more than once, e.g. {dupes[:3]}")
    expected = {s["id"] for s, _ in calls}
    missing = expected - by_id.keys()
    if missing:
        problems.append(f"{len(missing)} calls missing, e.g. {sorted(missing)[:3]}")
    extra = by_id.keys() - expected
    if extra:
        problems.append(f"{len(extra)} unexpected calls stored, e.g. {sorted(extra)[:3]}")
    changed = 0
    for start, end in calls:
        rows = by_id.get(start["id"])
        if not rows:
            continue
        row = rows[0]
        want = {**start, **end}
        bad = [f for f in FIELDS if row.get(f) != want.get(f)]
        bad += [f for f in ("started_at", "ended_at") if _ts(row.get(f)) != _ts(want[f])]
        got_usage = (row.get("summary") or {}).get("usage") or {}
        if got_usage != (want["summary"].get("usage") or {}):
            bad.append("summary.usage")
        if bad:
            changed += 1
            if changed <= 3:
                problems.append(f"call {start['id']} differs in {bad}")
    if changed > 3:
        problems.append(f"... {changed} calls differ in all")
    return problems


# -- processes -----------------------------------------------------------------------------


def cli_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    env.update(extra)
    return env


def tracecli(*args: str) -> list[str]:
    return [sys.executable, "-m", "tracecli", *args]


def run_cli(
    *args: str,
    timeout: float = 170,
    cwd: Path | None = None,
    preexec_fn: Callable[[], object] | None = None,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """`tracecli ARGS` to its end, its output as text; `preexec_fn` runs in the child
    before tracecli starts (e.g. to drop privileges).

    A run still going after `timeout` seconds fails the test with what it was doing: the
    child runs with Python's faulthandler on (PYTHONFAULTHANDLER), so SIGABRT makes it
    print every thread's stack before it dies, and that is in the failure message."""
    cmd = tracecli(*args)
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(PYTHONFAULTHANDLER="1", **env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        preexec_fn=preexec_fn,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler: every thread's stack on stderr
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        raise AssertionError(
            f"`tracecli {' '.join(args)}` still running after {timeout:.0f} s; its stderr "
            f"(the threads' stacks last):\n{err[-12000:]}\nits stdout:\n{out[-2000:]}"
        ) from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def start_cli(args: list[str], tmp_path: Path, n: int, **env: str) -> subprocess.Popen[bytes]:
    """`tracecli ARGS` in the background, in `tmp_path`: its output in out{n}.txt and
    err{n}.txt there (read them once it has ended)."""
    return subprocess.Popen(
        tracecli(*args),
        stdout=(tmp_path / f"out{n}.txt").open("wb"),
        stderr=(tmp_path / f"err{n}.txt").open("wb"),
        stdin=subprocess.DEVNULL,
        env=cli_env(**env),
        cwd=tmp_path,
    )


def wait_forwarded(
    proxy: FaultProxy, target: int, proc: subprocess.Popen[bytes], pause: float = 0.002
) -> None:
    """Wait until the fault proxy has forwarded `target` requests; fail when the upload
    ended first or made no progress for 90 s."""
    deadline = time.monotonic() + 90
    while proxy.stats.forwarded < target:
        assert proc.poll() is None, f"upload ended (exit {proc.returncode}) too early"
        assert time.monotonic() < deadline, "upload made no progress"
        time.sleep(pause)


def stop_then_resume(
    args: list[str],
    proxy: FaultProxy,
    tmp_path: Path,
    signum: int,
    n: int,
    pause: float = 0.002,
    **env: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start `tracecli ARGS` (an upload through `proxy`, `--format json`), stop it with
    `signum` after a few requests, then run the same command to the end: both reports.
    The stopped run exits 128 + signum with the resume line and no traceback, having
    stored some but not all of the `n` calls; the second sends nothing acknowledged again."""
    proc = start_cli(args, tmp_path, 0, **env)
    wait_forwarded(proxy, 3, proc, pause)
    proc.send_signal(signum)
    assert proc.wait(30) == 128 + signum
    err = (tmp_path / "err0.txt").read_text()
    assert "interrupted" in err and "run the same command again" in err, err
    assert "Traceback" not in err
    first = orjson.loads((tmp_path / "out0.txt").read_text())
    assert first["interrupted"] and 0 < first["uploaded"] < n, first
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    second = orjson.loads(r.stdout)
    # requests in flight at the signal were allowed to finish and were journaled:
    # nothing the server acknowledged is sent again
    assert proxy.duplicates() == 0
    return first, second


@contextlib.contextmanager
def tracecli_serve(directory: Path, *, api_key: str | None = None) -> Iterator[ServerHandle]:
    """`tracecli serve` on a free port with a store in `directory` (tests/support/servers.py)."""
    handle = start_serve(directory, api_key)
    try:
        yield handle
    finally:
        handle.stop()


@contextlib.contextmanager
def weave_ref(directory: Path, *options: str, api_key: str | None = None) -> Iterator[ServerHandle]:
    """weave's reference server (`--db :memory:`), or skip when its venv is not built."""
    handle = start_weave_ref(directory, *options, api_key=api_key)
    try:
        yield handle
    finally:
        handle.stop()
