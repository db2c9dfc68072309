"""Benchmark: onsets and unit pitch on rendered melodies with known notes, against librosa.

    python bench/bench_onsets.py [--seconds 20] [--seeds 2] [--no-write]

Material: random melodies (legato: each note lasts until the next; pitches differ from one
note to the next) per General MIDI instrument, written as MIDI and rendered by fluidsynth with
the FluidR3 soundfont (Debian packages fluidsynth, fluid-soundfont-gm); the truth is the MIDI
(onset times, pitches). Plus hi-hat-like short hits (generated, 40 ms apart... 200 ms apart)
for item 7 of issue 11.

Scores: onset F-measure within 50 ms (each truth onset matched to at most one found onset,
greedy by distance), the median offset of matched onsets (found - truth, ms; negative =
early), and for our units the share of matched units whose pitch (nearest MIDI note of `hz`)
is the note played. Ours: the unit starts of audiotrove.units.extract.UnitExtractor in onset
mode (default parameters, as `segment` runs it). librosa: onset.onset_detect on the same
mono signal (default parameters; and with backtrack=True, as media-tools cuts units).

Second truth, audio-based (`midi_render.audible_onsets`): each note rendered alone (same pitch,
duration, program, soundfont) becomes audible when its 5 ms level first comes within 15 dB of
its peak; "audible after note-on" is the median delay, and F is scored against those times too.
The headline stays the MIDI-based F. `--soundfont` renders with another .sf2 (e.g. Debian's
TimGM6mb), cached apart.

Results are appended to bench/RESULTS_onsets.md (unless --no-write).
"""
from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
# --src DIR: measure another source tree (e.g. `git archive 76d02aa src | tar -x -C /tmp/old`)
_SRC = sys.argv[sys.argv.index("--src") + 1] if "--src" in sys.argv else str(ROOT / "src")
sys.path.insert(0, _SRC)
sys.path.insert(0, str(ROOT / "bench"))

import midi_render  # noqa: E402
from audiotrove.units.extract import UnitExtractor  # noqa: E402

TOL_S = 0.05
CACHE = Path(tempfile.gettempdir()) / "audiotrove-bench-onsets"


def match(truth: np.ndarray, found: np.ndarray, tol: float = TOL_S) -> list[tuple[int, int]]:
    return midi_render.match_onsets(truth, found, tol)


def f_measure(n_truth: int, n_found: int, n_match: int) -> float:
    if n_truth == 0 and n_found == 0:
        return 1.0
    p = n_match / n_found if n_found else 0.0
    r = n_match / n_truth if n_truth else 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


def our_units(y: np.ndarray, sr: int, **params) -> list[dict]:
    ex = UnitExtractor(sample_rate_hz=sr, channels=1, mode="onset", **params)
    rows = []
    for i in range(0, len(y), 65536):
        rows += ex.update(y[i:i + 65536, None])
    return rows + ex.finish()


def score_ours(y, sr, notes, audible=None, **params) -> dict:
    rows = our_units(y, sr, **params)
    truth = np.array([n[0] for n in notes])
    found = np.array([r["start"] for r in rows])
    pairs = match(truth, found)
    f_audible = f_measure(len(audible), len(found), len(match(audible, found))) if audible is not None else None
    offsets = [found[j] - truth[i] for i, j in pairs]
    pitched = [(notes[i][2], rows[j]["hz"]) for i, j in pairs]
    right = sum(1 for p, hz in pitched if hz is not None and round(69 + 12 * math.log2(hz / 440.0)) == p)
    return {"F": f_measure(len(truth), len(found), len(pairs)),
            "offset_ms": 1000 * float(np.median(offsets)) if offsets else float("nan"),
            "pitch": right / len(pitched) if pitched else float("nan"), "n": len(found), "F_audible": f_audible}


def score_librosa(y, sr, notes, backtrack: bool, audible=None) -> dict:
    import librosa

    found = librosa.onset.onset_detect(y=y, sr=sr, units="time", backtrack=backtrack)
    truth = np.array([n[0] for n in notes])
    pairs = match(truth, found)
    offsets = [found[j] - truth[i] for i, j in pairs]
    f_audible = f_measure(len(audible), len(found), len(match(audible, found))) if audible is not None else None
    return {"F": f_measure(len(truth), len(found), len(pairs)),
            "offset_ms": 1000 * float(np.median(offsets)) if offsets else float("nan"), "F_audible": f_audible}


