"""Write audio files atomically, block by block.

    with open_writer("out/a.enhanced.flac", sample_rate=44100, channels=2,
                     protect=["in/a.wav"]) as w:
        for block in blocks:
            w.write(block)
    # the file appears under its name only now, complete (temporary name + os.replace)

The file is written under a hidden temporary name in the same folder and renamed when the
`with` block ends normally; on an exception the temporary file is removed and nothing is
left behind. A path in `protect` (the inputs) is never written to, whatever the output
name. Formats (soundfile / libsndfile): wav (PCM 24-bit by default, or float), flac (24-bit),
mp3 (MPEG Layer III; libsndfile's MPEG rates only: 8 to 48 kHz, 1 or 2 channels), ogg
(Vorbis). Vorbis is fed in small writes: libsndfile's Vorbis encoder is known to stall or
fail on very large single writes, and this keeps memory flat on long files too.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import numpy as np

from ..errors import ItemError

# format name -> (libsndfile major format, default subtype)
FORMATS = {
    "wav": ("WAV", "PCM_24"),
    "flac": ("FLAC", "PCM_24"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "ogg": ("OGG", "VORBIS"),
}
MP3_RATES_HZ = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
OGG_WRITE_FRAMES = 8192
# RF64 past this size: a plain RIFF/WAV header cannot describe more than 4 GiB.
WAV_RF64_BYTES = 2**32 - 2**20


class WriteError(ItemError):
    """The output cannot be written; the message says why, for the user."""


def format_for(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The format name for `path` (its extension) or the explicit `fmt`; WriteError if unknown."""
    name = (fmt or Path(path).suffix.lstrip(".")).lower()
    if name == "oga":
        name = "ogg"
    if name not in FORMATS:
        raise WriteError(f"cannot write {name or 'files without an extension'!r}: "
                         f"use one of {', '.join(FORMATS)}")
    return name


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when two paths name the same file (existing or not)."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


class AudioWriter:
    """Block writer to a temporary file, renamed into place by `commit()`."""

    def __init__(self, path: str | os.PathLike, *, sample_rate: int, channels: int,
                 fmt: str | None = None, subtype: str | None = None,
                 protect: list | tuple = (), expected_frames: int | None = None):
        import soundfile as sf

        self.path = Path(path)
        self.fmt = format_for(self.path, fmt)
        for other in protect:
            if same_file(self.path, other):
                raise WriteError(f"refusing to write over an input file: {self.path}")
        major, default_subtype = FORMATS[self.fmt]
        self.subtype = subtype or default_subtype
        if self.fmt == "mp3":
            if sample_rate not in MP3_RATES_HZ:
                raise WriteError(f"mp3 cannot store {sample_rate} Hz audio (MPEG rates are 8 to 48 kHz): "
                                 "choose --format flac or wav")
            if channels > 2:
                raise WriteError(f"mp3 holds 1 or 2 channels, not {channels}: choose --format flac or wav")
        if self.fmt == "flac" and channels > 8:
            raise WriteError(f"flac holds at most 8 channels, not {channels}: choose --format wav")
        if self.fmt == "wav" and expected_frames is not None:
            bytes_per = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}.get(self.subtype, 4)
            if expected_frames * channels * bytes_per > WAV_RF64_BYTES:
                major = "RF64"
        self.sample_rate = sample_rate
        self.channels = channels
        self.frames = 0
        self.clipped_samples = 0
        self._pcm = self.subtype.startswith("PCM") or self.fmt in ("mp3", "ogg")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp_path = self.path.with_name(f".{self.path.stem}.part-{os.getpid()}-{secrets.token_hex(4)}"
                                            f"{self.path.suffix}")
        try:
            self._file = sf.SoundFile(self.tmp_path, "w", samplerate=sample_rate, channels=channels,
                                      format=major, subtype=self.subtype)
        except Exception as exc:
            self._remove_tmp()
            raise WriteError(f"cannot write {self.fmt} ({self.subtype}, {sample_rate} Hz, {channels} ch): {exc}") from exc
        self._closed = False

    def write(self, block: np.ndarray) -> None:
        block = np.asarray(block, np.float32)
        if block.ndim == 1:
            block = block[:, None]
        if block.shape[1] != self.channels:
            raise ValueError(f"expected {self.channels} channels, got {block.shape[1]}")
        if self._pcm:
            over = np.abs(block) > 1.0
            if over.any():
                self.clipped_samples += int(over.sum())
                block = np.clip(block, -1.0, 1.0)
        step = OGG_WRITE_FRAMES if self.fmt == "ogg" else max(len(block), 1)
        for i in range(0, len(block), step):
            self._file.write(block[i:i + step])
        self.frames += len(block)

    def commit(self) -> Path:
        """Close and rename into place; returns the final path."""
        if self._closed:
            return self.path
        self._file.close()
        self._closed = True
        os.replace(self.tmp_path, self.path)
        return self.path

    def abort(self) -> None:
        """Close and remove the temporary file (the final name is untouched)."""
        if not self._closed:
            try:
                self._file.close()
            except Exception:
                pass
            self._closed = True
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        try:
            os.unlink(self.tmp_path)
        except (FileNotFoundError, AttributeError):
            pass

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def open_writer(path: str | os.PathLike, *, sample_rate: int, channels: int, fmt: str | None = None,
                subtype: str | None = None, protect: list | tuple = (),
                expected_frames: int | None = None) -> AudioWriter:
    """An `AudioWriter` (use it in a `with` block: committed on success, removed on error)."""
    return AudioWriter(path, sample_rate=sample_rate, channels=channels, fmt=fmt, subtype=subtype,
                       protect=protect, expected_frames=expected_frames)


def write_audio(path: str | os.PathLike, audio: np.ndarray, *, sample_rate: int, fmt: str | None = None,
                subtype: str | None = None, protect: list | tuple = ()) -> Path:
    """Write a whole array atomically (frames[, channels])."""
    a = np.asarray(audio, np.float32)
    channels = 1 if a.ndim == 1 else a.shape[1]
    with open_writer(path, sample_rate=sample_rate, channels=channels, fmt=fmt, subtype=subtype,
                     protect=protect, expected_frames=len(a)) as w:
        for i in range(0, len(a), 65536):
            w.write(a[i:i + 65536])
    return Path(path)
