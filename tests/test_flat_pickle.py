"""`flat_pickle.dumps_flat`: pickle without the memo gives the same values back."""

from __future__ import annotations

import pickle
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.sweeps import examples
from tracecli.diagnostics import Severity
from tracecli.upload.blocks import Bad, Prepared
from tracecli.upload.flat_pickle import dumps_flat

_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_json = st.recursive(
    _scalars | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
        | st.tuples(inner, inner)
    ),
    max_leaves=30,
)


@settings(max_examples=examples(200), deadline=None)
@given(_json)
def test_values_come_back_equal(value: Any) -> None:
    assert pickle.loads(dumps_flat(value)) == value


def test_a_shared_value_comes_back_equal_and_deep_nesting_still_pickles() -> None:
    shared = ["x", b"y", ("z",)]
    assert pickle.loads(dumps_flat([shared, shared])) == [shared, shared]
    deep: Any = []
    for _ in range(400):  # past the pickler's 50 levels where it starts to look for cycles
        deep = [deep, "k"]
    assert pickle.loads(dumps_flat(deep)) == deep


def test_a_cycle_falls_back_to_the_plain_pickle() -> None:
    cyclic: list[Any] = ["a"]
    cyclic.append(cyclic)
    back = pickle.loads(dumps_flat(cyclic))
    assert back[0] == "a" and back[1] is back


@settings(max_examples=50, deadline=None)
@given(_json)
def test_a_block_with_any_refused_value_comes_back_the_same(value: Any) -> None:
    diag = ("(record)", "json", Severity.ERROR, "not JSON")
    got = Prepared(3, 2, [Bad(1, value, (diag,), None), Bad(2, value, (diag,), "id")])
    back = pickle.loads(pickle.dumps(got))
    assert (back.lines, back.records, back.entries) == (3, 2, got.entries)
    assert [type(e) for e in back.entries] == [Bad, Bad]
