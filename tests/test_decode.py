"""io/decode.py: block streaming of every format, exact samples, bounded memory, clear errors."""
from __future__ import annotations

import os
import struct
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
from conftest import noise, speech_like, tone, write_audio

from audiotrove.io.decode import DecodeError, open_audio, read_all


def dominant_hz(audio: np.ndarray, sample_rate: int) -> float:
    x = audio[:, 0].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * sample_rate / len(x))


# --- exact samples for lossless formats ----------------------------------------------------

@pytest.mark.parametrize("name, subtype, tolerance", [
    ("a.wav", "FLOAT", 0.0),
    ("a.wav", "PCM_16", 1 / 32768),
    ("a.wav", "PCM_24", 1 / 2 ** 23),
    ("a.flac", "PCM_16", 1 / 32768),
    ("a.flac", "PCM_24", 1 / 2 ** 23),
    ("a.aiff", "PCM_16", 1 / 32768),
])
def test_lossless_decode_returns_the_written_samples(tmp_path, name, subtype, tolerance):
    original = np.concatenate([tone(freq_hz=300, seconds=0.5, sample_rate=32000, channels=2),
                               noise(seconds=0.5, sample_rate=32000, channels=2, seed=5)])
    path = write_audio(tmp_path / name, original, 32000, subtype=subtype)
    audio, sr = read_all(path)
    assert sr == 32000
    assert audio.dtype == np.float32 and audio.shape == original.shape
    assert np.max(np.abs(audio - original)) <= tolerance


# --- fixed-size blocks, independent of the block size --------------------------------------

@pytest.mark.parametrize("name", ["tone.wav", "stereo24.flac", "speech.ogg", "tone.mp3",
                                  "stereo.m4a", "speech.webm"])
