"""The same requests to `tracecli serve` and to weave's own server (weave-ref), answers
compared: what weave sorts, serve sorts the same; what weave's request models refuse (a key
they do not know, a sort direction in capitals), serve refuses with the same 422, rather
than answering as if the key were not there (a typo such as `filters` returned every call).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import orjson
import pytest

from tests.support.servers import ServerHandle, make_call, start_all, start_serve, start_weave_ref

pytestmark = [pytest.mark.weave_ref]
PROJECT = "acme/diff"
OP_REF = f"weave:///{PROJECT}/op/zeta:abc123"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerHandle]]:
    root = tmp_path_factory.mktemp("diff")
    ref, serve = start_all(
        partial(start_weave_ref, root / "ref"), partial(start_serve, root / "serve")
    )
    try:
        # what the weave SDK writes: op names that are refs to the op object (its trace
        # name is `zeta`), beside plain names and display names
        calls = [
            make_call(PROJECT, op=OP_REF, at=0),
            make_call(PROJECT, op="beta.plain", at=1),
            make_call(PROJECT, op=f"weave:///{PROJECT}/op/alpha:ffff", at=2),
            make_call(PROJECT, op="yankee", at=3),
            {**make_call(PROJECT, op=OP_REF, at=4), "display_name": "gamma shown"},
        ]
        for server in (ref, serve):
            with server.client() as client:
                r = client.post(f"/v2/{PROJECT}/calls/complete", json={"batch": calls})
                assert r.status_code == 200, r.text
        yield {"weave-ref": ref, "serve": serve}
    finally:
        ref.stop()
        serve.stop()


def _answer(server: ServerHandle, route: str, body: dict[str, Any]) -> tuple[int, Any]:
    with server.client() as client:
        r = client.post(route, json={"project_id": PROJECT, **body})
    if r.status_code != 200:
        return r.status_code, None
    if route == "/calls/stream_query":
        return 200, [orjson.loads(line)["op_name"] for line in r.content.splitlines() if line]
    if route == "/calls/query":
        return 200, [c["op_name"] for c in r.json()["calls"]]
    if route == "/call/read":
        return 200, (r.json()["call"] or {}).get("op_name")
    return 200, r.json()


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_sort_by_trace_name_sorts_an_op_ref_by_its_name(
    pair: dict[str, ServerHandle], direction: str
) -> None:
    """weave's trace name of a `weave:///…/op/zeta:digest` call is `zeta` (or its display
    name): serve sorted such calls by the whole ref, so every SDK call came after `beta`
    and before `yankee` whatever its name."""
    body = {"sort_by": [{"field": "summary.weave.trace_name", "direction": direction}]}
    ref = _answer(pair["weave-ref"], "/calls/stream_query", body)
    assert ref[0] == 200
    assert _answer(pair["serve"], "/calls/stream_query", body) == ref


ANY_CALL = f"{'0' * 8}-0000-7000-8000-{'0' * 12}"
REFUSED = [
    ("/calls/stream_query", {"filters": {"op_names": ["yankee"]}}),
    ("/calls/stream_query", {"sortBy": [{"field": "op_name", "direction": "asc"}]}),
    ("/calls/stream_query", {"sort_by": [{"field": "op_name", "direction": "ASC"}]}),
    ("/calls/stream_query", {"sort_by": [{"field": "op_name", "direction": "DESC"}]}),
    ("/calls/query", {"limt": 1}),
    ("/calls/query_stats", {"filters": {"trace_roots_only": True}}),
    ("/calls/query_stats", {"latest_only": True}),
    ("/call/read", {"id": ANY_CALL, "include_cost": True}),
]


@pytest.mark.parametrize(("route", "body"), REFUSED, ids=[f"{r}-{b}" for r, b in REFUSED])
def test_what_weaves_request_models_refuse_serve_refuses(
    pair: dict[str, ServerHandle], route: str, body: dict[str, Any]
) -> None:
    ref = _answer(pair["weave-ref"], route, body)
    assert ref[0] == 422
    assert _answer(pair["serve"], route, body) == ref


ACCEPTED = [
    # every option the weave 0.54 SDK can send (latest_only: weave-ref takes it too)
    (
        "/calls/stream_query",
        {
            "latest_only": True,
            "include_costs": True,
            "include_usernames": False,
            "expand_columns": ["inputs"],
            "return_expanded_column_values": True,
            "include_storage_size": False,
            "include_total_storage_size": False,
            "sort_by": [{"field": "started_at", "direction": "asc"}],
        },
    ),
    ("/calls/query_stats", {"expand_columns": ["inputs"], "include_total_storage_size": False}),
    (
        "/call/read",
        {
            "id": ANY_CALL,
            "include_costs": False,
            "include_storage_size": False,
            "include_total_storage_size": False,
        },
    ),
]


@pytest.mark.parametrize(("route", "body"), ACCEPTED, ids=[f"{r}" for r, _ in ACCEPTED])
def test_every_option_weave_knows_is_still_taken(
    pair: dict[str, ServerHandle], route: str, body: dict[str, Any]
) -> None:
    ref = _answer(pair["weave-ref"], route, body)
    assert ref[0] == 200
    assert _answer(pair["serve"], route, body) == ref
