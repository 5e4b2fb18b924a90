"""The routes of `zoo serve` (Starlette): the page, the model table, uploads that become jobs, the queue's state,
stems, waveforms, zips and weight pulls. Errors are JSON ``{"error": "one line"}`` that the page shows.

Safety: requests that change anything must carry the page's ``X-Zoo-Page`` header (a form or script on
another site cannot add it without a CORS preflight, which this server never grants) and, when they carry an
``Origin``, come from this server's own; the Host header must name this server (against DNS rebinding); paths
come from the work folder's own names only (`zoo_core.serve.workdir`).
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import time
import zipfile
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import ZooError
from ..files import atomic_path, temporary_path
from .jobs import DONE, Job, Queue
from .table import model_table
from .workdir import ZIP_NAME, NotFound, WorkFolder, safe_name

STATIC = Path(__file__).parent / "static"
PAGE_HEADER = "x-zoo-page"
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]
DEFAULT_MAX_UPLOAD_MB = 1024
PEAKS = 1000  # waveform columns sent to the page
CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self' blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class HttpError(ZooError):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def _error(request: Request, exc: Exception) -> JSONResponse:
    status = getattr(exc, "status", 404 if isinstance(exc, NotFound) else 400)
    return JSONResponse({"error": str(exc)}, status_code=status)


def _megabytes(count: float) -> str:
    return f"{count / 1e6:,.1f} MB"


def create_app(work: WorkFolder | Path, *, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1_000_000,
               keep_hours: float = 24.0, device: str = "cpu", allowed_hosts: Optional[list[str]] = None) -> Starlette:
    """The application over the work folder ``work``; ``allowed_hosts`` are the Host names it answers (default:
    this machine's loopback names; ``["*"]`` for a server bound to another address)."""
    work = work if isinstance(work, WorkFolder) else WorkFolder(work)
    queue = Queue(work, device=device, keep_hours=keep_hours)

    def from_page(request: Request) -> None:
        origin = request.headers.get("origin")
        if request.headers.get(PAGE_HEADER) != "1" or (origin and urlsplit(origin).netloc != request.headers.get("host")):
            raise HttpError("refused: this request did not come from the zoo's own page", 403)

    def stem_path(job: Job, stem: str) -> Path:
        if job.state != DONE or stem not in job.outputs:
            raise NotFound(f"no stem {stem!r} in job {job.id}")
        return work.inside(work.job_folder(job.id) / job.outputs[stem])

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache", "Content-Security-Policy": CSP})

    async def models(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(lambda: model_table(queue.speeds())))

    async def state(request: Request) -> Response:
        return JSONResponse({**queue.view(), "max_upload_bytes": max_upload_bytes, "keep_hours": keep_hours})

    async def create_job(request: Request) -> Response:
        """The request body is the file itself; ``name``, ``model`` and ``stems`` (comma-separated) are query
        parameters. Everything that can be checked before the upload is checked first."""
        from_page(request)
        name = safe_name(request.query_params.get("name", ""))
        model = request.query_params.get("model", "")
        stems = [s for s in request.query_params.get("stems", "").split(",") if s] or None
        writes = await run_in_threadpool(check_request, model, stems)
        declared = int(request.headers.get("content-length") or 0)
        if declared > max_upload_bytes:
            raise too_large(name)
        free = shutil.disk_usage(work.root).free
        if declared > free:
            raise HttpError(f"{name}: not enough disk space for the upload ({_megabytes(free)} free)", 507)
        job_id, folder = work.new_job()
        try:
            target = folder / name
            await receive(request, target, name)
            reader = await run_in_threadpool(_probe, target, folder)
            need = reader.frames * reader.channels * 4 * writes * 2  # float WAV stems, and their zip
            free = shutil.disk_usage(work.root).free
            if need > free:
                raise HttpError(f"{name}: not enough disk space for its stems (about {_megabytes(need)} needed, "
                                f"{_megabytes(free)} free)", 507)
            job = Job(id=job_id, name=name, model=model, stems=stems, created=time.time(), frames=reader.frames,
                      sample_rate=reader.sample_rate, channels=reader.channels)
            queue.submit(job)
        except BaseException:
            work.remove(job_id)  # rule 1: a refused or interrupted upload goes at once
            raise
        return JSONResponse({"id": job.id, "name": job.name}, status_code=201)

    def too_large(name: str) -> HttpError:
        return HttpError(f"{name} is larger than this server's upload limit of {_megabytes(max_upload_bytes)} "
                         "(zoo serve --max-upload-mb)", 413)

    async def receive(request: Request, target: Path, name: str) -> None:
        temporary = temporary_path(target)
        size = 0
        try:
            with open(temporary, "wb") as handle:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > max_upload_bytes:
                        raise too_large(name)
                    handle.write(chunk)
            temporary.replace(target)
        except OSError as exc:
            raise HttpError(f"{name}: cannot store the upload ({exc.strerror or exc}); the work folder's disk may "
                            "be full", 507) from None
        finally:
            temporary.unlink(missing_ok=True)

    def check_request(model: str, stems: Optional[list[str]]) -> int:
        """The model exists, its weights are here, and it gives the stems asked for; returns how many stems
        the job writes."""
        from ..registry import get_entry
        from ..stems import output_stems
        from ..weights.cache import is_cached
        from ..weights.models import resolve_variant

        if not model:
            raise ZooError("choose a model")
        entry, variant = resolve_variant(model, None)
        if not is_cached(entry, variant):
            raise ZooError(f"{entry.name}:{variant} has no weights on this machine yet: get them first "
                           f"(the button in its row, or `zoo pull {entry.name}:{variant}`)")
        available = output_stems(get_entry(model).stems)
        unknown = [stem for stem in stems or [] if stem not in available]
        if unknown:
            raise ZooError(f"{entry.name} has no stem {unknown[0]!r} (it gives {', '.join(available)})")
        return len(stems or available)

    async def remove_job(request: Request) -> Response:
        from_page(request)
        await run_in_threadpool(queue.remove, request.path_params["job"])
        return Response(status_code=204)

    async def stem(request: Request) -> Response:
        job = queue.get(request.path_params["job"])
        name = request.path_params["stem"]
        path = stem_path(job, name)
        disposition = "attachment" if request.query_params.get("download") else "inline"
        return FileResponse(path, media_type="audio/wav", filename=f"{job.track} - {name}{path.suffix}",
                            content_disposition_type=disposition)

    async def peaks(request: Request) -> Response:
        job = queue.get(request.path_params["job"])
        path = stem_path(job, request.path_params["stem"])
        low, high = await run_in_threadpool(_peaks, str(path), path.stat().st_mtime_ns, PEAKS)
        return JSONResponse({"min": low, "max": high})

    async def zipped(request: Request) -> Response:
        job = queue.get(request.path_params["job"])
        if job.state != DONE:
            raise NotFound(f"job {job.id} has no stems yet")
        folder = work.job_folder(job.id)
        archive = folder / ZIP_NAME
        if not archive.is_file():
            await run_in_threadpool(_zip, archive, {stem_path(job, s): Path(p).relative_to("out") for s, p in job.outputs.items()})
        return FileResponse(archive, media_type="application/zip", filename=f"{job.track} ({job.label}).zip")

    async def pull(request: Request) -> Response:
        from_page(request)
        await run_in_threadpool(queue.pull, request.path_params["model"])
        return JSONResponse({"model": request.path_params["model"]}, status_code=202)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        queue.start()
        try:
            yield
        finally:
            await run_in_threadpool(queue.stop)

    routes = [
        Route("/", index),
        Route("/api/models", models),
        Route("/api/state", state),
        Route("/api/jobs", create_job, methods=["POST"]),
        Route("/api/jobs/{job}", remove_job, methods=["DELETE"]),
        Route("/api/jobs/{job}/stems/{stem}", stem),
        Route("/api/jobs/{job}/peaks/{stem}", peaks),
        Route("/api/jobs/{job}/zip", zipped),
        Route("/api/models/{model}/pull", pull, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or LOOPBACK_HOSTS)],
        exception_handlers={ZooError: _error},
        lifespan=lifespan,
    )
    app.state.queue = queue
    app.state.work = work
    return app


def _probe(path: Path, folder: Path):
    """Open the upload as `zoo separate` would (header, channels): garbage is refused before it is queued."""
    from ..audio import open_audio

    try:
        return open_audio(path)
    except ZooError as exc:
        raise ZooError(str(exc).replace(f"{folder}/", "")) from None


@functools.lru_cache(maxsize=64)
def _peaks(path: str, mtime_ns: int, columns: int) -> tuple[list[float], list[float]]:
    """The smallest and largest sample (over channels) of each of ``columns`` equal stretches of a stem."""
    import math

    import soundfile

    low, high = [], []
    with soundfile.SoundFile(path) as handle:
        per = max(1, math.ceil(handle.frames / columns))
        for block in handle.blocks(blocksize=per, dtype="float32", always_2d=True):
            low.append(round(float(block.min()), 4))
            high.append(round(float(block.max()), 4))
    return low, high


def _zip(archive: Path, members: dict[Path, Path]) -> None:
    """The stems under the names `zoo separate -o OUT` gives them below OUT (``<model>_<variant>/<track>/``).
    Stored, not deflated: float audio barely compresses and the user is waiting."""
    with atomic_path(archive) as temporary:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as bundle:
            for path, name in members.items():
                bundle.write(path, name.as_posix())
