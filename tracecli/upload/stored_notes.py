"""`upload --follow`: the warnings a pass need not give about records an earlier pass stored.

A start still waiting for its end keeps the journal's resume point before it, so the next
pass reads the lines after it again, skipping those stored. An end among them whose start
lies before that point (stored whole with it by an earlier pass) would be said to have "no
start in the inputs", and a child so read to have "no parent": warnings about calls that
are stored, whole and right, on every interleaved log (a start, another's end, ...)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from tracecli.diagnostics import Diagnostic
from tracecli.packing import Bitmap

_ABOUT_THE_OTHER_HALF = frozenset({"end-without-start", "missing-parent"})


def not_about_stored(
    diags: list[Diagnostic], display: Sequence[str], acked: Sequence[Collection[int]]
) -> list[Diagnostic]:
    """`diags` without those about a missing start or parent at a line already stored
    (`acked[i]`: the lines of input `i`, named `display[i]`, an earlier pass stored)."""
    where = {name: i for i, name in enumerate(display)}

    def stored(d: Diagnostic) -> bool:
        i = where.get(d.path)
        return i is not None and d.line in acked[i]

    return [d for d in diags if d.code not in _ABOUT_THE_OTHER_HALF or not stored(d)]


def stored_then(acked: Collection[int]) -> Collection[int]:
    """A copy of an input's acknowledged lines as they are now: a resumed run's warnings
    are checked against what earlier runs stored, not against what this run sends."""
    return acked.union(Bitmap()) if isinstance(acked, Bitmap) and len(acked) else frozenset()
