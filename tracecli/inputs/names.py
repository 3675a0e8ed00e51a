"""A trace file's name as it was before compression and log rotation renamed it: what tells
its format and whether a directory brings it in.

Rotation appends to the name: logrotate a number (`app.jsonl.1`, `app.jsonl.2.gz`) or a date
(`app.jsonl-20250101`, with `dateext`), Python's RotatingFileHandler a number and its
TimedRotatingFileHandler a date and time (`app.jsonl.2025-01-01_10-00-00`). A rotated file
holds records as the live one does: reading the live one alone left them out without a word."""

from __future__ import annotations

import re

# a number, or a date (8 digits, or 2025-01-01) with an hour, minutes, seconds after it
_ROTATION = re.compile(
    r"""(?:
        \.[0-9]{1,6}
      | [-.][0-9]{8}(?:[0-9]{2}){0,3}
      | [-.][0-9]{4}-[0-9]{2}-[0-9]{2}(?:[_T.-][0-9]{2}(?:[-:.]?[0-9]{2}){0,2})?
    )$""",
    re.X,
)


def unrotated(name: str) -> str:
    """`name` lowercased, without `.gz` and a rotation suffix (`app.jsonl.2.gz` ->
    `app.jsonl`); a name without them, lowercased."""
    name = name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return _ROTATION.sub("", name, count=1)


def plain(name: str) -> str:
    """`name` lowercased, without `.gz` alone (how the watcher of `upload --follow` knows
    its files: a rotated copy there holds what was sent as the live file)."""
    name = name.lower()
    return name[:-3] if name.endswith(".gz") else name


# AppleSingle and AppleDouble's magic numbers (RFC 1740)
_APPLE_MAGIC = (b"\x00\x05\x16\x07", b"\x00\x05\x16\x00")


def apple_double(name: str, path: str) -> bool:
    """Whether `path` is the metadata macOS writes beside a file (`._name.jsonl`, also in a
    zip's `__MACOSX/`) where it cannot keep it: no trace file, whatever its name ends with.
    Told by its name and its first bytes: a trace file named `._x.jsonl` is read."""
    if not name.startswith("._"):
        return False
    try:
        with open(path, "rb") as f:
            return f.read(4) in _APPLE_MAGIC
    except OSError:
        return False  # the read says why
