"""An upload whose reading process prepares some blocks itself (`Engine`'s `share`, as
an upload to a server runs) sends, reports, rejects and journals what one process does:
the blocks done here and those done by the worker come back in the file's order."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.quick_kit import odd_file, run_upload
from tracecli.upload import blocks, pool

PARENT = os.getpid()
HERE: list[int] = []  # blocks the reading process prepared itself (a worker's are not seen)


def counted_prepare_range(*args: Any) -> Any:
    """`prepare_range`, counting the blocks done in this (the test's) process; a worker's
    take a little longer, so that its queue fills and this process takes some blocks
    whatever the machine's load."""
    if os.getpid() == PARENT:
        HERE.append(args[1])
    else:
        time.sleep(0.003)
    return blocks.prepare_range(*args)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork pools only")
@pytest.mark.parametrize("kw", [{}, {"mode": "complete"}, {"project": "other/place"}], ids=str)
def test_a_shared_run_sends_what_one_process_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kw: dict[str, Any]
) -> None:
    path = odd_file(tmp_path / "odd.jsonl", seed=23)
    got = []
    counts: list[int] = []  # blocks prepared in this process: all of them, then some
    for jobs in (0, 1):
        HERE.clear()
        with monkeypatch.context() as m:
            m.setattr(pool, "PARALLEL_MIN_BYTES", 0)
            m.setattr("tracecli.upload.run.engine_limits", lambda share: pool.engine_limits(True))
            m.setattr("tracecli.upload.run.prepare_range", counted_prepare_range)
            d = tmp_path / f"jobs{jobs}"
            d.mkdir()
            summary, rejected, sent = run_upload(d, path, True, m, jobs=jobs, **kw)
        got.append((summary, rejected, sent))
        counts.append(len(HERE))
    assert got[0] == got[1]
    assert got[0][2]  # (something was sent)
    assert 0 < counts[1] < counts[0]  # the reading process took some blocks, the worker others
