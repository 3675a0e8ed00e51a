"""Pickling a block's outcome without pickle's memo.

A worker's block comes back to the reading process as one pickle of thousands of small
values (ids, times, encoded bodies). Python's pickler notes every str, bytes and tuple in
its memo (a dict insert and a PUT opcode each), and the unpickler fills the matching list,
so that an object seen twice is written once: this is about half of what pickling such a
block costs both ways, for nothing, since a block's entries share almost no object (a few
interned names: the project, the shapes, written again each time instead).

`dumps_flat` pickles with the memo off (`Pickler.fast`); `pickle.loads` reads the result
as any pickle. Without the memo an object reached twice is written twice, and a cycle
cannot be written at all (the pickler refuses it with a ValueError, past 50 levels); the
values a block holds come from JSON and have neither, but on any error the plain pickle
is used, so the answer is always the same objects back.
"""

from __future__ import annotations

import pickle
from typing import Any

__all__ = ["dumps_flat"]


class _Frames(list[bytes]):
    """The pickler's output as its frames (64 KiB each), joined once at the end: an
    `io.BytesIO` grown a frame at a time copied a block's pickle over and over."""

    write = list.append


def dumps_flat(obj: Any) -> bytes:
    """`obj` pickled (highest protocol) with the memo off, or with it if that fails."""
    frames = _Frames()
    pickler = pickle.Pickler(frames, pickle.HIGHEST_PROTOCOL)
    pickler.fast = True
    try:
        pickler.dump(obj)
    except (ValueError, RecursionError):  # a cycle, or a value nested too deep for it
        return pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
    return b"".join(frames)
