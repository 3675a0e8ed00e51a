"""The same requests to `tracecli serve` and to weave's own server (weave-ref), answers
compared: what weave sorts, serve sorts the same; what weave's request models refuse (a key
they do not know, a sort direction in capitals), serve refuses with the same 422, rather
than answering as if the key were not there (a typo such as `filters` returned every call).
"""

from __future__ import annotations

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
PROJECT = "acme/diff"
OP_REF = f"weave:///{PROJECT}/op/zeta:abc123"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerHandle]]:
    root = tmp_path_factory.mktemp("diff")
    # what the weave SDK writes: op names that are refs to the op object (its trace
    # name is `zeta`), beside plain names and display names
    calls = [
        make_call(PROJECT, op=OP_REF, at=0),
        make_call(PROJECT, op="beta.plain", at=1),
        make_call(PROJECT, op=f"weave:///{PROJECT}/op/alpha:ffff", at=2),
        make_call(PROJECT, op="yankee", at=3),
        {**make_call(PROJECT, op=OP_REF, at=4), "display_name": "gamma shown"},
    ]
    with loaded_pair(root, PROJECT, calls) as servers:
        yield servers


_answer = partial(query_answer, key="op_name")  # (server, project, route, body)


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_sort_by_trace_name_sorts_an_op_ref_by_its_name(
    pair: dict[str, ServerHandle], direction: str
) -> None:
    """weave's trace name of a `weave:///…/op/zeta:digest` call is `zeta` (or its display
    name): serve sorted such calls by the whole ref, so every SDK call came after `beta`
    and before `yankee` whatever its name."""
    body = {"sort_by": [{"field": "summary.weave.trace_name", "direction": direction}]}
    ref = _answer(pair["weave-ref"], PROJECT, "/calls/stream_query", body)
    assert ref[0] == 200
    assert _answer(pair["serve"], PROJECT, "/calls/stream_query", body) == ref


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
    ref = _answer(pair["weave-ref"], PROJECT, route, body)
    assert ref[0] == 422
    assert _answer(pair["serve"], PROJECT, route, body) == ref


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
    ref = _answer(pair["weave-ref"], PROJECT, route, body)
    assert ref[0] == 200
    assert _answer(pair["serve"], PROJECT, route, body) == ref


NAMES = ["has space", "a/b", "name:v1", "", "x" * 129, "ok-name_1.2", "café"]


@pytest.mark.parametrize("name", NAMES, ids=[n[:12] or "empty" for n in NAMES])
def test_an_object_name_weave_refuses_is_refused(pair: dict[str, ServerHandle], name: str) -> None:
    """weave's server stores an object only under a name of letters, digits, `_`, `.` and
    `-` (403 `Invalid object name`, as old SDKs got); serve stored any, so `weave:///…/
    object/has space:latest` existed on serve alone."""
    got = {}
    for kind, server in pair.items():
        with server.client() as client:
            obj = {"project_id": PROJECT, "object_id": name, "val": {"a": 1}}
            r = client.post("/obj/create", json={"obj": obj})
        got[kind] = (r.status_code, r.json())
    assert got["serve"] == got["weave-ref"]


def test_a_digest_mismatch_is_said_in_weaves_words(pair: dict[str, ServerHandle]) -> None:
    got = {}
    for kind, server in pair.items():
        with server.client() as client:
            obj = {"project_id": PROJECT, "object_id": "cfg", "val": 1, "expected_digest": "x"}
            one = client.post("/obj/create", json={"obj": obj})
            table = {"project_id": PROJECT, "rows": [{"a": 1}], "expected_digest": "x"}
            two = client.post("/table/create", json={"table": table})
        got[kind] = [(one.status_code, one.json()), (two.status_code, two.json())]
    assert got["serve"] == got["weave-ref"]


def _table_answers(pair: dict[str, ServerHandle], query: dict[str, Any]) -> dict[str, Any]:
    rows = [{"i": i % 4, "s": f"row {i}"} for i in range(8)] + [{"i": 0, "s": "row 0"}]
    got = {}
    for kind, server in pair.items():
        with server.client() as client:
            r = client.post("/table/create", json={"table": {"project_id": PROJECT, "rows": rows}})
            digest = r.json()["digest"]
            r = client.post("/table/query", json={"project_id": PROJECT, "digest": digest})
            row_digests = [row["digest"] for row in r.json()["rows"]]
            body = {"project_id": PROJECT, "digest": digest, **query}
            if "filter" in body:
                body["filter"] = {"row_digests": [row_digests[i] for i in query["filter"]]}
            r = client.post("/table/query", json=body)
        got[kind] = (r.status_code, r.json())
    return got


TABLE_QUERIES = [
    {},
    {"filter": [3]},
    {"filter": [5, 1, 0]},
    {"sort_by": [{"field": "i", "direction": "desc"}, {"field": "s", "direction": "asc"}]},
    {"sort_by": [{"field": "s", "direction": "desc"}], "limit": 3, "offset": 2},
    {"filter": [2, 6, 7], "sort_by": [{"field": "i", "direction": "asc"}], "limit": 2},
]


@pytest.mark.parametrize("query", TABLE_QUERIES, ids=[str(q) for q in TABLE_QUERIES])
def test_table_query_filters_and_sorts_as_weave(
    pair: dict[str, ServerHandle], query: dict[str, Any]
) -> None:
    """`/table/query` with `filter.row_digests` (how the SDK reads a dataset row a call's
    inputs refer to) answered every row of the table, the first one where the asked one
    was wanted; `sort_by` was ignored, and no row had weave's `original_index`."""
    got = _table_answers(pair, query)
    assert got["weave-ref"][0] == 200
    assert got["serve"] == got["weave-ref"]


