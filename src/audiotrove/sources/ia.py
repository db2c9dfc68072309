"""Internet Archive queries: the scrape API for identifiers (cursor paging: no 10 000-result
wall as with advancedsearch.php paging), the item metadata API for files (8 items at a time),
one entry per item (its largest file of the format) or per file.

    GET {base}/services/search/v1/scrape?q=QUERY&fields=identifier&sorts=identifier&count=N[&cursor=C]
        -> {"items": [{"identifier": ...}, ...], "count": n, "total": N, "cursor": C (absent at the end)}
    GET {base}/metadata/IDENTIFIER
        -> {"metadata": {"title", "date", "creator", "collection", "licenseurl", ...},
            "files": [{"name", "format", "size", "md5", "sha1"}, ...]}
    download URL: {base}/download/IDENTIFIER/NAME

The base URL is https://archive.org unless `--ia-base-url` or the environment variable
AUDIOTROVE_IA_URL says otherwise (the tests point it at a local server).
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable, Iterator

from ..errors import UsageError
from .templates import RemoteEntry

DEFAULT_BASE = "https://archive.org"
ENV_BASE = "AUDIOTROVE_IA_URL"
PAGE_ROWS = 1000  # the scrape API takes 100 to 10 000 a page
METADATA_THREADS = 8
SOURCE_KEYS = {"title": "title", "date": "date", "creator": "creator", "collection": "collection",
               "licenseurl": "license_url"}

GetJson = Callable[[str], dict]


def base_url(explicit: str | None = None) -> str:
    base = (explicit or os.environ.get(ENV_BASE) or DEFAULT_BASE).rstrip("/")
    if urllib.parse.urlsplit(base).scheme.lower() not in ("http", "https"):
        raise UsageError(f"the Internet Archive base URL must be http or https: {base!r}")
    return base


def get_json(url: str, *, timeout_s: float = 30.0, attempts: int = 4, backoff_s: float = 0.5) -> dict:
    """GET a JSON document; retries 5xx, 429 and network errors with backoff; UsageError at the end
    (a search that cannot be read stops the `add`: nothing half-added is worse than a clear stop)."""
    last = ""
    for k in range(attempts):
        try:
            req = urllib.request.Request(url, headers={"User-Agent": "audiotrove", "Accept": "application/json"})
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # TLS verified by default
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code} {exc.reason}"
            if exc.code < 500 and exc.code != 429:
                break
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        except ValueError as exc:
            last = f"not JSON ({exc})"
            break
        time.sleep(min(backoff_s * 2 ** k, 10.0))
    raise UsageError(f"cannot read {url}: {last}")


def search(query: str, *, base: str, limit: int | None = None, page_rows: int = PAGE_ROWS,
           fetch: GetJson = get_json) -> Iterator[str]:
    """Identifiers matching `query`, in identifier order, page by page (scrape cursor), at most `limit`."""
    cursor, seen = None, 0
    for _ in range(1_000_000):  # bounded: a server that repeats its cursor cannot loop forever
        params = [("q", query), ("fields", "identifier"), ("sorts", "identifier"), ("count", str(page_rows))]
        if cursor:
            params.append(("cursor", cursor))
        data = fetch(f"{base}/services/search/v1/scrape?{urllib.parse.urlencode(params)}")
        items = data.get("items") or []
        for doc in items:
            ident = doc.get("identifier") if isinstance(doc, dict) else None
            if not ident:
                continue
            yield str(ident)
            seen += 1
            if limit is not None and seen >= limit:
                return
        next_cursor = data.get("cursor")
        if not items or not next_cursor or next_cursor == cursor:
            return
        cursor = next_cursor


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


def _matches(f: dict, fmt: str) -> bool:
    fmt = fmt.lower().lstrip(".")
    name = str(f.get("name", "")).lower()
    return name.endswith("." + fmt) or str(f.get("format", "")).lower() == fmt


def _size(f: dict) -> int:
    try:
        return int(f.get("size") or 0)
    except (TypeError, ValueError):
        return 0


def item_entries(identifier: str, *, fmt: str | None, multi: bool, base: str,
                 fetch: GetJson = get_json) -> tuple[list[RemoteEntry], str | None]:
    """(entries, why none) for one item: its largest file of the format, or each with `multi`."""
    data = fetch(f"{base}/metadata/{urllib.parse.quote(identifier, safe='')}")
    meta = data.get("metadata") or {}
    files = [f for f in data.get("files") or [] if isinstance(f, dict) and f.get("name")]
    if fmt:
        files = [f for f in files if _matches(f, fmt)]
    if not files:
        return [], f"no file{' of format ' + fmt if fmt else ''} in the item"
    files.sort(key=_size, reverse=True)
    if not multi:
        files = files[:1]
    source = {"origin": "ia", "identifier": identifier}
    for key, name in SOURCE_KEYS.items():
        value = _text(meta.get(key))
        if value is not None:
            source[name] = value
    out = []
    for f in files:
        name = str(f["name"])
        url = f"{base}/download/{urllib.parse.quote(identifier, safe='')}/{urllib.parse.quote(name, safe='/')}"
        checksums = {a: str(f[a]).lower() for a in ("md5", "sha1") if f.get(a)}
        entry_source = {**source, "file": name, "format": _text(f.get("format")),
                        "size": _size(f) or None, **checksums}
        out.append(RemoteEntry(url, {k: v for k, v in entry_source.items() if v is not None}, checksums))
    return out, None


def query_entries(query: str, *, fmt: str | None, multi: bool = False, limit: int | None = None,
                  base: str | None = None, page_rows: int = PAGE_ROWS,
                  fetch: GetJson = get_json) -> tuple[list[RemoteEntry], list[tuple[str, str]]]:
    """(entries, skipped (identifier, why)) for a whole query."""
    from concurrent.futures import ThreadPoolExecutor

    base = base_url(base)
    identifiers = list(search(query, base=base, limit=limit, page_rows=page_rows, fetch=fetch))

    def one(ident: str) -> tuple[list[RemoteEntry], str | None]:
        try:
            return item_entries(ident, fmt=fmt, multi=multi, base=base, fetch=fetch)
        except UsageError as exc:  # one unreadable item is skipped, the query goes on
            return [], str(exc)

    entries, skipped = [], []
    # the metadata calls wait on the network: a few at a time, results kept in query order
    with ThreadPoolExecutor(max_workers=METADATA_THREADS) as pool:
        for ident, (got, why) in zip(identifiers, pool.map(one, identifiers)):
            entries += got
            if why:
                skipped.append((ident, why))
    return entries, skipped
