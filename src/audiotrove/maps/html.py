"""The map as one self-contained HTML file: the points (views.map_points) and the page's code
(static/mapview.js, static/mappage.js, static/mappage.css) inlined, nothing fetched from the
network, so it opens from the file system and works offline.

    write_html(data, "map.html")

Sound: each point plays its unit from the original file (an <audio> element on the file's
file:// URL with a media fragment `#t=start,end`); Chromium and Firefox play file:// media from a
file:// page, so nothing is copied or re-encoded: the page stays small and the sound is the
original's, but it plays only where the files are (same machine or share) and in formats the
browser decodes (WAV, FLAC, MP3, Ogg/Opus, AAC/M4A; not AIFF or WMA). A URL item plays from its URL.
"""
from __future__ import annotations

import html
import os
import re
from importlib import resources
from pathlib import Path

from ..io.jsonarrays import dumps
from ..io.write import write_text_atomic

_IMPORT = re.compile(r'^import\s+\{[^}]*\}\s+from\s+"\./mapview\.js";\s*$', re.M)


def static_text(name: str) -> str:
    """A file of maps/static/ (package data)."""
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def file_url(path: str) -> str:
    """The URL a browser plays a file from: URLs as they are, paths as file:// URLs."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", path):
        return path
    return Path(path).expanduser().absolute().as_uri()


def _json_for_script(data: dict) -> str:
    text = dumps(data, separators=(",", ":"), allow_nan=False, ensure_ascii=False)  # = json.dumps of the lists
    # inside <script>: no "</script>", no "<!--"; U+2028/9 are fine in JSON.parse
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page(data: dict, *, title: str | None = None) -> str:
    """The HTML text of the map page for map_points' `data` (lists, or arrays=True's arrays: the
    same page; files get their URLs)."""
    data = dict(data)
    data["files"] = {**data["files"], "url": [file_url(p) for p in data["files"]["path"]]}
    script = "\n".join([static_text("mapview.js"), _IMPORT.sub("", static_text("mappage.js")), BOOT])
    if "</script" in script.lower():  # never: the sources are ours
        raise ValueError("a static script contains </script")
    title = title or f"audiotrove map {data.get('name', '')}: {data.get('shown')} {data.get('level')}s"
    return (f"<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>\n{static_text('mappage.css')}</style>\n</head>\n"
            f"<body>\n<div id=\"app\"></div>\n"
            f"<script type=\"application/json\" id=\"map-data\">{_json_for_script(data)}</script>\n"
            f"<script type=\"module\">\n{script}\n</script>\n</body>\n</html>\n")


BOOT = """
// boot: the inlined points
{
  const data = JSON.parse(document.getElementById("map-data").textContent);
  window.audiotroveMap = mountMapPage(document.getElementById("app"), data);
  window.audiotroveMapReadyMs = performance.now();
}
"""


def write_html(data: dict, out: str | os.PathLike, *, title: str | None = None) -> Path:
    """Write the map page to `out` atomically; returns its path."""
    return write_text_atomic(out, page(data, title=title))
