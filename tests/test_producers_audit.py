"""The fast paths against the general ones, on files written the ways real producers write.

Each fast path has a contract test written by its author; this module is the audit from
outside, on what the generator never writes (tests/support/producer_files.py: ASCII-escaped
JSON with surrogate pairs, PHP's `\\/`, Go's `\\u003c`, keys and values spelled with escapes,
CRLF, a BOM, blank and whitespace-only lines, trailing spaces, no final newline, gzip, odd
values and times, the four record shapes, reordered keys). For every file:

- `validate` gives the same diagnostics with the typed decoder on and off
  (`validate_blocks.SHAPES`, as tests/test_typed.py switches it), and with blocks of a few
  hundred bytes (every record and CRLF cut by a block boundary somewhere);
- `upload` into the embedded store gives the same report, rejected file and stored rows
  with the quick pair path and the store's body reader on (`Run._quick`,
  `local.completed_rows`) as with both off, and with small blocks;
- `upload` refuses exactly the records `validate` calls errors;
- and a call stores the same values whatever style its file was written in.

OTLP's usual-span reader (`otel.spans._quick_span`, `quick_attributes`) is held to the
general reader the same way on the OTLP fixture rewritten as other exporters write it.
Weave's own server judges the same inputs in tests/test_producers_judge.py.
"""

from __future__ import annotations

import gzip
import re
from contextlib import suppress
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.fastpaths import audit, general_paths, uploaded, verdict
from tests.support.producer_files import STYLES, odd_lines, records, styled_file

OTLP_FIXTURES = Path(__file__).parent / "otel_fixtures"


