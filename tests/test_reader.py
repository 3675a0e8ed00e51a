"""The streaming readers: formats, line numbers, odd bytes, directories and stdin."""

from __future__ import annotations

import gzip
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tracecli.diagnostics import Diagnostic, UsageError
from tracecli.inputs.reader import Source, expand_paths, format_of, read_items


def items(path: Path | str, **kw: Any) -> list[Any]:
    out = []
    for item in Source.open(str(path), **kw):
        if isinstance(item, Diagnostic):
            out.append((item.line, item.code, item.message))
        else:
            loc, value = item
            out.append((loc.line, value))
    return out


def test_jsonl_lines_bom_crlf_and_blanks(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n\r\n  \n{"b": 2}\n{"c": \n[3]')
    assert items(p) == [
        (1, {"a": 1}),
        (4, {"b": 2}),
        (5, "json", "invalid JSON at column 7: unexpected end of data"),
        (6, [3]),
    ]


def test_invalid_utf8_is_reported_on_its_own_line(tmp_path: Path) -> None:
    p = tmp_path / "u.ndjson"
    p.write_bytes(b'{"a": "ok"}\n{"a": "\xff"}\n{"a": "fine"}\n')
    assert items(p) == [
        (1, {"a": "ok"}),
        (2, "json", "invalid UTF-8 at byte 8"),
        (3, {"a": "fine"}),
    ]


def test_gzip_and_truncated_gzip(tmp_path: Path) -> None:
    data = b"".join(json.dumps({"n": i}).encode() + b"\n" for i in range(2000))
    (tmp_path / "g.jsonl.gz").write_bytes(gzip.compress(data))
    got = items(tmp_path / "g.jsonl.gz")
    assert len(got) == 2000 and got[-1] == (2000, {"n": 1999})
    (tmp_path / "t.jsonl.gz").write_bytes(gzip.compress(data)[:-20])
    cut = items(tmp_path / "t.jsonl.gz")
    assert cut[-1][1] == "read-error"
    assert cut[-1][2].startswith("file cannot be read from here on: ")
    (tmp_path / "notgz.jsonl.gz").write_bytes(b'{"plain": true}\n')
    assert items(tmp_path / "notgz.jsonl.gz")[0][1] == "read-error"


def test_yaml_list_and_multi_document_line_numbers(tmp_path: Path) -> None:
    (tmp_path / "l.yaml").write_text(
        "# comment\n- a: 1\n  when: 2026-03-02T09:14:05Z\n\n- b: 2\n- null\n"
    )
    assert items(tmp_path / "l.yaml") == [
        (2, {"a": 1, "when": "2026-03-02T09:14:05Z"}),  # timestamps stay strings
        (5, {"b": 2}),
    ]
    (tmp_path / "d.yml").write_text("a: 1\n---\nb: 2\n...\n---\n- c: 3\n- d: 4\n")
    assert items(tmp_path / "d.yml") == [(1, {"a": 1}), (3, {"b": 2}), (6, {"c": 3}), (7, {"d": 4})]


def test_yaml_errors_name_their_line(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("- a: 1\n- b: [2\n- c: 3\n")
    first, (line, code, msg) = items(tmp_path / "s.yaml")  # read as parsed: 1 came first
    assert first == (1, {"a": 1})
    assert (line, code) == (3, "yaml")
    assert msg.startswith("invalid YAML: ")
    (tmp_path / "t.yaml").write_text("- a: 1\n- !!python/object:os.system {}\n- c: 3\n")
    got = items(tmp_path / "t.yaml")
    assert got[0] == (1, {"a": 1})
    assert got[1][:2] == (2, "yaml") and "python/object" in got[1][2]
    assert got[2] == (3, {"c": 3})
    (tmp_path / "bad.yaml").write_bytes(b"- a: 1\n- b: \xff\n")
    assert items(tmp_path / "bad.yaml") == [(2, "encoding", "invalid UTF-8 at byte 6")]


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = io.TextIOWrapper(io.BytesIO(b'{"a": 1}\n'))
    monkeypatch.setattr(sys, "stdin", fake)
    assert items("-") == [(1, {"a": 1})]
    fake = io.TextIOWrapper(io.BytesIO(b"- a: 1\n"))
    monkeypatch.setattr(sys, "stdin", fake)
    assert items("-", stdin_format="yaml") == [(1, {"a": 1})]


def test_expand_paths(tmp_path: Path) -> None:
    for name in ("b.jsonl", "a/z.yaml", "a/y.yml.gz", "a/x.ndjson", "c/readme.md", "d.JSONL"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    got = expand_paths([str(tmp_path), "-", str(tmp_path / "c" / "readme.md")])
    rel = [Path(p).relative_to(tmp_path).as_posix() if p != "-" else p for p in got]
    assert rel == ["a/x.ndjson", "a/y.yml.gz", "a/z.yaml", "b.jsonl", "d.JSONL", "-", "c/readme.md"]
    with pytest.raises(UsageError, match="no such file"):
        expand_paths([str(tmp_path / "missing")])
    # a file named twice (directly, through its folder, through a link) comes once
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "b.jsonl")
    again = expand_paths([str(tmp_path / "b.jsonl"), str(tmp_path / "a"), str(tmp_path)])
    rel = [Path(p).relative_to(tmp_path).as_posix() for p in again]
    assert rel == ["b.jsonl", "a/x.ndjson", "a/y.yml.gz", "a/z.yaml", "d.JSONL"]
    with pytest.raises(UsageError, match=r"^- \(stdin\) can be given only once$"):
        expand_paths(["-", str(tmp_path / "b.jsonl"), "-"])


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.jsonl", "jsonl"), ("a.YAML", "yaml"), ("a.yml.gz", "yaml"), ("a.txt", "jsonl")],
)
def test_format_of(name: str, fmt: str) -> None:
    assert format_of(name) == fmt


def test_read_items_and_progress(tmp_path: Path) -> None:
    a = tmp_path / "a.jsonl"
    a.write_text('{"x": 1}\n{"x": 2}\n')
    b = tmp_path / "b.yaml"
    b.write_text("- y: 1\n")
    seen = [(src.path, item[1]) for src, item in read_items([str(a), str(b)])]
    assert seen == [(str(a), {"x": 1}), (str(a), {"x": 2}), (str(b), {"y": 1})]
    src = Source.open(str(a))
    list(src)
    assert (src.bytes_read, src.records) == (a.stat().st_size, 2)


def test_nan_and_infinity_say_what_json_cannot_hold() -> None:
    """Python's json.dumps writes NaN for float('nan'): the message says what to do."""
    import orjson

    from tracecli.inputs.json_values import json_error

    def message(raw: bytes) -> str:
        try:
            orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return json_error(raw, exc)
        raise AssertionError("valid JSON")

    fix = "NaN and Infinity are not JSON (write null, or the value as a string)"
    assert message(json.dumps({"score": float("nan")}).encode()) == (
        f"invalid JSON at column 11: {fix}"
    )
    assert message(b'{"a": -Infinity}\n') == f"invalid JSON at column 8: {fix}"
    assert message('{"a": "\u00e9", "b": Infinity}'.encode()).endswith(fix)
    assert message(b'{"a": "NaN", "b": x}') == (
        "invalid JSON at column 19: unexpected character, expected a JSON value"
    )


def test_yaml_aliases_are_followed_within_a_budget(tmp_path: Path) -> None:
    """yaml.dump writes aliases for a dict shared by many records: they are fine. A
    "billion laughs" file (each level nine aliases of the one before) is refused at the
    alias that goes past the budget, instead of walking 9**9 strings."""
    import yaml

    shared = {"env": "prod", "tags": ["a", "b"]}
    (tmp_path / "shared.yaml").write_text(
        yaml.safe_dump([{"type": "start", "attributes": shared}] * 3)
    )
    assert "*id001" in (tmp_path / "shared.yaml").read_text()
    assert [v for _, v in items(tmp_path / "shared.yaml")] == [
        {"type": "start", "attributes": shared}
    ] * 3
    rows = ['  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        rows.append(f"  {name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    (tmp_path / "laughs.yaml").write_text("- type: start\n  inputs:\n" + "\n".join(rows) + "\n")
    [(line, code, msg)] = items(tmp_path / "laughs.yaml")
    assert (line, code) == (8, "yaml")
    assert msg == (
        "invalid YAML: found an alias (*e) past 100,000 values repeated by aliases in "
        "one record: write the values out"
    )


@pytest.mark.slow
def test_yaml_is_read_as_it_is_parsed(tmp_path: Path) -> None:
    """A top-level list is built one item at a time, and the file read as they are: its
    whole node tree would cost ~50x the file in memory."""
    import yaml

    recs = [{"type": "start", "inputs": {"q": "x" * 200}} for _ in range(4000)]
    rec = recs[0]
    (tmp_path / "list.yaml").write_text(yaml.safe_dump(recs))
    (tmp_path / "docs.yaml").write_text(yaml.safe_dump_all(recs))
    for name in ("list.yaml", "docs.yaml"):
        src = Source.open(str(tmp_path / name), "jsonl")
        it = iter(src)
        loc, value = next(it)
        assert (loc.line, value) == (1, rec)
        assert src._raw is not None and src._raw.tell() < src.size // 10
        assert sum(1 for _ in it) == 3999


def test_line_decoder_hands_out_text_in_any_chunk_size() -> None:
    from tracecli.inputs.yaml_records import LineDecoder

    data = "\ufeffa: 1\n" + "b: " + "é" * 5000 + "\n\nc: 3"
    for size in (1, 7, 4096, 100_000):
        dec = LineDecoder(io.BytesIO(data.encode()))
        parts = []
        while chunk := dec.read(size):
            assert len(chunk) <= size
            parts.append(chunk)
        assert "".join(parts) == data[1:]  # the BOM is dropped
        assert (dec.lines, dec.bytes) == (4, len(data.encode()))
        assert dec.line_of(0) == 1 and dec.line_of(7) == 2 and dec.line_of(5012) == 4
