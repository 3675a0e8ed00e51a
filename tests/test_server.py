"""`tracecli serve` over real sockets: routes, idempotence, order tolerance, auth, limits,
validation, /openapi.json against ../shared/spec, concurrency, clean shutdown."""

from __future__ import annotations

import base64
import contextlib
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from tests.support.servers import ServerHandle, app_server, end_half, make_call, start_half
from tests.support.uploadkit import cli_env
from tracecli.serve.app import create_app
from tracecli.store.db import Store

pytest_plugins = ["tests.support.servers"]

P = "team/proj"


def stream(client: httpx.Client, **body: Any) -> list[dict[str, Any]]:
    r = client.post("/calls/stream_query", json={"project_id": P, **body})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/jsonl")
    return [orjson.loads(line) for line in r.content.splitlines() if line]


def batch_items(calls: list[dict]) -> tuple[list[dict], list[dict]]:
    starts = [{"mode": "start", "req": {"start": start_half(c)}} for c in calls]
    ends = [{"mode": "end", "req": {"end": end_half(c)}} for c in calls]
    return starts, ends


def test_routes_round_trip(serve_server: ServerHandle) -> None:
    a, b, c = make_call(P, at=0), make_call(P, at=1, tokens=(5, 7)), make_call(P, at=2)
    with serve_server.client() as client:
        assert client.get("/health").json() == {"status": "ok"}
        r = client.post("/call/start", json={"start": start_half(a)})
        assert r.json() == {"id": a["id"], "trace_id": a["trace_id"]}
        assert client.post("/call/end", json={"end": end_half(a)}).json() == {}
        starts, ends = batch_items([b])
        r = client.post("/call/upsert_batch", json={"batch": starts + ends})
        assert r.json() == {"res": [{"id": b["id"], "trace_id": b["trace_id"]}, {}]}
        assert client.post("/v2/team/proj/calls/complete", json={"batch": [c]}).json() == {}
        d = make_call(P, at=3)  # the SDK's v2 path for calls it could not pair
        r = client.post("/v2/team/proj/call/start", json={"start": start_half(d)})
        assert r.json() == {"id": d["id"], "trace_id": d["trace_id"]}
        assert client.post("/v2/team/proj/call/end", json={"end": end_half(d)}).json() == {}
        got = stream(client)
        assert [x["id"] for x in got] == [a["id"], b["id"], c["id"], d["id"]]
        assert got[1]["summary"]["usage"] == b["summary"]["usage"]
        assert all(x["summary"]["weave"]["status"] == "success" for x in got)
        assert client.post("/calls/query_stats", json={"project_id": P}).json()["count"] == 4
        read = client.post("/call/read", json={"project_id": P, "id": b["id"]}).json()
        assert read["call"] == got[1]


@pytest.mark.slow
def test_same_batch_twice_and_ends_before_starts(serve_server: ServerHandle) -> None:
    calls = [make_call(P, at=i, tokens=(i, 2)) for i in range(40)]
    starts, ends = batch_items(calls)
    with serve_server.client() as client:
        r = client.post("/call/upsert_batch", json={"batch": ends[:15]})  # ends, no starts yet
        assert r.status_code == 200 and stream(client) == []
        batch = ends[30:] + starts + ends[15:30]
        first = client.post("/call/upsert_batch", json={"batch": batch})
        again = client.post("/call/upsert_batch", json={"batch": batch})
        assert first.status_code == again.status_code == 200
        assert first.json() == again.json()
        r = client.post("/v2/team/proj/calls/complete", json={"batch": calls[:10]})
        assert r.status_code == 200
        got = stream(client)
    assert sorted(x["id"] for x in got) == sorted(c["id"] for c in calls)
    by_id = {x["id"]: x for x in got}
    for c in calls:
        x = by_id[c["id"]]
        assert x["ended_at"] and x["output"] == c["output"] and x["inputs"] == c["inputs"]
        assert x["summary"]["usage"] == c["summary"]["usage"]
    serve_server.stop()
    with sqlite3.connect(serve_server.db_path) as raw:  # and on disk: one row per call
        assert raw.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM calls").fetchone() == (40, 40)
        assert raw.execute("SELECT COUNT(*) FROM pending_ends").fetchone() == (0,)


