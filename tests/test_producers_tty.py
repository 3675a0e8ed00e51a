"""Terminals and inputs as an outside run meets them, bugs found by a hunt and held here.

- on a terminal that says `TERM=dumb` (Emacs shells, some CI consoles), tables still fit
  the window: Rich draws 80 columns there whatever the window's size, and ignores COLUMNS;
"""

from __future__ import annotations

from pathlib import Path

from tests.support.ptyscreen import pty_env, run_on_pty
from tests.support.servers import make_call
from tracecli.store.db import Store

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
