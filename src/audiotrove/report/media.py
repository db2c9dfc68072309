"""Per-file pictures and sound for the report: a waveform + spectrogram thumbnail (PNG) computed
in one streaming pass over the decoded blocks (memory bounded at any length), and, where the
browser cannot play the original or the page must be portable, a short MP3 preview.

Playback decision (documented in the report's footer): the player's source is the ORIGINAL file,
by a path relative to the report (so the page plays it from the collection on this machine,
with seeking over the whole file), when browsers play its codec and container; otherwise, or
with `--embed-audio`, the page embeds a preview: the first PREVIEW_S seconds re-encoded to MP3,
and still links to the original. Restored files (`enhance` outputs) and their originals are
played the same way (restored_media); an output that no longer exists gets no player.
"""
from __future__ import annotations

import base64
import io
import math
import os
import urllib.parse
from pathlib import Path

import numpy as np

THUMB_COLUMNS = 600
N_FFT = 1024
MAX_THUMB_S = 600.0  # thumbnails cover at most the first 10 minutes (the caption says so)
PREVIEW_S = 30.0

# Codecs in containers that Chromium and Firefox play natively (Safari lacks Ogg/Opus on old
# versions). PCM WAV of 8/16/24/32-bit integer and 32-bit float play everywhere relevant.
BROWSER_PLAYABLE = {
    "wav": {"pcm_u8", "pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le"},
    "mp3": {"mp3", "mp3float"},
    "ogg": {"vorbis", "opus", "flac"},
    "flac": {"flac"},
    "mp4": {"aac", "mp3", "mp3float"},
    "m4a": {"aac"},
    "webm": {"opus", "vorbis"},
}
MIME = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "flac": "audio/flac",
        "mp4": "audio/mp4", "m4a": "audio/mp4", "webm": "audio/webm"}


def browser_playable(container: str | None, codec: str | None) -> bool:
    return bool(container and codec and codec in BROWSER_PLAYABLE.get(container, ()))


def relative_url(path: str, report_dir: Path) -> str:
    """A URL for <audio src> / <a href>: relative to the report when both are local files."""
    if "://" in path:
        return path
    try:
        rel = os.path.relpath(path, start=report_dir)
    except ValueError:  # another drive (Windows)
        return Path(path).resolve().as_uri()
    return urllib.parse.quote(rel.replace(os.sep, "/"))


# ------------------------------------------------------------------------------------ overview


def overview(path: str, *, duration_s: float | None, columns: int = THUMB_COLUMNS, n_fft: int = N_FFT,
             max_seconds: float = MAX_THUMB_S, block_frames: int = 65536) -> dict:
    """Streaming summary of the first `max_seconds` of a file: per-column min/max envelope and
    mean power spectrum (dB). Columns map to time using the known duration (else max_seconds)."""
    from ..io.decode import open_audio

    reader = open_audio(path)
    sr = reader.sample_rate
    span_s = min(duration_s, max_seconds) if duration_s else max_seconds
    total = max(1, int(round(span_s * sr)))
    limit = int(max_seconds * sr)
    # Short files get a shorter FFT so that most columns hold a frame of their own.
    while n_fft > 128 and total // n_fft < columns // 2:
        n_fft //= 2
    env_min = np.full(columns, np.inf)
    env_max = np.full(columns, -np.inf)
    spec = np.zeros((columns, n_fft // 2 + 1))
    spec_n = np.zeros(columns)
    window = np.hanning(n_fft).astype(np.float32)
    carry = np.zeros(0, dtype=np.float32)
    pos = 0  # samples consumed (mono)
    frame_start = 0  # sample index of carry[0]
    for block in reader.blocks(block_frames):
        mono = block.mean(axis=1) if block.ndim == 2 else block
        mono = np.nan_to_num(mono.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        if pos + len(mono) > limit:
            mono = mono[:max(0, limit - pos)]
        if len(mono):
            col = np.minimum((np.arange(pos, pos + len(mono)) * columns) // total, columns - 1)
            starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
            cols = col[starts]
            np.minimum.at(env_min, cols, np.minimum.reduceat(mono, starts))
            np.maximum.at(env_max, cols, np.maximum.reduceat(mono, starts))
            buf = np.concatenate([carry, mono])
            n_frames = len(buf) // n_fft
            if n_frames:
                frames = buf[:n_frames * n_fft].reshape(n_frames, n_fft) * window
                power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
                fcol = np.minimum(((frame_start + np.arange(n_frames) * n_fft) * columns) // total,
                                  columns - 1)
                np.add.at(spec, fcol, power)
                np.add.at(spec_n, fcol, 1)
            carry = buf[n_frames * n_fft:]
            frame_start += n_frames * n_fft
            pos += len(mono)
        if pos >= limit:
            break
    decoded_s = pos / sr
    used = int(min(columns, math.ceil(pos * columns / total))) if pos else 0
    env_min, env_max = env_min[:used], env_max[:used]
    filled = np.isfinite(env_min)
    env_min[~filled] = 0.0
    env_max[~filled] = 0.0
    spec, spec_n = spec[:used], spec_n[:used]
    have = np.flatnonzero(spec_n > 0)
    if have.size and have.size < used:  # columns between frames take the nearest frame's spectrum
        nearest = have[np.clip(np.searchsorted(have, np.arange(used)), 0, have.size - 1)]
        left = have[np.clip(np.searchsorted(have, np.arange(used)) - 1, 0, have.size - 1)]
        pick = np.where(np.abs(left - np.arange(used)) <= np.abs(nearest - np.arange(used)), left, nearest)
        spec, spec_n = spec[pick], spec_n[pick]
    with np.errstate(divide="ignore"):
        spec_db = 10 * np.log10(np.where(spec_n[:, None] > 0, spec / np.maximum(spec_n[:, None], 1), 0)
                                / (window.sum() ** 2) + 1e-12)
    return {"sample_rate": sr, "seconds": decoded_s, "truncated": pos >= limit and (
        duration_s is None or duration_s > max_seconds + 1e-6), "env_min": env_min, "env_max": env_max,
        "spec_db": spec_db, "span_s": span_s}


def thumbnail_image(ov: dict, *, sections: list | None = None, width_px: int = 760, dpi: int = 100) -> bytes:
    """Waveform (clipped sections shaded red) above a spectrogram, as WebP bytes (plots.figure_bytes)."""
    from matplotlib.figure import Figure

    used = len(ov["env_min"])
    seconds = ov["span_s"] * used / THUMB_COLUMNS if used else ov["seconds"]
    seconds = max(seconds, 1e-3)
    fig = Figure(figsize=(width_px / dpi, 2.6), dpi=dpi)
    ax1 = fig.add_axes((0.07, 0.56, 0.92, 0.40))
    ax2 = fig.add_axes((0.07, 0.14, 0.92, 0.40), sharex=ax1)
    t = np.linspace(0, seconds, used) if used else np.zeros(0)
    ax1.fill_between(t, ov["env_min"], ov["env_max"], color="#3465a4", linewidth=0.4)
    ax1.set_ylim(-1.05, 1.05)
    ax1.set_yticks([-1, 0, 1])
    ax1.axhline(1.0, color="#bbb", linewidth=0.5)
    ax1.axhline(-1.0, color="#bbb", linewidth=0.5)
    for start, end in (sections or [])[:200]:
        if start < seconds:
            ax1.axvspan(start, max(end, start + seconds / 400), color="#cc0000", alpha=0.35, linewidth=0)
    ax1.tick_params(labelbottom=False, labelsize=7)
    spec = ov["spec_db"]
    if spec.size:
        # A fixed scale in dB re full scale, so that a quiet file looks quiet.
        ax2.imshow(spec.T, origin="lower", aspect="auto", cmap="magma", vmin=-110.0, vmax=-10.0,
                   extent=(0, seconds, 0, ov["sample_rate"] / 2000.0), interpolation="nearest")
    ax2.set_ylabel("kHz", fontsize=7)
    ax2.set_xlim(0, seconds)
    ax2.tick_params(labelsize=7)
    ax2.set_xlabel("seconds" + (f" (first {seconds:.0f} s shown)" if ov["truncated"] else ""), fontsize=7)
    from .plots import figure_bytes

    return figure_bytes(fig, kind="webp")


# ------------------------------------------------------------------------------------ preview


def mp3_preview(path: str, *, seconds: float = PREVIEW_S, bitrate: int = 64000) -> bytes:
    """The first `seconds` of a file as MP3 (mono or stereo, 44.1/48/32/... kHz), for embedding."""
    import av

    from ..io.decode import open_audio

    reader = open_audio(path)
    sr_in = reader.sample_rate
    channels = 1 if reader.channels == 1 else 2
    rates = (48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
    out_rate = min(rates, key=lambda r: (abs(r - sr_in), -r)) if sr_in not in rates else sr_in
    limit = int(seconds * sr_in)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=out_rate)
        stream.layout = "mono" if channels == 1 else "stereo"
        stream.bit_rate = bitrate
        resampler = av.AudioResampler(format="s16p", layout=stream.layout.name, rate=out_rate)
        done = 0
        pts = 0
        for block in reader.blocks():
            block = np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0)
            if block.shape[1] > 2:
                block = block[:, :2]
            if channels == 1 and block.shape[1] > 1:
                block = block.mean(axis=1, keepdims=True)
            block = block[:max(0, limit - done)]
            if not len(block):
                break
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(np.clip(block, -1, 1).T.astype(np.float32)), format="fltp",
                layout="mono" if block.shape[1] == 1 else "stereo")
            frame.sample_rate = sr_in
            frame.pts = pts
            pts += len(block)
            for rf in resampler.resample(frame):
                for packet in stream.encode(rf):
                    container.mux(packet)
            done += len(block)
            if done >= limit:
                break
        for rf in resampler.resample(None):
            for packet in stream.encode(rf):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def data_uri(mime: str, payload: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


# ------------------------------------------------------------------------------------ worker


def problem_media(task: dict) -> dict:
    """Everything the page shows for one problem file (runs in a worker process).

    task: path, duration (s), sections (clipped), embed (bool), playable (bool)
    returns: image (WebP bytes|None), thumb_error, preview (bytes|None), preview_error
    """
    out: dict = {"path": task["path"], "image": None, "thumb_error": None, "preview": None,
                 "preview_error": None, "truncated": False}
    if "://" in task["path"]:
        out["thumb_error"] = "not fetched yet (URL)"
        return out
    try:
        ov = overview(task["path"], duration_s=task.get("duration"))
        out["truncated"] = ov["truncated"]
        if len(ov["env_min"]):
            out["image"] = thumbnail_image(ov, sections=task.get("sections"))
        else:
            out["thumb_error"] = "no audio samples decoded"
    except Exception as exc:  # a failed file: the page says why instead of a picture
        out["thumb_error"] = _message(exc)
    if task.get("embed") or not task.get("playable"):
        try:
            out["preview"] = mp3_preview(task["path"])
        except Exception as exc:
            out["preview_error"] = _message(exc)
    return out


def restored_media(task: dict) -> dict:
    """How the page plays one restored file and its original (runs in a worker process).

    task: path (original), output (restored file), embed (bool), playable (original: bool)
    returns: exists (the output is a file now), kind, codec, playable (the output's container,
    codec and whether browsers play it, from the probe), error (why the output cannot be
    read), preview / preview_error (output), original_preview / original_error
    """
    out: dict = {"output": task["output"], "exists": False, "kind": None, "codec": None,
                 "playable": False, "error": None, "preview": None, "preview_error": None,
                 "original_preview": None, "original_error": None}
    if (task.get("embed") or not task.get("playable")) and "://" not in task["path"]:
        try:
            out["original_preview"] = mp3_preview(task["path"])
        except Exception as exc:
            out["original_error"] = _message(exc)
    output = task["output"]
    if "://" in output:
        out["exists"] = True  # remote: the browser fetches it (not checked here)
        return out
    out["exists"] = os.path.isfile(output)
    if not out["exists"]:
        return out
    try:
        from ..io.probe import probe

        info = probe(output)
        out["kind"] = (info.get("container") or {}).get("kind")
        out["codec"] = (info.get("audio") or {}).get("codec")
        out["playable"] = browser_playable(out["kind"], out["codec"])
    except Exception as exc:
        out["error"] = _message(exc)
        return out
    if task.get("embed") or not out["playable"]:
        try:
            out["preview"] = mp3_preview(output)
        except Exception as exc:
            out["preview_error"] = _message(exc)
    return out


def _message(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
