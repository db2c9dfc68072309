"""Benchmark: segment + describe, and pitch, against the librosa way, in the same run.

    python bench/bench_units.py [--quick] [--no-write]

Speed is CPU time on one core (BLAS, OpenMP and numba limited to one thread before any
import), as "x real time" = seconds of audio per CPU second; wall-clock times are printed
too. Files are decoded once up front, so the segment + describe figures exclude decoding;
the end-to-end line (decode + segment + describe through the block reader) includes it.

Ours: audiotrove.units.extract.UnitExtractor (onset mode: spectral flux, backtracking,
release; per unit power, pitch (YIN-style), clarity, centroid, flatness, rolloff, zcr, 13
MFCC means), and audiotrove.dsp.pitch.pitch_track for pitch alone.

The librosa way (as media-tools does it): onset.onset_detect(backtrack=True), units from
one onset to the next (at most 1 s, at least 80 ms), and per unit piptrack (median of the
strongest bin's pitch), rms, spectral centroid / rolloff / flatness, zcr and 13 MFCC means.
For pitch alone: piptrack over the whole file, and pyin (librosa's YIN-based tracker, on the
first 10 s of a few files: it is slow).

Accuracy: note and octave on the labelled instrument notes of ../shared/data/instruments
and on generated harmonic tones, for ours, piptrack and pyin.

Results are appended to bench/RESULTS_units.md (unless --no-write).
"""
from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_name] = "1"

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DATA = ROOT.parent / "shared" / "data"

from audiotrove.dsp.pitch import hz_to_note, pitch_track, summarize_pitch
from audiotrove.io.decode import open_audio, read_all
from audiotrove.units.extract import UnitExtractor

CORPUS = [
    "music/Kevin_MacLeod_-_Vibe_Ace.ogg",
    "music/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg",
    "music/Karissa_Hobbs_-_Lets_Go_Fishin.ogg",
    "music/sms_cello-phrase.wav",
    "music/sms_sax-phrase-short.wav",
    "music/sms_orchestra.wav",
    "music/sms_singing-female.wav",
    "speech/librosa_198-209-0000.ogg",
    "speech/sms_speech-male.wav",
    "instruments/sms_piano.wav",
    "instruments/sms_mridangam.wav",
    "field/glacier-bay-humpback.ogg",
]
LABELLED = [("sms_flute-A4.wav", "A4"), ("sms_oboe-A4.wav", "A4"), ("sms_violin-B3.wav", "B3"),
            ("sms_trumpet-A4.wav", "A4"), ("sms_soprano-E4.wav", "E4"), ("sms_vibraphone-C6.wav", "C6"),
            ("sms_organ-C3.wav", "C3")]


def cpu_and_wall(fn, *args, repeat=1):
    best_cpu, best_wall, out = math.inf, math.inf, None
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn(*args)
        best_cpu = min(best_cpu, time.process_time() - c0)
        best_wall = min(best_wall, time.perf_counter() - w0)
    return best_cpu, best_wall, out


# --- ours -------------------------------------------------------------------------------------

def ours_units(audio, sr):
    ex = UnitExtractor(sample_rate_hz=sr, channels=audio.shape[1], mode="onset")
    rows = []
    for i in range(0, len(audio), 65536):
        rows += ex.update(audio[i:i + 65536])
    return rows + ex.finish()


def ours_end_to_end(path):
    reader = open_audio(path)
    ex = UnitExtractor(sample_rate_hz=reader.sample_rate, channels=reader.channels, mode="onset")
    rows = []
    for block in reader.blocks():
        rows += ex.update(block)
    return rows + ex.finish()


def ours_pitch(y, sr):
    return pitch_track(y, sample_rate_hz=sr)


# --- the librosa way --------------------------------------------------------------------------

def librosa_units(y, sr):
    import librosa

    onsets = librosa.onset.onset_detect(y=y, sr=sr, backtrack=True, units="samples")
    bounds = list(onsets) + [len(y)]
    rows = []
    for s, e in zip(bounds[:-1], bounds[1:]):
        e = min(e, s + sr)
        if e - s < int(0.08 * sr):
            continue
        seg = y[s:e]
        n_fft = 2048 if len(seg) >= 2048 else 1 << int(math.log2(len(seg)))
        pitches, mags = librosa.piptrack(y=seg, sr=sr, n_fft=n_fft, fmin=50, fmax=2000)
        best = pitches[mags.argmax(axis=0), np.arange(pitches.shape[1])]
        best = best[best > 0]
        rows.append({
            "start": s / sr, "dur": (e - s) / sr,
            "hz": float(np.median(best)) if best.size else None,
            "power": float(20 * np.log10(np.mean(librosa.feature.rms(y=seg, frame_length=n_fft)) + 1e-12)),
            "centroid": float(np.mean(librosa.feature.spectral_centroid(y=seg, sr=sr, n_fft=n_fft))),
            "rolloff": float(np.mean(librosa.feature.spectral_rolloff(y=seg, sr=sr, n_fft=n_fft))),
            "flatness": float(np.mean(librosa.feature.spectral_flatness(y=seg, n_fft=n_fft))),
            "zcr": float(np.mean(librosa.feature.zero_crossing_rate(seg, frame_length=n_fft))),
            "mfcc": librosa.feature.mfcc(y=seg, sr=sr, n_mfcc=13, n_fft=n_fft).mean(axis=1),
        })
    return rows


