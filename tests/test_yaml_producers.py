"""YAML trace files as other producers and people write them, read as JSON would carry the
same values: what `yq -o json`, `json.dumps(yaml.safe_load(...))` and YAML 1.2 (the editors'
schema check, Go's yaml.v3, Rust's serde_yaml) make of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tracecli.cli import app
from tracecli.inputs.reader import Source

runner = CliRunner()

RECORD = """\
- project_id: e/yaml
  id: 5d6a1f0e-3c1f-4c71-8f4a-0c2b0d0f0c01
  trace_id: 5d6a1f0e-3c1f-4c71-8f4a-0c2b0d0f0c02
  op_name: op
  attributes: {{}}
  summary: {{}}
  started_at: '2025-01-01T10:00:00Z'
  ended_at: '2025-01-01T10:00:05Z'
  inputs: {inputs}
  output: {output}
"""


def _records(path: Path) -> list[Any]:
    items = list(Source.open(str(path)))
    assert all(isinstance(i, tuple) for i in items), items
    return [value for _, value in items]  # type: ignore[misc]


# Go's yaml.v3 writes a float64 with strconv's 'g' format (1e-07, 6.02e+23), Rust's
# serde_yaml with ryu (1e-7, 6.02e23): YAML 1.1's float needs a dot and a signed exponent,
# so these were read as the strings "1e-07" and "6.02e23".
FLOATS = {
    "1e-07": 1e-07,
    "6.02e+23": 6.02e23,
    "6.02e23": 6.02e23,
    "1e-7": 1e-7,
    "-2E10": -2e10,
    "1.5e3": 1500.0,
    "1.0e-07": 1e-07,  # PyYAML's own spelling, read as before
    "0.5": 0.5,
}


@pytest.mark.parametrize("written", list(FLOATS))
def test_a_float_with_an_exponent_is_a_number(tmp_path: Path, written: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(RECORD.format(inputs="{k: 1}", output=f"{{x: {written}}}"))
    (record,) = _records(path)
    assert type(record["output"]["x"]) is float
    assert record["output"]["x"] == FLOATS[written]


@pytest.mark.parametrize("written", ["1e", "e5", "1e-", "1.2.3e4", "'1e-07'", "1e-07x", "0x1e3"])
def test_what_is_no_float_stays_as_written(tmp_path: Path, written: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(RECORD.format(inputs="{k: 1}", output=f"{{x: {written}}}"))
    (record,) = _records(path)
    assert not isinstance(record["output"]["x"], float)


def test_keys_that_are_not_strings_are_spelled_as_json_spells_them(tmp_path: Path) -> None:
    """`{200: ok, 404: missing}` (a map of HTTP statuses, as `yaml.safe_dump` writes a dict
    with int keys): JSON's keys are strings, and every YAML-to-JSON tool writes "200". They
    were refused ("inputs.200: Input should be a valid string"), and `true: x` beside `1: y`
    was lost (Python's True == 1)."""
    path = tmp_path / "t.yaml"
    inputs = "{200: ok, 1: one, true: yes-key, false: f, null: n, 2.5: half, -3: minus, x: 1}"
    path.write_text(RECORD.format(inputs=inputs, output="null"))
    (record,) = _records(path)
    assert record["inputs"] == {
        "200": "ok",
        "1": "one",
        "true": "yes-key",
        "false": "f",
        "null": "n",
        "2.5": "half",
        "-3": "minus",
        "x": 1,
    }


def test_a_list_as_a_key_is_still_an_error_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(RECORD.format(inputs="{[1, 2]: e}", output="null"))
    (item,) = list(Source.open(str(path)))
    assert not isinstance(item, tuple)
    assert item.line == 1 and "unhashable key" in item.message


def test_such_a_file_uploads_what_its_json_form_uploads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`upload` into the embedded store stores the values JSON would carry (read back with
    `tracecli export`)."""
    monkeypatch.chdir(tmp_path)
    yaml_text = RECORD.format(inputs="{200: ok, true: t, 3.0: three}", output="{x: 1e-07}")
    Path("t.yaml").write_text(yaml_text)
    want = {"inputs": {"200": "ok", "true": "t", "3.0": "three"}, "output": {"x": 1e-07}}
    got = runner.invoke(app, ["validate", "t.yaml"])
    assert got.exit_code == 0, got.stdout
    got = runner.invoke(app, ["upload", "t.yaml", "--db", "store.db", "--format", "json"])
    assert got.exit_code == 0, got.stdout + got.stderr
    assert json.loads(got.stdout)["uploaded"] == 1
    got = runner.invoke(app, ["export", "--db", "store.db", "-p", "e/yaml", "-o", "out.jsonl"])
    assert got.exit_code == 0, got.stdout + got.stderr
    (call,) = [json.loads(line) for line in Path("out.jsonl").read_text().splitlines()]
    assert {k: call[k] for k in want} == want


def test_a_next_line_character_in_a_string_is_kept(tmp_path: Path) -> None:
    """U+0085 (NEL: what cp1252's "…" becomes when text is decoded as Latin-1, common in
    scraped text) is a line break to YAML 1.1, so PyYAML folded it to a space inside
    strings, however they were written: even `yaml.safe_dump(allow_unicode=True)` did not
    read back. YAML 1.2, JSON and the weave SDK keep it."""
    import yaml

    text = "a\u0085b \u2028 \u0085"
    path = tmp_path / "t.yaml"
    body = RECORD.format(
        inputs=json.dumps({"t": text, "k\u0085": 1}, ensure_ascii=False), output=f"'{text}'"
    )
    dumped = yaml.safe_dump({"x": text, "y": [text]}, allow_unicode=True)
    body += "- " + dumped.replace("\n", "\n  ").rstrip() + "\n"
    path.write_text(body, encoding="utf-8")
    items = list(Source.open(str(path)))
    first, second = items
    assert isinstance(first, tuple) and isinstance(second, tuple), items
    assert first[1]["inputs"] == {"t": text, "k\u0085": 1}
    assert first[1]["output"] == text
    assert second[1] == {"x": text, "y": [text]}
    assert second[0].line == 11  # the lines count as written
