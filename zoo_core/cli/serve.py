"""`zoo serve`: the local web page (`zoo_core.serve`) on uvicorn. It prints the URL and opens nothing."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Optional

import click

from ..errors import ZooError
from .messages import warn
from .options import device_option


@click.command("serve", short_help="Serve a local web page for separating songs.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Only this machine can reach the default; another address needs --allow-remote.")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True, help="Port (0: any free one).")
@click.option("--allow-remote", is_flag=True,
              help="Allow a --host that other machines can reach (there is no login: anyone who reaches it can use it).")
@click.option("--work-dir", type=click.Path(path_type=Path), default=None,
              help="Uploads, stems and the manifest [default: $ZOO_HOME/serve].")
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=1024, show_default=True,
              help="Largest upload accepted, in megabytes.")
@click.option("--keep-hours", type=click.FloatRange(min=0), default=24, show_default=True,
              help="A finished job's stems are deleted this long after it finished (the page's Remove deletes at once).")
@device_option()
def serve_command(host: str, port: int, allow_remote: bool, work_dir: Optional[Path], max_upload_mb: float,
                  keep_hours: float, device: str) -> None:
    """Serve a web page for separating songs without a terminal: drop files, pick a model from the zoo's table
    (stems, size, published SDR, weights here, measured speed), follow each file's progress, play every stem
    with its waveform, download stems one by one or as a zip.

    Files run one after another; the queue and the manifest (WORK_DIR/manifest.jsonl) survive a restart of
    the server. Uploads are deleted once separated; results after --keep-hours.
    """
    from ..serve import EXTRA_HINT, check_bind

    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise ZooError(EXTRA_HINT) from None
    from ..devices import resolve_device

    warning = check_bind(host, allow_remote)
    device = str(resolve_device(device))  # before listening: a missing GPU is one line, not a page that fails
    from ..serve.app import LOOPBACK_HOSTS, create_app
    from ..serve.table import model_table
    from ..serve.workdir import WorkFolder
    from ..home import zoo_home

    work = WorkFolder(work_dir if work_dir is not None else zoo_home() / "serve")
    listener = _listen(host, port)
    app = create_app(work, max_upload_bytes=int(max_upload_mb * 1_000_000), keep_hours=keep_hours, device=device,
                     allowed_hosts=[*LOOPBACK_HOSTS, host] if warning is None else ["*"])
    bound = listener.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    if warning is not None:
        warn(warning)
    click.echo(f"svs-zoo serving on http://{shown}:{bound}/")
    click.echo(f"work folder {work.root}; Ctrl-C stops", err=True)
    # count the models' parameters while nobody waits (the page's first table would otherwise take seconds)
    threading.Thread(target=model_table, args=({},), name="zoo-serve-table", daemon=True).start()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=3))
    server.run(sockets=[listener])


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, made here so that ``--port 0`` can print the port the system chose."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        listener = socket.socket(family, kind, protocol)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(128)
    except OSError as exc:
        raise ZooError(f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                       + (" (--port picks another)" if port else ""), exit_code=1) from None
    return listener
