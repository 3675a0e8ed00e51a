"""Halves of calls that validation refused, by call id, so that their other half is not sent
alone (an end on the server with no start, half a call in the rejected file): it is
rejected with them instead, or, stored by an earlier run, warned about."""

from __future__ import annotations

from typing import Any, NamedTuple

from tracecli.check.pairing import Half
from tracecli.diagnostics import Diagnostic, Severity


class RefusedHalf(NamedTuple):
    kind: str | None  # "start" or "end"; None when the record was too broken to say
    src: int  # the input's index
    line: int


class RefusedHalves:
    """The refused halves of one run (see the module's docstring)."""

    def __init__(self, display: list[str]) -> None:
        self.display = display  # the inputs' names, as said in messages
        self.by_id: dict[str, RefusedHalf] = {}

    def __bool__(self) -> bool:
        return bool(self.by_id)

    def note(self, kind: str | None, cid: Any, src: int, line: int) -> None:
        """Remember a half that validation refused, so its other half is not sent alone."""
        if type(cid) is str and kind != "complete" and cid not in self.by_id:
            self.by_id[cid] = RefusedHalf(kind, src, line)

    def why_not_alone(self, h: Half) -> str | None:
        """Why a lone half must not go: validation refused its other half, else None."""
        hit = self.by_id.get(h.call_id)
        if hit is None or hit.kind == h.kind:
            return None
        other = "end" if h.kind == "start" else "start"
        return (
            f"its {other} ({self._where(hit, h.src)}) was rejected; fix that one and upload "
            "the two together (both are in the rejected file)"
        )

    def end_rejected(self, start: Half) -> Diagnostic:
        """The warning for a start an earlier run stored whose end is refused now."""
        hit = self.by_id[start.call_id]
        return Diagnostic(
            self.display[start.src],
            start.line,
            "id",
            "end-rejected",
            Severity.WARNING,
            "this call's start was stored by an earlier run and its end "
            f"({self._where(hit, start.src)}) was rejected: the call "
            "stays running until a fixed end is uploaded",
        )

    def _where(self, hit: RefusedHalf, here: int) -> str:
        return f"line {hit.line}" if hit.src == here else f"{self.display[hit.src]}:{hit.line}"
