"""`tracecli serve` answers like weave's own server: the same writes sent to both give the same
calls back from /calls/stream_query (keys, values, datetime format, derived summary)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
import pytest

from tests.support.servers import ServerHandle, end_half, make_call, start_half

pytest_plugins = ["tests.support.servers"]

# weave-ref beside serve: out of the fast loop
pytestmark = [pytest.mark.weave_ref, pytest.mark.slow]
P = "team/conformance"


def _writes() -> list[tuple[str, dict[str, Any]]]:
    root = make_call(P, at=0, op="agent.run", duration=4.25)
    llm = make_call(P, at=0.5, trace_id=root["trace_id"], parent_id=root["id"], tokens=(120, 30))
    tool = make_call(
        P,
        at=1.0,
        op="tool.search",
        trace_id=root["trace_id"],
        parent_id=root["id"],
        exception="TimeoutError: upstream took too long",
    )
    root["summary"] = {"status_counts": {"success": 1, "error": 1}}
    named = make_call(P, at=2.123456, op="weave:///team/conformance/op/planner:abc123")
    named["display_name"] = "plan step"
    running = make_call(P, at=3, duration=None)
    late = make_call(P, at=5, duration=0.0005)  # sub-millisecond latency
    items = [
        {"mode": "end", "req": {"end": end_half(llm)}},  # an end before its start
        {"mode": "start", "req": {"start": start_half(root)}},
        {"mode": "start", "req": {"start": start_half(llm)}},
        {"mode": "end", "req": {"end": end_half(root)}},
        {"mode": "start", "req": {"start": start_half(running)}},
    ]
    return [
        ("/call/upsert_batch", {"batch": items}),
        ("/v2/team/conformance/calls/complete", {"batch": [tool, named, late]}),
        ("/call/upsert_batch", {"batch": items}),  # the same batch again
        ("/v2/team/conformance/calls/complete", {"batch": [tool, named, late]}),
        # the SDK's call.set_display_name
        ("/call/update", {"project_id": P, "call_id": llm["id"], "display_name": "renamed"}),
        ("/call/update", {"project_id": P, "call_id": str(uuid.uuid4()), "display_name": "x"}),
    ]


QUERIES: list[dict[str, Any]] = [
    {},
    {"sort_by": [{"field": "started_at", "direction": "desc"}], "limit": 3, "offset": 1},
    {"filter": {"trace_roots_only": True}},
    {"filter": {"op_names": ["tool.search", "llm.chat"]}},
    {"query": {"$expr": {"$eq": [{"$getField": "summary.weave.status"}, {"$literal": "error"}]}}},
    # ties broken by id the way weave does (descending unless the last key is started_at)
    {"sort_by": [{"field": "op_name", "direction": "asc"}]},
    {"sort_by": [{"field": "summary.weave.status", "direction": "asc"}], "limit": 4},
    {
        "sort_by": [
            {"field": "op_name", "direction": "desc"},
            {"field": "started_at", "direction": "asc"},
        ]
    },
    # columns: dotted names read their top-level column; the derived status sees only them
    {"columns": ["id", "op_name"]},
    {"columns": ["inputs.q", "ended_at"], "limit": 2},
    {"columns": ["summary"], "offset": 2},
    {
        "filter": {"trace_roots_only": True},
        "sort_by": [{"field": "started_at", "direction": "desc"}],
    },
]


def _query(handle: ServerHandle, body: dict[str, Any]) -> list[dict[str, Any]]:
    with handle.client() as client:
        r = client.post("/calls/stream_query", json={"project_id": P, **body})
    assert r.status_code == 200, r.text
    calls = [orjson.loads(line) for line in r.content.splitlines() if line]
    for call in calls:
        call.pop("wb_user_id")  # the reference server stamps its own user on every write
    return calls


def test_same_writes_same_answers(
    serve_server: ServerHandle, weave_ref_server_factory: Any
) -> None:
    ref = weave_ref_server_factory("--dedupe-call-ids")
    writes = _writes()
    for handle in (serve_server, ref):
        with handle.client() as client:
            for path, body in writes:
                r = client.post(path, json=body)
                assert r.status_code == 200, (handle.kind, path, r.text)
    for body in QUERIES:
        ours, theirs = _query(serve_server, body), _query(ref, body)
        assert ours == theirs, body
    for handle in (serve_server, ref):  # the non-streaming form answers the same calls
        with handle.client() as client:
            r = client.post("/calls/query", json={"project_id": P, "limit": 3})
        calls = r.json()["calls"]
        assert [c["id"] for c in calls] == [c["id"] for c in _query(serve_server, {"limit": 3})]
    assert "renamed" in {c["display_name"] for c in _query(serve_server, {})}
    assert len(_query(serve_server, {})) == 6


def test_same_refusals(serve_server: ServerHandle, weave_ref_server: ServerHandle) -> None:
    call = make_call(P)
    bad_start = start_half(call)
    del bad_start["op_name"]
    cases = [
        ("/call/start", {"start": bad_start}, 422),
        ("/call/start", {"start": start_half(call), "extra": 1}, 422),
        ("/v2/team/other/calls/complete", {"batch": [call]}, 400),
    ]
    for path, body, status in cases:
        ours = httpx.post(serve_server.url + path, json=body)
        theirs = httpx.post(weave_ref_server.url + path, json=body)
        assert ours.status_code == theirs.status_code == status, path
        assert ours.json() == theirs.json()


def test_sdk_object_routes_give_weave_digests(
    serve_server: ServerHandle, weave_ref_server: ServerHandle
) -> None:
    """What `weave.op` and `weave.publish` send before their calls: the same digests (so the
    same op refs) and the same values back."""
    op_val = {
        "_type": "CustomWeaveType",
        "weave_type": {"type": "Op"},
        "files": {"obj.py": "placeholder"},
    }
    answers = []
    for handle in (serve_server, weave_ref_server):
        with handle.client() as client:
            f = client.post(
                "/file/create",
                data={"project_id": P},
                files={"file": ("obj.py", b"def f(x):\r\n    return x\n")},
            )
            assert f.status_code == 200, f.text
            op_val["files"]["obj.py"] = f.json()["digest"]
            o = client.post(
                "/obj/create", json={"obj": {"project_id": P, "object_id": "f", "val": op_val}}
            )
            t = client.post(
                "/table/create", json={"table": {"project_id": P, "rows": [{"q": 1}, {"q": 2}]}}
            )
            read = client.post(
                "/obj/read", json={"project_id": P, "object_id": "f", "digest": "latest"}
            ).json()["obj"]
            content = client.post(
                "/file/content", json={"project_id": P, "digest": f.json()["digest"]}
            )
            ref = f"weave:///{P}/op/f:{o.json()['digest']}"
            vals = client.post("/refs/read_batch", json={"refs": [ref]}).json()
            missing = client.post(
                "/obj/read", json={"project_id": P, "object_id": "nope", "digest": "latest"}
            )
            bad_sort = client.post(
                "/calls/stream_query", json={"project_id": P, "sort_by": [{"field": "id"}]}
            )
        answers.append(
            (
                f.json(),
                o.json()["digest"],
                t.json(),
                {k: read[k] for k in ("digest", "version_index", "is_latest", "kind", "val")},
                content.content,
                vals,
                missing.status_code,
                bad_sort.status_code,
            )
        )
    assert answers[0] == answers[1]


SDK_SCRIPT = """
import os, sys
url, project = sys.argv[1], sys.argv[2]
os.environ.update(WF_TRACE_SERVER_URL=url, WANDB_BASE_URL=url, WANDB_API_KEY="local",
    WEAVE_PRINT_CALL_LINK="false", WEAVE_IMPLICITLY_PATCH_INTEGRATIONS="false",
    WEAVE_CAPTURE_SYSTEM_INFO="false", WANDB_ERROR_REPORTING="false")
