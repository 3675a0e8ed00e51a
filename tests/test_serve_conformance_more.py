"""`tracecli serve` answers as weave's own server (weave-ref) to query options written in
another JSON type than the model's: weave's pydantic models read them in lax mode (`"2"`,
`2.0` and `true` are an int; `"true"` a bool), so a client that writes a number as text gets
its answer there, and must get the same one from serve (it got a 400, or a 500)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from tests.support.servers import (
    ServerHandle,
    loaded_pair,
    make_call,
    query_answer,
)

pytestmark = [pytest.mark.weave_ref]
PROJECT = "acme/lax"
ORDER = [{"field": "started_at", "direction": "asc"}]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerHandle]]:
    root = tmp_path_factory.mktemp("lax")
    root_id = str(uuid.uuid4())
    trace = str(uuid.uuid4())
    calls = [make_call(PROJECT, at=0, call_id=root_id, trace_id=trace)]
    calls += [make_call(PROJECT, at=1 + i, trace_id=trace, parent_id=root_id) for i in range(4)]
    with loaded_pair(root, PROJECT, calls) as servers:
        yield servers


_answer = partial(query_answer, key="id")  # (server, project, route, body)


BODIES = [
    ("/calls/stream_query", {"limit": "2", "sort_by": ORDER}),
    ("/calls/stream_query", {"limit": 2.0, "sort_by": ORDER}),
    ("/calls/stream_query", {"limit": True, "sort_by": ORDER}),
    ("/calls/stream_query", {"offset": "1", "limit": 2, "sort_by": ORDER}),
    ("/calls/stream_query", {"offset": 3.0, "sort_by": ORDER}),
    ("/calls/stream_query", {"filter": {"trace_roots_only": "true"}}),
    ("/calls/stream_query", {"filter": {"trace_roots_only": "false"}, "sort_by": ORDER}),
    ("/calls/stream_query", {"filter": {"trace_roots_only": 0}, "sort_by": ORDER}),
    ("/calls/query", {"limit": "3", "sort_by": ORDER}),
    ("/calls/query_stats", {"limit": "2"}),
    ("/calls/query_stats", {"limit": True}),
    ("/calls/query_stats", {"limit": 3.0}),
    ("/calls/query_stats", {"filter": {"trace_roots_only": "true"}}),
    ("/feedback/query", {"limit": "2"}),
]


@pytest.mark.parametrize(("route", "body"), BODIES, ids=[f"{r}-{b}" for r, b in BODIES])
def test_lax_option_types_answer_as_weave_ref(
    pair: dict[str, ServerHandle], route: str, body: dict[str, Any]
) -> None:
    ref = _answer(pair["weave-ref"], PROJECT, route, body)
    ours = _answer(pair["serve"], PROJECT, route, body)
    assert ref[0] == 200, ref  # weave's models read these
    assert ours == ref


@pytest.mark.parametrize("body", [{"limit": -1}, {"offset": -1}, {"limit": "-2"}])
def test_a_negative_feedback_limit_is_weaves_400(
    pair: dict[str, ServerHandle], body: dict[str, Any]
) -> None:
    """weave's server refuses it in its words (serve answered 200 with no feedback)."""
    got = {}
    for name, server in pair.items():
        with server.client() as client:
            r = client.post("/feedback/query", json={"project_id": PROJECT, **body})
        got[name] = (r.status_code, r.json())
    assert got["serve"] == got["weave-ref"]
    assert got["serve"][0] == 400
