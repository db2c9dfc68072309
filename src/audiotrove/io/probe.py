"""Container facts from the header, without decoding the audio (PyAV / FFmpeg).

Returns the `media_info` part of the JSON contract:
    container: kind, duration (s), bitrate (bit/s), size (bytes)
    audio:     codec, channels, sample_rate (Hz), bit_depth (bits; null where lossy)
    has_audio, has_video (attached cover pictures do not count as video)
"""
from __future__ import annotations

import os

from .decode import DecodeError, _av_message, _check_readable

LOSSY_CODECS = {
    "mp1", "mp2", "mp3", "mp3float", "mp2float", "aac", "aac_latm", "vorbis", "opus", "libopus",
    "wmav1", "wmav2", "wmapro", "wmavoice", "ac3", "eac3", "dts", "amr_nb", "amr_wb", "speex",
    "gsm", "gsm_ms", "qdm2", "cook", "atrac3", "ra_144", "ra_288", "nellymoser", "g723_1", "g729",
    "adpcm_ms", "adpcm_ima_wav", "adpcm_ima_qt", "adpcm_g722", "adpcm_g726", "adpcm_yamaha",
}

# FFmpeg demuxer names -> the short name users know.
_CONTAINER_NAMES = {
    "mov,mp4,m4a,3gp,3g2,mj2": "mp4",
    "matroska,webm": "matroska",
    "asf": "asf",
    "ogg": "ogg",
    "wav": "wav",
    "aiff": "aiff",
    "flac": "flac",
    "mp3": "mp3",
}


def probe(path: str | os.PathLike) -> dict:
    """Read `media_info` from the container header. Raise DecodeError if it is not media."""
    import av

    from . import raw

    path = os.fspath(path)
    _check_readable(path)
    fmt = raw.declared(path)
    if fmt is not None:
        return raw.media_info(path, fmt)
    size_bytes = os.path.getsize(path)
    try:
        with av.open(path, metadata_errors="ignore") as container:
            audio_streams = list(container.streams.audio)
            video_streams = [s for s in container.streams.video if not _is_cover_art(s)]
            kind = _container_kind(container.format.name, path)
            duration_s = container.duration / 1_000_000 if container.duration else None
            audio = _audio_info(audio_streams[0], path) if audio_streams else None
            if audio_streams and duration_s is None:
                duration_s = _stream_duration_s(audio_streams[0])
            bitrate = container.bit_rate or None
    except Exception as exc:
        hint = f" ({raw.HINT})" if os.path.splitext(path)[1].lower() in raw.RAW_EXTENSIONS else ""
        raise DecodeError(f"not a readable audio/video file: {_av_message(exc)}{hint}") from exc
    if not audio_streams and os.path.splitext(path)[1].lower() in raw.RAW_EXTENSIONS:
        raise DecodeError(f"no audio stream in this file ({raw.HINT})")
    if bitrate is None and duration_s:
        bitrate = int(size_bytes * 8 / duration_s)
    return {
        "container": {
            "kind": kind,
            "duration": duration_s,
            "bitrate": int(bitrate) if bitrate else None,
            "size": size_bytes,
        },
        "audio": audio,
        "has_audio": bool(audio_streams),
        "has_video": bool(video_streams),
    }


def _audio_info(stream, path: str) -> dict:
    ctx = stream.codec_context
    if ctx is None:  # FFmpeg has no decoder for the stream's codec tag
        raise DecodeError("unknown or unsupported audio codec (no decoder for it)")
    # The codec's name ("mp3", "mp4als"), not its decoder's ("mp3float", "als"): as ffprobe says.
    codec = getattr(ctx.codec, "canonical_name", None) or ctx.name
    return {
        "codec": codec,
        "channels": int(ctx.channels or 0),
        "sample_rate": int(ctx.sample_rate or 0),
        "bit_depth": _bit_depth(ctx, codec, path),
    }


# libsndfile subtypes -> bits per sample (PyAV does not expose FFmpeg's bits_per_raw_sample).
_SUBTYPE_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "FLOAT": 32,
                 "DOUBLE": 64, "ULAW": 8, "ALAW": 8}


def _bit_depth(ctx, codec: str, path: str) -> int | None:
    if codec in LOSSY_CODECS:
        return None
    try:
        import soundfile as sf

        bits = _SUBTYPE_BITS.get(sf.info(path).subtype)
        if bits:
            return bits
    except Exception:
        pass  # not a libsndfile format: fall back to FFmpeg's view
    if codec.startswith("pcm_"):  # pcm_s16le, pcm_f32le, pcm_u8, pcm_mulaw ...
        digits = "".join(ch for ch in codec.split("_")[1] if ch.isdigit())
        return int(digits) if digits else 8
    fmt = getattr(ctx, "format", None)
    if fmt is not None and getattr(fmt, "bytes", 0):
        return int(fmt.bytes * 8)
    return None


def _stream_duration_s(stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return None


def _is_cover_art(stream) -> bool:
    disposition = getattr(stream, "disposition", None)
    try:
        if disposition is not None and "attached_pic" in str(disposition).lower():
            return True
    except Exception:
        pass
    frames = getattr(stream, "frames", 0) or 0
    return stream.codec_context.name in ("mjpeg", "png", "bmp") and frames <= 1


def _container_kind(format_name: str, path: str) -> str:
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if format_name == "matroska,webm" and ext == "webm":
        return "webm"
    if format_name == "mov,mp4,m4a,3gp,3g2,mj2" and ext in ("mov", "m4a", "3gp"):
        return ext
    return _CONTAINER_NAMES.get(format_name, format_name.split(",")[0])
