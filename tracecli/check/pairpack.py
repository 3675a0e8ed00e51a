"""A block's start/end pairs packed for the trip from a worker to the checking process.

`validate` pairs the starts and ends that sit in one block of lines in its workers; the
process that runs the cross-record checks needs of each pair little more than three
hashes and two line numbers. Sent as tuples of strings, pickling them both ways cost a
fifth of a run's CPU; as a few flat buffers it costs next to nothing. The ids are hashed
in the worker, with the hash the checking process uses: a worker is forked from it, so
`hash(str)` is the same function there (`validate` checks that before using a pool).
The strings travel too, joined, for the rare block whose pairs must be checked one by
one (an id seen before): `unpack_pairs` gives the tuples back.
"""

from __future__ import annotations

from array import array
from typing import Any, TypeAlias

Pair = tuple[Any, ...]  # (line, id, trace_id, parent_id, started, ended, end_line, ended_first)

# (lines, end_lines, id hashes, trace hashes, parent hashes (NO_PARENT: none),
#  "\n"-joined ids, trace ids, parent ids ("None": none), started, ended,
#  [(index, started, ended) of the pairs that end before they start])
# ("array[int]" in quotes: array is not subscriptable at run time before Python 3.12)
Packed: TypeAlias = tuple[
    "array[int]", "array[int]", "array[int]", "array[int]", "array[int]",
    str, str, str, str, str, list[Pair],
]  # fmt: skip
NO_PARENT = -1  # never a hash: CPython's hash() cannot return -1


def pack_pairs(pairs: list[Pair]) -> Packed | None:
    """The pairs of a block's fast path (ids and times are checked ASCII strings,
    without newlines), packed; None for none."""
    if not pairs:
        return None
    lines, ids, tids, pids, sts, ens, end_lines, bads = zip(*pairs, strict=True)
    bad = [(i, sts[i], ens[i]) for i, b in enumerate(bads) if b] if any(bads) else []
    return (
        array("I", lines),
        array("I", end_lines),
        array("q", map(hash, ids)),
        array("q", map(hash, tids)),
        array("q", [NO_PARENT if p is None else hash(p) for p in pids]),
        "\n".join(ids),
        "\n".join(tids),
        "\n".join(map(str, pids)),
        "\n".join(sts),
        "\n".join(ens),
        bad,
    )


def unpack_pairs(packed: Packed | None) -> list[Pair]:
    """The pairs as `pack_pairs` took them."""
    if not packed:
        return []
    lines, end_lines, _h, _t, _p, ids, tids, pids, sts, ens, bad = packed
    bads = {i for i, _, _ in bad}
    return [
        (line, cid, tid, None if pid == "None" else pid, st, en, end, i in bads)
        for i, (line, cid, tid, pid, st, en, end) in enumerate(
            zip(
                lines,
                ids.split("\n"),
                tids.split("\n"),
                pids.split("\n"),
                sts.split("\n"),
                ens.split("\n"),
                end_lines,
                strict=True,
            )
        )
    ]
