"""Turn `add` arguments (folders, files, list files, URLs) into catalog entries.

A folder is walked recursively for audio and video containers; a list file (`*.txt` or
`@list`) holds one path or URL per line, `#` comments and blank lines ignored. Relative
paths in a list file are relative to the list file's folder. URLs are stored without any
user:password (`audiotrove fetch` downloads them); a URL may be followed by a checksum
(`URL<TAB>sha256:...`, md5:, sha1:), collected in `Expansion.checksums`.

Only regular files are registered (and broken links, whose analysis then says what is wrong):
a FIFO, a device or a socket, named or found in a folder, is skipped with the reason, since
reading one might never end.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..io.raw import HINT as RAW_HINT
from ..io.raw import RAW_EXTENSIONS

MEDIA_EXTENSIONS = frozenset(
    ".wav .wave .bwf .rf64 .w64 .flac .mp3 .mp2 .mp1 .ogg .oga .opus .spx .m4a .m4b .aac .mp4 .m4v "
    ".aif .aiff .aifc .afc .wma .asf .wmv .mov .mkv .mka .webm .avi .ac3 .eac3 .dts .amr .au .snd "
    ".caf .ape .wv .tta .alac .mpg .mpeg .ts .mts .m2ts .3gp .3g2 .ogv .flv .voc .dsf .dff".split()
)
URL_SCHEMES = ("http://", "https://", "ftp://", "s3://", "gs://")


@dataclass
class Expansion:
    entries: list[tuple[str, str, str]] = field(default_factory=list)  # (path, kind, source)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    checksums: dict[str, dict] = field(default_factory=dict)  # URL -> {algo: hex}
    credentials_removed: int = 0


def is_url(text: str) -> bool:
    return text.lower().startswith(URL_SCHEMES)


def is_media_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in MEDIA_EXTENSIONS


def expand_sources(args: list[str], *, base: Path | None = None) -> Expansion:
    """Expand every argument; problems become `skipped` entries, never exceptions."""
    out = Expansion()
    for arg in args:
        _expand_one(arg, base or Path.cwd(), out, depth=0)
    _skip_non_utf8_names(out)
    return out


def _skip_non_utf8_names(out: Expansion) -> None:
    """A name that is not valid UTF-8 (e.g. Latin-1 bytes from an old archive) cannot be
    stored in the catalog: skip it with a clear reason instead of failing the whole `add`."""
    kept = []
    for entry in out.entries:
        try:
            entry[0].encode("utf-8")
        except UnicodeEncodeError:
            shown = entry[0].encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            out.skipped.append((shown, "file name is not valid UTF-8: rename the file to add it"))
            continue
        kept.append(entry)
    out.entries = kept


def _expand_one(arg: str, base: Path, out: Expansion, depth: int) -> None:
    if is_url(arg):
        _expand_url(arg, out)
        return
    is_list = arg.startswith("@")
    raw = arg[1:] if is_list else arg
    path = Path(os.path.expanduser(raw))
    if not path.is_absolute():
        path = base / path
    path = Path(os.path.abspath(path))
    if is_list or (path.suffix.lower() == ".txt" and path.is_file()):
        _expand_list(path, out, depth)
    elif path.is_dir():
        for found in _walk_media(path, out):
            out.entries.append((found, "file", arg))
    elif path.is_file() or (os.path.islink(path) and not path.exists()):
        # A broken link is registered too: its analysis then says what is wrong with it.
        # A file named explicitly is registered even with an unusual extension:
        # the user asked for it, and the analysis will say if it is not audio.
        out.entries.append((str(path), "file", arg))
    else:
        out.skipped.append((str(path), _not_a_file(path)))


def _not_a_file(path: Path) -> str:
    """Why a path that is neither a folder nor a regular file is skipped."""
    from ..io.decode import file_type_problem

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "not found"
    return file_type_problem(mode) or "not a regular file"


def _expand_url(arg: str, out: Expansion) -> None:
    from ..io.fetch import parse_checksum, strip_credentials

    url, *rest = arg.split()
    url, had = strip_credentials(url)
    out.credentials_removed += had
    sums = {}
    for token in rest:
        try:
            algo, digest = parse_checksum(token)
        except ValueError as exc:
            out.skipped.append((url, str(exc)))
            return
        sums[algo] = digest
    out.entries.append((url, "url", url))
    if sums:
        out.checksums[url] = sums


def _expand_list(path: Path, out: Expansion, depth: int) -> None:
    if depth > 8:
        out.skipped.append((str(path), "list files nested too deeply"))
        return
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        out.skipped.append((str(path), f"cannot read list file: {exc.strerror or exc}"))
        return
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        _expand_one(line, path.parent, out, depth + 1)


def _walk_media(root: Path, out: Expansion) -> Iterator[str]:
    """Recursive walk that follows directory links once (loops are detected and skipped)."""
    seen: set[tuple[int, int]] = set()

    def onerror(exc: OSError) -> None:
        out.skipped.append((exc.filename or str(root), f"cannot read folder: {exc.strerror}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            out.skipped.append((dirpath, "folder link loop"))
            dirnames[:] = []
            continue
        seen.add(key)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if not is_media_name(name):
                if not name.startswith("."):
                    ext = os.path.splitext(name)[1] or "none"
                    hint = RAW_HINT if ext.lower() in RAW_EXTENSIONS else "name it in `add` to register it anyway"
                    out.skipped.append((full, f"not an audio or video file name (extension {ext}); {hint}"))
                continue
            try:
                mode = os.stat(full).st_mode
            except OSError:
                yield full  # a broken link: registered, its analysis says what is wrong
                continue
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                out.skipped.append((full, _not_a_file(Path(full))))
                continue
            yield full
