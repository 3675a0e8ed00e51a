"""Freeplay records from any input: Freeplay records pass through, Weave calls are converted.

Both `tracecli convert --to freeplay` and `tracecli upload --target freeplay` read through
here, so what convert writes is exactly what upload would send. Weave starts and ends are
joined with the upload pipeline's `Pairer` (bounded memory: it spills open calls to disk),
whatever the order of the files. Every input line ends in exactly one `Piece`: a record to
send, or diagnostics saying why not, with the lines it came from (to acknowledge them in the
resume journal, or to write them as they were read to the rejected file).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from tracecli.check.pairing import DEFAULT_MEMORY_BUDGET, DUPLICATE, Half, Pairer
from tracecli.check.records import parse_record, wrap
from tracecli.diagnostics import Diagnostic, Location, Severity
from tracecli.freeplay.convert import ToolNames, convert_call, short_op_name
from tracecli.freeplay.odd import odd_warnings
from tracecli.freeplay.times import for_freeplay
from tracecli.inputs.reader import FILE_FORMAT, Source
from tracecli.schema.fields import END_FIELDS
from tracecli.schema.freeplay import WARNING_CODES, check_completion, is_trace_record
from tracecli.wire.encode import dumps
from tracecli.wire.wideints import exact_loads


@dataclass(slots=True)
class Piece:
    """One Freeplay record to send (`record`), or why the lines cannot become one.

    A Piece without lines only carries diagnostics (warnings about a half still waiting
    for its other half)."""

    record: dict[str, Any] | None
    lines: tuple[tuple[int, int], ...]  # (source index, line) of each input record used
    originals: tuple[Any, ...]  # those records as read (None: the line was not JSON)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    converted: bool = False  # made from Weave calls

    @property
    def ok(self) -> bool:
        return self.record is not None

    @property
    def is_trace(self) -> bool:
        return self.record is not None and is_trace_record(self.record)


class FreeplayPieces:
    """Iterate the sources' records as Pieces. `sources` are opened `reader.Source`s."""

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        strict: bool = False,
        defer_start: Callable[[str], bool] | None = None,
    ) -> None:
        self.sources = list(sources)
        self._exact: Any = None  # the last value `_read_exact` read
        # the halves waiting in the pairer that were read exactly (or from YAML): their
        # bodies may hold integers beyond 64 bits, which orjson would read as floats
        self._wide: set[tuple[str, str]] = set()
        self._yaml = {i for i, s in enumerate(self.sources) if getattr(s, "fmt", "") == "yaml"}
        for source in self.sources:
            if isinstance(source, Source) and source.exact is None:
                # integers beyond 64 bits kept exact (orjson makes floats of them, or
                # refuses them), NaN read, as validate and a Weave upload read them
                source.exact = self._read_exact
        self.memory_budget = memory_budget
        self.strict = strict
        # upload --follow: a start without its end that may still wait for it (pair_wait)
        # is left alone, neither sent nor rejected: the next pass reads it again
        self.defer_start = defer_start
        self.converted = 0  # Weave calls converted
        self.tool_names = ToolNames()

    def __iter__(self) -> Iterator[Piece]:
        """Close the iterator to stop early (Ctrl-C): the pairer's spill file goes with it."""
        with Pairer(self.memory_budget) as pairer:
            for i, source in enumerate(self.sources):
                for item in source:
                    yield from self._one(pairer, i, item)
            for half in pairer.leftovers():
                if half.kind == "start" and self.defer_start and self.defer_start(half.call_id):
                    continue
                yield self._lone(half)

    def _read_exact(self, raw: bytes) -> Any:
        """`exact_loads`, remembering the value: only such a value may hold what reaches
        Freeplay other than as written (`odd_warnings`), so only it is searched."""
        self._exact = exact_loads(raw)
        return self._exact

    # -- one input record ---------------------------------------------------------------
    def _one(self, pairer: Pairer, src: int, item: Any) -> Iterator[Piece]:
        if isinstance(item, Diagnostic):  # an OTLP span refused carries it as read
            original = getattr(item, "original", None)
            # a line that is not JSON is a record read (and refused), as a Weave upload counts
            # it; another tool's file holds none of ours; a refused span is counted already
            if original is None and item.code != FILE_FORMAT:
                self.sources[src].records += 1
            yield Piece(None, ((src, item.line),), (original,), [item])
            return
        loc, value = item
        parsed = parse_record(loc, value)
        rec = parsed.record
        diags = parsed.diagnostics
        if rec is not None and rec.kind != "freeplay" and diags:
            diags = [for_freeplay(d, rec.data) for d in diags]
        exact = value is self._exact  # (YAML's .nan: a float NaN, read without it)
        if exact:
            self._exact = None
        wide = exact or src in self._yaml
        if wide and rec is not None and rec.kind != "freeplay":
            diags = [*diags, *odd_warnings(loc, value)]
        if self.strict:
            diags = [d.as_error() for d in diags]
        if rec is None or any(d.is_error for d in diags):
            yield Piece(None, ((src, loc.line),), (value,), diags)
            return
        if rec.kind == "freeplay":
            yield Piece(rec.data, ((src, loc.line),), (value,), diags)
            return
        if rec.kind == "complete":
            yield self._convert(rec.data, [(src, loc, rec.shape, "complete", rec.data)], diags)
            return
        half = Half(
            rec.kind, str(rec.data["id"]), str(rec.data.get("project_id", "")),
            dumps(rec.data), b"", False, src, loc.line, rec.shape,
        )  # fmt: skip
        if wide:
            self._wide.add((half.call_id, half.kind))
        other = pairer.match(half)
        if other is None:
            if diags:  # a half's warnings are said now; its Piece comes with the other half
                yield Piece(None, (), (), diags)
            return
        if other is DUPLICATE:
            yield Piece(
                None,
                ((src, loc.line),),
                (value,),
                [
                    *diags,
                    Diagnostic.at(
                        loc, "duplicate", f"call {half.call_id} already has "
                        f"{'an' if half.kind == 'end' else 'a'} {half.kind} "
                        "in the inputs: one start and one end per call", "id",
                    ),
                ],
            )  # fmt: skip
            return
        assert isinstance(other, Half)
        start, end = (half, other) if half.kind == "start" else (other, half)
        yield self._pair(start, end, diags)

    def _pair(self, start: Half, end: Half, diags: list[Diagnostic]) -> Piece:
        s = self._load(start)
        e = self._load(end)
        call = dict(s)
        for k in END_FIELDS:
            if k in e:
                call[k] = e[k]
        parts = [
            (start.src, self._loc(start), start.shape, "start", s),
            (end.src, self._loc(end), end.shape, "end", e),
        ]
        return self._convert(call, parts, diags)

    def _load(self, half: Half) -> Any:
        """A half's body as encoded (`dumps`): exactly when it was read so."""
        key = (half.call_id, half.kind)
        if key in self._wide:
            self._wide.discard(key)
            return exact_loads(half.body)
        return orjson.loads(half.body)

    def _loc(self, half: Half) -> Location:
        return Location(self.sources[half.src].path, half.line)

    def _convert(
        self,
        call: dict[str, Any],
        parts: list[tuple[int, Location, str, str, dict[str, Any]]],
        diags: list[Diagnostic],
    ) -> Piece:
        """A finished Weave call → a checked Freeplay record, located at its first line."""
        lines = tuple((src, loc.line) for src, loc, _, _, _ in parts)
        originals = tuple(wrap(shape, kind, data) for _, _, shape, kind, data in parts)  # type: ignore[arg-type]
        loc = parts[0][1]
        record, warnings = convert_call(call, self.tool_names)
        self.converted += 1
        what = f"Weave call {call.get('id')} ({short_op_name(str(call.get('op_name', '')))})"
        severity = Severity.ERROR if self.strict else Severity.WARNING
        out = list(diags)
        out.extend(Diagnostic.at(loc, "convert", f"{what}: {w}", "", severity) for w in warnings)
        kind = "trace" if is_trace_record(record) else "completion"
        for fld, code, msg in check_completion(record):
            if code in WARNING_CODES:
                out.append(Diagnostic.at(loc, code, f"{what}: {msg}", fld, severity))
                continue
            out.append(
                Diagnostic.at(loc, code, f"{what} gives an invalid Freeplay {kind}: {msg}", fld)
            )
        if any(d.is_error for d in out):
            return Piece(None, lines, originals, out, converted=True)
        return Piece(record, lines, originals, out, converted=True)

    def _lone(self, half: Half) -> Piece:
        data = self._load(half)
        loc = self._loc(half)
        if half.kind == "start":
            msg = (
                f"call {half.call_id} has no end in the inputs: Freeplay records finished "
                "calls only; upload it once it has ended (the calls under it link to it by "
                "its id meanwhile)"
            )
        else:
            msg = (
                f"call {half.call_id} has no start in the inputs: its op, inputs and trace "
                "are unknown, so it cannot become a Freeplay record; upload it together with "
                "the file holding its start"
            )
        return Piece(
            None,
            ((half.src, half.line),),
            (wrap(half.shape, half.kind, data),),  # type: ignore[arg-type]
            [Diagnostic.at(loc, "unpaired", msg, "id")],
            converted=True,
        )
