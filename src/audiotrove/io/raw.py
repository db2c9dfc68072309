"""Headerless PCM: a file of bare samples, read with the format the user states.

    audiotrove add --raw 8000:1:s16le goforward.raw

A raw format is RATE:CHANNELS:FORMAT, FORMAT one of s8, u8, s16le, s16be, s24le, s24be, s32le,
s32be, f32le, f32be, f64le, f64be, ulaw, alaw (FFmpeg's names). The catalog keeps it with the
file (`files.raw_format`); the runner declares it for the file's path in the process that reads
it (`declare`), and `open_audio` / `probe` then read the file as that format.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

# FORMAT -> (libsndfile subtype, endian, bits per sample, FFmpeg codec name)
SAMPLE_FORMATS: dict[str, tuple[str, str, int, str]] = {
    "s8": ("PCM_S8", "FILE", 8, "pcm_s8"), "u8": ("PCM_U8", "FILE", 8, "pcm_u8"),
    "s16le": ("PCM_16", "LITTLE", 16, "pcm_s16le"), "s16be": ("PCM_16", "BIG", 16, "pcm_s16be"),
    "s24le": ("PCM_24", "LITTLE", 24, "pcm_s24le"), "s24be": ("PCM_24", "BIG", 24, "pcm_s24be"),
    "s32le": ("PCM_32", "LITTLE", 32, "pcm_s32le"), "s32be": ("PCM_32", "BIG", 32, "pcm_s32be"),
    "f32le": ("FLOAT", "LITTLE", 32, "pcm_f32le"), "f32be": ("FLOAT", "BIG", 32, "pcm_f32be"),
    "f64le": ("DOUBLE", "LITTLE", 64, "pcm_f64le"), "f64be": ("DOUBLE", "BIG", 64, "pcm_f64be"),
    "ulaw": ("ULAW", "FILE", 8, "pcm_mulaw"), "alaw": ("ALAW", "FILE", 8, "pcm_alaw"),
}
# Extensions that usually mean headerless samples: a failed probe of one says how to add it.
RAW_EXTENSIONS = frozenset((".raw", ".pcm", ".sln", ".s16", ".u8", ".ul", ".al"))
HINT = "headerless PCM? add it with --raw RATE:CHANNELS:FORMAT, e.g. --raw 8000:1:s16le"


@dataclass(frozen=True)
class RawFormat:
    sample_rate: int
    channels: int
    sample_format: str

    @property
    def text(self) -> str:
        return f"{self.sample_rate}:{self.channels}:{self.sample_format}"

    @property
    def bytes_per_frame(self) -> int:
        return SAMPLE_FORMATS[self.sample_format][2] // 8 * self.channels


def parse_raw(text: str) -> RawFormat:
    """'8000:1:s16le' -> RawFormat; ValueError saying what is wrong."""
    m = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*:\s*([a-z0-9]+)\s*", text or "")
    if not m:
        raise ValueError(f"--raw wants RATE:CHANNELS:FORMAT (e.g. 8000:1:s16le), not {text!r}")
    rate, channels, fmt = int(m.group(1)), int(m.group(2)), m.group(3)
    if fmt not in SAMPLE_FORMATS:
        raise ValueError(f"unknown raw sample format {fmt!r}: use one of {', '.join(SAMPLE_FORMATS)}")
    if not 1000 <= rate <= 768_000:
        raise ValueError(f"raw sample rate {rate} Hz is outside 1000-768000")
    if not 1 <= channels <= 64:
        raise ValueError(f"raw channel count {channels} is outside 1-64")
    return RawFormat(rate, channels, fmt)


_DECLARED: dict[str, RawFormat] = {}


def declare(path: str | os.PathLike, raw_format: str | RawFormat | None) -> None:
    """Read `path` as this raw format in this process (None: forget it)."""
    key = os.path.abspath(os.fspath(path))
    if raw_format is None:
        _DECLARED.pop(key, None)
        return
    _DECLARED[key] = raw_format if isinstance(raw_format, RawFormat) else parse_raw(raw_format)


def declared(path: str | os.PathLike) -> RawFormat | None:
    """The raw format declared for `path`, if any."""
    return _DECLARED.get(os.path.abspath(os.fspath(path))) if _DECLARED else None


def media_info(path: str, fmt: RawFormat) -> dict:
    """The `media_info` object of a raw file (what `probe` returns for others)."""
    size = os.path.getsize(path)
    frames = size // fmt.bytes_per_frame
    return {
        "container": {"kind": "raw", "duration": frames / fmt.sample_rate,
                      "bitrate": fmt.sample_rate * fmt.bytes_per_frame * 8, "size": size},
        "audio": {"codec": SAMPLE_FORMATS[fmt.sample_format][3], "channels": fmt.channels,
                  "sample_rate": fmt.sample_rate, "bit_depth": SAMPLE_FORMATS[fmt.sample_format][2]},
        "has_audio": True,
        "has_video": False,
    }


def sound_file(path: str, fmt: RawFormat):
    """An open soundfile.SoundFile reading `path` as `fmt`."""
    import soundfile as sf

    subtype, endian, _, _ = SAMPLE_FORMATS[fmt.sample_format]
    return sf.SoundFile(path, mode="r", format="RAW", samplerate=fmt.sample_rate,
                        channels=fmt.channels, subtype=subtype, endian=endian)


__all__ = ["RawFormat", "parse_raw", "declare", "declared", "media_info", "sound_file",
           "SAMPLE_FORMATS", "RAW_EXTENSIONS", "HINT"]
