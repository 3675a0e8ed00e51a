"""`tracecli tail` against the embedded store, a real `tracecli serve`, and weave's own server:
the same tests, parametrised over the three sources."""

from __future__ import annotations

import io
import queue
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console
from typer.testing import CliRunner

from tests.support.servers import (
    ServerHandle,
    end_half,
    make_call,
    start_half,
    start_serve,
    start_weave_ref,
)
from tests.support.tail_kit import follow_json
from tracecli.cli import app
from tracecli.store.db import Store

pytest_plugins = ["tests.support.servers"]

KEY = "tail-test-key"


@dataclass
class Source:
    """Where calls are written and what tells `tail` to read them back."""

    kind: str
    args: list[str]
    handle: ServerHandle | None = None
    db: Path | None = None
    projects: list[str] = field(default_factory=list)

    def project(self) -> str:
        name = f"team/tail-{uuid.uuid4().hex[:8]}"
        self.projects.append(name)
        return name

    def complete(self, calls: list[dict[str, Any]]) -> None:
        if self.handle is None:
            with Store(self.db) as store:  # type: ignore[arg-type]
                store.calls_complete(calls)
            return
        with self.handle.client() as client:
            project = calls[0]["project_id"]
            r = client.post(f"/v2/{project}/calls/complete", json={"batch": calls})
            assert r.status_code == 200, r.text

    def start(self, call: dict[str, Any]) -> None:
        self._batch([{"mode": "start", "req": {"start": start_half(call)}}])

    def end(self, call: dict[str, Any]) -> None:
        self._batch([{"mode": "end", "req": {"end": end_half(call)}}])

    def _batch(self, items: list[dict[str, Any]]) -> None:
        if self.handle is None:
            with Store(self.db) as store:  # type: ignore[arg-type]
                store.upsert_batch(items)
            return
        with self.handle.client() as client:
            r = client.post("/call/upsert_batch", json={"batch": items})
            assert r.status_code == 200, r.text


@pytest.fixture(
    scope="module",
    params=["store", "serve", pytest.param("weave-ref", marks=pytest.mark.slow)],
)
def source(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Source]:
    directory = tmp_path_factory.mktemp(request.param)
    if request.param == "store":
        db = directory / "traces.db"
        Store(db).close()
        yield Source("store", ["--db", str(db)], db=db)
        return
    if request.param == "serve":
        handle = start_serve(directory, api_key=KEY)
    else:  # re-sent calls are harmless on the hosted server; the reference needs the flag
        handle = start_weave_ref(directory, "--dedupe-call-ids", api_key=KEY)
    try:
        yield Source(request.param, ["--server", handle.url, "--api-key", KEY], handle=handle)
    finally:
        handle.stop()


def tail(*args: str) -> Any:
    return CliRunner().invoke(app, ["tail", *args])


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_latest_calls_oldest_first_as_a_table(source: Source) -> None:
    p = source.project()
    calls = [make_call(p, at=i, op=f"op.{i:02d}") for i in range(25)]
    calls[22] = make_call(p, at=22, op="llm.chat", tokens=(1000, 234), duration=0.25)
    calls[23] = make_call(p, at=23, op="tool.fetch", exception="KeyError: 'missing'\nmore")
    source.complete(calls[:24])
    source.start(calls[24] | {"op_name": "agent.run"})
    r = tail(*source.args, "--project", p, "-n", "4")
    assert r.exit_code == 0, r.output
    header, *rows = lines(r.stdout)
    assert header.split() == [
        "started",
        "(UTC)",
        "op",
        "status",
        "duration",
        "tokens",
        "id",
        "exception",
    ]
    assert [row.split()[:4] for row in rows] == [
        ["2026-01-01", "10:00:21", "op.21", "success"],
        ["2026-01-01", "10:00:22", "llm.chat", "success"],
        ["2026-01-01", "10:00:23", "tool.fetch", "error"],
        ["2026-01-01", "10:00:24", "agent.run", "running"],
    ]
    assert "250ms" in rows[1] and "1,234" in rows[1] and calls[22]["id"][-8:] in rows[1]
    assert rows[2].endswith("KeyError: 'missing'") and "1.50s" in rows[2]
    assert all(line == line.rstrip() for line in r.stdout.splitlines())  # no padded ends
    assert r.stderr == ""


