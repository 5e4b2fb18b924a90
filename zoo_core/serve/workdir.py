"""The server's work folder: where uploads and results live, the only file names a browser influences, cleanup.

Layout: ``<work>/jobs/<id>/`` per uploaded file, ``<id>`` 32 hex digits the server made; inside it the upload
under a cleaned copy of the browser's file name, ``job.json`` (the request and its state), the stems under
``out/`` as `zoo separate` lays them out, and ``stems.zip`` once asked for. ``<work>/manifest.jsonl`` is the
catalogue run's record.

A browser never names a path: it names a job id (checked against the pattern, then looked up) and a stem (looked
up in the job's outputs). The one string it gives that becomes part of a file name, the upload's name, is cut to
its last component, stripped of control characters and leading dots, and shortened (`safe_name`); every path
the server opens is checked to lie inside the work folder (`WorkFolder.inside`).

Cleanup rule (docs/serve.md):
  1. an upload that is refused (too large, unreadable, a model without weights) or interrupted is deleted at once;
  2. the uploaded file is deleted as soon as its job has finished (done or failed): the stems stay;
  3. a finished job's folder (stems, zip) is deleted ``keep_hours`` after it finished, or at once when the page
     removes it; queued jobs are never deleted (they resume after a restart);
  4. at start-up, leftovers of a server that was killed are removed: job folders without a ``job.json`` (an
     upload cut short) and half-written ``.part`` files of unfinished jobs.
"""

from __future__ import annotations

import re
import shutil
import time
import unicodedata
import uuid
from pathlib import Path

from ..errors import ZooError

_JOB_ID = re.compile(r"[0-9a-f]{32}")
NAME_BYTES = 180  # well under a file system's 255-byte limit, leaving room for temporary names
JOB_FILE = "job.json"
ZIP_NAME = "stems.zip"


class NotFound(ZooError):
    """A job id or stem the server does not have (HTTP 404)."""


def safe_name(name: str) -> str:
    """A browser's file name as one harmless path component: ``../../etc/passwd`` → ``passwd``, ``C:\\x\\a.wav``
    → ``a.wav``; control characters and leading dots go; at most `NAME_BYTES` (the extension kept)."""
    base = re.split(r"[/\\]", unicodedata.normalize("NFC", name or ""))[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip().lstrip(".").strip()
    if len(base.encode("utf-8")) > NAME_BYTES:
        stem, dot, suffix = base.rpartition(".")
        suffix = f".{suffix}" if dot and len(suffix) <= 10 else ""
        room = NAME_BYTES - len(suffix.encode("utf-8"))
        base = (stem if suffix else base).encode("utf-8")[:room].decode("utf-8", "ignore") + suffix
    return base or "upload"


class WorkFolder:
    def __init__(self, root: Path):
        self.root = Path(root).expanduser().absolute()
        self.jobs = self.root / "jobs"
        self.manifest = self.root / "manifest.jsonl"
        try:
            self.jobs.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ZooError(f"cannot use {self.root} as the work folder: {exc.strerror or exc}") from None

    def new_job(self) -> tuple[str, Path]:
        job_id = uuid.uuid4().hex
        folder = self.jobs / job_id
        folder.mkdir()
        return job_id, folder

    def job_folder(self, job_id: str) -> Path:
        """The folder of a job id from a browser; anything but the server's own id pattern is refused."""
        if not _JOB_ID.fullmatch(job_id or ""):
            raise NotFound(f"no job {job_id!r}")
        return self.inside(self.jobs / job_id)

    def inside(self, path: Path) -> Path:
        """``path`` itself, after checking that it lies inside the work folder (links resolved)."""
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise ZooError(f"{path} is outside the work folder")
        return Path(path)

    def job_ids(self) -> list[str]:
        return sorted(p.name for p in self.jobs.iterdir() if p.is_dir() and _JOB_ID.fullmatch(p.name))

    def remove(self, job_id: str) -> None:
        shutil.rmtree(self.job_folder(job_id), ignore_errors=True)

    def remove_leftovers(self) -> list[str]:
        """Rule 4, first half: job folders without a job file (an upload cut short by a kill). Returns their ids."""
        gone = [job_id for job_id in self.job_ids() if not (self.jobs / job_id / JOB_FILE).is_file()]
        for job_id in gone:
            self.remove(job_id)
        return gone


def remove_partial_files(folder: Path) -> None:
    """Rule 4, second half: the hidden ``.NAME.<random>.part`` temporaries a killed separation left
    (`zoo_core.files.temporary_path`)."""
    for path in folder.rglob(".*.part*"):
        if path.is_file():
            path.unlink(missing_ok=True)


def expired(finished: float | None, keep_hours: float, now: float | None = None) -> bool:
    """Rule 3: a job that finished at ``finished`` (epoch seconds; None: not finished) is past its time."""
    return finished is not None and (now if now is not None else time.time()) - finished >= keep_hours * 3600
