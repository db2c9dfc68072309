"""Stream any audio or video file as float32 blocks with bounded memory.

`open_audio(path)` returns an `AudioReader` whose `blocks()` yields arrays of
shape (frames, channels), float32, nominally in [-1, 1]. Every block but the last
has exactly `block_frames` frames, so consumers can rely on a fixed hop.

soundfile (libsndfile) is used where it can read the file (WAV, FLAC, OGG/Vorbis,
AIFF, MP3...): it is the fastest path. Everything else (MP4/AAC, Opus-in-WebM,
WMA, video containers) goes through PyAV, whose wheels bundle FFmpeg.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from ..errors import ItemError

DEFAULT_BLOCK_FRAMES = 65536
MIN_SAMPLE_RATE_HZ = 1_000  # below this, no measurement here means anything (K-weighting needs > 76 Hz)
MAX_SAMPLE_RATE_HZ = 768_000
MAX_CHANNELS = 64
# A decode that yields less than this share of the declared duration is a truncated file.
TRUNCATION_TOLERANCE = 0.9
TRUNCATION_MIN_MISSING_S = 0.5


class DecodeError(ItemError):
    """The file cannot be decoded as audio; the message says why, for the user."""


_progress_hook: Callable[[float], None] | None = None


def set_progress_hook(hook: Callable[[float], None] | None) -> None:
    """Call `hook(seconds)` with the duration of every block any reader yields in this process
    (the runner's workers report decoding progress and keep their time limit with it)."""
    global _progress_hook
    _progress_hook = hook


@dataclass
class AudioReader:
    path: str
    sample_rate: int
    channels: int
    backend: str  # "soundfile", "pyav" or "raw" (headerless PCM, io/raw.py)
    declared_frames: int | None = None  # from the header; None when unknown
    decoded_frames: int = field(default=0, init=False)

    def blocks(self, block_frames: int = DEFAULT_BLOCK_FRAMES) -> Iterator[np.ndarray]:
        """Yield float32 (frames, channels) blocks; check for truncation at the end."""
        if self.backend in ("soundfile", "raw"):
            source = _soundfile_blocks(self.path, block_frames)
        else:
            source = rebuffer(_pyav_frames(self.path, self.channels), block_frames, self.channels)
        self.decoded_frames = 0
        for block in source:
            self.decoded_frames += len(block)
            if _progress_hook is not None:
                _progress_hook(len(block) / self.sample_rate)
            yield block
        self._check_complete()

    def _check_complete(self) -> None:
        if self.decoded_frames == 0:
            raise DecodeError("no audio samples could be decoded (empty audio stream)")
        if self.declared_frames:
            missing = self.declared_frames - self.decoded_frames
            if (
                self.decoded_frames < TRUNCATION_TOLERANCE * self.declared_frames
                and missing / self.sample_rate > TRUNCATION_MIN_MISSING_S
            ):
                raise DecodeError(
                    f"truncated: decoded {self.decoded_frames / self.sample_rate:.2f} s of the "
                    f"{self.declared_frames / self.sample_rate:.2f} s the header declares"
                )


def open_audio(path: str | os.PathLike) -> AudioReader:
    """Open `path` for block decoding; raise DecodeError with a clear reason if it cannot be."""
    from . import raw

    path = os.fspath(path)
    _check_readable(path)
    fmt = raw.declared(path)
    if fmt is not None:  # headerless PCM, read as the format the user stated
        if os.path.getsize(path) < fmt.bytes_per_frame:
            raise DecodeError(f"no samples: the file is shorter than one {fmt.text} frame")
        reader = AudioReader(path, fmt.sample_rate, fmt.channels, "raw",
                             os.path.getsize(path) // fmt.bytes_per_frame)
        _check_format(reader)
        return reader
    _check_ogg_complete(path)
    reader = _open_soundfile(path)
    if reader is None:
        reader = _open_pyav(path)
    _check_format(reader)
    return reader


def read_all(path: str | os.PathLike, *, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode a whole file (or its first `max_seconds`) into memory. For short files and tests."""
    reader = open_audio(path)
    limit = None if max_seconds is None else int(max_seconds * reader.sample_rate)
    parts, n = [], 0
    for block in reader.blocks():
        parts.append(block)
        n += len(block)
        if limit is not None and n >= limit:
            break
    audio = np.concatenate(parts) if parts else np.zeros((0, reader.channels), np.float32)
    return (audio[:limit] if limit is not None else audio), reader.sample_rate


_FILE_TYPES = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def file_type_problem(mode: int) -> str | None:
    """Why a file of this st_mode must not be read as a recording (None for a regular file)."""
    for test, name in _FILE_TYPES:
        if test(mode):
            return f"not a regular file: {name}; reading it might never end"
    return None


def check_regular_file(path: str) -> None:
    """DecodeError unless `path` (links followed) is a regular file; nothing is opened."""
    try:
        st = os.stat(path)
    except OSError:
        return  # _check_readable says what is wrong
    problem = file_type_problem(st.st_mode)
    if problem:
        raise DecodeError(problem)


def _check_readable(path: str) -> None:
    if os.path.islink(path) and not os.path.exists(path):
        raise DecodeError("broken symbolic link (or a link loop)")
    if not os.path.exists(path):
        raise DecodeError("file not found")
    if os.path.isdir(path):
        raise DecodeError("is a directory, not a file")
    check_regular_file(path)
    if not os.access(path, os.R_OK):
        raise DecodeError("permission denied: the file is not readable")
    size = os.path.getsize(path)
    if size == 0:
        raise DecodeError("empty file (0 bytes)")


def _check_ogg_complete(path: str) -> None:
    """An Ogg stream ends with a page flagged end-of-stream; a cut file does not.

    Decoders read a truncated Ogg file to its last whole page without complaint, and its
    header has no total length to compare with, so the last page is looked at here.
    """
    with open(path, "rb") as f:
        if f.read(4) != b"OggS":
            return
        size = os.fstat(f.fileno()).st_size
        f.seek(max(0, size - 65536))
        tail = f.read()
    last = tail.rfind(b"OggS")
    if last < 0 or last + 6 > len(tail) or not tail[last + 5] & 0x04:
        raise DecodeError("truncated: the Ogg stream ends without its end-of-stream page")


def _check_format(reader: AudioReader) -> None:
    if not MIN_SAMPLE_RATE_HZ <= reader.sample_rate <= MAX_SAMPLE_RATE_HZ:
        raise DecodeError(f"implausible sample rate in header: {reader.sample_rate} Hz "
                          f"(audio is read from {MIN_SAMPLE_RATE_HZ} Hz to {MAX_SAMPLE_RATE_HZ} Hz)")
    if not 1 <= reader.channels <= MAX_CHANNELS:
        # A decoder that gives up on an absurd count says 0: the header's own number is clearer.
        declared = _header_channels(reader.path) or reader.channels
        raise DecodeError(f"implausible channel count in header: {declared} "
                          f"(audio is read with 1 to {MAX_CHANNELS} channels)")


def _header_channels(path: str) -> int | None:
    """The channel count a WAV (RIFF, RF64) or AIFF header declares, or None."""
    import struct

    try:
        with open(path, "rb") as f:
            head = f.read(12)
            big = head[:4] == b"FORM"
            if head[:4] not in (b"RIFF", b"RF64", b"FORM"):
                return None
            for _ in range(64):
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                tag, length = struct.unpack(">4sI" if big else "<4sI", chunk)
                if tag in (b"fmt ", b"COMM"):
                    body = f.read(4)
                    return struct.unpack(">h" if big else "<H", body[(0 if big else 2):(2 if big else 4)])[0]
                f.seek(length + (length & 1), 1)
    except (OSError, struct.error):
        return None
    return None


# --- soundfile -------------------------------------------------------------------------

_SOUNDFILE_EXTENSIONS = {".wav", ".wave", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".aifc",
                         ".afc", ".mp3", ".au", ".snd", ".w64", ".rf64", ".caf"}


def _open_soundfile(path: str) -> AudioReader | None:
    """Return a reader if libsndfile can read the file, else None (PyAV then tries)."""
    import soundfile as sf

    if os.path.splitext(path)[1].lower() not in _SOUNDFILE_EXTENSIONS:
        return None
    try:
        info = sf.info(path)
    except Exception:
        return None
    if info.frames <= 0 or info.samplerate <= 0 or info.channels <= 0:
        return None  # let PyAV try, and give its message
    if info.format == "MP3":
        # soundfile seeks after every read; libsndfile's MP3 seeks are only approximate
        # (mpg123 "fuzzy" seeking when the Xing table is off), and blocks then come back
        # partly zeroed. FFmpeg decodes MP3 in one forward pass, and trims encoder padding.
        return None
    # libsndfile's MP3 frame count can be an estimate; trust it only for PCM-like formats.
    declared = info.frames if info.format not in ("MPEG",) else None
    if info.format in ("WAV", "WAVEX", "AIFF"):
        declared = _pcm_header_frames(path, info.format, info.frames) or declared
    return AudioReader(path, int(info.samplerate), int(info.channels), "soundfile", declared)


def _pcm_header_frames(path: str, fmt: str, readable_frames: int) -> int | None:
    """Frames a WAV/AIFF header declares, when more than the file holds (else None).

    libsndfile (and FFmpeg) quietly shorten a truncated WAV/AIFF to the bytes present,
    so the header's own length is read here for `_check_complete` to flag truncation.
    """
    import struct

    big = fmt == "AIFF"
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(12)  # past RIFF/FORM, its size and WAVE/AIFF/AIFC
            while True:
                head = f.read(8)
                if len(head) < 8:
                    return None
                tag, length = struct.unpack(">4sI" if big else "<4sI", head)
                start = f.tell()
                if big and tag == b"COMM":
                    frames = struct.unpack(">I", f.read(6)[2:6])[0]
                    return frames if frames > readable_frames else None
                if not big and tag == b"data":
                    available = size - start
                    if length in (0, 0xFFFFFFFF) or length <= available or available <= 0:
                        return None  # streaming placeholder, or complete
                    return int(readable_frames * length / available)
                f.seek(start + length + (length & 1))
    except (OSError, struct.error):
        return None


def _soundfile_blocks(path: str, block_frames: int) -> Iterator[np.ndarray]:
    import soundfile as sf

    from . import raw

    fmt = raw.declared(path)
    try:
        with (sf.SoundFile(path) if fmt is None else raw.sound_file(path, fmt)) as f:
            while True:
                block = f.read(block_frames, dtype="float32", always_2d=True)
                if len(block) == 0:
                    return
                yield block
                if len(block) < block_frames:
                    return
    except sf.LibsndfileError as exc:
        raise DecodeError(f"decoding failed: {exc}") from exc


# --- PyAV --------------------------------------------------------------------------------

def _open_pyav(path: str) -> AudioReader:
    import av

    try:
        with av.open(path, metadata_errors="ignore") as container:
            streams = container.streams.audio
            if not streams:
                kinds = sorted({s.type for s in container.streams}) or ["none"]
                raise DecodeError(f"no audio stream (streams found: {', '.join(kinds)})")
            stream = streams[0]
            if stream.codec_context is None:  # FFmpeg has no decoder for the codec tag
                raise DecodeError("unknown or unsupported audio codec (no decoder for it)")
            rate = int(stream.codec_context.sample_rate or stream.sample_rate or 0)
            channels = int(stream.codec_context.channels or 0)
            declared = _pyav_declared_frames(container, stream, rate)
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"not a readable audio/video file: {_av_message(exc)}") from exc
    return AudioReader(path, rate, channels, "pyav", declared)


def _pyav_declared_frames(container, stream, rate: int) -> int | None:
    if stream.duration is not None and stream.time_base is not None:
        return int(round(float(stream.duration * stream.time_base) * rate))
    if container.duration is not None and container.duration > 0:
        return int(round(container.duration / 1_000_000 * rate))
    return None


def _pyav_frames(path: str, channels: int) -> Iterator[np.ndarray]:
    import av

    try:
        with av.open(path, metadata_errors="ignore") as container:
            stream = container.streams.audio[0]
            stream.thread_type = "AUTO"
            # Convert to planar float only when the decoder does not already give it (AAC, MP3,
            # Vorbis, Opus do): the conversion costs a fifth of the decode time.
            fmt = stream.codec_context.format
            resampler = None if fmt is not None and fmt.name == "fltp" else av.AudioResampler(format="fltp")
            for packet in container.demux(stream):
                for frame in _decode_packet(packet):
                    if resampler is None and frame.format.name == "fltp":
                        yield _frame_to_array(frame, channels)
                        continue
                    resampler = resampler or av.AudioResampler(format="fltp")
                    for out in resampler.resample(frame):
                        yield _frame_to_array(out, channels)
            if resampler is not None:
                for out in resampler.resample(None):
                    yield _frame_to_array(out, channels)
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"decoding failed: {_av_message(exc)}") from exc


def _decode_packet(packet):
    try:
        return packet.decode()
    except Exception as exc:  # a corrupt packet: report it, do not go on silently
        raise DecodeError(f"corrupt audio data at {_packet_time(packet)}: {_av_message(exc)}") from exc


def _packet_time(packet) -> str:
    if packet.pts is not None and packet.time_base is not None:
        return f"{float(packet.pts * packet.time_base):.2f} s"
    return "an unknown position"


def _frame_to_array(frame, channels: int) -> np.ndarray:
    planes = frame.to_ndarray()  # (channels, samples) for planar float
    if planes.shape[0] != channels:
        raise DecodeError(f"channel count changed mid-stream ({channels} -> {planes.shape[0]})")
    return np.ascontiguousarray(planes.T, dtype=np.float32)


def rebuffer(frames: Iterator[np.ndarray], block_frames: int, channels: int) -> Iterator[np.ndarray]:
    """Regroup variable-size decoder frames into fixed-size blocks."""
    pending: list[np.ndarray] = []
    count = 0
    for chunk in frames:
        pending.append(chunk)
        count += len(chunk)
        while count >= block_frames:
            joined = np.concatenate(pending)
            yield joined[:block_frames]
            rest = joined[block_frames:]
            pending, count = ([rest] if len(rest) else []), len(rest)
    if count:
        yield np.concatenate(pending)


def _av_message(exc: Exception) -> str:
    text = str(exc)
    # PyAV messages look like "[Errno 1094995529] Invalid data found when processing input: 'path'"
    if text.startswith("[Errno"):
        text = text.split("] ", 1)[-1]
    return text.split(": '", 1)[0].strip() or type(exc).__name__
