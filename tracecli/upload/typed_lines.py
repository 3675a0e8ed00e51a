"""Which lines of a block the typed decoder (`schema.typed`) may read, and their shapes.

msgspec reads a line as orjson does except in a few places, all of them inside the
free-form values it skips (`msgspec.Raw`, a summary's other keys): there it does not look
at bytes that are not UTF-8, nor at the size of a number (`1e400`, or a 400-digit one: a
double's infinity, which orjson refuses and the exact reader warns about), nor does the
fast path look there for strings the server would read as references. A line with any of
these goes the way it always went (orjson, the fast path, the full check), which gives
the real answer; so does a line nested deep enough to matter or near the server's size
limit, whose checks need the decoded value. What msgspec reads differently in the typed
fields (an integer beyond 64 bits, exact here, as the exact reader reads it) is the same
answer. The block is searched once; only the lines it points at are looked at closely.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from tracecli.schema.typed import TypedCall, typed_call
from tracecli.upload.lines import REF_START, escaped_letter, plain_refs
from tracecli.wire.encode import SERVER_MAX_BYTES
from tracecli.wire.wideints import DEEP_BRACKETS, may_nest_deep

__all__ = [
    "LONG_LINE",
    "NEAR_LIMIT",
    "OPENER",
    "PURE_PYTHON_ENV",
    "BlockBytes",
    "block_bytes",
    "block_bytes_py",
    "line_clear",
    "line_too_deep",
    "shape_of",
    "too_deep",
]

NEAR_LIMIT = SERVER_MAX_BYTES - (1 << 20)  # raw lines longer than this are measured
LONG_LINE = 2 * DEEP_BRACKETS  # a line shorter than this cannot nest deep enough to matter

# One pass over a block (`bytes.translate`, ~9 instructions a byte) serves every search:
# digits read "0", an exponent's "E" and "+" read "e" (a number's exponent of three digits
# or more, beyond what a finite double allows, reads "e000"), "[" reads "{" (one count of
# openers per line), letters stay (a "weave" in the block is one there).
_BLOCK_TABLE = bytes(
    0x30 if 0x30 <= i <= 0x39 else 0x65 if i in b"E+" else 0x7B if i == 0x5B else i
    for i in range(256)
)
_RUN = b"0" * 20  # digits enough for a number beyond a double without an exponent
_EXPONENT = b"e000"
# ... and it is a number only if the digits end where a JSON value ends (in an id's hex
# they go on with a letter, a "-" or the closing quote)
_exponent_end = re.compile(rb"e0{3,}[,}\] \t\r\n]").match
OPENER = b"{"  # "[" and "{" in the translated block
_bare_weave = re.compile(REF_START[1:]).search


class BlockBytes(NamedTuple):
    """What one search of a block found, for `line_clear` to ask of its lines."""

    refs: bool  # some line may hold a reference: each asks `plain_refs`
    text: bool  # some line is not ASCII: each that is not is decoded as UTF-8
    numbers: frozenset[int]  # lines (1-based) with a number the decoder does not size
    # the block through _BLOCK_TABLE: count OPENER in a line's range; None when the
    # compiled search counted each line's openers already (`deep`)
    translated: bytes | None
    deep: frozenset[int] = frozenset()  # (compiled search) lines with DEEP_BRACKETS openers


PURE_PYTHON_ENV = "TRACECLI_PURE_PYTHON"  # set (not "" or "0"): no compiled search


ScanBlock = Callable[[bytes, int], tuple[bool, bool, list[int], list[int]]]
_compiled_scan: ScanBlock | None
try:  # the compiled search, built by `pip install` when a C compiler is there
    from tracecli._speedups import scan_block as _compiled_scan
except ImportError:  # not built: the pure-Python search
    _compiled_scan = None
_scan_block = None if os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0") else _compiled_scan


def block_bytes(data: bytes) -> BlockBytes:
    """Search a block (of whole lines) once for what keeps its lines off the typed path.

    With the compiled search (`tracecli/_speedups.c`): one pass over the bytes, where the
    pure-Python search (`block_bytes_py`) makes six and the loops then count each long
    line's brackets. The two answer alike (`tests/test_speedups.py`): the same `refs`,
    `text` and `numbers`, and the compiled one's `deep` is what the loops would count."""
    if _scan_block is None:
        return block_bytes_py(data)
    refs, text, numbers, deep = _scan_block(data, DEEP_BRACKETS)
    return BlockBytes(
        refs,
        text,
        frozenset(numbers) if numbers else _NONE,
        None,
        frozenset(deep) if deep else _NONE,
    )


_NONE: frozenset[int] = frozenset()


