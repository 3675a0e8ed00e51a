"""A batch's upsert with the columns that are NULL in every row written as NULL in the SQL.

Why: Python's sqlite3 binds a str or int directly, but a None goes through its adapter
protocol (a key tuple built and looked up per value, ~1k instructions) before it becomes a
NULL, and a call's row usually holds nine or more of them (display_name, thread_id,
turn_id, otel_dump, the wb_ fields, exception...), the same ones in every call of a batch.
A column NULL in every row of the batch is left out of the INSERT (SQLite fills in NULL)
and set to NULL by the conflict's UPDATE, which stores exactly what binding NULL stored;
the rows lose those values at C speed (`itemgetter`; one slice when they are the last
columns, as in `tables.COMPLETE_COLUMNS_NULLS_LAST`). One statement per set of such
columns, made once.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from functools import cache
from itertools import repeat
from typing import Any

_is_not = operator.is_not


def upsert(
    table: str, columns: Sequence[str], key: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> tuple[str, Sequence[tuple[Any, ...]]]:
    """The statement and rows that upsert `rows` (values in `columns` order) into `table`,
    on a conflict of `key` rewriting every other column."""
    if not rows:
        return upsert_sql(table, tuple(columns), tuple(key), ()), rows
    nulls = tuple(
        i
        for i, values in enumerate(zip(*rows, strict=True))
        if not any(map(_is_not, values, repeat(None)))
    )
    keep = [i for i in range(len(columns)) if i not in nulls]
    if not nulls or len(keep) < 2:  # (itemgetter of one index answers a value, not a row)
        return upsert_sql(table, tuple(columns), tuple(key), ()), rows
    pick: Callable[[tuple[Any, ...]], tuple[Any, ...]]
    if nulls[0] == len(keep):  # the last columns: a slice of each row (~10x cheaper)
        pick = operator.itemgetter(slice(0, len(keep)))
    else:
        pick = operator.itemgetter(*keep)
    return upsert_sql(table, tuple(columns), tuple(key), nulls), list(map(pick, rows))


@cache
def upsert_sql(
    table: str, columns: tuple[str, ...], key: tuple[str, ...], nulls: tuple[int, ...]
) -> str:
    """`INSERT ... ON CONFLICT (key) DO UPDATE SET ...` for `columns`, the ones at `nulls`
    left out of the VALUES and set to NULL on a conflict."""
    named = [c for i, c in enumerate(columns) if i not in nulls]
    updates = ", ".join(
        f"{c} = NULL" if i in nulls else f"{c} = excluded.{c}"
        for i, c in enumerate(columns)
        if c not in key
    )
    return (
        f"INSERT INTO {table} ({', '.join(named)}) VALUES ({', '.join('?' * len(named))}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )
