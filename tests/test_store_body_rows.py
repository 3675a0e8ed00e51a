"""The store's fast reading of an upload's `calls/complete` bodies (store/body_rows.py) and
its batch upserts without all-NULL columns (store/upserts.py): the rows are the general
path's, byte for byte, or the fast path declines the body."""

from __future__ import annotations

import operator
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.sweeps import examples
from tracecli.store.body_rows import ROW_COLUMNS, completed_rows
from tracecli.store.db import Store
from tracecli.store.exact_json import loads_exact
from tracecli.store.rows import complete_row
from tracecli.store.tables import COMPLETE_COLUMNS
from tracecli.targets.local import LocalStoreTarget
from tracecli.wire.encode import batch_body, dumps
from tracecli.wire.wideints import NonFinite

P = "team/proj"


def call(i: int = 0, **over: Any) -> dict[str, Any]:
    c: dict[str, Any] = {
        "project_id": P,
        "id": f"c{i}",
        "op_name": "llm.chat",
        "display_name": None,
        "trace_id": "t1",
        "parent_id": None,
        "started_at": "2026-02-25T06:13:20.000000Z",
        "attributes": {"env": "bench"},
        "inputs": {"q": "hi", "k": 5},
        "ended_at": "2026-02-25T06:13:21Z",
        "exception": None,
        "output": {"a": 1.5},
        "summary": {},
    }
    c.update(over)
    return c


def body_of(calls: list[dict[str, Any]]) -> bytes:
    """The body upload sends: each call encoded as upload encodes it, joined."""
    return batch_body(dumps(c) for c in calls)


# complete_row's columns (COMPLETE_COLUMNS) in the fast path's order (ROW_COLUMNS)
_AS_FAST = operator.itemgetter(*(COMPLETE_COLUMNS.index(c) for c in ROW_COLUMNS))


def general(body: bytes) -> list[tuple[Any, ...]]:
    """The general path's rows, in the fast path's column order."""
    return [_AS_FAST(complete_row(c)) for c in loads_exact(body)["batch"]]


def test_the_usual_body_is_read_fast_and_as_the_general_path_reads_it() -> None:
    calls = [call(0), call(1, parent_id="c0", output="text", exception="boom", summary=None)]
    calls.append(call(2, attributes={}, inputs=None, output=None, wb_run_step=3))
    body = body_of(calls)
    rows = completed_rows(body)
    assert rows is not None and rows == general(body)
    assert rows[0][5] == '{"env":"bench"}' and rows[2][5:7] == ("{}", "{}")


@pytest.mark.parametrize(
    "odd",
    [
        {"inputs": {"n": 2**70}},  # an integer orjson cannot hold: Python's json wrote it
        {"inputs": {"s": "\ud800"}},  # a lone surrogate: likewise
        {"output": "caf\u00e9\x01"},  # a \u escape (a control character)
        {"attributes": [1, 2]},  # not an object: the general rule for it
        {"summary": "x"},
        {"id": ""},  # a fresh id
        {"started_at": "2026-02-25T07:13:20+01:00"},  # not yet in the stored form
        {"ended_at": 1772000000},  # not a string
        {"wb_run_step": True},
        {"display_name": 3},
        {"extra_key": 1},  # unknown to the store
    ],
)
def test_anything_else_goes_the_general_way(odd: dict[str, Any]) -> None:
    body = body_of([call(0), call(1, **odd)])
    assert completed_rows(body) is None


def test_digits_are_searched_for_in_the_free_form_fields_and_integer_fields_only() -> None:
    """A run of 19 digits in an id or a name is text to both paths (read fast); in a
    free-form field or an integer field it may be an integer beyond 64 bits (declined)."""
    digits = "1234567890123456789012"
    body = body_of([call(0, id=digits, trace_id=digits, op_name=digits, display_name=digits)])
    rows = completed_rows(body)
    assert rows is not None and rows == general(body)
    for odd in (
        {"inputs": {"n": 10**18}},
        {"output": -(10**18)},
        {"wb_run_step": 10**18},
        {"wb_run_step_end": -(10**18)},
    ):
        assert completed_rows(body_of([call(0), call(1, **odd)])) is None, odd
    fits = body_of([call(0, inputs={"n": 10**18 - 1}, wb_run_step=10**18 - 1)])
    assert completed_rows(fits) == general(fits)


