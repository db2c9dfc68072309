"""Accuracy and speed of the content meter (speech / music / silence / other).

Builds long mixtures from real clips in /work/shared/data with known labels, runs
`ContentMeter` on them as 44.1 kHz stereo blocks, and reports frame accuracy per class
(recall: share of the frames of a class given that class), precision, and speed.

Mixture recipe (seeded, reproducible):
- speech: "paragraphs" of 3-5 utterances (speech/), each trimmed to its active part
  (frames within 35 dB of the clip's loudest 32 ms frame), joined with 0.15-0.35 s pauses;
  label speech from the first to the last word. Half of them carry a music bed 12 dB under
  the voice (speech over music is speech).
- music: 6-15 s from music/ (the robin call is left out: not music), or (3 in 10) a
  phrase of 0.4-1.2 s notes of random instruments/ (single notes are not tiled into drones).
- other: 6-15 s from noise/ and field/ (rain, dishes, ocean, a whale song...).
- silence: 3-6 s of digital zero or -80 dBFS noise.
Segment levels are drawn per segment (speech -30..-18 dBFS RMS, music -28..-16, noise
-40..-22). The "hiss" condition adds steady noise at -52 dBFS under the whole mixture
(an archival tape floor): its silences are only relatively silent.
Frames within 0.25 s of a segment boundary are not scored (label collar), nor pauses of
0.5 s or more inside speech paragraphs (the clean voice 20 dB under its loudest frame).

Usage:  python bench/bench_content_accuracy.py [--mixtures 8] [--seconds 90]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from audiotrove.dsp.content import FRAME_S, ContentMeter
from audiotrove.dsp.vad import SileroVad
from audiotrove.models.dnsmos import load_dnsmos
from audiotrove.models.silero import load_silero
from audiotrove.io.decode import read_all

DATA = ROOT.parent / "shared" / "data"
SR = 44100
CLASSES = ("speech", "music", "silence", "other")
IGNORE = -1


def _load(path: Path) -> np.ndarray:
    audio, sr = read_all(path)
    mono = audio.mean(axis=1).astype(np.float32)
    if sr != SR:
        mono = soxr.resample(mono, sr, SR).astype(np.float32)
    return mono


def _rms_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20)


def _active_part(x: np.ndarray) -> np.ndarray:
    """Trim leading/trailing frames more than 35 dB under the loudest 32 ms frame."""
    hop = int(SR * FRAME_S)
    n = len(x) // hop
    if n == 0:
        return x
    lev = 10 * np.log10(np.mean(np.square(x[: n * hop].reshape(n, hop), dtype=np.float64), axis=1) + 1e-20)
    on = np.flatnonzero(lev > lev.max() - 35)
    return x[on[0] * hop : (on[-1] + 1) * hop]


def _at_level(x: np.ndarray, level_db: float) -> np.ndarray:
    return (x * 10 ** ((level_db - _rms_db(x)) / 20)).astype(np.float32)


def collect_pools() -> dict[str, list[tuple[str, np.ndarray]]]:
    speech = sorted(
        p for p in (DATA / "speech").rglob("*")
        if p.suffix in (".wav", ".flac", ".ogg", ".mp3")
    )
    music = sorted(p for p in (DATA / "music").glob("*") if p.suffix in (".ogg", ".wav") and "robin" not in p.name)
    instruments = sorted((DATA / "instruments").glob("*.wav"))
    other = sorted(p for p in (DATA / "noise").glob("*.wav") if "rir_clap" not in p.name)
    other += sorted(p for p in (DATA / "field").glob("*") if p.suffix in (".flac", ".ogg"))
    pools = {}
    for name, paths in (("speech", speech), ("music", music), ("other", other)):
        pools[name] = [(p.name, _load(p)) for p in paths]
    pools["speech"] = [(n, _active_part(x)) for n, x in pools["speech"] if len(x) > SR // 2]
    pools["instruments"] = [(p.name, _load(p)) for p in instruments]
    return pools


def _excerpt(rng, x: np.ndarray, n: int) -> np.ndarray:
    if len(x) <= n:
        reps = -(-n // len(x))
        return np.tile(x, reps)[:n]
    start = rng.integers(0, len(x) - n)
    return x[start : start + n]


def build_mixture(rng, pools, seconds: float, *, hiss_dbfs: float | None = None):
    """Return (audio float32 mono at 44.1 kHz, frame labels int8 with IGNORE collars, parts)."""
    pieces, voice, spans = [], [], []  # spans: (start_sample, end_sample, class, name)
    total = 0
    kinds = ["speech", "music", "other", "silence", "speech", "music", "other", "speech"]
    order = list(rng.permutation(kinds))
    while total < seconds * SR:
        if not order:
            order = list(rng.permutation(kinds))
        kind = order.pop()
        if kind == "speech":
            picks = rng.choice(len(pools["speech"]), rng.integers(3, 6), replace=False)
            utts = [pools["speech"][i][1] for i in picks]
            name = "+".join(pools["speech"][i][0][:12] for i in picks)
            level = rng.uniform(-30, -18)
            parts = []
            for j, u in enumerate(utts):
                if j:
                    parts.append(np.zeros(int(rng.uniform(0.15, 0.35) * SR), np.float32))
                parts.append(_at_level(u, level + rng.uniform(-2, 2)))
            seg = np.concatenate(parts)
            voice.append((total, seg.copy()))
            if rng.random() < 0.5:  # music bed 12 dB under the voice
                bed_name, bed = pools["music"][rng.integers(len(pools["music"]))]
                name += " over " + bed_name[:16]
                bed = _excerpt(rng, bed, len(seg))
                seg = seg + _at_level(bed, level - 12)
        elif kind == "music" and rng.random() < 0.3:
            # A phrase of real instrument notes (0.4-1.2 s each, random instruments): single
            # notes are not tiled into drones.
            n, notes = int(rng.uniform(6, 15) * SR), []
            while sum(map(len, notes)) < n:
                note = pools["instruments"][rng.integers(len(pools["instruments"]))][1]
                m = min(len(note), int(rng.uniform(0.4, 1.2) * SR))
                fade = np.minimum(1.0, (m - np.arange(m)) / (0.01 * SR)).astype(np.float32)
                notes.append(_at_level(note[:m], rng.uniform(-3, 3)) * fade)
            seg = _at_level(np.concatenate(notes)[:n], rng.uniform(-28, -16))
            name = "instrument notes"
        elif kind == "music":
            name, clip = pools["music"][rng.integers(len(pools["music"]))]
            seg = _at_level(_excerpt(rng, clip, int(rng.uniform(6, 15) * SR)), rng.uniform(-28, -16))
        elif kind == "other":
            name, clip = pools["other"][rng.integers(len(pools["other"]))]
            seg = _at_level(_excerpt(rng, clip, int(rng.uniform(6, 15) * SR)), rng.uniform(-40, -22))
        else:
            n = int(rng.uniform(3, 6) * SR)
            name = "silence"
            seg = np.zeros(n, np.float32) if rng.random() < 0.5 else (rng.standard_normal(n) * 10 ** (-80 / 20)).astype(np.float32)
        spans.append((total, total + len(seg), kind, name))
        pieces.append(seg.astype(np.float32))
        total += len(seg)
    audio = np.concatenate(pieces)
    if hiss_dbfs is not None:
        hiss = rng.standard_normal(len(audio)).astype(np.float32)
        hiss = np.convolve(hiss, np.ones(3, np.float32) / 3, mode="same")  # slightly coloured
        audio = audio + _at_level(hiss, hiss_dbfs)
    n_frames = -(-len(audio) // round(SR * FRAME_S))
    frame_t = (np.arange(n_frames) + 0.5) * FRAME_S
    labels = np.full(n_frames, IGNORE, np.int8)
    collar = 0.25
    for s, e, kind, _ in spans:
        t0, t1 = s / SR, e / SR
        inside = (frame_t >= t0 + collar) & (frame_t < t1 - collar)
        labels[inside] = CLASSES.index(kind)
    # Inside speech paragraphs, pauses of 0.5 s or more (clean voice 20 dB under its
    # loudest frame) are left unscored: calling them speech or not are both defensible.
    hop = round(SR * FRAME_S)
    track = np.zeros(n_frames * hop, np.float32)
    for s, seg in voice:
        track[s : s + len(seg)] = seg
    lev = 10 * np.log10(np.mean(np.square(track.reshape(n_frames, hop), dtype=np.float64), axis=1) + 1e-20)
    min_pause = round(0.5 / FRAME_S)
    for s, e, kind, _ in spans:
        if kind != "speech":
            continue
        i0, i1 = s // hop, -(-e // hop)
        quiet = lev[i0:i1] < lev[i0:i1].max() - 20
        change = np.flatnonzero(np.diff(np.concatenate(([0], quiet.astype(np.int8), [0]))))
        for a, b in zip(change[::2], change[1::2]):
            if b - a >= min_pause:
                labels[i0 + a : i0 + b] = IGNORE
    return audio, labels, spans


def labels_from_result(result: dict, n_frames: int) -> np.ndarray:
    out = np.full(n_frames, IGNORE, np.int8)
    for ci, name in enumerate(CLASSES):
        for a, b in result[name]["sections"]:
            i0 = round(a / FRAME_S)
            i1 = round(b / FRAME_S) if b < n_frames * FRAME_S - 1e-6 else n_frames
            out[i0:i1] = ci
    return out


def run_meter(audio_mono: np.ndarray, *, block: int = 65536, stereo: bool = True, **kwargs) -> tuple[dict, float]:
    """Run the meter on 44.1 kHz (stereo) blocks; return (result, CPU seconds of this process).

    CPU time, not wall time: the machine is shared, and the target is speed per core
    (onnxruntime and numpy run single-threaded here)."""
    x = np.stack([audio_mono, audio_mono * 0.8], axis=1) if stereo else audio_mono[:, None]
    if kwargs.get("quality"):
        kwargs.setdefault("quality_model", load_dnsmos())
    meter = ContentMeter(SR, x.shape[1], vad_model=load_silero(), **kwargs)
    t = time.process_time()
    for i in range(0, len(x), block):
        meter.update(x[i : i + block])
    res = meter.result()
    return res, time.process_time() - t


def confusion(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    ok = (truth >= 0) & (pred >= 0)
    return np.bincount(truth[ok] * 4 + pred[ok], minlength=16).reshape(4, 4)


def report(cm: np.ndarray, title: str) -> None:
    print(f"\n{title}")
    print("  truth \\ pred " + " ".join(f"{c:>8s}" for c in CLASSES) + "   recall  precision")
    for i, c in enumerate(CLASSES):
        row = cm[i]
        rec = row[i] / row.sum() * 100 if row.sum() else float("nan")
        prec = cm[i, i] / cm[:, i].sum() * 100 if cm[:, i].sum() else float("nan")
        print(f"  {c:>12s} " + " ".join(f"{v:8d}" for v in row) + f"   {rec:6.1f}  {prec:6.1f}")
    print(f"  overall frame accuracy {np.trace(cm) / cm.sum() * 100:.1f} %  ({cm.sum()} frames scored)")


def per_clip(pools) -> None:
    """Whole-clip check: share of each non-speech clip given its expected class."""
    print("\nper clip (non-speech pools, 44.1 kHz stereo, whole clip):")
    for kind in ("music", "instruments", "other"):
        for name, x in pools[kind]:
            res, _ = run_meter(_at_level(x, -20))
            print(f"  {kind:6s} {name[:44]:44s} " + " ".join(f"{c[:2]} {res[c]['percentage']:5.1f}" for c in CLASSES))
    # speech recordings with pauses between phrases (issue 11: the pauses are speech or
    # silence, not music), as recorded
    for path in sorted((DATA / "archival").glob("*.flac")) + [DATA / "speech" / "librosa_198-209-0000.ogg"]:
        if path.exists():
            res, _ = run_meter(_load(path))
            print(f"  speech {path.name[:44]:44s} " + " ".join(f"{c[:2]} {res[c]['percentage']:5.1f}" for c in CLASSES))


def speed(pools, seconds: float = 120.0) -> None:
    rng = np.random.default_rng(7)
    audio, _, _ = build_mixture(rng, pools, seconds)
    dur = len(audio) / SR
    best = min(run_meter(audio)[1] for _ in range(3))
    print("\nspeed (CPU time of this process, best of 3):")
    print(f"  ContentMeter on {dur:.0f} s of 44.1 kHz stereo: {dur / best:.0f}x real time per core")
    bestq = min(run_meter(audio, quality=True)[1] for _ in range(2))
    print(f"  ... with quality=True (DNSMOS on <= 10 windows): {dur / bestq:.0f}x real time per core")
    x16 = soxr.resample(audio, SR, 16000).astype(np.float32)
    vad_t = {}
    for backend in ("sequence", "stream"):
        ts = []
        for _ in range(3):
            vad = SileroVad(load_silero(backend), gate_dbfs=None)
            t = time.process_time()
            for i in range(0, len(x16), 16384):
                vad.probabilities(x16[i : i + 16384])
            ts.append(time.process_time() - t)
        vad_t[backend] = min(ts)
        print(f"  Silero VAD alone, {backend:8s} model: {dur / vad_t[backend]:.0f}x real time")
    print(f"  sequence / stream speed ratio: {vad_t['stream'] / vad_t['sequence']:.2f}x")
    silent = np.zeros(int(60 * SR), np.float32)
    t = min(run_meter(silent)[1] for _ in range(3))
    print(f"  ContentMeter on 60 s of digital silence (VAD gated): {60 / t:.0f}x real time")


def quality_check() -> None:
    """DNSMOS through ContentMeter(quality=True): clean read speech (two LibriSpeech
    utterances, 30.6 s), then the same with white noise at falling SNR."""
    print("\nspeech quality (DNSMOS through ContentMeter(quality=True)):")
    clean = _at_level(
        np.concatenate([_load(DATA / "speech" / n) for n in ("librosa_198-209-0000.ogg", "librosa_3436-172162-0000.ogg")]),
        -22,
    )
    rng = np.random.default_rng(5)
    for snr in (None, 30, 20, 10, 0):
        x = clean if snr is None else clean + _at_level(rng.standard_normal(len(clean)).astype(np.float32), -22 - snr)
        q = run_meter(x, stereo=False, quality=True)[0]["quality_score"]
        label = "clean" if snr is None else f"SNR {snr:2d} dB"
        print(f"  {label:10s} ovrl {q['dnsmos_ovrl']:.2f}  sig {q['dnsmos_sig']:.2f}  bak {q['dnsmos_bak']:.2f}  windows {q['windows']}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mixtures", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=90.0)
    ap.add_argument("--no-clips", action="store_true")
    ap.add_argument("--no-speed", action="store_true")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"data folder {DATA} not found")
    pools = collect_pools()
    print(f"pools: {len(pools['speech'])} speech, {len(pools['music'])} music, {len(pools['other'])} other clips")
    for hiss in (None, -52.0):
        cm = np.zeros((4, 4), np.int64)
        for m in range(args.mixtures):
            rng = np.random.default_rng(1000 + m)
            audio, truth, _ = build_mixture(rng, pools, args.seconds, hiss_dbfs=hiss)
            res, _ = run_meter(audio)
            cm += confusion(truth, labels_from_result(res, len(truth)))
        cond = "clean" if hiss is None else f"hiss at {hiss:.0f} dBFS"
        report(cm, f"{args.mixtures} mixtures x {args.seconds:.0f} s, {cond}")
    if not args.no_clips:
        per_clip(pools)
    quality_check()
    if not args.no_speed:
        speed(pools)


if __name__ == "__main__":
    main()
