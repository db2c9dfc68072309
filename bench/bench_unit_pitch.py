"""Benchmark: unit pitch on real monophonic phrases, against librosa's pyin, this tree vs a
baseline tree in the same run.

    python bench/bench_unit_pitch.py --base /tmp/old/src [--no-write]
    (a baseline: git archive <commit> src | tar -x -C /tmp/old)

Material: the solo phrases of ../shared/data/music (cello, saxophone, female voice, trumpet,
Carnatic singing, a robin): real recordings where one note follows another, often still
ringing; and three polyphonic pieces (orchestra, jazz, string orchestra), where pyin follows
the predominant line. Reference: librosa.pyin over the whole file (fmin 50, fmax 2000 Hz), its median f0
over the voiced frames inside each unit. Units: audiotrove.units.extract.UnitExtractor in
onset mode (as `segment` runs it), with each tree's sources. Score: among units that both
pyin and we call pitched, the share whose nearest MIDI note agrees; and how many units'
notes changed between the trees (units that start within 5 ms in both trees are compared;
the units only one tree has are counted apart). pyin is no ground truth (its HMM lags at note changes),
so a change is a gain only where it moves to pyin's note.

Second part (needs fluidsynth + fluid-soundfont-gm, as bench_onsets.py): two-part renders
with known notes, where a note often starts while another still sounds: a melody (piano,
nylon guitar, flute, violin, trumpet) over slow held chords' roots (string ensemble or
organ, 1.5-3 s per note, MIDI 36-55), and a vibraphone melody over a bass line (fingered
bass, 0.4-1 s per note, MIDI 28-45); each part rendered by fluidsynth and the two summed.
Truth: every note-on of both parts; a matched unit (start within 50 ms) is right when its
note is the note that starts there (either one when both parts start within 50 ms).

Results are appended to bench/RESULTS_onsets.md (unless --no-write).
"""
from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse
import importlib
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
if not DATA.exists():
    DATA = Path("/work/shared/data")
PHRASES = ["music/sms_cello-phrase.wav", "music/sms_sax-phrase-short.wav",
           "music/sms_singing-female.wav", "music/sorohanro_-_solo-trumpet-06.ogg",
           "music/sms_carnatic.wav", "music/456440__inspectorj__bird-whistling-robin-single-13.ogg",
           # polyphonic: pyin follows the predominant line; here it is a weaker reference
           "music/sms_orchestra.wav", "music/Kevin_MacLeod_-_Vibe_Ace.ogg",
           "music/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg"]


def load_tree(src: str):
    """audiotrove imported from src (a fresh import: modules of another tree dropped)."""
    for name in [m for m in sys.modules if m == "audiotrove" or m.startswith("audiotrove.")]:
        del sys.modules[name]
    sys.path.insert(0, src)
    try:
        importlib.invalidate_caches()
        extract = importlib.import_module("audiotrove.units.extract")
        decode = importlib.import_module("audiotrove.io.decode")
    finally:
        sys.path.remove(src)
    return extract, decode


def same_units(base: list[dict], this: list[dict], tol_s: float = 0.005) -> list[tuple[dict, dict]]:
    """Pairs of units (base, this tree) that start within tol_s of each other: where the two
    trees segment alike, their pitches are compared unit by unit."""
    starts = np.array([r["start"] for r in this])
    pairs = []
    for rb in base:
        if len(starts):
            j = int(np.argmin(np.abs(starts - rb["start"])))
            if abs(starts[j] - rb["start"]) <= tol_s:
                pairs.append((rb, this[j]))
    return pairs


def units(extract, y: np.ndarray, sr: int) -> list[dict]:
    ex = extract.UnitExtractor(sample_rate_hz=sr, channels=1, mode="onset")
    rows = []
    for i in range(0, len(y), 65536):
        rows += ex.update(y[i:i + 65536, None])
    return rows + ex.finish()


def mixed_renders(seconds: float, seeds: int):
    """[(name, mono signal, sr, [(onset_s, {notes starting there})])] for the two-part renders."""
    import soundfile as sf
    import tempfile

    sys.path.insert(0, str(ROOT / "bench"))
    import midi_render

    if not midi_render.available():
        return []
    cache = Path(tempfile.gettempdir()) / "audiotrove-bench-unit-pitch"
    cache.mkdir(exist_ok=True)
    # (name, melody (program, low, high), accompaniment (program, low, high, note length s))
    pairs = [("piano over strings", (0, 60, 84), (48, 36, 55, (1.5, 3.0))),
             ("nylon guitar over organ", (24, 57, 79), (19, 36, 55, (1.5, 3.0))),
             ("flute over strings", (73, 64, 93), (48, 36, 55, (1.5, 3.0))),
             ("violin over organ", (40, 62, 88), (19, 36, 55, (1.5, 3.0))),
             ("trumpet over strings", (56, 58, 81), (48, 36, 55, (1.5, 3.0))),
             ("vibraphone over a bass line", (11, 60, 84), (33, 28, 45, (0.4, 1.0)))]
    out = []
    for name, (mprog, lo, hi), (pprog, plo, phi, ioi) in pairs:
        for seed in range(seeds):
            mel = midi_render.melody(low=lo, high=hi, seconds=seconds, seed=100 + seed)
            pad = midi_render.melody(low=plo, high=phi, seconds=seconds, seed=200 + seed, ioi_s=ioi)
            ys = []
            for notes, prog, tag in ((mel, mprog, "m"), (pad, pprog, "p")):
                wav = midi_render.render(notes, program=prog, path=cache / f"{tag}{prog}_{seed}_{seconds:g}.wav")
                y, sr = sf.read(wav, dtype="float32", always_2d=True)
                ys.append(y.mean(axis=1))
            n = min(len(v) for v in ys)
            y = ys[0][:n] + ys[1][:n]
            events = sorted([(t, p) for t, _, p in mel] + [(t, p) for t, _, p in pad])
            truth = []
            for t, p in events:
                if truth and t - truth[-1][0] <= 0.05:
                    truth[-1][1].add(p)
                else:
                    truth.append((t, {p}))
            out.append((name, y, sr, truth))
    return out


