"""Internet Archive queries: the advanced-search API for identifiers (paged), the item
metadata API for files, one entry per item (its largest file of the format) or per file.

    GET {base}/advancedsearch.php?q=QUERY&fl[]=identifier&rows=R&page=P&sort[]=identifier asc&output=json
        -> {"response": {"numFound": N, "docs": [{"identifier": ...}, ...]}}
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
PAGE_ROWS = 100
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
    """Identifiers matching `query`, in identifier order, page by page, at most `limit`."""
    page, seen = 1, 0
    while True:
        params = [("q", query), ("fl[]", "identifier"), ("rows", str(page_rows)), ("page", str(page)),
                  ("sort[]", "identifier asc"), ("output", "json")]
        data = fetch(f"{base}/advancedsearch.php?{urllib.parse.urlencode(params)}")
        response = data.get("response") or {}
        docs = response.get("docs") or []
        for doc in docs:
            ident = doc.get("identifier")
            if not ident:
                continue
            yield str(ident)
            seen += 1
            if limit is not None and seen >= limit:
                return
        total = int(response.get("numFound") or 0)
        if not docs or page * page_rows >= total:
            return
        page += 1


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
    base = base_url(base)
    entries, skipped = [], []
    for ident in search(query, base=base, limit=limit, page_rows=page_rows, fetch=fetch):
        try:
            got, why = item_entries(ident, fmt=fmt, multi=multi, base=base, fetch=fetch)
        except UsageError as exc:  # one unreadable item is skipped, the query goes on
            got, why = [], str(exc)
        entries += got
        if why:
            skipped.append((ident, why))
    return entries, skipped