@pytest.mark.slow
def test_stream_query_filter_sort_limit_offset(serve_server: ServerHandle) -> None:
    root = make_call(P, at=0, op="agent.run")
    kids = [
        make_call(P, at=i, op="tool.search", trace_id=root["trace_id"], parent_id=root["id"])
        for i in (1, 2, 3)
    ]
    with serve_server.client() as client:
        client.post("/v2/team/proj/calls/complete", json={"batch": [*kids, root]})
        ids = lambda calls: [c["id"] for c in calls]  # noqa: E731
        desc = [{"field": "started_at", "direction": "desc"}]
        assert ids(stream(client, sort_by=desc)) == ids([*kids[::-1], root])
        assert ids(stream(client, sort_by=desc, limit=2, offset=1)) == ids(kids[1::-1])
        assert ids(stream(client, filter={"op_names": ["agent.run"]})) == [root["id"]]
        assert ids(stream(client, filter={"parent_ids": [root["id"]]})) == ids(kids)
        assert ids(stream(client, filter={"trace_roots_only": True})) == [root["id"]]
        assert ids(stream(client, filter={"call_ids": [kids[0]["id"]]})) == [kids[0]["id"]]
        # options the store cannot use change nothing; an operator weave's query model does
        # not have is its 422, naming where
        assert len(stream(client, include_costs=True, latest_only=True, columns=["id"])) == 4
        bad = {"$expr": {"$regex": [{"$getField": "op_name"}, {"$literal": "x"}]}}
        r = client.post("/calls/stream_query", json={"project_id": P, "query": bad})
        assert r.status_code == 422 and "$expr" in str(r.json()["detail"])
        r = client.post("/calls/stream_query", json={"project_id": "noslash"})
        assert r.status_code == 400 and "entity/project" in r.json()["reason"]


@pytest.mark.slow
@pytest.mark.parametrize("serve_server", [{"api_key": "s3cret-key"}], indirect=True)
def test_api_key_required(serve_server: ServerHandle) -> None:
    url = serve_server.url + "/v2/team/proj/calls/complete"
    body = {"batch": [make_call(P)]}

    def basic(user: str, key: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()}

    for headers in ({}, basic("api", "wrong"), {"Authorization": "Bearer wrong"}, basic("api", "")):
        r = httpx.post(url, json=body, headers=headers)
        assert r.status_code == 401 and r.json() == {"reason": "Unauthorized"}
    for headers in (
        basic("api", "s3cret-key"),
        basic("someone", "s3cret-key"),
        {"Authorization": "Bearer s3cret-key"},
    ):
        assert httpx.post(url, json=body, headers=headers).status_code == 200
    assert httpx.get(serve_server.url + "/health").status_code == 200  # no key needed
    assert serve_server.stop() == 0
    log = serve_server.log()
    assert "s3cret-key" not in log and "API key required" in log
    assert log.count('"POST /v2/team/proj/calls/complete" 401') == 4


