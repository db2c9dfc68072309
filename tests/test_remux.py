"""Video remux: the picture is copied packet for packet (checksums match), the audio replaced."""
from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from audiotrove.io.decode import read_all
from audiotrove.io.remux import remux_audio
from audiotrove.io.write import WriteError, write_audio

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_video(path: Path, *, seconds: float = 2.0, rate: int = 48000, channels: int = 2,
               vcodec: str = "mpeg4", acodec: str = "aac") -> np.ndarray:
    """A small test video: moving gradient frames + a tone with noise. Returns the audio."""
    rng = np.random.default_rng(0)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    audio = (0.3 * np.sin(2 * np.pi * 440 * t)[:, None] + 0.02 * rng.standard_normal((n, channels))).astype(np.float32)
    with av.open(str(path), "w") as out:
        v = out.add_stream(vcodec, rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream(acodec, rate=rate)
        a.codec_context.layout = "stereo" if channels == 2 else "mono"
        a.codec_context.format = "fltp"
        for i in range(int(seconds * 25)):
            img = np.full((48, 64, 3), (i * 7) % 255, np.uint8)
            img[:, : (i * 3) % 64] = 255 - img[0, 0]
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
        for start in range(0, n, 1024):
            chunk = np.ascontiguousarray(audio[start:start + 1024].T)
            f = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=a.codec_context.layout.name)
            f.sample_rate, f.pts, f.time_base = rate, start, Fraction(1, rate)
            for p in a.encode(f):
                out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    return audio


def video_checksums(path: Path) -> list[str]:
    with av.open(str(path), metadata_errors="ignore") as c:
        return [hashlib.md5(bytes(p)).hexdigest() for p in c.demux(c.streams.video[0]) if p.size]


def lag_of(ref: np.ndarray, est: np.ndarray, max_lag: int = 3000) -> int:
    n = min(len(ref), len(est))
    spec = np.fft.rfft(est[:n], 2 * n) * np.conj(np.fft.rfft(ref[:n], 2 * n))
    c = np.fft.irfft(spec)
    c = np.concatenate([c[-max_lag:], c[: max_lag + 1]])
    return int(np.argmax(c)) - max_lag


def test_remux_copies_video_bit_for_bit_and_replaces_audio(tmp_path):
    src = tmp_path / "clip.mp4"
    make_video(src)
    audio, rate = read_all(src)
    rng = np.random.default_rng(1)
    new = (0.5 * audio + 0.05 * rng.standard_normal(audio.shape)).astype(np.float32)
    write_audio(tmp_path / "new.wav", new, sample_rate=rate, subtype="FLOAT")
    out = tmp_path / "out" / "clip.enhanced.mp4"
    info = remux_audio(src, tmp_path / "new.wav", out)
    assert info["audio_codec"] == "aac" and info["copied_packets"] == len(video_checksums(src))
    assert video_checksums(out) == video_checksums(src)
    got, rate2 = read_all(out)
    assert rate2 == rate and got.shape == new.shape
    assert lag_of(new[:, 0], got[:, 0]) == 0
    # the new audio, not the old one: it correlates with `new`'s noise
    corr = np.corrcoef(got[2000:-2000, 1], new[2000:-2000, 1])[0, 1]
    assert corr > 0.9
    assert not any(p.name.startswith(".") for p in out.parent.iterdir())  # no temporary left


def test_remux_refuses_to_overwrite_its_input(tmp_path):
    src = tmp_path / "clip.mp4"
    make_video(src, seconds=0.5)
    audio, rate = read_all(src)
    write_audio(tmp_path / "new.wav", audio, sample_rate=rate)
    before = src.read_bytes()
    with pytest.raises(WriteError, match="over an input"):
        remux_audio(src, tmp_path / "new.wav", src)
    assert src.read_bytes() == before


def test_remux_mkv_gets_lossless_audio(tmp_path):
    src = tmp_path / "clip.mkv"
    make_video(src, seconds=1.0, rate=44100, channels=1)
    audio, rate = read_all(src)
    write_audio(tmp_path / "new.wav", 0.5 * audio, sample_rate=rate, subtype="FLOAT")
    out = tmp_path / "clip.enhanced.mkv"
    info = remux_audio(src, tmp_path / "new.wav", out)
    assert info["audio_codec"] == "flac"
    assert video_checksums(out) == video_checksums(src)
    got, _ = read_all(out)
    np.testing.assert_allclose(got[:, 0], 0.5 * audio[:, 0], atol=2 ** -20)


