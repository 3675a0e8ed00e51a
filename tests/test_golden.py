"""Golden files: `tracecli validate samples/invalid/<file>` prints exactly `<stem>.expected.txt`.

One input file per kind of problem (samples/make_invalid.py writes them), the expected
output beside it: stdout, then `exit code: N`. To accept a deliberate change of wording,
regenerate with `UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import ROOT, SAMPLES
from tracecli.cli import app
from tracecli.upload.validate import validate_paths

INVALID = SAMPLES / "invalid"
CASES = sorted(p for p in INVALID.iterdir() if p.is_file() and not p.name.endswith(".expected.txt"))


def expected_path(case: Path) -> Path:
    return case.with_name(case.name.split(".")[0] + ".expected.txt")


def test_every_case_has_a_distinct_expected_file() -> None:
    stems = [expected_path(c).name for c in CASES]
    assert len(stems) == len(set(stems))
    assert len(CASES) >= 20
    orphans = {p.name for p in INVALID.glob("*.expected.txt")} - set(stems)
    assert not orphans, f"expected files without an input: {sorted(orphans)}"


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_golden(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    rel = case.relative_to(ROOT).as_posix()
    result = CliRunner().invoke(app, ["validate", rel])
    got = result.stdout + f"exit code: {result.exit_code}\n"
    want_file = expected_path(case)
    if os.environ.get("UPDATE_GOLDEN"):
        want_file.write_text(got, encoding="utf-8")
    assert want_file.exists(), f"no {want_file.name}: run with UPDATE_GOLDEN=1 and review it"
    assert "Traceback" not in result.stdout + result.stderr
    assert got == want_file.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "case", [c for c in CASES if not c.name.endswith(".yaml")], ids=lambda p: p.name
)
def test_blocks_in_workers_report_the_same(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process pool, with blocks cut every few lines, gives the in-process answer."""
    from tracecli.upload import validate as v

    monkeypatch.chdir(ROOT)
    rel = case.relative_to(ROOT).as_posix()
    serial = validate_paths([rel], jobs=0)
    monkeypatch.setattr(v, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(v, "BLOCK_BYTES", 300)
    pooled = validate_paths([rel], jobs=2)
    assert pooled.to_dict() == serial.to_dict()
