"""Put new audio into a video file without touching the picture (PyAV / FFmpeg).

`remux_audio(video, audio, out)` writes `out` with every stream of `video` copied packet
for packet (no decoding, no re-encoding: the video bytes are identical) except its first
audio stream, which is replaced by `audio` (a file of the same duration, e.g. the enhanced
WAV), encoded with a codec the container holds:

    mp4 / m4v / mov / 3gp -> AAC        mkv -> FLAC (lossless)
    webm / ogg / ogv      -> Opus       avi -> PCM 16-bit

The audio is encoded block by block and interleaved with the copied packets by time, so
memory stays bounded on long videos. What describes the file is kept: the container's tags
(title, creation_time...), every stream's tags (language, handler name...), dispositions
(default, forced...) and time bases (MP4/MOV: the video track's timescale, which FFmpeg would
otherwise raise to >= 10000, e.g. 1/2997 -> 1/11988); the new audio stream takes the replaced
one's tags and disposition. Tags that describe the old encoding or the old stream's statistics
(encoder, Matroska's DURATION / NUMBER_OF_FRAMES / BPS...) are left for the muxer to write. The output is written under a temporary name and
renamed when complete (never over an input: see io.write.same_file).
"""
from __future__ import annotations

import os
import secrets
from fractions import Fraction
from pathlib import Path

import numpy as np

from .write import WriteError, same_file

# container (by output extension) -> (PyAV muxer, audio encoder)
CONTAINERS = {
    ".mp4": ("mp4", "aac"), ".m4v": ("mp4", "aac"), ".mov": ("mov", "aac"), ".3gp": ("3gp", "aac"),
    ".mkv": ("matroska", "flac"), ".webm": ("webm", "libopus"), ".ogv": ("ogg", "libopus"),
    ".ogg": ("ogg", "libopus"), ".avi": ("avi", "pcm_s16le"),
}
OPUS_RATES_HZ = (8000, 12000, 16000, 24000, 48000)
# tags the muxer writes itself, or that describe the old stream's bytes (Matroska statistics)
_MUXER_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands", "duration",
               "number_of_frames", "number_of_bytes", "bps", "vendor_id"}
_MOV_MUXERS = {"mp4", "mov", "3gp"}
AUDIO_CHUNK = 8192          # samples encoded per step
LEAD_S = 0.5                # audio is muxed this far ahead of the copied packets


