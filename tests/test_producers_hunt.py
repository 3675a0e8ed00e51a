"""Terminals and inputs as an outside run meets them, bugs found by a hunt and held here.

- on a terminal that says `TERM=dumb` (Emacs shells, some CI consoles), tables still fit
  the window: Rich draws 80 columns there whatever the window's size, and ignores COLUMNS;
- a YAML value JSON cannot carry (`!!binary`, `!!set`) is refused by `validate` as `upload`
  refuses it, at its record's line: validate passed such a file that upload then refused;
"""

from __future__ import annotations

from pathlib import Path

from tests.support.ptyscreen import pty_env, run_on_pty
from tests.support.servers import make_call
from tracecli.store.db import Store
from tracecli.upload.api import UploadOptions, upload
from tracecli.upload.validate import validate_paths

PROJECT = "acme/tty"


def _store(path: Path) -> Path:
    calls = [
        make_call(PROJECT, op="openai.chat.completions.create " * 3, at=1, exception="E: " * 30),
        make_call(PROJECT, op="漢字テスト" * 8, at=2, tokens=(812, 95)),
    ]
    with Store(path) as store:
        store.calls_complete(calls)
    return path


def test_a_dumb_terminal_gets_a_table_as_wide_as_its_window(tmp_path: Path) -> None:
    db = _store(tmp_path / "t.db")
    for env in (pty_env(TERM="dumb"), pty_env(TERM="dumb", NO_COLOR="1")):
        run = run_on_pty(["tail", "--db", str(db), "-p", PROJECT], cols=40, cwd=tmp_path, env=env)
        assert run.code == 0, run.text()
        rows = [r for r in run.screen if r]
        assert len(rows) == 3, rows  # header and two calls, none wrapped
        assert all(len(r) <= 40 for r in rows), rows
        assert rows[0].startswith("started  op"), rows


YAML_CALL = """\
- project_id: acme/yaml
  id: {id}
  trace_id: 5e0f6c4b-7d1b-4f5a-8c6d-8b9e0f1a2b34
  op_name: yaml.{n}
  started_at: "2026-03-02T09:00:00Z"
  ended_at: "2026-03-02T09:00:01Z"
  inputs: {{v: {value}}}
  attributes: {{}}
  summary: {{}}
"""


def test_a_yaml_value_without_a_json_form_is_refused_by_validate_and_upload(
    tmp_path: Path,
) -> None:
    values = ["plain", "!!binary aGVsbG8=", "!!set {a, b}", "2026-01-01", "[1, 2]"]
    path = tmp_path / "calls.yaml"
    path.write_text(
        "".join(
            YAML_CALL.format(id=f"0000000{n}-1111-4111-8111-111111111111", n=n, value=v)
            for n, v in enumerate(values)
        )
    )
    report = validate_paths([str(path)], jobs=0)
    found = sorted((d.line, d.severity.value) for d in report.diagnostics)
    assert found == [(10, "error"), (19, "error")], report.diagnostics
    assert all("JSON" in d.message for d in report.diagnostics), report.diagnostics
    up = upload(
        [str(path)],
        UploadOptions(
            db=tmp_path / "t.db",
            rejected=tmp_path / "rejected.jsonl",
            journal_path=tmp_path / "journal.db",
        ),
    )
    assert sorted((d.line, d.severity.value) for d in up.diagnostics) == found
    assert (up.uploaded, up.rejected) == (3, 2)
