"""`zoo serve`: a local web page for separating songs without a terminal.

    app.py      the routes: the page, uploads, the model table, jobs, stems, zips, pulls (Starlette)
    jobs.py     the queue: one worker thread, one file after another through the engine, with the catalogue
                run's manifest and resume rule; weight pulls with their progress (the one place that calls
                the separation engine and the weights cache)
    workdir.py  the server's work folder: its layout, the only file names a browser can influence, cleanup
    static/     the page: plain HTML, JavaScript and CSS, served from the package (no network at run time)

The work folder (default ``$ZOO_HOME/serve``, ``--work-dir``) holds ``jobs/<id>/`` per uploaded file (the
upload, ``job.json``, the stems under ``out/<model>_<variant>/<track>/``, the zip once asked for) and
``manifest.jsonl``, the catalogue run's record of every separation (`zoo_core.manifest`).

Needs the ``serve`` extra (``pip install 'svs-zoo[serve]'``): starlette and uvicorn.
"""

EXTRA_HINT = "zoo serve needs the serve extra: pip install 'svs-zoo[serve]'"

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def check_bind(host: str, allow_remote: bool) -> str | None:
    """The bind-address rule: loopback by default; any other address only with ``allow_remote``, and then a
    warning to print (returned). Raises `ZooError` otherwise."""
    from ..errors import ZooError

    if is_loopback(host):
        return None
    if not allow_remote:
        raise ZooError(f"--host {host} would let other machines reach this server; "
                       "add --allow-remote if that is what you want")
    return (f"serving on {host}: anyone who can reach this address can upload files, run separations and "
            "download the results (there is no login)")
