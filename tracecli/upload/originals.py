"""The records of a chunk, a half or an entry as they were read, rebuilt from encoded bytes.

The rejected file must hold what the user wrote (its shape's wrapping, its own project_id),
so that fixing a line and uploading the file again works; but the upload keeps only the
encoded bytes it sends, not the parsed records (memory stays flat on big inputs). These
functions undo the encoding when a record is refused, which is rare.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tracecli.check.pairing import Half
from tracecli.check.records import wrap
from tracecli.schema.fields import END_FIELDS
from tracecli.upload.blocks import Ok
from tracecli.wire.chunking import Chunk, unpack
from tracecli.wire.encode import END_KEYS, join_objects, loads


def half_original(h: Half) -> dict[str, Any]:
    """A half's record as read, rebuilt from its encoded bytes."""
    data: dict[str, Any] = loads(join_objects(h.body, h.tail) if h.tail else h.body)
    if h.orig is not None:
        data["project_id"] = h.orig
    return wrap(h.shape, h.kind, data)  # type: ignore[arg-type]


def entry_original(e: Ok) -> dict[str, Any]:
    """A valid record's entry as read, rebuilt from its encoded bytes."""
    data: dict[str, Any] = loads(join_objects(e.body, e.tail) if e.tail else e.body)
    if e.orig is not None:
        data["project_id"] = e.orig
    return wrap(e.shape, e.kind, data)  # type: ignore[arg-type]


def originals(chunk: Chunk) -> Iterator[tuple[dict[str, Any], int, int]]:
    """Each record of a chunk as it was read (its shape's wrapping, its own project_id),
    rebuilt from the bytes that were sent: (record, input index, line)."""
    complete_route = chunk.route.endswith("/calls/complete")
    for i in range(chunk.units):
        unit = chunk.unit(i)
        parts: dict[str, dict[str, Any]] = {}
        for item in unit.parts:
            d = loads(item)
            if complete_route:
                parts["complete"] = d
            elif "mode" in d:
                parts[d["mode"]] = d["req"][d["mode"]]
            else:
                key = "start" if "start" in d else "end"
                parts[key] = d[key]
        projects, end_rest = unit.extra or (None, None)
        for j, rec in enumerate(unit.recs):
            src, line, kind, shape = unpack(rec)
            whole = parts.get("complete")
            if kind == "complete":
                data = whole if whole is not None else {**parts["start"], **parts["end"]}
            elif parts.get(kind):
                data = parts[kind]
            elif whole is None:  # never: a unit carries each half it sent, or the whole call
                raise ValueError(f"line {line}: neither the {kind} nor the whole call was sent")
            elif kind == "start":
                data = {k: v for k, v in whole.items() if k not in END_KEYS}
            else:
                data = {
                    "project_id": whole["project_id"],
                    "id": whole["id"],
                    **(loads(end_rest) if end_rest else {}),
                    **{k: whole[k] for k in END_FIELDS if k in whole},
                }
            data = dict(data)
            if projects is not None and j < len(projects) and projects[j] is not None:
                data["project_id"] = projects[j]
            yield wrap(shape, kind, data), src, line  # type: ignore[arg-type]