def partials_delays(y: np.ndarray, sr: int, notes: list, *, rise_db: float = 6.0,
                    fall_db: float = 3.0) -> np.ndarray:
    """Spectrogram evidence, per note after the first: seconds from the note-on until the
    new note's first 4 partials (STFT bins within 1/4 tone of them, none near the previous
    note's first 8 partials) rise rise_db above their level in the 60-10 ms before the
    note-on, and until the old note's first 4 partials (none near the new note's first 8)
    fall fall_db below theirs: shape (notes - 1, 2). 23 ms Hann frames, 2.9 ms hop; a frame
    counts at its centre. NaN: no such change within 0.4 s."""
    n_fft, hop = 1024, 128
    win = np.hanning(n_fft)
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    out = []
    for i in range(1, len(notes)):
        t0, _, new = notes[i]
        old = notes[i - 1][2]
        a = int((t0 - 0.08) * sr) - n_fft // 2
        seg = y[max(a, 0):int((t0 + 0.45) * sr) + n_fft]
        frames = np.lib.stride_tricks.sliding_window_view(seg, n_fft)[::hop] * win
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        times = (max(a, 0) + n_fft // 2 + hop * np.arange(len(frames))) / sr - t0
        semis = 69 + 12 * np.log2(np.maximum(freqs, 1e-6) / 440)
        f_new, f_old = 440 * 2 ** ((new - 69) / 12), 440 * 2 ** ((old - 69) / 12)
        near = lambda f, k: np.any([np.abs(semis - (69 + 12 * np.log2(f * h / 440))) < 0.5 for h in range(1, k + 1)], axis=0)
        row = []
        for bins, sign, db in ((near(f_new, 4) & ~near(f_old, 8) & (freqs > 30), 1, rise_db),
                               (near(f_old, 4) & ~near(f_new, 8) & (freqs > 30), -1, fall_db)):
            if not bins.any():
                row.append(float("nan"))
                continue
            e = 10 * np.log10(power[:, bins].sum(axis=1) + 1e-20)
            ref = e[(times >= -0.06) & (times <= -0.01)].mean()
            hit = np.flatnonzero((times > -0.01) & (sign * (e - ref) >= db))
            row.append(float(times[hit[0]]) if hit.size else float("nan"))
        out.append(row)
    return np.asarray(out).reshape(-1, 2)


def hits(sr: int = 44100, seconds: float = 12.0, seed: int = 0) -> tuple[np.ndarray, list]:
    """Hi-hat-like hits (5-30 ms decays of bright noise), 40-250 ms apart, over quiet noise."""
    rng = np.random.default_rng(seed)
    y = (1e-4 * rng.standard_normal(int(seconds * sr))).astype(np.float32)
    t, notes = 0.2, []
    while t < seconds - 0.5:
        n = int(0.06 * sr)
        decay = rng.uniform(5, 30) / 1000
        hit = rng.standard_normal(n) * np.exp(-np.arange(n) / sr / decay)
        hit = np.diff(hit, prepend=0.0) * rng.uniform(0.2, 0.5)
        i = int(t * sr)
        y[i:i + n] += hit.astype(np.float32)
        notes.append((t, decay, 0))
        t += float(rng.uniform(0.04, 0.25))
    return y, notes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--src", default=None, help="another source tree to measure (a baseline)")
    ap.add_argument("--label", default="")
    ap.add_argument("--evidence", action="store_true",
                    help="print, per instrument, when the new notes' partials rise after the note-on")
    ap.add_argument("--soundfont", default=str(midi_render.SOUNDFONT),
                    help="the .sf2 to render with (default FluidR3_GM; Debian's timgm6mb-soundfont: "
                         "/usr/share/sounds/sf2/TimGM6mb.sf2)")
    args = ap.parse_args()
    soundfont = Path(args.soundfont)
    if not midi_render.available(soundfont):
        sys.exit(f"needs fluidsynth and {soundfont} (apt-get install fluidsynth fluid-soundfont-gm)")
    CACHE.mkdir(exist_ok=True)
    # renders are cached per soundfont (FluidR3's keep their old names)
    sf_tag = "" if soundfont == midi_render.SOUNDFONT else soundfont.stem + "_"
    lines = ["| instrument | notes | ours F | ours offset ms | ours pitch right | librosa F | librosa offset ms "
             "| librosa backtrack F | backtrack offset ms | audible after note-on ms | ours F audible | "
             "librosa backtrack F audible |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    t0 = time.process_time()
    evidence: dict[str, list] = {}
    for name, (program, low, high) in midi_render.INSTRUMENTS.items():
        if args.only and args.only not in name:
            continue
        acc = {k: [] for k in ("oF", "oo", "op", "lF", "lo", "bF", "bo", "ad", "oA", "bA")}
        n_notes = 0
        for seed in range(args.seeds):
            notes = midi_render.melody(low=low, high=high, seconds=args.seconds, seed=seed)
            wav = midi_render.render(notes, program=program,
                                     path=CACHE / f"{sf_tag}{program}_{seed}_{args.seconds:g}.wav",
                                     soundfont=soundfont)
            y, sr = sf.read(wav, dtype="float32", always_2d=True)
            y = y.mean(axis=1)
            n_notes += len(notes)
            # the audio-based truth: when each note, rendered alone, comes within 15 dB of its peak
            audible = midi_render.audible_onsets(
                notes, program=program, soundfont=soundfont,
                path=CACHE / f"{sf_tag}{program}_{seed}_{args.seconds:g}_alone.wav")
            if args.evidence:
                d = partials_delays(y, sr, notes)
                evidence.setdefault(name, []).extend(d.tolist())
            o = score_ours(y, sr, notes, audible)
            lb, bt = score_librosa(y, sr, notes, False), score_librosa(y, sr, notes, True, audible)
            acc["ad"].append(1000 * float(np.median(audible - np.array([n[0] for n in notes]))))
            acc["oA"].append(o["F_audible"]); acc["bA"].append(bt["F_audible"])
            acc["oF"].append(o["F"]); acc["oo"].append(o["offset_ms"]); acc["op"].append(o["pitch"])
            acc["lF"].append(lb["F"]); acc["lo"].append(lb["offset_ms"])
            acc["bF"].append(bt["F"]); acc["bo"].append(bt["offset_ms"])
        m = {k: float(np.nanmean(v)) for k, v in acc.items()}
        line = (f"| {name} | {n_notes} | {m['oF']:.2f} | {m['oo']:+.0f} | {m['op']:.2f} | {m['lF']:.2f} | "
                f"{m['lo']:+.0f} | {m['bF']:.2f} | {m['bo']:+.0f} | {m['ad']:+.0f} | {m['oA']:.2f} | {m['bA']:.2f} |")
        print(line, flush=True)
        lines.append(line)
    if not args.only or "hits" in args.only:
        y, notes = hits()
        o = score_ours(y[:, None].ravel(), 44100, notes)
        lb, bt = score_librosa(y, 44100, notes, False), score_librosa(y, 44100, notes, True)
        line = (f"| short hits (40-250 ms apart) | {len(notes)} | {o['F']:.2f} | {o['offset_ms']:+.0f} | - | "
                f"{lb['F']:.2f} | {lb['offset_ms']:+.0f} | {bt['F']:.2f} | {bt['offset_ms']:+.0f} | - | - | - |")
        print(line)
        lines.append(line)
    for name, d in evidence.items():
        d = np.asarray(d)
        first = np.fmin(d[:, 0], d[:, 1])  # the first change of either kind
        print(f"{name} ({len(d)} note changes): new partials +6 dB: median "
              f"{1000 * np.nanmedian(d[:, 0]):+.0f} ms after the note-on, > 50 ms for {np.mean(~(d[:, 0] <= 0.05)):.0%}; "
              f"old partials -3 dB: median {1000 * np.nanmedian(d[:, 1]):+.0f} ms, > 50 ms for "
              f"{np.mean(~(d[:, 1] <= 0.05)):.0%}; neither within 50 ms: {np.mean(~(first <= 0.05)):.0%}")
    print(f"CPU {time.process_time() - t0:.0f} s")
    if not args.no_write:
        out = ROOT / "bench" / "RESULTS_onsets.md"
        head = "" if out.exists() else "# Onsets and unit pitch on rendered melodies (issue 11)\n\n"
        with out.open("a", encoding="utf-8") as f:
            src = f" --src {args.src}" if args.src else ""
            if soundfont != midi_render.SOUNDFONT:
                src += f" --soundfont {soundfont}"
            f.write(head + f"\n## {args.label or 'this tree'}: {time.strftime('%Y-%m-%d %H:%M')} "
                    f"`python bench/bench_onsets.py --seconds {args.seconds:g} --seeds {args.seeds}{src}`\n\n"
                    + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