def librosa_piptrack_pitch(y, sr):
    import librosa

    pitches, mags = librosa.piptrack(y=y, sr=sr, fmin=50, fmax=2000)
    return pitches[mags.argmax(axis=0), np.arange(pitches.shape[1])]


def librosa_pyin_pitch(y, sr):
    import librosa

    f0, voiced, prob = librosa.pyin(y, fmin=50, fmax=2000, sr=sr)
    return f0


# --- accuracy ---------------------------------------------------------------------------------

def note_name(hz):
    note, octave = hz_to_note(hz)
    return None if note is None else f"{note}{octave}"


def ours_note(y, sr):
    times, hz, clarity = pitch_track(y, sample_rate_hz=sr)
    level = 10 * np.log10(np.convolve(y ** 2, np.ones(1024) / 1024, "same")[(times * sr).astype(int).clip(0, len(y) - 1)] + 1e-12)
    return summarize_pitch(hz, clarity, level)[0]


def piptrack_note(y, sr):
    p = librosa_piptrack_pitch(y, sr)
    p = p[p > 0]
    return float(np.median(p)) if p.size else None


def pyin_note(y, sr):
    f0 = librosa_pyin_pitch(y[:int(3 * sr)], sr)
    f0 = f0[np.isfinite(f0)]
    return float(np.median(f0)) if f0.size else None


