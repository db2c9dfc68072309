"""The remote options of `add`: ids + template, Internet Archive query, metadata table."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..catalog.db import Catalog
from ..errors import UsageError


@dataclass
class RemoteOptions:
    ids: str | None = None
    template: str | None = None
    id_pattern: str | None = None
    fields: list[str] = field(default_factory=list)
    ia_query: str | None = None
    ia_format: str | None = None
    ia_multi: bool = False
    limit: int | None = None
    ia_base_url: str | None = None
    metadata: str | None = None
    match_column: str | None = None

    def any(self) -> bool:
        return bool(self.ids or self.ia_query or self.metadata)


def check(opts: RemoteOptions) -> None:
    """UsageError for options that do not go together (before anything is written)."""
    if opts.ids and not opts.template:
        raise UsageError("--ids needs --template (e.g. 'https://host/{group}/{id}.wav')")
    if (opts.template or opts.id_pattern or opts.fields) and not opts.ids:
        raise UsageError("--template, --id-pattern and --field need --ids FILE")
    if (opts.ia_format or opts.ia_multi or opts.limit is not None) and not opts.ia_query:
        raise UsageError("--ia-format, --ia-multi and --limit need --ia-query")
    if opts.metadata and not opts.match_column:
        raise UsageError("--metadata needs --match-column (the column that names the file)")
    if opts.match_column and not opts.metadata:
        raise UsageError("--match-column needs --metadata FILE")


def add_remote(cat: Catalog, opts: RemoteOptions, say: Callable[[str], None],
               warn: Callable[[str], None]) -> int:
    """Run the remote parts of `add`; returns how many entries were skipped."""
    from .register import register

    skipped_total = 0
    if opts.ids:
        from .templates import expand_ids, parse_fields, read_ids

        entries, skipped = expand_ids(read_ids(opts.ids), template=opts.template,
                                      id_pattern=opts.id_pattern, fields=parse_fields(opts.fields))
        added, present = register(cat, entries, label=f"--ids {opts.ids}")
        for ident, why in skipped:
            warn(f"skipped {ident}: {why}")
        say(f"ids: added {added}, already present {present}, skipped {len(skipped)}")
        skipped_total += len(skipped)
    if opts.ia_query:
        from .ia import query_entries

        entries, skipped = query_entries(opts.ia_query, fmt=opts.ia_format, multi=opts.ia_multi,
                                         limit=opts.limit, base=opts.ia_base_url)
        added, present = register(cat, entries, label=f"--ia-query {opts.ia_query}")
        for ident, why in skipped:
            warn(f"skipped {ident}: {why}")
        say(f"internet archive: added {added}, already present {present}, skipped {len(skipped)}")
        skipped_total += len(skipped)
    if opts.metadata:
        from .metadata import apply_metadata

        counts = apply_metadata(cat, opts.metadata, match_column=opts.match_column)
        for value in counts["unmatched"][:20]:
            warn(f"metadata row {value!r} matches no file")
        if len(counts["unmatched"]) > 20:
            warn(f"... and {len(counts['unmatched']) - 20} more rows that match no file")
        say(f"metadata: {counts['matched_rows']} of {counts['rows']} rows matched, "
            f"{counts['files']} files updated (fields meta.*)")
    return skipped_total