def midi(hz):
    return None if hz is None or not math.isfinite(hz) else round(69 + 12 * math.log2(hz / 440.0))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="the baseline tree's src directory")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each two-part render")
    ap.add_argument("--seeds", type=int, default=2, help="two-part renders per pair")
    args = ap.parse_args()
    import librosa

    trees = {"base": args.base, "this": str(ROOT / "src")}
    loaded = {k: load_tree(v) for k, v in trees.items()}
    lines = ["| phrase | s | units | pitched (both) | agree with pyin: base | this tree | notes changed "
             "| units only in base / this tree |", "|---|---|---|---|---|---|---|---|"]
    tot = {"n": 0, "base": 0, "this": 0, "changed": 0}
    for rel in PHRASES:
        path = DATA / rel
        if not path.exists():
            print(f"skip {rel}: not found")
            continue
        audio, sr = loaded["this"][1].read_all(path)
        y = audio.mean(axis=1).astype(np.float32)
        f0, voiced, _ = librosa.pyin(y, fmin=50, fmax=2000, sr=sr)
        times = librosa.times_like(f0, sr=sr)
        rows = {k: units(ex, y, sr) for k, (ex, _) in loaded.items()}
        same = same_units(rows["base"], rows["this"])
        n = agree_b = agree_t = changed = 0
        for rb, rt in same:
            inside = (times >= rb["start"]) & (times < rb["start"] + rb["dur"]) & voiced
            ref = midi(float(np.median(f0[inside]))) if inside.any() else None
            changed += midi(rb["hz"]) != midi(rt["hz"])
            if ref is None or rb["hz"] is None or rt["hz"] is None:
                continue
            n += 1
            agree_b += midi(rb["hz"]) == ref
            agree_t += midi(rt["hz"]) == ref
        tot["n"] += n; tot["base"] += agree_b; tot["this"] += agree_t; tot["changed"] += changed
        line = (f"| {path.name} | {len(y) / sr:.1f} | {len(rows['this'])} | {n} | "
                f"{agree_b / max(n, 1):.2f} | {agree_t / max(n, 1):.2f} | {changed} | "
                f"{len(rows['base']) - len(same)} / {len(rows['this']) - len(same)} |")
        print(line, flush=True)
        lines.append(line)
    line = (f"| all | | | {tot['n']} | {tot['base'] / max(tot['n'], 1):.3f} | "
            f"{tot['this'] / max(tot['n'], 1):.3f} | {tot['changed']} | |")
    print(line)
    lines.append(line)
    lines += ["", "| two-part render | onsets | matched units: base / this tree | pitch right: base | this tree |",
              "|---|---|---|---|---|"]
    acc = {}
    import midi_render  # bench/, beside this script

    for name, y, sr, truth in mixed_renders(args.seconds, args.seeds):
        rows = {k: units(ex, y, sr) for k, (ex, _) in loaded.items()}
        t = np.array([e[0] for e in truth])
        a = acc.setdefault(name, [0, 0, 0, 0, 0])
        a[0] += len(truth)
        for k, (matched, right) in (("base", (1, 3)), ("this", (2, 4))):
            pairs = midi_render.match_onsets(t, np.array([r["start"] for r in rows[k]]))
            a[matched] += len(pairs)
            a[right] += sum(midi(rows[k][j]["hz"]) in truth[i][1] for i, j in pairs)
    for name, (n_on, m_b, m_t, right_b, right_t) in acc.items():
        line = (f"| {name} | {n_on} | {m_b} / {m_t} | {right_b / max(m_b, 1):.2f} | {right_t / max(m_t, 1):.2f} |")
        print(line, flush=True)
        lines.append(line)
    if not args.no_write:
        with (ROOT / "bench" / "RESULTS_onsets.md").open("a", encoding="utf-8") as f:
            f.write(f"\n## unit pitch vs pyin on real phrases: {time.strftime('%Y-%m-%d %H:%M')} "
                    f"`python bench/bench_unit_pitch.py --base {args.base}`\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
