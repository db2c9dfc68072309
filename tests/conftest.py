"""Shared test helpers and fixtures: generated signals, media files, collections, the CLI.

Signals are generated with numpy (tones, noise, speech-like bursts) and written to real
containers: WAV/FLAC/OGG/MP3/AIFF through soundfile, M4A/MP4 (with a video stream)/WebM
through PyAV. The CLI is run as a subprocess with the venv's `audiotrove`, with `tests/`
on PYTHONPATH so that test-only steps (tests/toystep*.py) are importable everywhere.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TESTS_DIR = Path(__file__).resolve().parent
# every server the tests talk to is on 127.0.0.1: a proxy set in the environment must not carry
# them (`fetch` follows http_proxy / https_proxy; the proxy tests set their own)
for _name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
    os.environ.pop(_name, None)
    os.environ.pop(_name.upper(), None)
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# --- signals ------------------------------------------------------------------------------

def tone(*, freq_hz: float = 440.0, seconds: float = 1.0, sample_rate: int = 44100,
         channels: int = 1, amplitude: float = 0.5) -> np.ndarray:
    """A sine tone, float32 (frames, channels); channel k is detuned by k x 3 % so they differ."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    cols = [amplitude * np.sin(2 * np.pi * freq_hz * (1 + 0.03 * k) * t) for k in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32)


def noise(*, seconds: float = 1.0, sample_rate: int = 44100, channels: int = 1,
          rms_dbfs: float = -20.0, seed: int = 0) -> np.ndarray:
    """Gaussian white noise at a given RMS level (dBFS), float32 (frames, channels)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((round(seconds * sample_rate), channels))
    return (x * 10 ** (rms_dbfs / 20)).astype(np.float32)


def speech_like(*, seconds: float = 2.0, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Speech-like bursts: voiced syllables (harmonics of a gliding f0 through two formant
    resonances) about 4 per second, separated by pauses; float32 (frames, 1)."""
    from scipy import signal

    rng = np.random.default_rng(seed)
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    source = sum(np.sin(k * phase) / k for k in range(1, 30))
    source = source + 0.05 * rng.standard_normal(n)
    voiced = np.zeros(n)
    for f_hz, bw_hz in ((700, 130), (1200, 200)):
        b, a = signal.iirpeak(f_hz, f_hz / bw_hz, fs=sample_rate)
        voiced += signal.lfilter(b, a, source)
    envelope = np.zeros(n)
    pos = int(0.1 * sample_rate)
    while pos < n:
        length = int(rng.uniform(0.12, 0.25) * sample_rate)
        seg = np.hanning(length)[: max(0, min(length, n - pos))]
        envelope[pos: pos + len(seg)] = seg
        pos += length + int(rng.uniform(0.05, 0.3) * sample_rate)
    out = voiced * envelope
    out = 0.5 * out / (np.max(np.abs(out)) or 1.0)
    return out[:, None].astype(np.float32)


# --- writing media files -------------------------------------------------------------------

