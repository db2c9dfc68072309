"""CLI command `fetch`: download the collection's URLs (see sources/fetching.py, io/fetch.py)."""
from __future__ import annotations

from typing import Optional

import typer
from rich.markup import escape

from .common import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK, err, fail, open_catalog


def register(app: typer.Typer) -> None:
    app.command("fetch")(fetch_cmd)


def fetch_cmd(
    connections: int = typer.Option(8, "--connections", min=1, max=256, help="Parallel downloads in all."),
    per_host: int = typer.Option(4, "--per-host", min=1, max=64, help="Parallel downloads per host."),
    rate: Optional[str] = typer.Option(None, "--rate", help="Request starts per second, all hosts: 5/s, 300/min."),
    max_size: Optional[str] = typer.Option(None, "--max-size", help="Largest file accepted: 2GB, 500MB (a bigger one is an item error)."),
    to: Optional[str] = typer.Option(None, "--to", help="Folder for the copies (default: `<collection>/.audiotrove/cache`)."),
    timeout: float = typer.Option(30.0, "--timeout", min=0.01, help="Seconds to wait for a connection or for data."),
    retries: int = typer.Option(5, "--retries", min=0, max=100, help="Further attempts on 5xx, 429, timeouts and dropped connections."),
    backoff: float = typer.Option(1.0, "--backoff", min=0.0, help="First wait between attempts in seconds; doubles each time."),
    max_wait: float = typer.Option(60.0, "--max-wait", min=0.0, help="Longest single wait in seconds (caps backoff and Retry-After)."),
    refresh: bool = typer.Option(False, "--refresh", help="Also ask the server whether each fetched file changed (If-None-Match / If-Modified-Since) and download the ones that did; the steps then redo them."),
    proxy: Optional[str] = typer.Option(None, "--proxy", help="An http:// proxy for every URL (http://user:password@host:port); '' for none. Default: the environment's http_proxy / https_proxy / no_proxy."),
):
    """Download every registered URL without a verified local copy.

    Parallel (`--connections`, `--per-host`, `--rate`), resumable (an interrupted download goes on
    from the bytes on disk with an HTTP Range request), verified (sha256/md5/sha1 from list files and
    Internet Archive metadata; a mismatch is kept aside in .rejected/ and fetched again next run).
    Only http and https, also after redirects; TLS certificates are verified; user:password goes
    in ~/.netrc (or $NETRC), never in the catalog. Behind a proxy: `--proxy` or the usual
    http_proxy / https_proxy / no_proxy variables (https through a CONNECT tunnel). Each file records `fetch.*`: local_path,
    bytes, sha256, http_status, etag, last_modified, fetched_at. `analyze` then reads the copies.
    """
    from ..io.fetch import FetchOptions, netrc_credentials, parse_rate, parse_size
    from ..sources.fetching import fetch_urls

    try:
        rate_per_s = parse_rate(rate)
        max_size_bytes = parse_size(max_size)
    except ValueError as exc:
        raise fail(str(exc))
    options = FetchOptions(connections=connections, per_host=per_host, rate_per_s=rate_per_s,
                           max_size_bytes=max_size_bytes, timeout_s=timeout, retries=retries,
                           backoff_s=backoff, max_wait_s=max_wait, credentials=netrc_credentials(),
                           proxy=proxy)

    def show(got) -> None:
        err.print(f"[red]failed[/] {escape(got.error or got.url)}", soft_wrap=True)

    with open_catalog() as cat:
        try:
            summary = fetch_urls(cat, options, to=to, on_failure=show, refresh=refresh)
        except KeyboardInterrupt as exc:
            summary = getattr(exc, "summary", None)
            if summary is not None:
                err.print(summary.line())
            err.print("interrupted: finished downloads are saved; run the same command again to resume")
            raise typer.Exit(EXIT_INTERRUPTED)
        err.print(summary.line())
        if summary.failed:
            err.print(f"[red]{summary.failed} download(s) failed[/]: `audiotrove ls 'fetch.status = error' "
                      "--fields fetch.error` lists them; run `fetch` again to retry")
        raise typer.Exit(EXIT_FAILURES if summary.failed else EXIT_OK)
