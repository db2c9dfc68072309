"""Trained classifiers on labelled material (issue 15): grouped cross-validation per embedding vs
a mean-MFCC + logistic-regression baseline, across two soundfonts, and the speed of predict.

    python bench/bench_classify.py [--work /tmp/at-classify] [--phrases 4] [--notes 4] [--hits 6]

Material (rendered once into --work, then cached):
- instrument notes (1.5 s) and phrases (4 s melodies) of 10 General MIDI programs, rendered by
  fluidsynth with two different soundfonts: FluidR3_GM (Debian fluid-soundfont-gm) and TimGM6mb
  (Debian timgm6mb-soundfont);
- drum hits (1 s) of 6 General MIDI drums (kick, snare, closed hat, crash, tom, clap) in both;
- speech: espeak-ng sentences in several voices; noise: white / pink / brown noise and hum.
Experiments:
1. everything, 5-fold cross-validation grouped by file: accuracy and macro F1 per embedding
   (yamnet, descriptors; logreg and auto) vs mean-MFCC + logreg;
2. instruments + drums trained on one soundfont, tested on the other (both ways);
(speed of predict and tag: bench/bench_tag.py)
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import midi_render  # noqa: E402
import soundfile as sf  # noqa: E402

from audiotrove.dsp.features import FeatureSeries  # noqa: E402
from audiotrove.io.decode import open_audio  # noqa: E402
from audiotrove.models import classifier as clf  # noqa: E402
from audiotrove.steps.classify import item_vectors  # noqa: E402

FONTS = {"fluidr3": Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
         "timgm6mb": Path("/usr/share/sounds/sf2/TimGM6mb.sf2")}
INSTRUMENTS = ["piano", "nylon guitar", "violin", "cello", "trumpet", "french horn", "alto sax",
               "oboe", "clarinet", "flute"]
DRUMS = {"kick": (35, 36), "snare": (38, 40), "hat": (42, 44), "crash": (49, 57), "tom": (45, 47, 48),
         "clap": (39,)}
SENTENCES = ["The archive keeps every interview about freedom.", "Please bring the tapes to the second floor.",
             "We recorded the choir on a cold morning in March.", "Nobody expected the storm to last so long.",
             "Turn the volume down before the next track starts.", "Seven boxes of reels arrived yesterday."]
VOICES = ["en-us", "en-gb", "en-us+f3", "en+m3", "de", "fr"]


def render_all(work: Path, *, phrases: int, notes: int, hits: int) -> list[tuple[str, str, str]]:
    """[(path, label, font or 'any')]"""
    work.mkdir(parents=True, exist_ok=True)
    out = []
    for font, sf2 in FONTS.items():
        for name in INSTRUMENTS:
            program, low, high = midi_render.INSTRUMENTS[name]
            label = name.replace(" ", "_")
            for k in range(phrases):
                mel = midi_render.melody(low=low, high=high, seconds=4.0, seed=100 + k, legato=k % 2 == 0)
                p = midi_render.render(mel, program=program, path=work / f"{font}-{label}-phrase{k}.wav", soundfont=sf2)
                out.append((str(p), label, font))
            rng = np.random.default_rng(7)
            for k in range(notes):
                pitch = int(rng.integers(low, high + 1))
                p = midi_render.render([(0.05, 1.4, pitch)], program=program,
                                       path=work / f"{font}-{label}-note{k}.wav", soundfont=sf2)
                out.append((str(p), label, font))
        for drum, keys in DRUMS.items():
            for k in range(hits):
                key = keys[k % len(keys)]
                p = midi_render.render([(0.05, 0.9, key)], program=0, path=work / f"{font}-{drum}-hit{k}.wav",
                                       soundfont=sf2, channel=9, velocity=60 + 10 * (k % 5))
                out.append((str(p), drum, font))
    for k, (voice, text) in enumerate((v, s) for v in VOICES for s in SENTENCES[:3 + (len(VOICES) > 3)]):
        p = work / f"speech-{k}.wav"
        if not p.exists():
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(140 + 10 * (k % 4)), "-w", str(p), text], check=True)
        out.append((str(p), "speech", "any"))
    rng = np.random.default_rng(3)
    sr = 16000
    for k in range(24):
        p = work / f"noise-{k}.wav"
        if not p.exists():
            n = 3 * sr
            white = rng.standard_normal(n)
            kind = k % 4
            if kind == 1:  # pink: 1/f power
                spec = np.fft.rfft(white)
                spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1))
                x = np.fft.irfft(spec, n)
            elif kind == 2:  # brown
                x = np.cumsum(white)
                x -= np.convolve(x, np.ones(400) / 400, mode="same")
            elif kind == 3:  # mains hum with harmonics + a little noise
                t = np.arange(n) / sr
                f0 = 50 if k % 8 < 4 else 60
                x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 8)) + 0.05 * white
            else:
                x = white
            x = 0.3 * x / np.abs(x).max()
            sf.write(p, x.astype(np.float32), sr)
        out.append((str(p), "noise", "any"))
    return out


def mean_mfcc(path: str) -> np.ndarray:
    """The baseline's features: the mean of 13 MFCCs over the file's frames."""
    reader = open_audio(path)
    series = FeatureSeries(sample_rate_hz=reader.sample_rate, hop_s=0.5, features=("mfcc",))
    rows = []
    for block in reader.blocks():
        mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
        rows.append(series.update(mono))
    rows.append(series.finish())
    cols = [f"mfcc_{i + 1}" for i in range(13)]
    m = np.concatenate([np.stack([r[c] for c in cols], axis=1) for r in rows if len(r.get(cols[0], []))])
    return np.nanmean(m, axis=0)


def features(items, model: str) -> np.ndarray:
    if model == "mfcc":
        return np.stack([mean_mfcc(p) for p, _, _ in items])
    from audiotrove.models.embedders import get_embedder

    key = get_embedder(model).key
    return np.stack([item_vectors(p, key, level="file")[1][0] for p, _, _ in items])


def cv_row(X, labels, groups, classifier: str) -> dict:
    r = clf.cross_validate(X, labels, groups, folds=5, classifier=classifier)
    return {"accuracy": r["accuracy"], "macro_f1": r["macro_f1"], "classifier": r["classifier"],
            "candidates": r.get("candidates")}


def cross_font(X, labels, fonts, train_font: str, test_font: str, classifier: str) -> dict:
    tr = [i for i, f in enumerate(fonts) if f == train_font]
    te = [i for i, f in enumerate(fonts) if f == test_font]
    if classifier == "auto":  # chosen by grouped CV on the training font alone
        classifier = clf.cross_validate(X[tr], [labels[i] for i in tr], tr, folds=5, classifier="auto")["classifier"]
    m = clf.train(X[tr], [labels[i] for i in tr], embedding={"model": "bench"}, classifier=classifier)
    pred = [m["classes"][j] for j in clf.predict_proba(m, X[te]).argmax(axis=1)]
    ev = clf.evaluate([labels[i] for i in te], pred, m["classes"])
    return {"accuracy": ev["accuracy"], "macro_f1": ev["macro_f1"], "classifier": classifier}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/at-classify")
    ap.add_argument("--phrases", type=int, default=4)
    ap.add_argument("--notes", type=int, default=4)
    ap.add_argument("--hits", type=int, default=6)
    ap.add_argument("--models", default="mfcc,descriptors,yamnet")
    a = ap.parse_args()
    work = Path(a.work)
    t0 = time.time()
    items = render_all(work, phrases=a.phrases, notes=a.notes, hits=a.hits)
    labels = [lab for _, lab, _ in items]
    fonts = [f for _, _, f in items]
    groups = [p for p, _, _ in items]
    print(f"{len(items)} files, {len(set(labels))} classes, rendered in {time.time() - t0:.0f} s", file=sys.stderr)
    inst = [i for i, f in enumerate(fonts) if f != "any"]
    print("| features | classifier | grouped 5-fold CV accuracy | macro F1 | FluidR3 -> TimGM6mb acc / F1 | TimGM6mb -> FluidR3 acc / F1 |")
    print("|---|---|---|---|---|---|")
    for model in a.models.split(","):
        t = time.process_time()
        X = features(items, model)
        feat_s = time.process_time() - t
        print(f"{model}: {X.shape[1]}-d features in {feat_s:.1f} CPU s", file=sys.stderr)
        for classifier in (("logreg",) if model == "mfcc" else ("logreg", "auto")):
            cv = cv_row(X, labels, groups, classifier)
            Xi, li, fi = X[inst], [labels[i] for i in inst], [fonts[i] for i in inst]
            ab = cross_font(Xi, li, fi, "fluidr3", "timgm6mb", classifier)
            ba = cross_font(Xi, li, fi, "timgm6mb", "fluidr3", classifier)
            name = {"mfcc": "mean MFCC (baseline)"}.get(model, model)
            chosen = classifier if classifier != "auto" else f"auto -> {cv['classifier']} (cross-font: {ab['classifier']} / {ba['classifier']})"
            print(f"| {name} | {chosen} | {cv['accuracy']:.3f} | {cv['macro_f1']:.3f} | "
                  f"{ab['accuracy']:.3f} / {ab['macro_f1']:.3f} | {ba['accuracy']:.3f} / {ba['macro_f1']:.3f} |", flush=True)
            if cv.get("candidates") and len(cv["candidates"]) > 1:
                print(f"{model} auto candidates: {cv['candidates']}", file=sys.stderr)
            if classifier == "logreg":  # where generalizing to the other soundfont fails
                tr = [i for i, f in enumerate(fi) if f == "fluidr3"]
                te = [i for i, f in enumerate(fi) if f == "timgm6mb"]
                m = clf.train(Xi[tr], [li[i] for i in tr], embedding={"model": "bench"})
                pred = [m["classes"][j] for j in clf.predict_proba(m, Xi[te]).argmax(axis=1)]
                ev = clf.evaluate([li[i] for i in te], pred, m["classes"])
                print(f"{name} FluidR3 -> TimGM6mb per-class F1: " +
                      ", ".join(f"{c} {v['f1']:.2f}" for c, v in ev["per_class"].items()), file=sys.stderr)


if __name__ == "__main__":
    main()