_SOUNDFILE_FORMATS = {
    ".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"), ".aiff": ("AIFF", "PCM_16"), ".aif": ("AIFF", "PCM_16"),
}
_PYAV_CODECS = {".m4a": "aac", ".mp4": "aac", ".webm": "libopus", ".mkv": "aac", ".mov": "aac"}


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, *,
                subtype: str | None = None, video: bool = False) -> Path:
    """Write `audio` (frames, channels) in the container its suffix names; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix in _SOUNDFILE_FORMATS and not video:
        import soundfile as sf

        fmt, default_subtype = _SOUNDFILE_FORMATS[suffix]
        sf.write(path, audio, sample_rate, format=fmt, subtype=subtype or default_subtype)
    elif suffix in _PYAV_CODECS:
        write_pyav(path, audio, sample_rate, codec=_PYAV_CODECS[suffix], video=video)
    else:
        raise ValueError(f"no writer for {suffix}")
    return path


def write_pyav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, *, codec: str,
               video: bool = False) -> Path:
    """Encode with PyAV (FFmpeg); with `video`, add a small MPEG-4 picture stream at 10 fps."""
    import av

    frames, channels = audio.shape
    layout = {1: "mono", 2: "stereo"}[channels]
    with av.open(str(path), "w") as out:
        vstream = None
        if video:
            vstream = out.add_stream("mpeg4", rate=10)
            vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
        astream = out.add_stream(codec, rate=sample_rate, layout=layout)
        hop = 960 if codec == "libopus" else 1024
        for start in range(0, frames, hop):
            chunk = np.ascontiguousarray(audio[start: start + hop].T, dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate, frame.pts = sample_rate, start
            for packet in astream.encode(frame):
                out.mux(packet)
        for packet in astream.encode(None):
            out.mux(packet)
        if vstream is not None:
            for k in range(max(1, int(frames / sample_rate * 10))):
                image = np.full((48, 64, 3), (k * 25) % 256, np.uint8)
                vframe = av.VideoFrame.from_ndarray(image, format="rgb24")
                vframe.pts = k
                for packet in vstream.encode(vframe):
                    out.mux(packet)
            for packet in vstream.encode(None):
                out.mux(packet)
    return Path(path)


def file_digest(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tree_state(root: Path) -> dict[str, tuple]:
    """(sha256, size, mtime_ns, mode) of every regular file under root (links not followed)."""
    state = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if not os.path.isfile(full) or os.path.islink(full):
                continue
            digest = file_digest(full) if os.access(full, os.R_OK) else None
            state[os.path.relpath(full, root)] = (digest, st.st_size, st.st_mtime_ns, st.st_mode)
    return state


# --- catalog helpers ----------------------------------------------------------------------

def catalog_db(collection: str | os.PathLike) -> Path:
    return Path(collection) / ".audiotrove" / "catalog.db"


def db_rows(collection: str | os.PathLike, sql: str, params: tuple = ()) -> list[tuple]:
    """Read the catalog directly (a separate connection, as an outside observer would)."""
    conn = sqlite3.connect(catalog_db(collection), timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def run_step_quiet(cat, step: str, overrides: dict | None = None, **kwargs):
    from audiotrove.runner import run_step

    kwargs.setdefault("workers", 2)
    return run_step(cat, step, overrides, show_progress=False, **kwargs)


# --- the CLI ------------------------------------------------------------------------------

def _audiotrove_command() -> list[str]:
    exe = shutil.which("audiotrove", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "audiotrove.cli"]


AUDIOTROVE = _audiotrove_command()


def cli_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS_DIR), env.get("PYTHONPATH")) if p)
    env["COLUMNS"] = "400"  # Rich must not wrap the summary lines the tests read
    env["NO_COLOR"] = "1"
    env.pop("FORCE_COLOR", None)
    env.update(extra or {})
    return env


def run_cli(*args, cwd: str | os.PathLike | None = None, timeout: float = 120,
            input: str | None = None) -> subprocess.CompletedProcess:
    """Run `audiotrove ARGS...`; return the completed process (text stdout/stderr)."""
    return subprocess.run([*AUDIOTROVE, *map(str, args)], cwd=cwd, env=cli_env(), timeout=timeout,
                          capture_output=True, text=True, input=input, check=False)


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- fixtures -----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    """A small set of generated files, one per common format (2 s each; do not modify them)."""
    root = tmp_path_factory.mktemp("media")
    sr = 44100
    files = {
        "tone.wav": (tone(freq_hz=440, seconds=2.0, sample_rate=sr), sr, {}),
        "stereo24.flac": (tone(freq_hz=1000, seconds=2.0, sample_rate=48000, channels=2), 48000,
                          {"subtype": "PCM_24"}),
        "speech.ogg": (speech_like(seconds=2.0, sample_rate=16000, seed=1), 16000, {}),
        "tone.mp3": (tone(freq_hz=880, seconds=2.0, sample_rate=sr), sr, {}),
        "noise.aiff": (noise(seconds=2.0, sample_rate=22050, seed=2), 22050, {}),
        "stereo.m4a": (tone(freq_hz=660, seconds=2.0, sample_rate=sr, channels=2), sr, {}),
        "clip.mp4": (speech_like(seconds=2.0, sample_rate=48000, seed=3), 48000, {"video": True}),
        "speech.webm": (speech_like(seconds=2.0, sample_rate=48000, seed=4), 48000, {}),
    }
    out = {}
    for name, (audio, rate, kwargs) in files.items():
        out[name] = write_audio(root / name, audio, rate, **kwargs)
        os.chmod(out[name], 0o444)  # shared by many tests: nobody may write to it
    return out


@pytest.fixture
def collection(tmp_path) -> Path:
    """An empty collection folder (initialised through the API)."""
    from audiotrove.catalog.db import Catalog

    root = tmp_path / "coll"
    Catalog.create(root).close()
    return root


@pytest.fixture
def cli():
    return run_cli


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test when the data is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data not found: {path}")
    return path


# --- processes ----------------------------------------------------------------------------

def sigint_as_from_a_terminal() -> None:
    """preexec_fn for a child the test sends Ctrl-C (SIGINT): a shell starts a background job
    with SIGINT ignored and children inherit that, so Python would never see the signal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in "ZX":
            members.append(int(entry))
    return members