def _json_cells(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows with their JSON text cells read (the stored text of one value may be spelled
    differently; the value must be the same)."""
    out = []
    for row in rows:
        cells = []
        for cell in row:
            if isinstance(cell, str) and cell[:1] in ("{", "[", '"'):
                with suppress(orjson.JSONDecodeError):
                    cell = orjson.loads(cell)
            cells.append(cell)
        out.append(cells)
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[list[Any]]:
    """The rows the plain orjson-written file stores."""
    tmp = tmp_path_factory.mktemp("reference")
    path = styled_file(tmp / "plain.jsonl", records())
    report, rejected, rows = uploaded(path, tmp / "work")
    assert report["errors"] == 0 and len(rows) == 24 and rejected == b""
    return _json_cells(rows)


@pytest.mark.parametrize("style", list(STYLES))
def test_a_producer_style_is_read_alike_and_stores_the_same_values(
    tmp_path: Path, style: str, reference: list[list[Any]]
) -> None:
    path = styled_file(tmp_path / "calls.jsonl", records(), style)
    (_, _, errors, warnings, _), (report, _, rows) = audit(path, tmp_path)
    assert (errors, warnings, report["uploaded"]) == (0, 0, 24)
    assert _json_cells(rows) == reference


FORMS: dict[str, dict[str, Any]] = {
    "crlf": {"eol": b"\r\n"},
    "bom": {"bom": True},
    "bom-crlf-ascii": {"bom": True, "eol": b"\r\n", "style": "dumps"},
    "blank-lines": {"blank": b"  \n\t\n"},
    "blank-crlf-lines": {"eol": b"\r\n", "blank": b" \r\n"},
    "trailing-spaces": {"pad": b"   "},
    "trailing-tab-crlf": {"pad": b" \t", "eol": b"\r\n"},
    "no-final-newline": {"final_newline": False},
    "no-final-crlf": {"final_newline": False, "eol": b"\r\n"},
    "gzip-ascii": {"gz": True, "style": "dumps"},
    "gzip-crlf-bom": {"gz": True, "eol": b"\r\n", "bom": True},
}


@pytest.mark.parametrize("form", list(FORMS))
def test_a_file_form_is_read_alike_and_stores_the_same_values(
    tmp_path: Path, form: str, reference: list[list[Any]]
) -> None:
    kw = dict(FORMS[form])
    name = "calls.jsonl.gz" if kw.get("gz") else "calls.jsonl"
    path = styled_file(tmp_path / name, records(), kw.pop("style", "orjson"), **kw)
    (_, _, errors, warnings, _), (report, _, rows) = audit(path, tmp_path)
    assert (errors, warnings, report["uploaded"]) == (0, 0, 24)
    assert _json_cells(rows) == reference


OPTIONS: list[dict[str, Any]] = [
    {},
    {"mode": "complete"},
    {"mode": "batch"},
    {"strict": True},
    {"project": "other/proj"},
]


@pytest.mark.parametrize("seed", range(20))
def test_a_seeded_mix_of_odd_shapes_is_read_alike(tmp_path: Path, seed: int) -> None:
    """Styles, shapes, line ends, blank lines, odd values and times, broken lines mixed."""
    gz = seed % 7 == 3
    path = tmp_path / ("odd.jsonl.gz" if gz else "odd.jsonl")
    data = odd_lines(seed)
    path.write_bytes(gzip.compress(data) if gz else data)
    audit(path, tmp_path, **OPTIONS[seed % len(OPTIONS)])


# -- OTLP: the usual-span reader against the general one -----------------------------------


def _snake(m: re.Match[bytes]) -> bytes:
    return b'"' + re.sub(rb"([A-Z])", lambda c: b"_" + c.group(1).lower(), m.group(1)) + b'":'


def _upper(m: re.Match[bytes]) -> bytes:
    return m.group(1) + m.group(2).upper() + b'"'


_IDS = rb'("(?:traceId|spanId|parentSpanId)":")([0-9a-f]+)"'
OTLP_REWRITES = {
    "as-written": lambda b: b,
    "uppercase-ids": lambda b: re.sub(_IDS, _upper, b),
    "numeric-times": lambda b: re.sub(rb'"(\w+TimeUnixNano)":"(\d+)"', rb'"\1":\2', b),
    "enum-names": lambda b: b.replace(b'"kind":3', b'"kind":"SPAN_KIND_CLIENT"').replace(
        b'"kind":1', b'"kind":"SPAN_KIND_INTERNAL"'
    ),
    "numeric-ints": lambda b: re.sub(rb'"intValue":"(-?\d+)"', rb'"intValue":\1', b),
    "string-doubles": lambda b: re.sub(rb'"doubleValue":([-0-9.eE+]+)', rb'"doubleValue":"\1"', b),
    "snake-case": lambda b: re.sub(
        rb'"((?:trace|span|parentSpan)Id|\w+TimeUnixNano|(?:resource|scope)Spans|'
        rb'(?:string|int|double|bool|array|kvlist)Value)":',
        _snake,
        b,
    ),
    "escaped-keys": lambda b: b.replace(b'"traceId"', b'"trac\\u0065Id"'),
    "leading-zero-times": lambda b: re.sub(rb'"(\w+TimeUnixNano)":"(\d+)"', rb'"\1":"0\2"', b),
    "wide-int": lambda b: re.sub(
        rb'"intValue":"(-?\d+)"', b'"intValue":"18446744073709551616"', b, count=1
    ),
    "string-bools": lambda b: b.replace(b'"boolValue":true', b'"boolValue":"true"'),
    "duplicate-attribute": lambda b: b.replace(
        b'"attributes":[{"key":"gen_ai.operation.name"',
        b'"attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"x"}},'
        b'{"key":"gen_ai.operation.name"',
    ),
}


@pytest.mark.parametrize("rewrite", list(OTLP_REWRITES))
def test_otlp_spans_as_other_exporters_write_them_are_read_alike(
    tmp_path: Path, rewrite: str
) -> None:
    lines = gzip.decompress((OTLP_FIXTURES / "agent-seed1.jsonl.gz").read_bytes()).splitlines()
    lines += (OTLP_FIXTURES / "conventions.jsonl").read_bytes().splitlines()
    body = b"\r\n".join(OTLP_REWRITES[rewrite](line) for line in lines)
    path = tmp_path / "spans.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + body + b"\r\n")
    project = {"project": "otel/audit"}
    fast = verdict(path), uploaded(path, tmp_path / "fast", **project)
    with general_paths(otlp=False):
        general = verdict(path), uploaded(path, tmp_path / "general", **project)
    assert fast == general
    assert fast[1][0]["errors"] == fast[0][2]
    if rewrite == "as-written":
        assert fast[0][1] > 40 and fast[1][0]["uploaded"] > 40  # the spans ran


def _lines(style: str = "orjson") -> list[bytes]:
    return [STYLES[style](r) for r in records()]


LINE_ODDITIES: dict[str, bytes] = {
    # `cat a.jsonl b.jsonl` where b starts with a BOM: that line is refused, not skipped
    "bom-mid-file": b"\n".join(_lines()[:10]) + b"\n\xef\xbb\xbf" + b"\n".join(_lines()[10:]),
    "nul-line": b"\n".join(_lines()[:10]) + b"\n\x00\n" + b"\n".join(_lines()[10:]) + b"\n",
    "form-feed-line": b"\n".join(_lines()[:10]) + b"\n\x0c\n" + b"\n".join(_lines()[10:]) + b"\n",
    "nbsp-after-record": b"".join(line + "\u00a0\n".encode() for line in _lines()),
    "line-separator-after-record": b"".join(line + "\u2028\n".encode() for line in _lines()),
    "old-mac-cr-only": b"\r".join(_lines()) + b"\r",
    "two-records-on-a-line": _lines()[0] + b" " + b"\n".join(_lines()[1:]) + b"\n",
}


@pytest.mark.parametrize("oddity", list(LINE_ODDITIES))
def test_a_line_oddity_is_answered_alike(tmp_path: Path, oddity: str) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_bytes(LINE_ODDITIES[oddity])
    (_, _, errors, _, _), _ = audit(path, tmp_path)
    assert errors > 0 or oddity == "form-feed-line"  # refused, never skipped in silence
