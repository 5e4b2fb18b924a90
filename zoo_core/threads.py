"""How many threads torch uses for one command (``--threads``), and how ``--jobs`` workers share them.

The default is the physical cores this process may use: its CPU affinity and its cgroup's CPU quota (a
container's ``--cpus``) count, hyper-threads do not (`joblib.cpu_count`, which handles each of those). An
explicit ``OMP_NUM_THREADS`` wins over that count, as it does for torch itself. One thread per physical core is
the most a convolution can use; on a machine shared with other busy processes, fewer (``--threads 1``) is often
faster, because a thread that waits for a core holds up the others at every parallel region (docs/performance.md
has the measured figures).
"""

from __future__ import annotations

import os
from typing import Optional

from .errors import ZooError

ENVIRONMENT = "OMP_NUM_THREADS"


def default_threads() -> int:
    """``OMP_NUM_THREADS`` when it is a positive integer, else the physical cores this process may use."""
    given = os.environ.get(ENVIRONMENT, "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    import contextlib
    import io
    import warnings

    import joblib

    # without lscpu on PATH joblib warns and prints the traceback of its lookup, then counts logical cores: fine
    # here, and not a user's concern
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.filterwarnings("ignore", "Could not find the number of physical cores", UserWarning)
        return max(1, int(joblib.cpu_count(only_physical_cores=True)))


def resolve_threads(threads: Optional[int]) -> int:
    """``--threads N`` (None: `default_threads`)."""
    if threads is None:
        return default_threads()
    if threads < 1:
        raise ZooError(f"--threads must be at least 1, got {threads}")
    return threads


def per_worker(threads: int, jobs: int) -> int:
    """Threads of each of ``jobs`` worker processes: the cores divided among them, at least one each."""
    return max(1, threads // max(1, jobs))


def apply_threads(threads: int) -> None:
    """Use ``threads`` intra-op threads in this process (and as many inter-op threads, where torch still
    allows setting them: only before its first parallel work)."""
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # already started (an earlier command in this process, or a library)
        pass