def _lines_of(data: bytes, at: list[int]) -> frozenset[int]:
    """The lines (1-based) of the offsets `at` in `data`, counting each newline once: a
    block with many hits (a line of digits, many wide numbers) stays linear."""
    lines: set[int] = set()
    line, last = 1, 0
    for i in sorted(at):
        line += data.count(b"\n", last, i)
        last = i
        lines.add(line)
    return frozenset(lines)


def block_bytes_py(data: bytes) -> BlockBytes:
    """`block_bytes` in pure Python: the search as the loops' fallback and the compiled
    search's reference."""
    t = data.translate(_BLOCK_TABLE)
    at: list[int] = []
    i = t.find(_RUN)
    while i >= 0:  # (one hit a line is enough: the search goes on from the next line)
        at.append(i)
        i = t.find(b"\n", i + 20)
        i = -1 if i < 0 else t.find(_RUN, i + 1)
    # one split rather than a find per hit (in ids' hex, ~0.4 a record): a `find` from an
    # offset parses its arguments through a format string, ~2k instructions a call
    k = -4  # where the hit after each piece begins
    for piece in t.split(_EXPONENT)[:-1]:
        k += len(piece) + 4
        if _exponent_end(t, k) is not None:
            at.append(k)
    numbers = _lines_of(data, at) if at else _NONE
    # `lines.find_ref` for the block: a quoted `"weave` (`plain_refs` counts those) or an
    # escaped letter. Looked for first without its quote, by `re`: its literal search runs
    # a tight loop over the bytes for the first one, a rare "w" (a `find` of `"weave`, a
    # two-way search, branches at nearly every byte: 0.42 µs a record of CPU against
    # 0.16); the quoted form only from where that one is, in the few blocks that have it
    bare = _bare_weave(data)
    refs = (bare is not None and data.find(REF_START, max(bare.start() - 1, 0)) >= 0) or (
        escaped_letter(data) is not None
    )
    return BlockBytes(refs, not data.isascii(), numbers, t)


def too_deep(
    count: Callable[[bytes, int, int], int], at: int, size: int, near_limit: int = NEAR_LIMIT
) -> bool:
    """Whether a line longer than `LONG_LINE` must be kept from the typed decoders: it is
    near the server's size limit (over `near_limit`), or it holds brackets enough to nest
    deep (`DEEP_BRACKETS` or more), whose checks need the decoded value. `count`: the
    translated block's `count` (`BlockBytes.translated`, `typed_blocks.TypedBlock`'s),
    `at`: where the line begins in it, `size`: its length. The caller tests `LONG_LINE`
    itself (most lines are shorter: no call for them). After the compiled search
    (`BlockBytes.translated` None) ask `BlockBytes.deep` instead."""
    return size > near_limit or count(OPENER, at, at + size) >= DEEP_BRACKETS


def line_too_deep(seen: BlockBytes, n: int, at: int, size: int, near_limit: int) -> bool:
    """`too_deep` for line `n` of a searched block, beginning at `at`: from the translated
    block's count, or, after the compiled search (`translated` None), from the lines it
    named (`BlockBytes.deep`)."""
    if seen.translated is None:
        return size > near_limit or n in seen.deep
    return too_deep(seen.translated.count, at, size, near_limit)


def line_clear(raw: bytes, n: int, b: BlockBytes) -> bool:
    """Whether line `n` of the block may be read by the typed decoder (see the module);
    the caller also keeps lines near the size limit (`NEAR_LIMIT`) and lines with
    brackets enough to nest deep (`LONG_LINE`, `OPENER`) from it."""
    if n in b.numbers:
        return False
    if b.refs and not plain_refs(raw):
        return False
    if b.text and not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def shape_of(value: Any) -> str | None:
    """The shape of a decoded record, named as `schema.typed.SHAPES` names its decoders
    (as `check.records.parse_record` tells them apart), or None for none of them."""
    if type(value) is not dict:
        return None
    if "type" in value:
        return "flat"
    if "req" in value:
        return "batch"
    if len(value) == 1 and ("start" in value or "end" in value):
        return "request"
    if "op_name" in value:
        return "complete"
    return None


def typed_line(raw: bytes, shape: str, line: int = 0, whole: bool = False) -> TypedCall | None:
    """One line, on its own (no block around it), as the typed path reads it: facts, shape
    and call body when certainly valid, else None (read it with orjson). `whole`: the body
    decoded to lose nothing it says (see `schema.typed.typed_call`)."""
    if len(raw) > NEAR_LIMIT or (len(raw) > LONG_LINE and may_nest_deep(raw)):
        return None
    if not line_clear(raw, 1, block_bytes(raw)):  # (the line is line 1 of its own bytes)
        return None
    return typed_call(shape, raw, line, whole)
