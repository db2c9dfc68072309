"""io/probe.py: the `media_info` part of the JSON contract, read from headers only."""
from __future__ import annotations

import json
import os

import pytest
from conftest import shared_data, tone, write_audio

from audiotrove.io.decode import DecodeError, open_audio
from audiotrove.io.probe import probe

# name: (container.kind, audio.codec, channels, sample_rate Hz, bit_depth, has_video)
EXPECTED = {
    "tone.wav": ("wav", "pcm_s16le", 1, 44100, 16, False),
    "stereo24.flac": ("flac", "flac", 2, 48000, 24, False),
    "speech.ogg": ("ogg", "vorbis", 1, 16000, None, False),
    "tone.mp3": ("mp3", "mp3", 1, 44100, None, False),
    "noise.aiff": ("aiff", "pcm_s16be", 1, 22050, 16, False),
    "stereo.m4a": ("m4a", "aac", 2, 44100, None, False),
    "clip.mp4": ("mp4", "aac", 1, 48000, None, True),
    "speech.webm": ("webm", "opus", 1, 48000, None, False),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_media_info_of_generated_files(media, name):
    kind, codec, channels, sample_rate, bit_depth, has_video = EXPECTED[name]
    info = probe(media[name])
    assert set(info) == {"container", "audio", "has_audio", "has_video"}
    assert set(info["container"]) == {"kind", "duration", "bitrate", "size"}
    assert set(info["audio"]) == {"codec", "channels", "sample_rate", "bit_depth"}
    assert info["container"]["kind"] == kind
    assert info["audio"] == {"codec": codec, "channels": channels, "sample_rate": sample_rate,
                             "bit_depth": bit_depth}
    assert info["has_audio"] is True and info["has_video"] is has_video
    size = os.path.getsize(media[name])
    assert info["container"]["size"] == size
    duration = info["container"]["duration"]
    assert abs(duration - 2.0) < 0.03, duration  # seconds
    bitrate = info["container"]["bitrate"]  # bit/s, about the file's bits over its duration
    assert isinstance(bitrate, int) and abs(bitrate - size * 8 / duration) < 0.1 * bitrate
    json.dumps(info)  # JSON-ready as it is


def test_pcm_wav_bitrate_and_bit_depths(tmp_path):
    audio = tone(seconds=1.0, sample_rate=8000, channels=2)
    for subtype, bits in (("PCM_U8", 8), ("PCM_16", 16), ("PCM_24", 24), ("PCM_32", 32),
                          ("FLOAT", 32), ("DOUBLE", 64)):
        info = probe(write_audio(tmp_path / f"{subtype}.wav", audio, 8000, subtype=subtype))
        assert info["audio"]["bit_depth"] == bits, subtype
        expected_bps = 8000 * 2 * bits
        assert abs(info["container"]["bitrate"] - expected_bps) < 0.02 * expected_bps


def test_probe_reads_the_header_without_decoding(tmp_path):
    """A FLAC cut short still probes with its header's duration; only decoding finds the cut."""
    whole = write_audio(tmp_path / "whole.flac", tone(seconds=6.0, sample_rate=16000), 16000)
    cut = tmp_path / "cut.flac"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    info = probe(cut)
    assert info["container"]["duration"] == pytest.approx(6.0, abs=0.01)
    assert info["container"]["size"] == len(data) // 3
    with pytest.raises(DecodeError):
        for _ in open_audio(cut).blocks():
            pass


def test_probe_errors_are_clear(tmp_path):
    text = tmp_path / "readme.wav"
    text.write_text("not audio at all\n")
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    folder = tmp_path / "folder.flac"
    folder.mkdir()
    for path, message in ((text, "not a readable audio/video file"), (empty, "empty file"),
                          (folder, "is a directory"), (tmp_path / "gone.wav", "file not found")):
        with pytest.raises(DecodeError, match=message):
            probe(path)


def test_cover_art_is_not_video_but_a_picture_stream_is():
    cover = shared_data("music", "Kevin_MacLeod_-_Vibe_Ace.ogg")  # Vorbis + embedded cover image
    assert probe(cover)["has_video"] is False
    ogv = shared_data("video", "tinytag_multi_stream.ogv")  # Theora video + Vorbis audio
    info = probe(ogv)
    assert info["has_video"] is True and info["audio"]["codec"] == "vorbis"