def test_a_record_nested_past_orjson_is_declined_so_its_floats_stay_as_stored() -> None:
    # Python's json writes the whole record (1e-05), the store writes a shallow field with
    # orjson (0.00001): taking the body's text would change what is stored.
    deep: Any = 0
    for _ in range(300):
        deep = [deep]
    body = body_of([call(0, output=deep, inputs={"x": 1e-05})])
    assert b"1e-05" in body
    assert completed_rows(body) is None
    assert general(body)[0][6] == '{"x":0.00001}'


printable = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=8)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-1000, 1000)
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)  # 19 digits that fit
    | st.floats(allow_nan=True, allow_infinity=True).map(
        lambda f: f if f == f and abs(f) != float("inf") else NonFinite(f)
    )
    | printable,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(printable, inner),
    max_leaves=12,
)
times = st.sampled_from(
    ["2026-02-25T06:13:20.123456Z", "2026-02-25T06:13:20Z"] * 8
    + ["2026-02-25T06:13:20.123+00:00", "2026-02-25T06:13:20-00:00", "2026-02-25T06:13:20.5Z"]
    + ["2026-02-30T06:13:20Z", "2026-02-25 06:13:20Z", "", "2026-02-25T06:13:20+01:00"]
)
maybe_text = st.none() | printable
# A run of digits outside the free-form fields (an id, a name) is text to both paths.
digit_runs = st.from_regex(r"[0-9]{17,22}", fullmatch=True)
wide_edges = st.sampled_from([10**18 - 1, 10**18, 1 - 10**18, -(10**18), 2**63 - 1, -(2**63)])


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "project_id": st.just(P),
                "id": st.text(
                    st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=4
                )
                | digit_runs,
                "trace_id": st.sampled_from(["t1", "t2"]) | maybe_text | digit_runs,
                "op_name": st.text(max_size=3) | digit_runs,
                "started_at": times,
                "ended_at": times,
            },
            optional={
                "parent_id": maybe_text,
                "thread_id": maybe_text,
                "attributes": json_values,
                "inputs": json_values,
                "otel_dump": json_values,
                "output": json_values,
                "summary": json_values,
                "exception": maybe_text,
                "display_name": maybe_text | digit_runs,
                "wb_run_step": st.none()
                | st.integers(0, 9)
                | st.integers(-(2**70), 2**70)
                | wide_edges,
                "wb_run_step_end": st.none() | st.integers(0, 9) | wide_edges,
            },
        ),
        min_size=1,
        max_size=3,
    )
)
def test_fast_rows_are_the_general_rows_or_none(calls: list[dict[str, Any]]) -> None:
    try:
        body = body_of(calls)
    except ValueError:  # a value upload refuses to encode
        return
    rows = completed_rows(body)
    if rows is None:
        return
    assert rows == general(body)


