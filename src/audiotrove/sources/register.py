"""Store URL entries in the catalog: the files row (kind 'url') and its `source.*` facts."""
from __future__ import annotations

from ..catalog.db import Catalog
from ..io.fetch import strip_credentials
from .templates import RemoteEntry


def register(cat: Catalog, entries: list[RemoteEntry], *, label: str) -> tuple[int, int]:
    """Add the URLs (credentials removed) and merge their source facts; (added, present)."""
    clean = []
    for e in entries:
        url, _ = strip_credentials(e.url)
        clean.append((url, e))
    added, present = cat.add_files([(url, "url", label) for url, _ in clean])
    ids = cat.file_ids(url for url, _ in clean)
    cat.set_attrs([(ids[url], "source", e.source) for url, e in clean if url in ids], merge=True)
    return added, present


def record_checksums(cat: Catalog, checksums: dict[str, dict]) -> int:
    """Checksums given in list files (`URL<TAB>sha256:...`) -> source.sha256 / md5 / sha1."""
    if not checksums:
        return 0
    ids = cat.file_ids(checksums)
    return cat.set_attrs([(ids[url], "source", dict(sums)) for url, sums in checksums.items()
                          if url in ids], merge=True)
