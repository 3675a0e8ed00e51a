"""Trace files written the ways real producers write them, for the fast-path audits.

The generator (`uploadkit.gen_calls`) writes one style; producers write many: Python's
`json.dumps` with its default `ensure_ascii=True` (every non-ASCII character a `\\uXXXX`
escape, astral ones as surrogate pairs) or with `ensure_ascii=False`, sorted keys, PHP's
escaped solidus (`\\/`), Go's HTML-safe escapes (`\\u003c`), keys spelled with escapes,
CRLF line endings, a UTF-8 BOM, blank and whitespace-only lines, trailing spaces, no final
newline, gzip. `styled_file` writes one call list in any mix of these; `odd_file` draws the
mix (and odd values, reordered keys, absent fields, the four record shapes) from a seed.
Everything here is deterministic and needs nothing outside the repository.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from tests.support.uploadkit import gen_calls

Record = dict[str, Any]
Styler = Callable[[Record], bytes]

BOM = b"\xef\xbb\xbf"
UNICODE = (
    "caf\u00e9 \u2603 \U0001f600 \u2028 \x7f \u00e9"  # BMP, astral (a surrogate pair in ASCII JSON)
)


def records(n: int = 24, seed: int = 3, project: str = "acme/audit") -> list[Record]:
    """`n` calls as flat records (start, then its end), their inputs holding non-ASCII text."""
    out: list[Record] = []
    for i, (s, e) in enumerate(gen_calls(n, seed=seed, project=project)):
        start = {"type": "start", **s, "inputs": {**s["inputs"], "u": UNICODE, "k": i}}
        out += [start, {"type": "end", **e}]
    return out


def _escape_keys(line: bytes) -> bytes:
    """Every lowercase key spelled as \\uXXXX escapes (a JSON text equal to the original)."""

    def esc(m: re.Match[bytes]) -> bytes:
        return b'"' + b"".join(b"\\u%04x" % c for c in m.group(1)) + b'":'

    return re.sub(rb'"([a-z_]+)":', esc, line)


STYLES: dict[str, Styler] = {
    "orjson": orjson.dumps,
    "dumps": lambda r: json.dumps(r).encode(),  # ensure_ascii=True, ", " and ": "
    "dumps-utf8": lambda r: json.dumps(r, ensure_ascii=False).encode(),
    "dumps-sorted": lambda r: json.dumps(r, sort_keys=True).encode(),
    "dumps-tight": lambda r: json.dumps(r, separators=(",", ":")).encode(),
    "spaced": lambda r: json.dumps(r, separators=(" , ", " : ")).encode(),
    "php": lambda r: orjson.dumps(r).replace(b"/", b"\\/"),
    "go": lambda r: orjson.dumps(r).replace(b"<", b"\\u003c").replace(b">", b"\\u003e"),
    "escaped-keys": lambda r: _escape_keys(json.dumps(r).encode()),
    # every '-' and 'a' of every string escaped: ids, times, "type", project
    "escaped-values": lambda r: orjson.dumps(r).replace(b"-", b"\\u002D").replace(b"a", b"\\u0061"),
}


def styled_file(
    path: Path,
    recs: list[Record],
    style: str = "orjson",
    *,
    eol: bytes = b"\n",
    bom: bool = False,
    blank: bytes = b"",
    pad: bytes = b"",
    final_newline: bool = True,
    gz: bool = False,
) -> Path:
    """`recs` one per line in `style`, with `eol` line ends, `blank` (e.g. b"  \\n") after
    each line, `pad` after each record, and optionally a BOM, no final newline, gzip."""
    lines = [STYLES[style](r) + pad for r in recs]
    data = (BOM if bom else b"") + eol.join(
        line + (eol + blank if blank else b"") for line in lines
    )
    if final_newline:
        data += eol
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# values spliced into a record as raw JSON text (what a producer may write that orjson would not)
ODD_VALUES = [
    '{"x": 1e400}',
    '{"x": -0.0, "y": 1E5, "z": 1.0, "w": 1}',
    '{"x": 184467440737095516160000}',
    '{"x": NaN, "y": -Infinity}',
    '{"x": 1, "x": "2"}',
    '{"x": "\\ud83d\\ude00"}',
    '{"x": "\\ud83d"}',
    '{"\\ude00": 1}',
    '{"x": "a\\u0000b"}',
    '{"x": ' + "[" * 100 + "1" + "]" * 100 + "}",
    '{"x": ' + '{"a":' * 260 + "1" + "}" * 260 + "}",
    '"a string"',
    '{"x": "' + "p" * 5000 + '"}',
]
# what weave's server stores but then cannot read back (its stream_query fails on the project)
UNREADABLE_ON_WEAVE = {'{"x": "\\ud83d"}', '{"\\ude00": 1}', ODD_VALUES[10]}
# end times after every start of the generator's, written the other ways producers write them
ODD_TIMES = [
    '"2030-10-09T10:53:20.5+02:00"',
    '"2030-10-09T08:53:20.123456789Z"',
    '"2030-10-09t08:53:20.5z"',
    '"2030-10-09 08:53:20.5Z"',
    '"2030-10-09T08:53:20\\u002e5Z"',
    "1917000000.5",
]


def _shape(rec: Record, shape: str) -> Record:
    kind = rec["type"]
    body = {k: v for k, v in rec.items() if k != "type"}
    if shape == "batch":
        return {"mode": kind, "req": {kind: body}}
    if shape == "request":
        return {kind: body}
    return rec


def odd_lines(
    seed: int, n: int = 24, project: str = "acme/audit", *, readable: bool = False
) -> bytes:
    """A file's bytes: `n` calls in a seeded mix of styles, shapes, line ends, blank lines,
    odd values and times, reordered keys, absent parent ids, a few broken lines;
    `readable`: only values weave's server can read back."""
    rng = random.Random(seed)
    values = [v for v in ODD_VALUES if not (readable and v in UNREADABLE_ON_WEAVE)]
    out: list[bytes] = [BOM] if rng.random() < 0.2 else []
    recs = records(n, seed=seed, project=project)
    if rng.random() < 0.3:  # an end before its start, or two calls interleaved
        i = rng.randrange(len(recs) - 3)
        recs[i], recs[i + 3] = recs[i + 3], recs[i]
    for rec in recs:
        d = dict(rec)
        raw: dict[str, str] = {}
        if rng.random() < 0.08:
            raw["inputs" if d["type"] == "start" else "output"] = rng.choice(values)
        if rng.random() < 0.02 and d["type"] == "end":
            raw["ended_at"] = rng.choice(ODD_TIMES)
        if rng.random() < 0.1:
            d.pop("parent_id", None)
        if rng.random() < 0.1:
            d = {k: d[k] for k in rng.sample(list(d), len(d))}
        if rng.random() < 0.1:
            d["inputs" if "inputs" in d else "summary"] = {"pad": "z" * rng.randrange(2000)}
        marks = {k: f"@@{i}@@" for i, k in enumerate(raw)}  # survives every style's escapes
        for k, mark in marks.items():
            d[k] = mark
        d = _shape(d, rng.choice(["flat", "flat", "flat", "batch", "request"]))
        line = STYLES[rng.choice(list(STYLES))](d)
        for k, v in raw.items():
            line = line.replace(f'"{marks[k]}"'.encode(), v.encode())
        if rng.random() < 0.01:
            line = line[: len(line) // 2]  # a line cut short: refused, never a traceback
        if rng.random() < 0.1:
            line += rng.choice([b" ", b"\t", b" \t "])
        out.append(line + rng.choice([b"\n", b"\n", b"\r\n"]))
        if rng.random() < 0.08:
            out.append(rng.choice([b"\n", b"  \n", b"\r\n", b"\t\r\n"]))
    data = b"".join(out)
    return data.rstrip(b"\r\n") if rng.random() < 0.2 else data
