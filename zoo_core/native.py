"""Native libraries (libsndfile's mpg123, torch.onnx's C++ exporter) write notes straight to the process's stderr;
where those notes mean nothing to a user, the one-line error svs-zoo raises says what went wrong instead."""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_discarded():
    """Silence what C code writes to file descriptor 2 while the block runs (Python's own writes too: keep the
    block short and free of progress output)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
