"""How many examples a hypothesis sweep runs.

Each property test names its full sweep (`@settings(max_examples=examples(1500))`); the suite
runs a third of it by default (never fewer than 50, or than the full count when that is
smaller), so the same properties hold on every run while the whole suite stays inside CI's
time budget: generating the examples, not the code under test, is most of a sweep's time.
`TRACECLI_SWEEP=1` runs the full sweeps (a deeper run before a release, or after changing a
fast path); any other factor scales them (`TRACECLI_SWEEP=4`: four times the full count).
"""

from __future__ import annotations

import os

SCALE = float(os.environ.get("TRACECLI_SWEEP", "") or 1 / 3)


def examples(full: int) -> int:
    """The sweep's size on this run: `full` scaled by TRACECLI_SWEEP (default a third)."""
    return max(min(full, 50), round(full * SCALE))
