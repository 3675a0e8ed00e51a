"""A project exported uploads into an empty server and reads back identical, field by field.

Three exports of one project held by `tracecli serve` — the raw /calls/stream_query answer,
`tracecli export --server` and `tracecli export --db` on its store file — are the same bytes;
the export uploaded (`tracecli upload`) into an empty serve and an empty weave-ref reads back
as the original. Upload warnings (read-only fields of a dump) are not asserted here: stored
content is.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.serve_dataset import dataset
from tests.support.servers import ServerHandle
from tests.support.uploadkit import run_cli, tracecli_serve, weave_ref
from tracecli.readback.export import read_export
from tracecli.store.exact_json import loads_exact

pytest_plugins = ["tests.support.servers"]

P = "conf/queries"  # the project of tests.support.serve_dataset.dataset()


def _post(server: ServerHandle, path: str, body: Any) -> httpx.Response:
    with server.client() as client:
        return client.post(
            path, content=json.dumps(body), headers={"content-type": "application/json"}
        )


def _stream(server: ServerHandle, project: str = P) -> bytes:
    r = _post(server, "/calls/stream_query", {"project_id": project})
    assert r.status_code == 200, r.text
    return r.content


def _calls(raw: bytes) -> list[dict[str, Any]]:
    rows = read_export(raw)
    for row in rows:
        row.pop("wb_user_id")  # each server stamps its own user
    return rows


def _diff(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[str]:
    if len(a) != len(b):
        return [f"{len(a)} calls vs {len(b)}"]
    return [
        f"{x['id']} {key}: {x.get(key)!r} != {y.get(key)!r}"
        for x, y in zip(a, b, strict=True)
        for key in sorted(set(x) | set(y))
        if x.get(key) != y.get(key)
    ]


def _plain_calls() -> list[dict[str, Any]]:
    """The conformance data without what only the client side of issue 10 lets through
    upload (wb_run_id entity/project/run, integers beyond 64 bits, a running call)."""
    calls, _ = dataset()
    out = []
    for call in calls:
        if call.get("wb_run_id") or _has_wide_int(call):
            continue
        out.append(call)
    # more of what producers write: a trace of nested calls with usage and attributes
    root = dict(calls[0], id=str(uuid.uuid4()), trace_id=str(uuid.uuid4()), op_name="agent.loop")
    root["attributes"] = {"weave": {"client_version": "0.54.0"}, "user": {"tier": "pro"}}
    child = dict(calls[1], id=str(uuid.uuid4()), trace_id=root["trace_id"], parent_id=root["id"])
    return [*out, root, child]


def _has_wide_int(call: dict[str, Any]) -> bool:
    return "18446744073709551616" in json.dumps(call)


def _export_three_ways(source: ServerHandle, tmp: Path) -> bytes:
    raw = _stream(source)
    by_server = tmp / "export-server.jsonl"
    r = run_cli("export", "--server", source.url, "--project", P, "--output", str(by_server))
    assert r.returncode == 0, r.stderr
    assert f"exported {len(raw.splitlines())} calls of {P}" in r.stderr
    by_store = run_cli("export", "--db", str(source.db_path), "--project", P)
    assert by_store.returncode == 0, by_store.stderr
    assert by_server.read_bytes() == raw
    assert by_store.stdout.encode() == raw
    return raw


def _upload_and_compare(export: Path, original: bytes, target: ServerHandle) -> None:
    r = run_cli(
        "upload", str(export), "--server", target.url, "--project", P, "--api-key", "any-key"
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert _diff(_calls(_stream(target)), _calls(original)) == []


@pytest.mark.slow  # > 5 s: out of the fast loop (-m "not slow")
def test_an_exported_project_uploads_back_identical(tmp_path: Path) -> None:
    with tracecli_serve(tmp_path / "source") as source:
        r = _post(source, f"/v2/{P}/calls/complete", {"batch": _plain_calls()})
        assert r.status_code == 200, r.text
        original = _export_three_ways(source, tmp_path)
    assert len(original.splitlines()) >= 8
    export = tmp_path / "export-server.jsonl"
    with tracecli_serve(tmp_path / "empty-serve") as target:
        _upload_and_compare(export, original, target)
    with weave_ref(tmp_path / "empty-ref") as target:
        _upload_and_compare(export, original, target)


@pytest.mark.slow
def test_an_exported_project_with_every_edge_uploads_back_identical(tmp_path: Path) -> None:
    calls, running = dataset()
    with tracecli_serve(tmp_path / "source") as source:
        assert _post(source, f"/v2/{P}/calls/complete", {"batch": calls}).status_code == 200
        items = [{"mode": "start", "req": {"start": s}} for s in running]
        assert _post(source, "/call/upsert_batch", {"batch": items}).status_code == 200
        original = _export_three_ways(source, tmp_path)
    export = tmp_path / "export-server.jsonl"
    with tracecli_serve(tmp_path / "empty-serve") as target:
        _upload_and_compare(export, original, target)


@pytest.mark.slow
def test_export_names_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    with tracecli_serve(tmp_path / "s") as source:
        r = run_cli("export", "--server", source.url, "--project", "no/such")
        assert r.returncode == 2
        assert r.stderr.strip().splitlines() == [
            f"tracecli: error: project 'no/such' has no calls in {source.url}"
        ]
        r = run_cli("export", "--server", source.url, "--db", "x.db", "--project", P)
        assert r.returncode == 2 and "not both" in r.stderr
        r = run_cli("export", "--db", str(tmp_path / "missing.db"), "--project", P)
        assert r.returncode == 2 and "Traceback" not in r.stderr


def test_the_embedded_store_keeps_wide_integers_written_by_upload(tmp_path: Path) -> None:
    """The local upload target (no server) reads a body as weave's server does: 2**64 and
    beyond stay integers, and read back exactly through the store."""
    from tracecli.store.db import Store
    from tracecli.targets.local import LocalStoreTarget

    calls, _ = dataset()
    wide = [c for c in calls if _has_wide_int(c)]
    body = json.dumps({"batch": wide}).encode()
    target = LocalStoreTarget(tmp_path / "store.db")
    try:
        outcome = target.post(f"/v2/{P}/calls/complete", body)
        assert outcome.status == 200, outcome
    finally:
        target.close()
    with Store(tmp_path / "store.db") as store:
        (call,) = store.query(P)
    assert call["inputs"]["x"] == 2**64 and type(call["inputs"]["x"]) is int
    assert call["output"] == 2**64
    line = run_cli("export", "--db", str(tmp_path / "store.db"), "--project", P).stdout
    assert '"x":18446744073709551616' in line
    assert loads_exact(line)["output"] == 2**64
    shown = run_cli("tail", "--db", str(tmp_path / "store.db"), "-p", P, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert '"x":18446744073709551616' in shown.stdout
