"""The store keeps a summary's usage and status counts as weave's server does: integers.

weave-ref (weave's SqliteTraceServer) reads `summary.usage.<model>.<count>` and
`summary.status_counts.<status>` as ints and stores its model's dump, so `1.0`, `1e2`,
`-0.0`, `true` and `"7"` are read back as `1`, `100`, `0`, `1`, `7` (checked against it in
tests/test_producers_judge.py); any other key keeps its value as written. Before, the store
(`tracecli serve`, `upload --db`) kept the text as sent. Both of its paths agree: the body
reader declines such a summary, the general path converts it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.sweeps import examples
from tracecli.store.body_rows import completed_rows
from tracecli.store.db import Store
from tracecli.store.summary_ints import USAGE_COUNTS, may_need_ints, weave_counts
from tracecli.targets.local import LocalStoreTarget

P = "team/proj"
CASES = [
    ('{"usage": {"m": {"total_tokens": 1.0}}}', {"usage": {"m": {"total_tokens": 1}}}),
    ('{"usage": {"m": {"requests": 1e2}}}', {"usage": {"m": {"requests": 100}}}),
    ('{"usage": {"m": {"input_tokens": -0.0}}}', {"usage": {"m": {"input_tokens": 0}}}),
    ('{"usage": {"m": {"total_tokens": true}}}', {"usage": {"m": {"total_tokens": 1}}}),
    ('{"usage": {"m": {"prompt_tokens": "7"}}}', {"usage": {"m": {"prompt_tokens": 7}}}),
    (
        '{"usage": {"m": {"requests": "7.0", "total_tokens": "1_000"}}}',
        {"usage": {"m": {"requests": 7, "total_tokens": 1000}}},
    ),
    (
        '{"status_counts": {"success": 1.0, "error": 0}}',
        {"status_counts": {"success": 1, "error": 0}},
    ),
    # what weave keeps as written: other keys, nulls, plain integers
    ('{"usage": {"m": {"cost": 1.0, "total_tokens": null}}}', None),
    ('{"other": {"total_tokens": 1.0}, "usage": {"m": {"requests": 2}}}', None),
]


def _tagged(value: Any) -> Any:
    """`value` with each number's type kept (1.0 == 1 in Python)."""
    if isinstance(value, dict):
        return {k: _tagged(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tagged(v) for v in value]
    return (type(value).__name__, value)


def _body(summary: str) -> bytes:
    call = {
        "project_id": P, "id": "0" * 8 + "-0000-4000-8000-" + "0" * 12, "trace_id": "1" * 32,
        "op_name": "op", "started_at": "2026-02-25T06:13:20.000000Z", "attributes": {},
        "inputs": {}, "ended_at": "2026-02-25T06:13:21.000000Z", "output": None, "summary": "@",
    }  # fmt: skip
    return orjson.dumps({"batch": [call]}).replace(b'"@"', summary.encode())


def _stored_summary(db: Path) -> Any:
    with sqlite3.connect(db) as conn:
        (text,) = conn.execute("SELECT summary FROM calls").fetchone()
    return orjson.loads(text)


@pytest.mark.parametrize(("summary", "want"), CASES)
def test_both_store_paths_keep_counts_as_weave_does(
    tmp_path: Path, summary: str, want: dict[str, Any] | None
) -> None:
    body = _body(summary)
    expected = _tagged(want if want is not None else orjson.loads(summary))
    target = LocalStoreTarget(tmp_path / "target.db")
    assert target.post(f"/v2/{P}/calls/complete", body).status == 200
    target.close()
    assert _tagged(_stored_summary(tmp_path / "target.db")) == expected
    with Store(tmp_path / "general.db") as s:
        s.write(completes=orjson.loads(body)["batch"])
    assert _tagged(_stored_summary(tmp_path / "general.db")) == expected
    if want is not None:
        assert completed_rows(body) is None  # the body reader leaves it to the general path


def test_an_end_alone_keeps_counts_as_weave_does(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as s:
        start = {k: v for k, v in orjson.loads(_body("{}"))["batch"][0].items()}
        end = {k: start.pop(k) for k in ("ended_at", "output", "summary")}
        s.write(starts=[start])
        end.update(project_id=P, id=start["id"], summary={"usage": {"m": {"requests": 3.0}}})
        s.write(ends=[end])
    assert _tagged(_stored_summary(tmp_path / "s.db")["usage"]) == {"m": {"requests": ("int", 3)}}


_COUNT = st.one_of(
    st.integers(-(2**70), 2**70),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f.is_integer()),
)


@settings(max_examples=examples(300), deadline=None)
@given(
    counts=st.dictionaries(st.sampled_from([*sorted(USAGE_COUNTS), "cost"]), _COUNT),
    statuses=st.dictionaries(st.sampled_from(["success", "error", "running"]), _COUNT),
)
def test_the_quick_test_never_misses_a_count_to_convert(
    counts: dict[str, Any], statuses: dict[str, Any]
) -> None:
    summary = {"usage": {"m": counts}, "status_counts": statuses}
    if weave_counts(summary) is not summary:
        assert may_need_ints(json.dumps(summary).encode())
        assert may_need_ints(json.dumps(summary, indent=2, separators=(" , ", " : ")).encode())
