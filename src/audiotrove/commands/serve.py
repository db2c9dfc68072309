"""`audiotrove serve`: the collection in the browser (web/app.py), on 127.0.0.1 by default."""
from __future__ import annotations

import threading
import webbrowser
from typing import Optional

import typer

from ..errors import UsageError
from .common import err, open_catalog, open_index

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(app: typer.Typer) -> None:
    """Add this topic's commands to the app."""
    app.command("serve")(serve_cmd)


def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. Another than 127.0.0.1 / "
                             "localhost serves the collection to whoever can reach it (a warning says so)."),
    port: int = typer.Option(8000, "--port", "-p", min=0, max=65535, help="TCP port (0: any free one)."),
    open_browser: bool = typer.Option(False, "--open", help="Open the overview page in the default browser."),
    log: Optional[str] = typer.Option("warning", "--log-level", help="uvicorn's log level (info shows every request)."),
):
    """Browse the collection in a browser: overview, files with the query box, each file with its
    player, timeline and transcript, units that play on click, transcript search and the map.

    Read-only: the server answers GET and HEAD only, opens the catalog read-only and serves files
    by catalog id only. Every page has a JSON twin at the same address + `.json` (what the CLI's
    `--format json` prints for the same query). Stop with Ctrl-C.
    """
    try:
        import uvicorn

        from ..web.app import create_app
    except ImportError as exc:
        raise UsageError(f"serve needs the web extra: pip install 'audiotrove[web]' ({exc})") from None
    with open_catalog() as cat:  # the index brought up to date once (as ls would); requests never write
        open_index(cat)
        root = cat.root
    local = host in LOOPBACK
    if not local:
        err.print(f"[yellow]warning:[/] serving on {host}: anyone who can reach this address can read the "
                  "collection's data and play its files (no login)")
    app = create_app(root, any_host=not local)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
    config = uvicorn.Config(app, host=host, port=port, log_level=log or "warning")
    server = uvicorn.Server(config)

    def announce():
        while not server.started:
            if server.should_exit:
                return
            threading.Event().wait(0.05)
        bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
        address = f"http://{shown}:{bound}/"
        print(f"serving {root} at {address} (Ctrl-C to stop)", flush=True)
        if open_browser:
            webbrowser.open(address)

    threading.Thread(target=announce, daemon=True).start()
    server.run()