def test_a_dataset_row_ref_reads_its_row(pair: dict[str, ServerHandle]) -> None:
    """A ref to one row of a published Dataset (`…/object/ds:DIGEST/attr/rows/id/ROW`, what
    the weave SDK stores in an evaluation's calls and `weave.ref(uri).get()` reads) gave a
    404 on serve: the SDK said "Unable to find object for ref uri". weave's server reads
    the row of the table the object's `rows` names."""
    got = {}
    for kind, server in pair.items():
        with server.client() as client:
            rows = [{"q": f"question {i}"} for i in range(5)]
            r = client.post("/table/create", json={"table": {"project_id": PROJECT, "rows": rows}})
            table, row_digests = r.json()["digest"], r.json()["row_digests"]
            val = {"_type": "Dataset", "rows": f"weave:///{PROJECT}/table/{table}"}
            obj = {"project_id": PROJECT, "object_id": "rowref-ds", "val": val}
            digest = client.post("/obj/create", json={"obj": obj}).json()["digest"]
            base = f"weave:///{PROJECT}/object/rowref-ds:{digest}/attr/rows"
            refs = [f"{base}/id/{row_digests[3]}", f"{base}/id/{row_digests[0]}"]
            r = client.post("/refs/read_batch", json={"refs": refs})
        got[kind] = (r.status_code, r.json())
    assert got["weave-ref"] == (200, {"vals": [{"q": "question 3"}, {"q": "question 0"}]})
    assert got["serve"] == got["weave-ref"]


def _expr(expr: Any) -> dict[str, Any]:
    return {"query": {"$expr": expr}}


_X = {"$getField": "inputs.prompt"}
BAD_QUERIES = [
    {"query": {}},
    _expr({}),
    _expr({"$not": []}),
    _expr({"$not": [{"$eq": [_X, {"$literal": "a"}]}, {"$eq": [_X, {"$literal": "b"}]}]}),
    _expr({"$eq": [_X, {"$literal": [1]}]}),
    _expr({"$eq": [_X]}),
    _expr({"$in": [_X, {"$literal": "a"}]}),
    _expr({"$contains": {"input": _X}}),
    _expr({"$gt": [{"$convert": {"input": _X, "to": "float"}}, {"$literal": 1}]}),
    {"query": {"$expr": {"$eq": [_X, {"$literal": "a"}]}, "extra": 1}},
]


@pytest.mark.parametrize("body", BAD_QUERIES, ids=[str(b)[:60] for b in BAD_QUERIES])
def test_a_query_of_no_shape_weave_reads_is_its_422(
    pair: dict[str, ServerHandle], body: dict[str, Any]
) -> None:
    """weave's server validates `query` with its pydantic models first: serve answered a
    400 for most of these, and for `"query": {}` every call of the project."""
    for route in ("/calls/stream_query", "/calls/query_stats"):
        ref = _answer(pair["weave-ref"], PROJECT, route, body)
        assert ref[0] == 422
        assert _answer(pair["serve"], PROJECT, route, body) == ref


WORDED = [
    _expr({"$and": []}),
    _expr({"$or": []}),
    _expr({"$eq": [{"$convert": {"input": _X, "to": "exists"}}, {"$literal": True}]}),
]


@pytest.mark.parametrize("body", WORDED, ids=[str(b)[:60] for b in WORDED])
def test_a_query_weave_reads_but_refuses_is_its_400_in_its_words(
    pair: dict[str, ServerHandle], body: dict[str, Any]
) -> None:
    got = {}
    for kind, server in pair.items():
        with server.client() as client:
            r = client.post("/calls/stream_query", json={"project_id": PROJECT, **body})
        got[kind] = (r.status_code, r.json())
    assert got["weave-ref"][0] == 400
    assert got["serve"] == got["weave-ref"]


_CALL_REF = f"weave:///{PROJECT}/call/{ANY_CALL}"
BAD_FEEDBACK = [
    {"feedback_type": "wandb.note.1", "payload": {}},
    {"feedback_type": "wandb.note.1", "payload": {"note": 5}},
    {"feedback_type": "wandb.note.1", "payload": {"note": "x" * 1025}},
    {"feedback_type": "wandb.reaction.1", "payload": {"text": "+1"}},
    {"feedback_type": "wandb.annotation.score", "payload": {"value": 1}},
    {"feedback_type": "custom", "payload": {}, "annotation_ref": f"weave:///{PROJECT}/object/a:b"},
    {"feedback_type": "custom", "payload": {}, "runnable_ref": f"weave:///{PROJECT}/op/x:y"},
    {"feedback_type": "custom", "payload": {}, "call_ref": _CALL_REF},
    {"feedback_type": "wandb.runnable.scorer", "payload": {"output": 1}},
]


@pytest.mark.parametrize("item", BAD_FEEDBACK, ids=[str(b)[:50] for b in BAD_FEEDBACK])
def test_feedback_weave_refuses_is_refused_and_not_stored(
    pair: dict[str, ServerHandle], item: dict[str, Any]
) -> None:
    """serve stored every one of these; weave answers a 400 naming what is wrong."""
    got = {}
    for kind, server in pair.items():
        body = {"project_id": PROJECT, "weave_ref": _CALL_REF, "wb_user_id": "u", **item}
        with server.client() as client:
            one = client.post("/feedback/create", json=body)
            batch = client.post("/feedback/batch/create", json={"batch": [body]})
            query = {"project_id": PROJECT, "fields": ["feedback_type"]}
            stored = client.post("/feedback/query", json=query).json()["result"]
        # pydantic's words name its version's docs URL: compared up to there
        got[kind] = (
            one.status_code,
            one.json()["reason"].split("For further")[0],
            batch.status_code,
            stored,
        )
    assert got["weave-ref"][0] == 400
    assert got["serve"] == got["weave-ref"]