def test_remux_real_video_5_1():
    path = DATA / "video" / "big_buck_bunny_small.mp4"
    if not path.exists():
        pytest.skip("shared data not available")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        audio, rate = read_all(path)
        assert audio.shape[1] == 6
        write_audio(tmp / "new.wav", 0.7 * audio, sample_rate=rate, subtype="FLOAT")
        out = tmp / "bbb.enhanced.mp4"
        remux_audio(path, tmp / "new.wav", out)
        assert video_checksums(out) == video_checksums(path)
        got, rate2 = read_all(out)
        assert rate2 == rate and got.shape == audio.shape
        assert lag_of(0.7 * audio[:, 0], got[:, 0]) == 0


def make_tagged_video(path: Path, *, seconds: float = 1.0) -> None:
    """A video with what an editor's file carries: container tags (title, creation_time),
    per-stream language and handler names, dispositions, a video time base of 1/2997 and a
    second (commentary) audio stream."""
    rate = 48000
    with av.open(str(path), "w", options=({"video_track_timescale": "2997"}
                                          if path.suffix == ".mp4" else {})) as out:
        out.metadata.update({"title": "A talk", "creation_time": "2020-01-02T03:04:05.000000Z"})
        v = out.add_stream("mpeg4", rate=Fraction(2997, 100))
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.time_base = Fraction(1, 2997)
        v.metadata.update({"language": "eng", "handler_name": "Picture of the talk"})
        audio = []
        for lang, handler, disposition in (("fra", "Voix", "default"), ("deu", "Kommentar", "comment")):
            a = out.add_stream("aac", rate=rate)
            a.codec_context.layout, a.codec_context.format = "stereo", "fltp"
            a.metadata.update({"language": lang, "handler_name": handler})
            a.disposition = getattr(av.stream.Disposition, disposition)
            audio.append(a)
        v.disposition = av.stream.Disposition.default
        for i in range(int(seconds * 29.97)):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), (i * 9) % 255, np.uint8), format="rgb24")
            frame.pts, frame.time_base = i * 100, Fraction(1, 2997)
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
        n = int(seconds * rate)
        tone = 0.2 * np.sin(2 * np.pi * 330 * np.arange(n) / rate).astype(np.float32)
        for a in audio:
            for start in range(0, n, 1024):
                chunk = np.ascontiguousarray(np.stack([tone[start:start + 1024]] * 2))
                f = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                f.sample_rate, f.pts, f.time_base = rate, start, Fraction(1, rate)
                for p in a.encode(f):
                    out.mux(p)
            for p in a.encode(None):
                out.mux(p)


def stream_description(path: Path) -> tuple[dict, list]:
    """Container tags and, per stream, (type, time base, tags, disposition), as PyAV reads them
    (the muxer's own tags left out: encoder, Matroska statistics)."""
    own = {"encoder", "duration"}
    with av.open(str(path)) as c:
        tags = {k: v for k, v in c.metadata.items() if k.lower() not in own}
        streams = [(s.type, s.time_base, {k: v for k, v in s.metadata.items() if k.lower() not in own},
                    int(s.disposition)) for s in c.streams]
    return tags, streams


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_remux_keeps_tags_dispositions_and_time_bases(tmp_path, ext):
    src = tmp_path / f"talk{ext}"
    make_tagged_video(src)
    tags, streams = stream_description(src)
    assert tags["title"] == "A talk" and streams[0][2]["language"] == "eng" and streams[1][2]["language"] == "fra"
    if ext == ".mp4":
        assert streams[0][1] == Fraction(1, 2997)
    audio, rate = read_all(src)
    write_audio(tmp_path / "new.wav", 0.5 * audio, sample_rate=rate, subtype="FLOAT")
    out = tmp_path / f"talk.enhanced{ext}"
    remux_audio(src, tmp_path / "new.wav", out)
    assert stream_description(out) == (tags, streams)
    assert video_checksums(out) == video_checksums(src)
