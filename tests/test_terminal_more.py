"""What a person and a CI job see, found by trying tracecli the way they do: settings files
with surprising YAML, hostile text on terminals and in logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.uploadkit import run_cli

SECRET = "SEKRIT0123456789"


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        (f"api_key: !!int {SECRET}\n", "!!int"),
        (f"api_key: !!float {SECRET}\n", "!!float"),
        (f"api_key: !!bool {SECRET}\n", "!!bool"),
        ("chunk_size: !!timestamp 2026-13-45\n", "!!timestamp"),
        (f"profiles:\n  ci:\n    api_key: !!int {SECRET}\n", "!!int"),
        (f"credentials:\n  example.com: !!int {SECRET}\n", "!!int"),
    ],
)
def test_a_tagged_value_yaml_cannot_build_is_one_line_without_the_value(
    tmp_path: Path, text: str, tag: str
) -> None:
    """`!!int abc` in the user config made PyYAML raise a ValueError that no one caught: a
    traceback, ending with the value itself (`invalid literal for int(): 'SEKRIT...'`),
    an API key in a CI log."""
    config = Path.home() / ".config" / "tracecli" / "config.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)
    config.chmod(0o600)
    result = run_cli("config", "show", cwd=tmp_path)
    line = text.count("\n")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(
        f"tracecli: error: ~/.config/tracecli/config.yaml:{line}: YAML: "
    ), result.stderr
    assert tag in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert SECRET not in result.stderr


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("!!int abc", "invalid literal for int() with base 10: 'abc'"),
        ("!!bool maybe", "no boolean 'maybe'"),
        ("!!timestamp 2026-13-45", "month must be in 1..12"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "convert"])
def test_a_yaml_record_with_a_tag_it_cannot_be_is_an_error_at_its_line(
    tmp_path: Path, value: str, why: str, command: str
) -> None:
    """The same ValueError out of a YAML trace file was a traceback of validate, upload and
    convert; it is that record's error now, the run going on."""
    trace = tmp_path / "t.yaml"
    trace.write_text(
        "- type: start\n"
        "  project_id: acme/agents\n"
        "  id: 891e15d7-97f2-4a9c-a787-ff819c6b3a21\n"
        "  op_name: x\n"
        "  trace_id: 4ca67353-d824-444b-81c1-56cf264ca243\n"
        "  started_at: '2026-03-02T09:54:05.021995Z'\n"
        "  attributes: {}\n"
        f"  inputs: {{n: {value}}}\n"
    )
    args = [command, str(trace)] + (["--to", "freeplay"] if command == "convert" else [])
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    report = result.stdout if command == "validate" else result.stderr  # validate's is data
    assert (
        f"{trace}:1: error: (record): invalid YAML: a value is not what its tag says ({why})"
        in report.splitlines()
    ), result
