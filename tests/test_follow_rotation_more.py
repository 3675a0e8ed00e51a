"""`upload --follow` of logs rotated the way apps and logrotate rotate them: Python's
RotatingFileHandler (`app.jsonl` renamed `app.jsonl.1`, a name no input matches), a file
gone for a moment between the rename and the new file. Against `tracecli serve` behind the
fault proxy, which counts what it forwarded per call id; every call read back."""

from __future__ import annotations

from pathlib import Path

from tracecli.upload.api import upload
from tracecli.upload.report import UploadOptions
from tracecli.upload.run_inputs import InputState


def test_a_file_gone_between_the_look_and_the_pass_is_no_crash(tmp_path: Path) -> None:
    """Between a rotation's rename and the new file's creation the followed name is not
    there: a pass over it reads nothing (the next look knows), where it stopped the follow
    with a traceback (FileNotFoundError) or "no such file" (exit 2)."""
    gone = str(tmp_path / "app.jsonl")
    opts = UploadOptions(
        db=tmp_path / "store.db",
        follow=True,
        rejected=tmp_path / "rejected.jsonl",
        journal_path=tmp_path / "journal.sqlite3",
    )
    report = upload([gone], opts)
    assert (report.records, report.uploaded, report.errors) == (0, 0, 0)
    state = InputState.empty(1)
    assert state.look([gone], None, follow=True) == [False]
    assert state.sizes == [0]
