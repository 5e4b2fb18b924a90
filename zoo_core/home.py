"""``$ZOO_HOME``: where svs-zoo keeps what it makes for the user (weights, decoded tracks, zoo serve's work)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def zoo_home() -> Path:
    """The cache root: ``$ZOO_HOME``, else the platform's user cache folder for svs-zoo."""
    configured = os.environ.get("ZOO_HOME")
    return Path(configured).expanduser() if configured else Path(platformdirs.user_cache_dir("svs-zoo"))
