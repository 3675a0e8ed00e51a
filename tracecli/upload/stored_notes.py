"""`upload --follow`: the warnings a pass need not give about records an earlier pass stored.

A start still waiting for its end keeps the journal's resume point before it, so the next
pass reads the lines after it again, skipping those stored. An end among them whose start
lies before that point (stored whole with it by an earlier pass) would be said to have "no
start in the inputs", and a child so read to have "no parent": warnings about calls that
are stored, whole and right, on every interleaved log (a start, another's end, ...)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace

from tracecli.diagnostics import Diagnostic, Severity
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


def unsure_after_prefix(
    diags: list[Diagnostic], display: Sequence[str], prefix: Sequence[int]
) -> list[Diagnostic]:
    """`diags`, those about a missing start or parent in an input read from its resume
    point (`prefix[i]`: the lines before it, stored by an earlier run and not read again)
    said as what they are: the other half may well be among those lines. A warning then,
    even under --strict (a resumed run is not to fail on what the stopped one stored)."""
    where = {name: i for i, name in enumerate(display)}
    out = []
    for d in diags:
        i = where.get(d.path)
        if d.code in _ABOUT_THE_OTHER_HALF and i is not None and prefix[i] > 0:
            what = d.message.replace("not in the inputs", "not in the lines read by this run")
            what += f" (lines 1-{prefix[i]}, stored by an earlier run, were not read again)"
            d = replace(d, severity=Severity.WARNING, message=what)
        out.append(d)
    return out
