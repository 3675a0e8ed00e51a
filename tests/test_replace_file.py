"""Outputs named as devices, FIFOs or links: written through, never replaced by a file.

`convert -o /dev/null` and `--rejected /dev/null` are what people write in scripts and CI;
as root, a rename over /dev/null used to turn the machine's /dev/null into a regular file.
These tests use a twin of /dev/null made in a temporary folder (root only), a FIFO, and
symbolic links, so a regression breaks the test and not the machine.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import orjson
import pytest

from tests.support.uploadkit import run_cli
from tracecli import replace_file
from tracecli.config.netrc_file import write_private
from tracecli.journal.rejected import RejectedWriter

GOLDEN = Path(__file__).parent / "golden" / "freeplay"
WEAVE_FILE = GOLDEN / "weave_sdk_examples.jsonl"


def null_twin(tmp_path: Path) -> Path:
    """A character device like /dev/null (1, 3) in `tmp_path`; skips where mknod is refused."""
    dev = tmp_path / "null"
    try:
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, AttributeError) as exc:
        pytest.skip(f"cannot make a character device here ({exc}): needs root on Linux")
    return dev


def is_device(path: Path) -> bool:
    return stat.S_ISCHR(os.lstat(path).st_mode)


def linked(tmp_path: Path, folder: str, name: str, text: str | None = None) -> tuple[Path, Path]:
    """A file `folder/name` (with `text`, if given) and a link to it named `name` in
    `tmp_path`: (the link, the file)."""
    real = tmp_path / folder / name
    real.parent.mkdir()
    if text is not None:
        real.write_text(text)
    link = tmp_path / name
    link.symlink_to(real)
    return link, real


def read_fifo_in_background(fifo: Path) -> tuple[threading.Thread, list[bytes]]:
    got: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as fh:
            got.append(fh.read())

    t = threading.Thread(target=read, daemon=True)
    t.start()
    return t, got


def test_convert_output_to_a_device_keeps_the_device(tmp_path: Path) -> None:
    dev = null_twin(tmp_path)
    res = run_cli("convert", str(WEAVE_FILE), "--to", "freeplay", "-o", str(dev), timeout=60)
    assert res.returncode == 0, res.stderr
    assert is_device(dev)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]  # no temporary file left


def test_convert_output_to_a_fifo_streams_into_it(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader, got = read_fifo_in_background(fifo)
    res = run_cli("convert", str(WEAVE_FILE), "--to", "freeplay", "-o", str(fifo), timeout=60)
    reader.join(30)
    assert res.returncode == 0, res.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    expected = (GOLDEN / "weave_sdk_examples.freeplay.jsonl").read_bytes()
    assert got == [expected]


def test_convert_output_through_a_link_replaces_the_linked_file(tmp_path: Path) -> None:
    link, real = linked(tmp_path, "shared", "out.jsonl", "old\n")
    res = run_cli("convert", str(WEAVE_FILE), "--to", "freeplay", "-o", str(link), timeout=60)
    assert res.returncode == 0, res.stderr
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert real.read_bytes() == (GOLDEN / "weave_sdk_examples.freeplay.jsonl").read_bytes()
    assert sorted(p.name for p in real.parent.iterdir()) == ["out.jsonl"]


def test_rejected_records_to_a_device_or_a_link(tmp_path: Path) -> None:
    dev = null_twin(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(orjson.dumps({"type": "start", "id": "x"}) + b"\n")
    db = tmp_path / "store.db"
    res = run_cli("upload", str(bad), "--db", str(db), "--rejected", str(dev), timeout=60)
    assert res.returncode == 1, res.stderr
    assert is_device(dev)
    assert "earlier run" not in res.stdout + res.stderr  # a device holds no old rejects
    link, real = linked(tmp_path, "kept", "rejected.jsonl")
    with RejectedWriter(link) as w:
        w.add({"a": 1}, path="in.jsonl", line=1, reason="r")
    assert link.is_symlink()
    assert orjson.loads(real.read_bytes())["_tracecli"]["reason"] == "r"
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


def test_a_linked_netrc_stays_a_link(tmp_path: Path) -> None:
    link, real = linked(tmp_path, "dotfiles", ".netrc", "machine old\n  login user\n  password x\n")
    write_private(link, "machine api.wandb.ai\n  login user\n  password y\n")
    assert link.is_symlink()
    assert "api.wandb.ai" in real.read_text()
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


def test_a_failed_write_leaves_the_target_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    out = replace_file.begin(target, mode=0o600)
    out.file.write(b"half")
    replace_file.abandon(out)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
