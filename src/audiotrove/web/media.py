"""What the pages play and show: short WAV cuts (units, search hits, neighbours) made on the
fly and kept in a bounded memory cache, and a file's waveform + spectrogram picture.

Nothing is written into the collection: cuts of the formats libsndfile seeks in (WAV, FLAC,
OGG, MP3, AIFF) are read straight from the file; other formats go through units/render.py into
a private temporary folder, read back and removed.
"""
from __future__ import annotations

import io
import mimetypes
import os
import shutil
import tempfile
import threading
from collections import OrderedDict

MAX_CUT_S = 120.0  # the longest stretch one request may cut
CUT_CACHE_BYTES = 64 * 2**20
PICTURE_CACHE_BYTES = 32 * 2**20

# Containers a browser plays (the report's list, report/media.py, by file extension here).
_MIME = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg", ".oga": "audio/ogg",
         ".opus": "audio/ogg", ".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".mp4": "video/mp4",
         ".aac": "audio/aac", ".webm": "audio/webm", ".weba": "audio/webm", ".aiff": "audio/aiff",
         ".aif": "audio/aiff"}


def media_type(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    return _MIME.get(ext) or mimetypes.guess_type(path)[0] or "application/octet-stream"


class ByteCache:
    """A thread-safe LRU of bytes, bounded in total size."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key, value: bytes) -> None:
        if len(value) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            self.size -= len(old) if old is not None else 0
            self._items[key] = value
            self.size += len(value)
            while self.size > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self.size -= len(dropped)


def cut_wav(path: str, start_s: float, dur_s: float) -> bytes:
    """The stretch [start_s, start_s + dur_s) of an audio file as WAV bytes (the file's own
    rate and channels, 16-bit PCM, 5 ms fades so it does not click). Raises DecodeError."""
    import numpy as np
    import soundfile as sf

    from ..io.decode import DecodeError

    start_s, dur_s = max(0.0, float(start_s)), min(MAX_CUT_S, max(0.0, float(dur_s)))
    try:
        with sf.SoundFile(path) as fh:
            rate = fh.samplerate
            first = min(int(round(start_s * rate)), fh.frames) if fh.frames else int(round(start_s * rate))
            if fh.seekable():
                fh.seek(first)
            else:
                raise RuntimeError("not seekable")
            data = fh.read(int(round(dur_s * rate)), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, TypeError):
        return _cut_with_render(path, start_s, dur_s)
    fade = min(len(data) // 2, int(0.005 * rate))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)[:, None]
        data[:fade] *= ramp
        data[len(data) - fade:] *= ramp[::-1]
    if not len(data):
        raise DecodeError(f"nothing to play at {start_s:.3f} s")
    out = io.BytesIO()
    sf.write(out, data, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def _cut_with_render(path: str, start_s: float, dur_s: float) -> bytes:
    return _rendered([{"path": path, "start": start_s, "dur": dur_s}])


def _rendered(rows: list[dict], **options) -> bytes:
    """render_units (units/render.py) into a private temporary folder, as WAV bytes."""
    from ..units.render import render_units

    folder = tempfile.mkdtemp(prefix="audiotrove-serve-")
    try:
        out = os.path.join(folder, "units.wav")
        render_units(rows, out, **options)
        with open(out, "rb") as fh:
            return fh.read()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def picture(path: str, *, duration_s: float | None, clipped: list | None = None) -> bytes:
    """Waveform above spectrogram (WebP), as the report draws them (report/media.py)."""
    from ..report.media import overview, thumbnail_image

    ov = overview(path, duration_s=duration_s)
    return thumbnail_image(ov, sections=[(float(s[0]), float(s[1])) for s in (clipped or [])])


def render_selection(rows: list[dict]) -> bytes:
    """The units (path, start, dur) one after the other as one WAV file (units/render.py)."""
    return _rendered(rows, gap_s=0.1)


__all__ = ["ByteCache", "cut_wav", "picture", "render_selection", "media_type", "MAX_CUT_S"]
