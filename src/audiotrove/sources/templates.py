"""URLs built from record ids: `add --ids batch.txt --template URL --id-pattern RE --field k=EXPR`.

    ids file     one id per line; `#` comments and blank lines ignored; an optional checksum
                 after a tab (`id<TAB>sha256:...` or md5:/sha1:)
    id pattern   a regular expression that must match the whole id; its named groups become
                 variables ({group}, {item} for '(?P<group>[^_]+)_(?P<item>.+)')
    --field      `name=EXPR`, evaluated in order (a field may use the ones before it)
    template     text with {name} or {name|filter|filter:arg} placeholders

Variables: `id` (the line), the pattern's groups, the fields. Filters: lower, upper,
strip[:chars], lstrip[:chars], rstrip[:chars], replace:old:new, zfill:width, slice:start:end,
raw (insert without percent-encoding). Values are percent-encoded when inserted into the
template (so an id cannot add path segments), except with `raw`.
"""
from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from ..io.fetch import parse_checksum

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)((?:\|[^{}|]*)*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED = frozenset(("origin", "id", "template", "sha256", "md5", "sha1"))


@dataclass
class RemoteEntry:
    url: str
    source: dict                                  # the `source.*` facts of this URL
    checksums: dict = field(default_factory=dict)  # algo -> hex


def _apply(value: str, filters: list[str], where: str) -> tuple[str, bool]:
    """(value after the filters, whether `raw` was asked)."""
    raw = False
    for spec in filters:
        name, _, arg = spec.partition(":")
        name = name.strip()
        if name == "lower":
            value = value.lower()
        elif name == "upper":
            value = value.upper()
        elif name in ("strip", "lstrip", "rstrip"):
            value = getattr(value, name)(arg or None)
        elif name == "replace":
            old, sep, new = arg.partition(":")
            if not sep:
                raise UsageError(f"{where}: replace needs old:new, e.g. {{id|replace:-:_}}")
            value = value.replace(old, new)
        elif name == "zfill":
            if not arg.isdigit():
                raise UsageError(f"{where}: zfill needs a width, e.g. {{n|zfill:4}}")
            value = value.zfill(int(arg))
        elif name == "slice":
            a, _, b = arg.partition(":")
            try:
                value = value[int(a) if a else None:int(b) if b else None]
            except ValueError:
                raise UsageError(f"{where}: slice needs start:end integers, e.g. {{id|slice:0:3}}") from None
        elif name == "raw":
            raw = True
        else:
            raise UsageError(f"{where}: unknown filter {name!r} (lower, upper, strip, lstrip, rstrip, "
                             "replace, zfill, slice, raw)")
    return value, raw


def render(template: str, values: dict[str, str], *, encode: bool, where: str = "template") -> str:
    """Fill {name|filters} placeholders; UsageError naming an unknown variable or filter."""
    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in values:
            raise UsageError(f"{where}: unknown variable {{{name}}}; known: {', '.join(sorted(values))}")
        filters = [f for f in m.group(2).split("|")[1:]]
        value, raw = _apply(str(values[name]), filters, where)
        return urllib.parse.quote(value, safe="-_.~") if encode and not raw else value
    return _PLACEHOLDER.sub(sub, template)


def parse_fields(specs: list[str]) -> list[tuple[str, str]]:
    out = []
    for spec in specs:
        name, sep, expr = spec.partition("=")
        name = name.strip()
        if not sep or not _NAME.fullmatch(name):
            raise UsageError(f"--field {spec!r}: write NAME=EXPR, e.g. 'dir={{id|rstrip:ab}}'")
        out.append((name, expr))
    return out


def read_ids(path: str | Path) -> list[tuple[str, dict]]:
    """(id, checksums) per line of an ids file."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read the ids file {path}: {exc.strerror or exc}") from None
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        ident, _, rest = line.partition("\t")
        checksums = {}
        for token in rest.split():
            try:
                algo, digest = parse_checksum(token)
            except ValueError as exc:
                raise UsageError(f"{path}:{n}: {exc}") from None
            checksums[algo] = digest
        out.append((ident.strip(), checksums))
    return out


def expand_ids(ids: list[tuple[str, dict]], *, template: str, id_pattern: str | None = None,
               fields: list[tuple[str, str]] = ()) -> tuple[list[RemoteEntry], list[tuple[str, str]]]:
    """(entries, skipped (id, why)) for every id."""
    try:
        pattern = re.compile(id_pattern) if id_pattern else None
    except re.error as exc:
        raise UsageError(f"--id-pattern is not a valid regular expression: {exc}") from None
    if not urllib.parse.urlsplit(template).scheme.lower() in ("http", "https"):
        raise UsageError(f"--template must be an http or https URL: {template!r}")
    entries, skipped = [], []
    for ident, checksums in ids:
        values = {"id": ident}
        if pattern is not None:
            m = pattern.fullmatch(ident)
            if m is None:
                skipped.append((ident, f"does not match --id-pattern {id_pattern!r}"))
                continue
            values.update({k: v for k, v in m.groupdict().items() if v is not None})
        for name, expr in fields:
            values[name] = render(expr, values, encode=False, where=f"--field {name}")
        url = render(template, values, encode=True)
        source = {"origin": "template", "id": ident}
        source.update({k: v for k, v in values.items() if k not in RESERVED})
        source.update(checksums)
        entries.append(RemoteEntry(url, source, checksums))
    return entries, skipped