import weave
client = weave.init(project)

@weave.op
def tokenize(text: str) -> list:
    return text.split()

@weave.op
def llm(prompt: str) -> dict:
    return {"n": len(tokenize(prompt))}

@weave.op
def failing(x: int) -> int:
    raise ValueError(f"boom {x}")

for i in range(3):
    llm(f"hello world {i}")
try:
    failing(1)
except ValueError:
    pass
ref = weave.publish(weave.Dataset(name="qa", rows=[{"q": "a"}, {"q": "b"}]))
client.flush()
print(sorted(c.op_name.split("/")[-1].split(":")[0] for c in client.get_calls()))
print([dict(r) for r in weave.ref(ref.uri()).get().rows])
"""


def test_the_weave_sdk_logs_to_serve(serve_server: ServerHandle, tmp_path: Any) -> None:
    """An unmodified weave program (the reference venv's SDK): weave.init with both URLs at
    serve, ops published, calls logged and read back, a dataset round trip."""
    import subprocess

    from tests.support.servers import weave_ref_python

    home = tmp_path / "home"
    home.mkdir()
    r = subprocess.run(
        [str(weave_ref_python()), "-c", SDK_SCRIPT, serve_server.url, "me/sdk"],
        capture_output=True,
        text=True,
        timeout=240,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    ops, rows = r.stdout.strip().splitlines()[-2:]
    assert ops == str(["failing", "llm", "llm", "llm", "tokenize", "tokenize", "tokenize"])
    assert rows == str([{"q": "a"}, {"q": "b"}])
    calls = _query_project(serve_server, "me/sdk")
    assert len(calls) == 7 and all(c["op_name"].startswith("weave:///me/sdk/op/") for c in calls)
    assert [c["summary"]["weave"]["status"] for c in calls].count("error") == 1
    assert " 404 " not in serve_server.log() and " 500 " not in serve_server.log()


def _query_project(handle: ServerHandle, project: str) -> list[dict[str, Any]]:
    with handle.client() as client:
        r = client.post("/calls/stream_query", json={"project_id": project})
    return [orjson.loads(line) for line in r.content.splitlines() if line]
