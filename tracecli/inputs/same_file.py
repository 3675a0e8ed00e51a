"""Reading the very file a pass took, not whatever its name holds by the time it is read.

A log rotated by rename (`app.jsonl` -> `app.jsonl.1`, a new `app.jsonl`) may be renamed
between the look that took a file's identity (its device and inode, from the descriptor
the journal hashed) and the reads of it: read by name, the pass would then read the new
file while crediting what it read to the old one (records of one skipped, as many of the
other sent twice). Every open of a pass's read is checked against the identity the pass
took (`open_same`): a name that now holds another file is `Replaced`, and the pass reads
no more of it (the next look finds the old file where it went, by its inode). Each open is
closed after its read: no descriptor is held across reads, whatever the number of files.
"""

from __future__ import annotations

import errno
import os
from typing import BinaryIO, NamedTuple


class FileKey(NamedTuple):
    """A file's identity on disk, whatever its name: device and inode."""

    dev: int
    ino: int


class Replaced(OSError):
    """The name now holds another file than the one the pass took (rotated since)."""

    def __init__(self, path: str) -> None:
        super().__init__(errno.ESTALE, "replaced by another file since the pass began", path)


def open_same(path: str, key: FileKey | None) -> BinaryIO:
    """`path` opened for reading; `Replaced` when it is no longer the file `key` (None:
    not checked, a file the journal does not follow)."""
    f = open(path, "rb")  # noqa: SIM115 - returned open, the caller closes it
    if key is not None:
        st = os.fstat(f.fileno())
        if (st.st_dev, st.st_ino) != key:
            f.close()
            raise Replaced(path)
    return f