def test_json_is_one_call_per_line_as_the_server_returns_it(source: Source) -> None:
    p = source.project()
    calls = [make_call(p, at=i, tokens=(i, 1)) for i in range(5)]
    source.complete(calls)
    r = tail(*source.args, "-p", p, "-n", "3", "--format", "json")
    assert r.exit_code == 0, r.output
    got = [orjson.loads(line) for line in lines(r.stdout)]
    assert [c["id"] for c in got] == [c["id"] for c in calls[2:]]
    for mine, theirs in zip(calls[2:], got, strict=True):
        assert theirs["inputs"] == mine["inputs"] and theirs["output"] == mine["output"]
        assert theirs["summary"]["usage"] == mine["summary"]["usage"]
        assert theirs["summary"]["weave"]["status"] == "success"
        assert theirs["started_at"] == mine["started_at"]


def test_filters_op_trace_errors(source: Source) -> None:
    p = source.project()
    root = make_call(p, at=0, op="agent.run")
    kids = [
        make_call(p, at=i, op="tool.search", trace_id=root["trace_id"], parent_id=root["id"])
        for i in (1, 2)
    ]
    boom = make_call(p, at=3, op="llm.chat", exception="RuntimeError: boom")
    source.complete([root, *kids, boom])

    def ids(*args: str) -> list[str]:
        r = tail(*source.args, "-p", p, "--format", "json", *args)
        assert r.exit_code == 0, r.output
        return [orjson.loads(line)["id"] for line in lines(r.stdout)]

    assert ids("--op", "tool.search") == [k["id"] for k in kids]
    assert ids("--trace", root["trace_id"]) == [root["id"], *(k["id"] for k in kids)]
    assert ids("--errors") == [boom["id"]]
    assert ids("--errors", "--op", "tool.search") == []
    r = tail(*source.args, "-p", p, "--op", "nothing.here")
    assert r.exit_code == 0 and r.stdout == ""
    assert "no calls match" in r.stderr


def test_unknown_project_is_one_line_exit_2(source: Source) -> None:
    r = tail(*source.args, "-p", "team/does-not-exist")
    assert r.exit_code == 2
    (line,) = lines(r.stderr)
    assert line.startswith("tracecli: error: project 'team/does-not-exist' has no calls")
    assert r.stdout == ""


def test_wrong_key_is_one_line_exit_2(source: Source) -> None:
    if source.handle is None:
        pytest.skip("the embedded store has no key")
    p = source.project()
    source.complete([make_call(p)])
    r = tail("--server", source.handle.url, "--api-key", "wrong-key", "-p", p)
    assert r.exit_code == 2
    (line,) = lines(r.stderr)
    assert "refused the API key (HTTP 401)" in line and "wrong-key" not in r.output
    # the key from the environment works too (what a user with WANDB_API_KEY does)
    r = CliRunner(env={"WANDB_API_KEY": KEY}).invoke(
        app, ["tail", "--server", source.handle.url, "-p", p]
    )
    assert r.exit_code == 0, r.output


@pytest.mark.slow
def test_follow_prints_each_start_and_end_once_until_ctrl_c(source: Source) -> None:
    p = source.project()
    first = make_call(p, at=0)
    source.complete([first])
    proc, out = follow_json([*source.args, "-p", p, "-n", "5"])

    def next_call(timeout: float = 20.0) -> dict[str, Any]:
        return orjson.loads(out.get(timeout=timeout))

    try:
        assert next_call()["id"] == first["id"]  # the snapshot
        later = make_call(p, at=10, duration=2.0, tokens=(7, 3))
        source.start(later)
        seen = next_call()
        assert (seen["id"], seen["ended_at"]) == (later["id"], None)
        assert seen["summary"]["weave"]["status"] == "running"
        source.end(later)
        seen = next_call()
        assert seen["id"] == later["id"] and seen["summary"]["weave"]["status"] == "success"
        done = make_call(p, at=11, exception="ValueError: nope")
        source.complete([done])
        seen = next_call()
        assert seen["id"] == done["id"] and seen["summary"]["weave"]["status"] == "error"
        source.complete([done, first])  # re-sent calls are not news
        with pytest.raises(queue.Empty):
            out.get(timeout=1.0)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0
    assert b"Traceback" not in proc.stderr.read()  # type: ignore[union-attr]


