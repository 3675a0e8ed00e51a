"""Where tracecli keeps its files: XDG on Linux, the platform's equivalent elsewhere.

Every path is looked up at call time (not import time) so tests can point HOME and XDG_*
at a temporary directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "tracecli"


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def state_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP, appauthor=False))


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def default_db() -> Path:
    """The embedded store: `--db` > `TRACECLI_DB` > `<user data dir>/traces.db`."""
    env = os.environ.get("TRACECLI_DB")
    return Path(env) if env else data_dir() / "traces.db"