def remux_audio(video_path: str | os.PathLike, audio_path: str | os.PathLike,
                out_path: str | os.PathLike, *, protect: list | tuple = (),
                bitrate: int | None = None) -> dict:
    """Copy `video_path`'s streams into `out_path`, its first audio stream replaced by the
    audio of `audio_path`. Returns {"audio_codec", "copied_packets", "audio_frames",
    "dropped_streams"}; raises WriteError when a video stream cannot be copied."""
    import av

    out_path = Path(out_path)
    for other in (video_path, audio_path, *protect):
        if same_file(out_path, other):
            raise WriteError(f"refusing to write over an input file: {out_path}")
    ext = out_path.suffix.lower()
    if ext not in CONTAINERS:
        raise WriteError(f"cannot write video container {ext or '(none)'}: use one of "
                         f"{', '.join(sorted(CONTAINERS))}")
    muxer, codec = CONTAINERS[ext]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.stem}.part-{os.getpid()}-{secrets.token_hex(4)}{out_path.suffix}")
    try:
        info = _remux(av, str(video_path), str(audio_path), str(tmp), muxer, codec, bitrate)
        os.replace(tmp, out_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return info


def _remux(av, video_path, audio_path, tmp, muxer, codec, bitrate):
    import soundfile as sf

    with av.open(video_path, metadata_errors="ignore") as src, sf.SoundFile(audio_path) as audio, \
            av.open(tmp, "w", format=muxer, options=_muxer_options(src, muxer)) as dst:
        in_audio = src.streams.audio[0] if src.streams.audio else None
        if in_audio is None:
            raise WriteError("the video has no audio stream to replace")
        _copy_tags(src.metadata, dst.metadata)
        rate, channels = audio.samplerate, audio.channels
        copies = {}
        dropped = []
        out_audio = None
        for s in src.streams:
            if s.index == in_audio.index:
                out_audio = _audio_stream(dst, codec, rate, channels, bitrate or _bitrate(in_audio, channels))
                _describe_like(out_audio, s, time_base=False)
                continue
            try:
                copies[s.index] = dst.add_stream_from_template(s)
                _describe_like(copies[s.index], s, time_base=True)
            except Exception as exc:
                name = getattr(s.codec_context, "name", None) or "unknown"
                if s.type == "video":
                    raise WriteError(f"cannot copy the {name} video stream into {muxer} with the bundled "
                                     f"FFmpeg ({type(exc).__name__}: {exc})") from exc
                dropped.append(f"{s.type} #{s.index} ({name})")  # e.g. a data track the muxer cannot hold
        enc_rate = out_audio.codec_context.sample_rate
        resampler = None
        if enc_rate != rate:  # only Opus forces this (48 kHz family)
            import soxr

            resampler = soxr.ResampleStream(rate, enc_rate, channels, dtype="float32", quality="HQ")
        state = {"pts": 0, "done": False, "frames": 0}

        def pump(until_s: float) -> None:
            while not state["done"] and state["pts"] / enc_rate < until_s:
                block = audio.read(AUDIO_CHUNK, dtype="float32", always_2d=True)
                last = len(block) < AUDIO_CHUNK
                if resampler is not None:
                    block = resampler.resample_chunk(block, last=last)
                if len(block):
                    _encode(av, dst, out_audio, block, state, enc_rate)
                if last:
                    for packet in out_audio.encode(None):
                        dst.mux(packet)
                    state["done"] = True

        copied = 0
        for packet in (src.demux([src.streams[i] for i in copies]) if copies else ()):
            if packet.dts is None and packet.size == 0:
                continue  # demuxer flush packet
            t = float(packet.dts * packet.time_base) if packet.dts is not None and packet.time_base else 0.0
            pump(t + LEAD_S)
            packet.stream = copies[packet.stream.index]
            dst.mux(packet)
            copied += 1
        pump(float("inf"))
    return {"audio_codec": codec, "copied_packets": copied, "audio_frames": state["frames"],
            "dropped_streams": dropped}


def _copy_tags(src: dict, dst: dict) -> None:
    for key, value in src.items():
        low = key.lower()
        if low not in _MUXER_TAGS and not low.startswith("_statistics"):
            dst[key] = value


def _describe_like(out, s, *, time_base: bool) -> None:
    """Give stream `out` the tags, disposition (and time base) of the input stream `s`."""
    _copy_tags(s.metadata, out.metadata)
    try:
        out.disposition = s.disposition
    except (AttributeError, TypeError, ValueError):  # pragma: no cover - older PyAV
        pass
    if time_base and s.time_base:
        out.time_base = s.time_base


def _muxer_options(src, muxer: str) -> dict:
    """MP4/MOV: keep the video track's timescale (FFmpeg raises one under 10000 by doubling)."""
    video = src.streams.video[0] if src.streams.video else None
    if muxer in _MOV_MUXERS and video is not None and video.time_base:
        return {"video_track_timescale": str(video.time_base.denominator)}
    return {}


def _audio_stream(dst, codec, rate, channels, bitrate):
    layout = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}.get(channels)
    if layout is None:
        raise WriteError(f"cannot encode {channels} audio channels into a video container")
    if codec == "libopus" and rate not in OPUS_RATES_HZ:
        rate_out = 48000
    else:
        rate_out = rate
    stream = dst.add_stream(codec, rate=rate_out)
    stream.codec_context.layout = layout
    stream.codec_context.format = {"aac": "fltp", "libopus": "flt", "flac": "s32", "pcm_s16le": "s16"}[codec]
    if codec in ("aac", "libopus"):
        stream.codec_context.bit_rate = int(bitrate)
    stream.time_base = Fraction(1, rate_out)
    return stream


def _bitrate(in_audio, channels: int) -> int:
    rate = in_audio.bit_rate or in_audio.codec_context.bit_rate or 0
    return int(rate) if rate and rate >= 32000 * min(channels, 2) else 96000 * min(channels, 2) + 64000 * max(channels - 2, 0)


def _encode(av, dst, stream, block: np.ndarray, state: dict, rate: int) -> None:
    fmt = stream.codec_context.format.name
    layout = stream.codec_context.layout.name
    if fmt == "fltp":
        data = np.ascontiguousarray(block.T)
    elif fmt == "flt":
        data = np.ascontiguousarray(block.reshape(1, -1))
    elif fmt == "s32":
        data = (np.clip(block, -1.0, 1.0 - 2 ** -31) * 2 ** 31).astype(np.int32).reshape(1, -1)
    elif fmt == "s16":
        data = (np.clip(block, -1.0, 1.0 - 2 ** -15) * 2 ** 15).astype(np.int16).reshape(1, -1)
    else:  # pragma: no cover - formats are chosen above
        raise WriteError(f"unsupported sample format {fmt}")
    frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
    frame.sample_rate = rate
    frame.pts = state["pts"]
    frame.time_base = Fraction(1, rate)
    state["pts"] += len(block)
    state["frames"] += len(block)
    for packet in stream.encode(frame):
        dst.mux(packet)