def test_blocks_are_full_size_except_the_last_and_do_not_depend_on_block_size(media, name):
    reference = None
    for block_frames in (1000, 4096, 65536):
        reader = open_audio(media[name])
        blocks = list(reader.blocks(block_frames=block_frames))
        assert blocks, "no blocks"
        assert all(len(b) == block_frames for b in blocks[:-1])
        assert 0 < len(blocks[-1]) <= block_frames
        assert all(b.dtype == np.float32 and b.ndim == 2 and b.shape[1] == reader.channels
                   for b in blocks)
        joined = np.concatenate(blocks)
        assert reader.decoded_frames == len(joined)
        if reference is None:
            reference = joined
        elif name.endswith((".wav", ".flac")):
            assert np.array_equal(joined, reference)
        else:  # libmpg123 rounds differently with the read size: last-bit differences only
            np.testing.assert_allclose(joined, reference, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name, freq_hz, sample_rate, channels, backend", [
    ("tone.mp3", 880, 44100, 1, "pyav"),  # libsndfile's MP3 seeks are fuzzy: FFmpeg decodes MP3
    ("stereo.m4a", 660, 44100, 2, "pyav"),
])
def test_lossy_decode_keeps_pitch_rate_channels_and_length(media, name, freq_hz, sample_rate,
                                                           channels, backend):
    reader = open_audio(media[name])
    assert (reader.sample_rate, reader.channels, reader.backend) == (sample_rate, channels, backend)
    audio, sr = read_all(media[name])
    assert abs(dominant_hz(audio, sr) - freq_hz) < 2.0
    # codec delay and padding add at most a few frames of 1152/1024 samples
    assert abs(len(audio) - 2.0 * sr) <= 3 * 1152
    middle = audio[sr // 2: 3 * sr // 2]
    rms = np.sqrt(np.mean(middle.astype(np.float64) ** 2, axis=0))
    np.testing.assert_allclose(rms, 0.5 / np.sqrt(2), rtol=0.05)  # written at amplitude 0.5
    # No dropped stretches inside the tone (libsndfile once returned zeroed MP3 blocks here).
    for block_frames in (1000, 4096):
        blocks = np.concatenate(list(open_audio(media[name]).blocks(block_frames=block_frames)))
        inner = blocks[sr // 10: -sr // 10]
        assert np.mean(np.abs(inner) < 1e-3) < 0.01


def _envelope(x: np.ndarray, frames: int, hop: int) -> np.ndarray:
    """RMS per hop over the first `frames` frames of channel 0."""
    return np.sqrt(np.mean(x[: frames // hop * hop, 0].reshape(-1, hop) ** 2, axis=1))


def test_vorbis_and_opus_speech_keep_their_envelope(media):
    for name, rate in (("speech.ogg", 16000), ("speech.webm", 48000)):
        audio, sr = read_all(media[name])
        original = speech_like(seconds=2.0, sample_rate=rate, seed=1 if rate == 16000 else 4)
        assert sr == rate and audio.shape[1] == 1
        n = min(len(audio), len(original))
        # Compare 20 ms energy envelopes: the bursts and pauses must line up.
        hop = sr // 50
        corr = np.corrcoef(_envelope(audio, n, hop), _envelope(original, n, hop))[0, 1]
        assert corr > 0.9, (name, corr)


def test_audio_of_a_video_container_is_decoded(media):
    reader = open_audio(media["clip.mp4"])
    assert (reader.backend, reader.sample_rate, reader.channels) == ("pyav", 48000, 1)
    audio, _ = read_all(media["clip.mp4"])
    assert abs(len(audio) - 96000) <= 2048
    assert np.sqrt(np.mean(audio ** 2)) > 0.01


def test_read_all_max_seconds(media):
    audio, sr = read_all(media["stereo24.flac"], max_seconds=0.25)
    assert audio.shape == (12000, 2) and sr == 48000
    full, _ = read_all(media["stereo24.flac"])
    assert np.array_equal(audio, full[:12000])


def test_wrong_extension_is_read_by_content(tmp_path, media):
    flac_as_mp3 = tmp_path / "really_flac.mp3"
    flac_as_mp3.write_bytes(media["stereo24.flac"].read_bytes())
    aac_as_wav = tmp_path / "really_aac.wav"
    aac_as_wav.write_bytes(media["stereo.m4a"].read_bytes())
    a, _ = read_all(flac_as_mp3)
    b, _ = read_all(media["stereo24.flac"])
    assert np.array_equal(a, b)
    c, sr = read_all(aac_as_wav)
    assert sr == 44100 and c.shape[1] == 2 and abs(dominant_hz(c, sr) - 660) < 2


# --- bounded memory ------------------------------------------------------------------------

@pytest.mark.parametrize("name, seconds, sr, channels", [("long.wav", 120, 44100, 2),
                                                         ("long.m4a", 60, 16000, 1)])
def test_streaming_memory_does_not_grow_with_file_length(tmp_path, name, seconds, sr, channels):
    path = tmp_path / name
    if name.endswith(".wav"):
        with sf.SoundFile(path, "w", sr, channels, subtype="PCM_16") as f:
            for k in range(seconds // 10):
                f.write(tone(freq_hz=200 + 10 * k, seconds=10, sample_rate=sr, channels=channels))
    else:
        write_audio(path, tone(freq_hz=200, seconds=seconds, sample_rate=sr, channels=channels), sr)
    decoded_bytes = seconds * sr * channels * 4  # the whole file as float32
    reader = open_audio(path)
    tracemalloc.start()
    try:
        total = 0
        for block in reader.blocks(block_frames=16384):
            total += len(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert abs(total - seconds * sr) <= 4096
    # a few blocks of 16384 frames at most, not the file
    assert peak < min(decoded_bytes / 4, 2_000_000), f"peak {peak} bytes while streaming"


# --- truncation and broken files -----------------------------------------------------------

@pytest.mark.parametrize("name", ["cut.wav", "cut.flac", "cut.mp3", "cut.aiff", "cut.ogg"])
def test_file_cut_in_the_middle_is_an_error_not_a_short_file(tmp_path, name):
    whole = write_audio(tmp_path / ("whole" + os.path.splitext(name)[1]),
                        tone(freq_hz=500, seconds=6.0, sample_rate=22050), 22050)
    data = whole.read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: len(data) // 2])
    assert sum(len(b) for b in open_audio(whole).blocks()) == 6 * 22050  # the uncut file is fine
    with pytest.raises(DecodeError) as err:
        reader = open_audio(cut)
        for _ in reader.blocks():
            pass
    message = str(err.value)
    assert "truncated" in message or "decoding failed" in message or "corrupt" in message
    if name.endswith((".wav", ".aiff")):
        assert message.startswith("truncated: decoded 3.0") and "6.00 s" in message
    if name.endswith(".ogg"):
        assert "end-of-stream page" in message


def _wav_bytes(*, sample_rate=16000, channels=1, bits=16, fmt_tag=1, frames=16000,
               data_size=None, trailing_chunk=b"") -> bytes:
    block_align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, sample_rate,
                      (sample_rate * block_align) & 0xFFFFFFFF, block_align & 0xFFFF, bits)
    data = (np.sin(np.arange(frames * max(channels, 1)) * 0.05) * 8000).astype("<i2").tobytes()
    size = len(data) if data_size is None else data_size
    body = (b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", size)
            + data + trailing_chunk)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_hand_built_wav_headers(tmp_path):
    ok = tmp_path / "ok.wav"
    ok.write_bytes(_wav_bytes())
    assert read_all(ok)[0].shape == (16000, 1)
    with_list = tmp_path / "trailing_list_chunk.wav"
    with_list.write_bytes(_wav_bytes(trailing_chunk=b"LIST" + struct.pack("<I", 4) + b"INFO"))
    assert read_all(with_list)[0].shape == (16000, 1)  # chunks after the data are not truncation

    cases = {
        "rate_1mhz.wav": (dict(sample_rate=1_000_000), "implausible sample rate"),
        "rate_3ghz.wav": (dict(sample_rate=3_000_000_000), "not a readable"),
        "zero_rate.wav": (dict(sample_rate=0), "not a readable"),
        "zero_channels.wav": (dict(channels=0), "channel"),
        "unknown_codec.wav": (dict(fmt_tag=0x1234), "codec"),
        "huge_data_size.wav": (dict(data_size=0x7FFFFFF0), "truncated"),
        "header_only.wav": (dict(frames=0), "no audio samples"),
        # issue 20 item 9: what the header says, not a decoder's or a filter's complaint
        "rate_1hz.wav": (dict(sample_rate=1), "implausible sample rate in header: 1 Hz"),
        "rate_7hz.wav": (dict(sample_rate=7), "implausible sample rate in header: 7 Hz"),
        "channels_65535.wav": (dict(channels=65535, frames=4), "implausible channel count in header: 65535"),
    }
    for name, (kwargs, expected) in cases.items():
        path = tmp_path / name
        path.write_bytes(_wav_bytes(**kwargs))
        with pytest.raises(DecodeError) as err:
            reader = open_audio(path)
            for _ in reader.blocks():
                pass
        assert expected in str(err.value), (name, str(err.value))


def test_not_audio_and_filesystem_problems(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("this is not a recording\n" * 20)
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    broken = tmp_path / "broken.wav"
    broken.symlink_to(tmp_path / "nowhere.wav")
    loop_a, loop_b = tmp_path / "loop_a.wav", tmp_path / "loop_b.wav"
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)
    expected = {
        text: "not a readable audio/video file",
        empty: "empty file (0 bytes)",
        folder: "is a directory",
        broken: "broken symbolic link",
        loop_a: "broken symbolic link (or a link loop)",
        tmp_path / "missing.wav": "file not found",
    }
    for path, message in expected.items():
        with pytest.raises(DecodeError, match=r"^" + message.replace("(", r"\(").replace(")", r"\)")):
            open_audio(path)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root reads files whatever their permissions")
def test_unreadable_file(tmp_path):
    path = write_audio(tmp_path / "locked.wav", tone(seconds=0.2), 44100)
    os.chmod(path, 0)
    try:
        with pytest.raises(DecodeError, match="permission denied"):
            open_audio(path)
    finally:
        os.chmod(path, 0o644)


def test_unreadable_file_message_when_access_is_denied(tmp_path, monkeypatch):
    """Runs as root too: the readability check asks os.access, as it would for any user."""
    path = write_audio(tmp_path / "locked.wav", tone(seconds=0.2), 44100)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if os.fspath(p) == str(path)
                        else real_access(p, mode, **kw))
    with pytest.raises(DecodeError, match="permission denied"):
        open_audio(path)