# ---- independent of the source ------------------------------------------------------------


def test_unreachable_server_is_one_line_exit_2() -> None:
    from conftest import free_port

    url = f"http://127.0.0.1:{free_port()}"
    r = tail("--server", url, "-p", "team/x")
    assert r.exit_code == 2
    (line,) = lines(r.stderr)
    assert line.startswith(f"tracecli: error: cannot reach {url}")


def test_server_needs_project_and_flags_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = tail("--server", "http://127.0.0.1:9", "--api-key", "k")  # asked for its projects
    assert r.exit_code == 2 and len(lines(r.stderr)) == 1 and "cannot reach" in r.stderr
    (tmp_path / "tracecli.yaml").write_text("project: team/from-file\n")
    monkeypatch.chdir(tmp_path)  # the project's file supplies it
    r = tail("--server", "http://127.0.0.1:9", "--api-key", "k")
    assert r.exit_code == 2 and "cannot reach" in r.stderr
    r = tail("--server", "http://127.0.0.1:9", "--db", str(tmp_path / "x.db"))
    assert r.exit_code == 2 and "not both" in r.stderr
    r = tail("--db", str(tmp_path / "x.db"), "-p", "no-slash")
    assert r.exit_code == 2


def test_project_defaults_to_the_only_or_most_recent(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    r = tail("--db", str(db))
    assert r.exit_code == 2 and "no trace store at" in r.stderr
    with Store(db) as store:
        store.calls_complete([make_call("team/old", at=0)])
        r = tail("--db", str(db), "--format", "json")
        assert r.exit_code == 0 and r.stderr == ""
        assert orjson.loads(r.stdout)["project_id"] == "team/old"
        store.calls_complete([make_call("team/new", at=60)])
    r = tail("--db", str(db), "--format", "json")
    assert r.exit_code == 0
    assert orjson.loads(r.stdout)["project_id"] == "team/new"
    assert "showing team/new, the most recently active of 2 projects" in r.stderr


def test_default_store_location_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACECLI_DB", str(tmp_path / "env.db"))
    with Store(tmp_path / "env.db") as store:
        store.calls_complete([make_call("team/env")])
    r = tail("--format", "json")
    assert r.exit_code == 0 and orjson.loads(r.stdout)["project_id"] == "team/env"


@pytest.mark.parametrize("width", [40, 60, 80, 100, 120, 200])
def test_the_table_fits_the_terminal_dropping_less_useful_columns(width: int) -> None:
    """Rows never wrap: the date goes first, then duration and tokens; the time and the id
    (what --id takes) stay; op and exception share the rest."""
    from tracecli.cli.cmd_tail import render_rows
    from tracecli.readback.rows import row_of

    call = make_call("a/b", op="openai.chat.completions.create", exception="TimeoutError: x" * 9)
    console = Console(width=width, file=io.StringIO(), color_system=None)
    header, row = render_rows(console, [call], header=True).splitlines()
    started, _op, _status, _duration, _tokens, short_id, _exc = row_of(call)
    assert max(len(header), len(row)) <= width
    assert row.startswith(started if width >= 89 else started[-8:])
    assert f" {short_id}" in row
    assert ("openai.chat.completions.create" in row) == (width >= 120)
    assert ("TimeoutError" in row) == (width >= 60)
    assert ("duration" in header) == (width >= 72)


def test_without_project_the_most_recent_or_a_clear_error(source: Source) -> None:
    """The store and `tracecli serve` (GET /tracecli/projects) name their projects: the most
    recently active is shown, with a note; a Weave server cannot, so --project is asked for."""
    p = source.project()
    source.complete([make_call(p, at=10**7)])  # later than every other test's calls
    r = tail(*source.args, "--format", "json", "-n", "1")
    if source.kind == "weave-ref":
        assert r.exit_code == 2 and r.stdout == ""
        (line,) = lines(r.stderr)
        assert "--project entity/project is required" in line and "TRACECLI_PROJECT" in line
        return
    assert r.exit_code == 0, r.stderr
    assert orjson.loads(r.stdout)["project_id"] == p
    assert f"showing {p}, the most recently active of" in r.stderr
    bad = tail(*source.args, "-p", "team/nope-xyz")
    assert bad.exit_code == 2 and f"projects there: {p}" in bad.stderr