def stored(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM calls ORDER BY id").fetchall()


def test_the_target_stores_what_the_general_path_stored(tmp_path: Path) -> None:
    calls = [
        call(i, parent_id=None if i % 3 else "c0", exception=None if i else "x") for i in range(9)
    ]
    body = body_of(calls)
    route = f"/v2/{P}/calls/complete"
    target = LocalStoreTarget(tmp_path / "fast.db")
    assert target.post(route, body).status == 200
    target.close()
    with Store(tmp_path / "general.db") as s:
        s.write(completes=orjson.loads(body)["batch"])
    assert stored(tmp_path / "fast.db") == stored(tmp_path / "general.db")


def test_a_column_null_in_the_whole_batch_overwrites_a_stored_value(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as s:
        s.write(completes=[call(0, display_name="named", exception="boom", wb_run_step=7)])
        s.write(completes=[call(0), call(1)])  # re-sent: every one of those is NULL now
        s.write(starts=[{k: v for k, v in call(2).items() if k != "ended_at"}])
        s.write(ends=[{"project_id": P, "id": "c3", "ended_at": "2026-02-25T06:13:21Z"}])
        assert s.pending_ends(P) == 1
    rows = stored(tmp_path / "s.db")
    assert [r[1] for r in rows] == ["c0", "c1", "c2"]
    assert rows[0][4] is None and rows[0][14] is None and rows[0][18] is None


@pytest.mark.parametrize(
    "times",
    [
        ("2026-02-25T06:13:20.000000Z", "2026-02-25T06:13:21Z"),
        ("2026-02-25T06:13:20.250+00:00", "2026-02-25T06:13:21+00:00"),  # offsets style
    ],
)
def test_an_upload_of_a_dumps_style_file_stores_what_the_general_path_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, times: tuple[str, str]
) -> None:
    """End to end: whatever upload puts in the bodies it hands the store (today orjson's
    text, whatever the file's style), the fast path stores what the general path stores."""
    import json
    import uuid

    from tracecli.targets import local
    from tracecli.upload.api import upload
    from tracecli.upload.report import UploadOptions

    odd: list[Any] = [1e-05, 2.5e-7, 1e16, 0.1, -0.0, 12345678901234567890, "caf\u00e9 \u2028"]
    odd += [{"deep": [[[{"x": 1.0}]]]}, "line\nbreak", 'q"uote', [], {}, None, 2**70]
    lines = []

    def uid(n: int) -> str:
        return str(uuid.UUID(int=n + 1, version=4))

    for i in range(60):
        parent = None if i % 4 == 0 else uid(i - i % 4)
        c = call(i, id=uid(i), parent_id=parent, trace_id=uid(1000 + i // 4))
        c.update(started_at=times[0], ended_at=times[1])
        start = {k: v for k, v in c.items() if k not in ("ended_at", "exception", "output")}
        start.update(type="start", inputs={"v": odd[i] if i < len(odd) else i / 3, "n": i})
        start.pop("summary")
        end = {"type": "end", "project_id": P, "id": c["id"], "ended_at": c["ended_at"]}
        output = odd[len(odd) - 1 - i] if i < len(odd) else f"plain {i}"
        end.update(exception=None, output=output, summary={"k": i / 7})
        lines += [json.dumps(start), json.dumps(end)]  # spaces after separators
    src = tmp_path / "calls.jsonl"
    src.write_text("\n".join(lines) + "\n")

    taken = []
    fast = local.completed_rows

    def counted(body: bytes) -> list[tuple[Any, ...]] | None:
        rows = fast(body)
        taken.append(rows is not None)
        return rows

    def stored_by(name: str) -> list[tuple[Any, ...]]:
        db = tmp_path / f"{name}.db"
        rejected = str(tmp_path / f"{name}.rejected.jsonl")
        # several bodies: the first ones with the odd values, the rest without
        opts = UploadOptions(db=db, rejected=rejected, jobs=0, chunk_size=7)
        report = upload([str(src)], opts)
        assert report.errors == 0
        return stored(db)

    monkeypatch.setattr(local, "completed_rows", counted)
    by_fast = stored_by("fast")
    monkeypatch.setattr(local, "completed_rows", lambda body: None)
    assert by_fast == stored_by("general") and len(by_fast) == 60
    assert any(taken) and not all(taken)


_TIME_CHARS = "0123456789-T:.Z+ W\u0663"
time_text = (
    st.lists(st.sampled_from(_TIME_CHARS), min_size=18, max_size=33).map("".join)
    | st.sampled_from(
        [
            "2026-02-25T06:13:20.123456Z",
            "2026-02-25T06:13:20Z",
            "2026-02-25T06:13:20.123+00:00",
            "2026-02-25T06:13:20.1-00:00",
            "2026-02-25T06:13:20+00:00",
            "2026-02-25T06:13:20.12345Z",
            "2026-02-25T06:13:20.123456+00:00",
        ]
    ).flatmap(
        lambda t: st.tuples(st.integers(0, len(t) - 1), st.sampled_from("0-T:.Z9x+\u0663")).map(
            lambda c: t[: c[0]] + c[1] + t[c[0] + 1 :]
        )
    )
    | st.tuples(
        st.datetimes(),
        st.integers(0, 6),
        st.sampled_from(["Z", "+00:00", "-00:00", "+01:00", ""]),
    ).map(lambda d: d[0].isoformat(timespec="microseconds")[: 19 + (d[1] and d[1] + 1)] + d[2])
)


def _general_ts(text: str) -> str | None:
    """What `to_ts` made of an ISO text before any shortcut: `datetime`'s reading in UTC."""
    import datetime as dt

    try:
        read = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if read.tzinfo is None:
        read = read.replace(tzinfo=dt.UTC)
    elif read.utcoffset():
        read = read.astimezone(dt.UTC)
    return read.isoformat(timespec="microseconds")[:26] + "Z"


@settings(max_examples=examples(500), deadline=None)
@given(st.datetimes(), time_text)
def test_a_time_is_kept_as_written_only_when_it_is_the_stored_form(when: Any, text: str) -> None:
    """`already_utc` (the separators read with one stepped slice) accepts both forms upload
    writes most, and the other UTC forms (a `+00:00` offset, a shorter fraction); whatever it
    accepts is the instant `datetime` reads, in the stored form (what the general path
    stores)."""
    from tracecli.store.rows import already_utc

    fraction = when.isoformat(timespec="microseconds") + "Z"
    assert already_utc(fraction) == fraction
    assert already_utc(fraction[:19] + "Z") == fraction[:19] + ".000000Z"
    assert already_utc(fraction[:23] + "+00:00") == fraction[:23] + "000Z"
    kept = already_utc(text)
    if kept is not None:
        assert kept == _general_ts(text)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("2026-02-25T06:13:20.000+00:00", "2026-02-25T06:13:20.000000Z"),
        ("2026-02-25T06:13:20.1-00:00", "2026-02-25T06:13:20.100000Z"),
        ("2026-02-25T06:13:20+00:00", "2026-02-25T06:13:20.000000Z"),
        ("2026-02-25T06:13:20.12345Z", "2026-02-25T06:13:20.123450Z"),
        ("2026-02-25T06:13:20.123456+00:00", "2026-02-25T06:13:20.123456Z"),
        ("2026-02-25T06:13:20.1234567+00:00", None),  # (datetime drops the 7th digit)
        ("2026-02-25T06:13:20.123+01:00", None),
        ("2026-02-25T06:13:20,123+00:00", None),
        ("2026-02-30T06:13:20.123+00:00", None),
        ("2026-02-25T06:13:20.\u0663+00:00", None),
        ("2026-02-25T06:13:20.+00:00", None),
    ],
)
def test_other_utc_forms_are_read_without_formatting_them_again(text: str, kept: Any) -> None:
    from tracecli.store.rows import already_utc, to_ts

    assert already_utc(text) == kept
    if kept is not None:
        assert to_ts(text) == kept == _general_ts(text)


def test_a_resent_call_whose_batch_leaves_the_last_columns_null_overwrites_them(
    tmp_path: Path,
) -> None:
    """The fast path's rows drop the usually-NULL columns with a slice when the whole batch
    leaves them NULL (upserts.py): a call re-sent so still has them set to NULL, as weave's
    server rewrites a re-sent call."""
    route = f"/v2/{P}/calls/complete"
    target = LocalStoreTarget(tmp_path / "s.db")
    named = call(0, display_name="named", thread_id="th", wb_run_step=7, exception="boom")
    assert target.post(route, body_of([named, call(1)])).status == 200
    assert target.post(route, body_of([call(0), call(2)])).status == 200
    target.close()
    rows = stored(tmp_path / "s.db")
    assert [r[1] for r in rows] == ["c0", "c1", "c2"]
    # display_name, thread_id, exception, wb_run_step (the table's column order)
    assert rows[0][4] is None and rows[0][6] is None and rows[0][14] is None
    assert rows[0][18] is None
    with Store(tmp_path / "general.db") as s:
        s.write(completes=[named, call(1)])
        s.write(completes=[call(0), call(2)])
    assert stored(tmp_path / "general.db") == rows
