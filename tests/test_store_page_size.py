"""A new store's page size (8 KiB: fewer WAL frames per commit) and an older store's kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.support.servers import make_call
from tracecli.store.db import Store


def _page_size(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()


def test_new_store_has_8k_pages_and_older_file_keeps_its_own(tmp_path: Path) -> None:
    calls = [make_call("p") for _ in range(3)]
    new = tmp_path / "new.db"
    with Store(new) as s:
        s.calls_complete(calls)
    assert _page_size(new) == 8192

    old = tmp_path / "old.db"  # a file written before: 4 KiB pages, already WAL
    conn = sqlite3.connect(old)
    conn.execute("PRAGMA page_size = 4096")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    with Store(old) as s:
        s.calls_complete(calls)
        assert s.count("p") == 3
    assert _page_size(old) == 4096
    with Store(old) as s, Store(new) as t:
        assert [r["id"] for r in s.query("p")] == [r["id"] for r in t.query("p")]