@pytest.mark.slow
def test_body_over_32_mib_is_413(serve_server: ServerHandle) -> None:
    host, port = "127.0.0.1", serve_server.port
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(
            b"POST /call/upsert_batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {32 * 1024 * 1024 + 1}\r\n\r\n".encode()
        )
        answer = b""
        while not answer.endswith(b"}") and (chunk := s.recv(4096)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413")
    assert answer.endswith(b'\r\n\r\n{"reason":"Request too large"}')


def test_streamed_body_over_the_limit_is_413_and_stores_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    lines: list[str] = []
    with app_server(create_app(store, max_body_bytes=4096, log=lines.append)) as url:
        body = orjson.dumps({"batch": [make_call(P) for _ in range(20)]})

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
            for i in range(0, len(body), 1000):
                yield body[i : i + 1000]

        r = httpx.post(url + "/v2/team/proj/calls/complete", content=chunks())
        assert r.status_code == 413 and r.json() == {"reason": "Request too large"}
        small = orjson.dumps({"batch": [make_call(P)]})
        assert httpx.post(url + "/v2/team/proj/calls/complete", content=small).status_code == 200
    assert store.count(P) == 1
    assert len(lines) == 2 and '"POST /v2/team/proj/calls/complete" 413' in lines[0]
    store.close()


def _detail(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert all({"type", "loc", "msg"} <= set(d) and d["loc"][0] == "body" for d in detail)
    return detail


@pytest.mark.slow
def test_bad_bodies_are_422_bad_fields_400(serve_server: ServerHandle) -> None:
    call = make_call(P)
    with serve_server.client() as client:
        start = start_half(call)
        del start["started_at"]
        d = _detail(client.post("/call/start", json={"start": start, "extra": 1}))
        assert {(x["type"], tuple(x["loc"])) for x in d} == {
            ("missing", ("body", "start", "started_at")),
            ("extra_forbidden", ("body", "extra")),
        }
        d = _detail(client.post("/call/end", content=b'{"end": {'))
        assert d[0]["type"] == "json_invalid"
        assert _detail(client.post("/call/end", content=b""))[0]["type"] == "missing"
        # weave's server refuses a bad id with a 400 (its words), and stores a negative
        # wb_run_step_end (tests/test_serve_conformance.py compares the two servers)
        bad_id = dict(call, id="Not-A-UUID")
        r = client.post("/v2/team/proj/calls/complete", json={"batch": [call, bad_id]})
        assert r.status_code == 400
        assert r.json() == {"reason": "Invalid UUID: Not-A-UUID. UUID must be lowercase"}
        assert stream(client) == []  # nothing of a refused request was stored


@pytest.mark.slow
def test_project_mismatch_is_400(serve_server: ServerHandle) -> None:
    with serve_server.client() as client:
        r = client.post("/v2/team/other/calls/complete", json={"batch": [make_call(P)]})
        assert r.status_code == 400
        assert r.json() == {
            "reason": "project_id 'team/proj' does not match route project 'team/other'"
        }
        call = make_call(P)
        r = client.post("/v2/team/other/call/start", json={"start": start_half(call)})
        assert r.status_code == 400
        r = client.post("/v2/team/other/call/end", json={"end": end_half(call)})
        assert r.status_code == 400
        assert stream(client) == []


@pytest.mark.slow
def test_concurrent_writers(serve_server: ServerHandle) -> None:
    calls = [make_call(P, at=i) for i in range(600)]
    parts = [calls[i : i + 25] for i in range(0, len(calls), 25)]

    def post(k: int) -> int:
        part = parts[k]
        with serve_server.client() as client:
            if k % 2:
                starts, ends = batch_items(part)
                r = client.post("/call/upsert_batch", json={"batch": ends + starts})
            else:
                r = client.post("/v2/team/proj/calls/complete", json={"batch": part})
            return r.status_code

    with ThreadPoolExecutor(8) as pool:  # every part twice, in parallel
        statuses = list(pool.map(post, [*range(len(parts)), *range(len(parts))]))
    assert set(statuses) == {200}
    with serve_server.client() as client:
        got = stream(client)
    assert len(got) == 600 and {x["id"] for x in got} == {c["id"] for c in calls}
    assert all(x["ended_at"] for x in got)


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_logs_each_request(serve_server: ServerHandle) -> None:
    with serve_server.client() as client:
        for _ in range(3):
            client.get("/health")
        client.post("/v2/team/proj/calls/complete", json={"batch": [make_call(P)]})
    assert serve_server.stop() == 0
    log = serve_server.log()
    assert log.count('"GET /health"') >= 4  # the fixture's own wait + ours
    assert log.count('"POST /v2/team/proj/calls/complete" 200') == 1
    assert log.rstrip().endswith("tracecli serve: stopped")
    assert "Traceback" not in log


@pytest.mark.slow
def test_port_in_use_is_one_line_exit_2(serve_server: ServerHandle, tmp_path: Path) -> None:
    db, port = str(tmp_path / "x.db"), str(serve_server.port)
    r = subprocess.run(
        [sys.executable, "-m", "tracecli", "serve", "--db", db, "--port", port],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"tracecli: error: cannot listen on 127.0.0.1:{serve_server.port}: Address already in use"
    ]


# ---- /openapi.json against ../shared/spec ---------------------------------------------


def _spec_documents() -> list[dict[str, Any]]:
    from conftest import require_shared

    docs = []
    for path in sorted(require_shared("spec").glob("00[0-2]_*.txt")):
        text = path.read_text()
        start = text.index("````yaml")
        body = text[text.index("\n", start) + 1 : text.index("````", start + 8)]
        docs.append(yaml.safe_load(body))
    return docs


def _sig(schema: dict[str, Any]) -> Any:
    """What a property schema says about types, ignoring titles, defaults and docs."""
    if "$ref" in schema:
        return ("ref", schema["$ref"].rsplit("/", 1)[1])
    if "anyOf" in schema:
        return ("anyOf", tuple(sorted((_sig(s) for s in schema["anyOf"]), key=repr)))
    out: list[Any] = [schema.get("type"), schema.get("format")]
    if "items" in schema:
        out.append(("items", _sig(schema["items"])))
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and extra:
        out.append(("values", _sig(extra)))
    if "propertyNames" in schema:
        out.append(("keys", _sig(schema["propertyNames"])))
    return tuple(out)


def _refs(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        if "$ref" in schema:
            yield schema["$ref"].rsplit("/", 1)[1]
        for value in schema.values():
            yield from _refs(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _refs(value)


@pytest.mark.slow
def test_openapi_request_schemas_agree_with_spec(serve_server: ServerHandle) -> None:
    docs = _spec_documents()
    ours = httpx.get(serve_server.url + "/openapi.json").json()
    checked = set()
    for doc in docs:
        (path,) = doc["paths"]
        spec_op, our_op = doc["paths"][path]["post"], ours["paths"][path]["post"]
        spec_body = spec_op["requestBody"]["content"]["application/json"]["schema"]
        assert our_op["requestBody"]["content"]["application/json"]["schema"] == spec_body
        assert our_op["requestBody"]["required"] is True
        for scheme in spec_op.get("security", []):
            assert scheme in our_op["security"], (path, scheme)
        assert "422" in our_op["responses"]
        todo, seen = list(_refs(spec_body)), set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            our_s = ours["components"]["schemas"][name]
            if name not in doc["components"]["schemas"]:  # referenced, not in the excerpt
                continue
            spec_s = doc["components"]["schemas"][name]
            todo.extend(_refs(spec_s))
            spec_props, our_props = spec_s.get("properties", {}), our_s.get("properties", {})
            extra = set(our_props) - set(spec_props)
            # the /call/upsert_batch page predates `started_at` on ends; the server takes it
            allowed = {"started_at"} if name == "EndedCallSchemaForInsert" else set()
            assert extra <= allowed and set(spec_props) <= set(our_props), name
            assert set(spec_s.get("required", [])) == set(our_s.get("required", [])), name
            assert spec_s.get("additionalProperties") in (None, our_s.get("additionalProperties"))
            for prop, schema in spec_props.items():
                assert _sig(schema) == _sig(our_props[prop]), (name, prop)
            checked.add(name)
    assert {"CallStartReq", "CallEndReq", "CallCreateBatchReq", "CallsUpsertCompleteReq"} <= checked
    assert "CompletedCallSchemaForInsert" in checked and "LLMUsageSchema" in checked


@pytest.mark.slow
def test_weave_sdk_object_routes(serve_server: ServerHandle) -> None:
    """`weave.op` publishes its op (a file and an object) before sending the op's calls, and
    drops the calls when that fails: these routes store them as weave's server does."""
    with serve_server.client() as client:
        r = client.post(
            "/file/create", data={"project_id": P}, files={"file": ("obj.py", b"x = 1\r\n\n")}
        )
        assert r.status_code == 200, r.text
        file_digest = r.json()["digest"]
        got = client.post("/file/content", json={"project_id": P, "digest": file_digest})
        assert got.content == b"x = 1\r\n\n"
        val = {
            "_type": "CustomWeaveType",
            "weave_type": {"type": "Op"},
            "files": {"obj.py": file_digest},
        }
        first = client.post(
            "/obj/create", json={"obj": {"project_id": P, "object_id": "f", "val": val}}
        )
        again = client.post(
            "/obj/create", json={"obj": {"project_id": P, "object_id": "f", "val": val}}
        )
        assert first.json() == again.json() and first.json()["object_id"] == "f"
        digest = first.json()["digest"]
        v2 = client.post(
            "/obj/create", json={"obj": {"project_id": P, "object_id": "f", "val": {"v": 2}}}
        ).json()["digest"]
        read = lambda d: client.post(  # noqa: E731
            "/obj/read", json={"project_id": P, "object_id": "f", "digest": d}
        )
        assert read(digest).json()["obj"]["val"] == val
        assert read(digest).json()["obj"]["kind"] == "op"
        assert read("latest").json()["obj"]["digest"] == v2
        assert read("v0").json()["obj"]["digest"] == digest
        assert read("nope").status_code == 404
        assert "reason" in read("nope").json()
        table = client.post(
            "/table/create", json={"table": {"project_id": P, "rows": [{"a": 1}, {"a": 2}]}}
        ).json()
        rows = client.post("/table/query", json={"project_id": P, "digest": table["digest"]})
        assert [r["val"] for r in rows.json()["rows"]] == [{"a": 1}, {"a": 2}]
        refs = [f"weave:///{P}/op/f:{digest}", f"weave:///{P}/object/f:{v2}/key/v"]
        assert client.post("/refs/read_batch", json={"refs": refs}).json() == {"vals": [val, 2]}
        mismatch = client.post(
            "/obj/create",
            json={"obj": {"project_id": P, "object_id": "g", "val": 1, "expected_digest": "x"}},
        )
        assert mismatch.status_code == 409
        assert client.post("/obj/create", json={"obj": {"object_id": "g"}}).status_code == 422
        # a bad project is serve's 400; an empty name weave's 403 ("Object name cannot be empty")
        refused = (
            ({"project_id": "nope", "object_id": "g"}, 400),
            ({"project_id": P, "object_id": ""}, 403),
        )
        for obj, status in refused:
            assert client.post("/obj/create", json={"obj": {**obj, "val": 1}}).status_code == status
        assert client.post("/file/create", content=b"x").status_code == 400
        assert client.get("/server_info").json()["trace_server_version"].startswith("tracecli")


@pytest.mark.slow  # > 5 s: out of the fast loop (-m "not slow")
def test_stop_with_a_request_half_sent_is_quiet(serve_server_factory: Any) -> None:
    """A client stuck mid-body must not turn Ctrl-C (or a service manager's SIGTERM) into a
    traceback: the graceful wait ends, the request log says which request was cut, exit 0.
    Each signal stops a server of its own, both at once: each stop waits out serve's 5 s
    graceful shutdown, so the two cost the time of one."""
    import signal

    handles = {sig: serve_server_factory() for sig in ("SIGINT", "SIGTERM")}
    with contextlib.ExitStack() as stuck:
        for handle in handles.values():
            s = stuck.enter_context(socket.create_connection(("127.0.0.1", handle.port)))
            s.sendall(
                b"POST /calls/stream_query HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
            )
            with handle.client() as client:
                assert client.get("/health").status_code == 200
        for sig, handle in handles.items():
            handle.proc.send_signal(getattr(signal, sig))
        for sig, handle in handles.items():
            assert handle.proc.wait(30) == 0, sig
    for sig, handle in handles.items():
        log = handle.log()
        assert '"POST /calls/stream_query" cancelled at shutdown' in log, (sig, log)
        assert "Traceback" not in log and "ERROR" not in log, (sig, log)
        assert log.rstrip().endswith("tracecli serve: stopped"), (sig, log)


@pytest.mark.slow
def test_graphql_answers_what_weave_init_asks(serve_server: ServerHandle) -> None:
    """WANDB_BASE_URL pointed at serve: weave.init() learns a user and its project exists."""
    with serve_server.client() as client:
        ask = lambda q, **v: client.post("/graphql", json={"query": q, "variables": v}).json()  # noqa: E731
        assert ask("query { viewer { username defaultEntity { name } } }")["data"]["viewer"]
        got = ask("query P($name: String!) { project(name: $name) { name } }", name="demo")
        assert got == {"data": {"project": {"name": "demo"}}}
        got = ask("mutation { upsertModel(input: $input) { model { name } } }", name="demo")
        assert got["data"]["upsertModel"]["model"]["name"] == "demo"
        assert ask("query { somethingElse }")["errors"]
        assert client.post("/graphql", content=b"not json").status_code == 200


SERVE = [sys.executable, "-m", "tracecli", "serve"]


def _wait_up(listening_line: str) -> None:
    """Until the server that printed `listening on URL` answers /health."""
    import re
    import time

    port = re.search(r":(\d+) \(", listening_line).group(1)  # type: ignore[union-attr]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError(f"no answer after {listening_line!r}")


@pytest.mark.slow
def test_all_interfaces_without_a_key_is_warned(tmp_path: Path) -> None:
    import signal

    proc = subprocess.Popen(
        [*SERVE, "--db", str(tmp_path / "t.db"), "--host", "0.0.0.0", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    first = proc.stderr.readline()
    second = proc.stderr.readline()
    _wait_up(first)
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=30)[1]
    assert "listening on http://0.0.0.0:" in first
    assert second.startswith("tracecli serve: warning: listening beyond this machine")
    assert proc.returncode == 0 and "Traceback" not in rest


@pytest.mark.slow
def test_the_store_is_the_one_the_settings_name(tmp_path: Path) -> None:
    """serve, upload and tail agree on the store: `db` in tracecli.yaml (relative to it)."""
    import signal

    (tmp_path / "tracecli.yaml").write_text("db: data/here.db\n")
    proc = subprocess.Popen(
        [*SERVE, "--port", "0"], cwd=tmp_path, stderr=subprocess.PIPE, text=True, env=cli_env()
    )
    first = proc.stderr.readline()
    _wait_up(first)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert f"(store: {tmp_path / 'data' / 'here.db'};" in first
    assert proc.returncode == 0


@pytest.mark.slow
def test_the_links_weave_prints_say_how_to_see_the_calls(serve_server: ServerHandle) -> None:
    with serve_server.client() as client:
        r = client.get("/me/demo/r/call/01a236fa-2a3c-7660-8c62-55b2279ddfa5")
        assert r.status_code == 404
        assert f"tracecli tail --server {serve_server.url} --project me/demo" in r.text
        assert client.get("/health").json() == {"status": "ok"}  # real routes still win