def tone(hz, sr=22050, seconds=1.0):
    t = np.arange(int(sr * seconds)) / sr
    x = sum(np.sin(2 * np.pi * hz * k * t) / k for k in range(1, 7))
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="three files only")
    ap.add_argument("--no-write", action="store_true", help="do not append to RESULTS_units.md")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    if not DATA.exists():
        print(f"no data at {DATA}: nothing to benchmark")
        return 0
    import librosa  # noqa: F401  (import cost outside the timings)

    corpus = [DATA / rel for rel in (CORPUS[:3] if args.quick else CORPUS) if (DATA / rel).exists()]
    decoded = []
    for path in corpus:
        audio, sr = read_all(path)
        decoded.append((path, audio, sr))
    total_s = sum(len(a) / sr for _, a, sr in decoded)
    # warm up numba (librosa) and FFT plans on a short clip
    y0 = decoded[0][1][:decoded[0][2] * 3].mean(axis=1)
    librosa_units(y0, decoded[0][2])
    librosa_piptrack_pitch(y0, decoded[0][2])
    librosa_pyin_pitch(y0[:decoded[0][2]], decoded[0][2])
    ours_units(decoded[0][1][:decoded[0][2] * 3], decoded[0][2])

    lines = []

    def out(text=""):
        print(text, flush=True)
        lines.append(text)

    out(f"corpus: {len(decoded)} files, {total_s:.1f} s of audio (music, speech, instruments, field)")
    out()
    out("| file | s | ours units | ours x RT (CPU) | librosa units | librosa x RT (CPU) | speed-up |")
    out("|---|---|---|---|---|---|---|")
    tot = {"ours": 0.0, "ours_wall": 0.0, "lib": 0.0, "lib_wall": 0.0, "e2e": 0.0, "e2e_wall": 0.0,
           "pitch": 0.0, "pitch_wall": 0.0, "pip": 0.0, "pip_wall": 0.0}
    for path, audio, sr in decoded:
        dur = len(audio) / sr
        y = audio.mean(axis=1)
        c, w, rows = cpu_and_wall(ours_units, audio, sr, repeat=2)
        lc, lw, lrows = cpu_and_wall(librosa_units, y, sr)
        ec, ew, _ = cpu_and_wall(ours_end_to_end, path)
        pc, pw, _ = cpu_and_wall(ours_pitch, y, sr, repeat=2)
        qc, qw, _ = cpu_and_wall(librosa_piptrack_pitch, y, sr)
        for k, v in (("ours", c), ("ours_wall", w), ("lib", lc), ("lib_wall", lw), ("e2e", ec), ("e2e_wall", ew),
                     ("pitch", pc), ("pitch_wall", pw), ("pip", qc), ("pip_wall", qw)):
            tot[k] += v
        out(f"| {path.name[:40]} | {dur:.1f} | {len(rows)} | {dur / c:.0f} | {len(lrows)} | {dur / lc:.0f} | {lc / c:.1f}x |")
    out()
    out("| measure (whole corpus, one core) | ours x RT | librosa way x RT | ours / librosa |")
    out("|---|---|---|---|")
    out(f"| segment + describe, CPU | {total_s / tot['ours']:.0f} | {total_s / tot['lib']:.0f} | {tot['lib'] / tot['ours']:.1f}x |")
    out(f"| segment + describe, wall | {total_s / tot['ours_wall']:.0f} | {total_s / tot['lib_wall']:.0f} | {tot['lib_wall'] / tot['ours_wall']:.1f}x |")
    out(f"| decode + segment + describe, CPU | {total_s / tot['e2e']:.0f} | | |")
    out(f"| pitch alone (ours vs piptrack), CPU | {total_s / tot['pitch']:.0f} | {total_s / tot['pip']:.0f} | {tot['pip'] / tot['pitch']:.1f}x |")
    out(f"| pitch alone (ours vs piptrack), wall | {total_s / tot['pitch_wall']:.0f} | {total_s / tot['pip_wall']:.0f} | {tot['pip_wall'] / tot['pitch_wall']:.1f}x |")
    # pyin on the first 10 s of three files
    pyin_s = pyin_c = ours_c = 0.0
    for path, audio, sr in decoded[:3]:
        y = audio[:sr * 10].mean(axis=1)
        c, _, _ = cpu_and_wall(librosa_pyin_pitch, y, sr)
        oc, _, _ = cpu_and_wall(ours_pitch, y, sr, repeat=2)
        pyin_s += len(y) / sr
        pyin_c += c
        ours_c += oc
    out(f"| pitch alone (ours vs pyin, {pyin_s:.0f} s), CPU | {pyin_s / ours_c:.0f} | {pyin_s / pyin_c:.1f} | {pyin_c / ours_c:.0f}x |")
    targets_ok = total_s / tot["ours"] >= 100 and total_s / tot["pitch"] >= 50
    out(f"targets (segment + describe >= 100x, pitch >= 50x per core): {'met' if targets_ok else 'NOT met'}")
    out()

    out("| labelled note | ours | piptrack | pyin |")
    out("|---|---|---|---|")
    scores = {"ours": 0, "piptrack": 0, "pyin": 0}
    n_labels = 0
    for name, label in LABELLED:
        path = DATA / "instruments" / name
        if not path.exists():
            continue
        audio, sr = read_all(path)
        y = audio.mean(axis=1)
        res = {"ours": ours_note(y, sr), "piptrack": piptrack_note(y, sr), "pyin": pyin_note(y, sr)}
        n_labels += 1
        cells = []
        for k, hz in res.items():
            got = note_name(hz)
            scores[k] += got == label
            cells.append(f"{got} ({hz:.1f} Hz)" if hz else "none")
        out(f"| {name} ({label}) | " + " | ".join(cells) + " |")
    tones = [55.0, 98.0, 146.83, 220.0, 329.63, 440.0, 659.26, 987.77, 1318.5, 1760.0]
    tone_scores = {"ours": 0, "piptrack": 0, "pyin": 0}
    for hz in tones:
        y = tone(hz)
        want = note_name(hz)
        tone_scores["ours"] += note_name(ours_note(y, 22050)) == want
        tone_scores["piptrack"] += note_name(piptrack_note(y, 22050)) == want
        tone_scores["pyin"] += note_name(pyin_note(y, 22050)) == want
    out(f"| labelled notes right | {scores['ours']}/{n_labels} | {scores['piptrack']}/{n_labels} | {scores['pyin']}/{n_labels} |")
    out(f"| generated tones right (55-1760 Hz) | {tone_scores['ours']}/{len(tones)} | {tone_scores['piptrack']}/{len(tones)} | {tone_scores['pyin']}/{len(tones)} |")
    out("(organ 'C3' sounds at 261.6 Hz: its file has no energy at 130.8 Hz; the label uses middle C = C3)")

    if not args.no_write:
        results = ROOT / "bench" / "RESULTS_units.md"
        new = not results.exists()
        with open(results, "a") as f:
            if new:
                f.write("# Units benchmark: segment + describe and pitch vs the librosa way\n\n")
            f.write(f"## {'quick ' if args.quick else ''}run\n\n")
            f.write("command: `python bench/bench_units.py" + (" --quick" if args.quick else "") + "`  \n")
            f.write("machine: 2-core x86_64, 24 GB (shared with other jobs: CPU time is the figure that counts)  \n")
            f.write("date: 2026-11-21  \n")
            f.write(f"numpy {np.__version__}, librosa {__import__('librosa').__version__}\n\n")
            f.write("\n".join(lines) + "\n\n")
        print(f"appended to {results}")
    return 0 if targets_ok else 1


if __name__ == "__main__":
    sys.exit(main())
