"""Labelled test material: melodies written as MIDI, rendered by fluidsynth (FluidR3 GM).

    notes = melody(program=40, seed=1)             # [(onset_s, dur_s, midi_pitch)], known truth
    wav = render(notes, program=40, path=tmp / "violin.wav")

Needs the Debian packages fluidsynth and fluid-soundfont-gm (apt-get install); a Standard
MIDI File (format 0, one track) is written by hand below: nothing else is needed.
"""
from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
TICKS_PER_BEAT = 480
TEMPO_US = 500_000  # 120 BPM: 1 beat = 0.5 s, 1 tick = 0.5 / 480 s

# General MIDI programs (0-based) and a comfortable pitch range for each
INSTRUMENTS = {
    "piano": (0, 48, 84), "nylon guitar": (24, 45, 76), "violin": (40, 57, 88),
    "cello": (42, 38, 67), "pizzicato strings": (45, 45, 79), "trumpet": (56, 55, 81),
    "french horn": (60, 45, 72), "alto sax": (65, 50, 78), "oboe": (68, 60, 86),
    "clarinet": (71, 52, 84), "flute": (73, 62, 93), "choir aahs": (52, 50, 74),
    "voice oohs": (53, 50, 74),
}


def available(soundfont: Path = SOUNDFONT) -> bool:
    return shutil.which("fluidsynth") is not None and Path(soundfont).exists()


def melody(*, low: int, high: int, seconds: float = 20.0, seed: int = 0, legato: bool = True,
           ioi_s: tuple[float, float] = (0.25, 0.7)) -> list[tuple[float, float, int]]:
    """Random notes in [low, high]: (onset s, duration s, MIDI pitch). Consecutive pitches
    differ (a repeated legato note has no onset to find). Legato: each note lasts until the
    next one starts; else 60-90 % of the gap."""
    rng = np.random.default_rng(seed)
    notes = []
    t = 0.3
    prev = None
    while t < seconds:
        gap = float(rng.uniform(*ioi_s))
        pitch = int(rng.integers(low, high + 1))
        while pitch == prev:
            pitch = int(rng.integers(low, high + 1))
        dur = gap if legato else gap * float(rng.uniform(0.6, 0.9))
        notes.append((round(t, 4), round(dur, 4), pitch))
        prev = pitch
        t += gap
    return notes


def _varlen(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def write_midi(notes: list[tuple[float, float, int]], path: Path, *, program: int, velocity: int = 90,
               channel: int = 0) -> None:
    """A format-0 Standard MIDI File of the notes on one channel with one program."""
    sec_per_tick = TEMPO_US / 1e6 / TICKS_PER_BEAT
    events = []  # (tick, order, bytes): note-offs before note-ons at the same tick
    for onset, dur, pitch in notes:
        on, off = round(onset / sec_per_tick), round((onset + dur) / sec_per_tick)
        events.append((on, 1, bytes([0x90 | channel, pitch, velocity])))
        events.append((off, 0, bytes([0x80 | channel, pitch, 0])))
    events.sort()
    body = b"\x00\xff\x51\x03" + TEMPO_US.to_bytes(3, "big")
    body += b"\x00" + bytes([0xC0 | channel, program])
    tick = 0
    for t, _, data in events:
        body += _varlen(t - tick) + data
        tick = t
    body += b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_BEAT)
    Path(path).write_bytes(header + b"MTrk" + struct.pack(">I", len(body)) + body)


def render(notes: list[tuple[float, float, int]], *, program: int, path: Path, sample_rate: int = 44100,
           velocity: int = 90, soundfont: Path = SOUNDFONT, channel: int = 0) -> Path:
    """Render the notes through fluidsynth to a mono-mixable WAV at `path` (cached); channel 9
    is General MIDI's drum kit (pitch = drum)."""
    path = Path(path)
    if path.exists():
        return path
    mid = path.with_suffix(".mid")
    write_midi(notes, mid, program=program, velocity=velocity, channel=channel)
    tmp = path.with_name(path.stem + ".tmp.wav")
    subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(sample_rate), "-F", str(tmp),
                    str(soundfont), str(mid)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    tmp.rename(path)
    return path


def audible_onsets(notes: list[tuple[float, float, int]], *, program: int, path: Path,
                   soundfont: Path = SOUNDFONT, below_peak_db: float = 15.0, gap_s: float = 3.0,
                   sample_rate: int = 44100, velocity: int = 90) -> np.ndarray:
    """An audio-based truth: when each note becomes audible in this soundfont (seconds, as
    the notes' onsets). Every note is rendered alone (the same pitch, duration and program,
    gap_s apart, cached at `path`); its onset is the note-on plus the time its level (5 ms
    RMS) first comes within below_peak_db of its peak over the note's duration (the perceptual
    onset of a tone lies 6-15 dB below its maximum, Vos & Rasch 1981). Patches whose sound
    builds up slowly (FluidR3's cello and choir) become audible well after the note-on."""
    lead = 0.5
    alone = [(lead + i * gap_s, dur, pitch) for i, (_, dur, pitch) in enumerate(notes)]
    wav = render(alone, program=program, path=Path(path), sample_rate=sample_rate, velocity=velocity,
                 soundfont=soundfont)
    import soundfile as sf

    y, sr = sf.read(wav, dtype="float64", always_2d=True)
    y = y.mean(axis=1)
    h = int(round(0.005 * sr))
    out = []
    for (onset, dur, _), (t0, _, _) in zip(notes, alone):
        a = int(round(t0 * sr))
        seg = y[a:a + int(round(dur * sr)) + h]
        n = len(seg) // h
        lvl = 10 * np.log10(np.mean(seg[:n * h].reshape(n, h) ** 2, axis=1) + 1e-20)
        first = int(np.argmax(lvl >= lvl.max() - below_peak_db))
        out.append(onset + first * h / sr)
    return np.asarray(out)


def match_onsets(truth: np.ndarray, found: np.ndarray, tol: float = 0.05) -> list[tuple[int, int]]:
    """Pairs (truth index, found index) of onset times (s) within tol, each used once, closest first."""
    pairs = sorted((abs(found[j] - t), i, int(j)) for i, t in enumerate(truth)
                   for j in np.flatnonzero(np.abs(found - t) <= tol))
    used_t, used_f, out = set(), set(), []
    for _, i, j in pairs:
        if i not in used_t and j not in used_f:
            used_t.add(i)
            used_f.add(j)
            out.append((i, j))
    return out
