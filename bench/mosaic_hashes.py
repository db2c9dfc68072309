"""Hashes of the outputs of 19 mosaics, to prove that a change to the mosaic code leaves its
output alone (bit for bit): run it with the sources before and after, on the same work folder,
and compare the two JSON files.

    python bench/mosaic_hashes.py --src /path/to/main/src --work /tmp/mh > before.json
    python bench/mosaic_hashes.py --work /tmp/mh > after.json        # this checkout's src/
    python -c "import json,sys; a,b=(json.load(open(f)) for f in sys.argv[1:]); print(a==b)" before.json after.json

Collections (built once in --work with this checkout): the generated one of tests/test_mosaic.py
(organ tones, descriptors unit vectors) and the demo collection (demo/recordings, yamnet and
descriptors unit vectors). Cases: the option sets of tests/test_mosaic.py, and on the demo
collection a collection file, a speech file with pitch matching, an OGG stretch with layers,
crossfade + mix, FLAC output, a 3-channel 48 kHz float target, and a 3-minute target of real
recordings (../shared/data; skipped when absent). Each: SHA-256 (16 hex) of the audio file
and of the score CSV, or the exit status and message.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
AUDIOTROVE = Path(sys.executable).parent / "audiotrove"


def cli(src: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(AUDIOTROVE), *map(str, args)], env={**os.environ, "PYTHONPATH": str(src)},
                          capture_output=True, text=True)


def build(work: Path) -> None:
    """The two collections and the targets, made with this checkout (once)."""
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT / "src"))
    from test_mosaic import PITCHES, SR, sequence

    fx = work / "fixture"
    if not (fx / "coll").exists():
        audio = fx / "audio"
        audio.mkdir(parents=True, exist_ok=True)
        amps = [0.4, 0.1, 0.25, 0.05, 0.3, 0.15, 0.2, 0.35]
        sf.write(audio / "organ_a.wav", sequence(PITCHES, amps, seed=1), SR)
        sf.write(audio / "organ_b.wav", sequence(PITCHES, amps[::-1], seed=2), SR)
        sf.write(audio / "organ_c.wav", sequence(PITCHES[::-1], amps, seed=3), SR)
        sf.write(audio / "off.wav", sequence([200.0, 200.0], [0.3, 0.3]), SR)
        melody = [330.0, 220.0, 440.0, 277.0, 370.0, 247.0, 415.0, 294.0]
        sf.write(fx / "melody.wav", sequence(melody, [0.3, 0.08, 0.2, 0.4, 0.12, 0.25, 0.05, 0.3], seed=9), SR)
        x, _ = sf.read(audio / "organ_a.wav", dtype="float32")
        sf.write(fx / "quiet.wav", 0.5 * x, SR)
        _run_all(fx / "coll", audio, ["--model", "descriptors"])
    demo = work / "demo"
    if not (demo / "coll").exists():
        _run_all(demo / "coll", ROOT / "demo" / "recordings", [], ["--model", "descriptors"])
    multi = work / "multi.wav"
    if not multi.exists():
        x, r = sf.read(ROOT / "demo" / "recordings" / "brahms_hungarian_dance_5_strings.ogg", dtype="float32",
                       always_2d=True)
        x = x[:20 * r]
        sf.write(multi, np.concatenate([x[:, :1], x[:, -1:], 0.5 * x[:, :1]], axis=1), r, subtype="FLOAT")
    long = work / "target_3min.wav"
    if not long.exists():
        sys.path.insert(0, str(HERE))
        import bench_mosaic

        if bench_mosaic.DATA.exists():
            bench_mosaic.long_target(long, 3.0)


def _run_all(coll: Path, audio: Path, *embeds: list[str]) -> None:
    steps = [["init", coll], ["-C", coll, "add", audio], ["-C", coll, "segment", "-j", "1"]]
    steps += [["-C", coll, "embed", "--units", *e, "-j", "1"] for e in embeds]
    for args in steps:
        r = cli(ROOT / "src", *args)
        if r.returncode:
            raise SystemExit(r.stderr)


def cases(work: Path) -> dict[str, list]:
    fr, melody, quiet = work / "fixture" / "coll", work / "fixture" / "melody.wav", work / "fixture" / "quiet.wav"
    demo, rec, long = work / "demo" / "coll", ROOT / "demo" / "recordings", work / "target_3min.wav"
    d = ["--match", "descriptors"]
    out = {
        "fx_desc": [fr, melody, *d],
        "fx_quiet_fade0": [fr, quiet, *d, "--corpus-where", 'path ~ "*organ_a*"', "--fade", "0"],
        "fx_window_xfade": [fr, melody, *d, "--segment", "window:0.13", "--crossfade", "20"],
        "fx_pitch": [fr, melody, *d, "--corpus-where", 'path ~ "*off*"', "--corpus-units", "dur > 0.3",
                     "--pitch", "match"],
        "fx_reuse": [fr, melody, *d, "--max-reuse", "1", "--k", "30"],
        "fx_smooth": [fr, melody, *d, "--smooth", "2"],
        "fx_random": [fr, melody, "--match", "random", "--seed", "3"],
        "fx_mix1": [fr, melody, *d, "--mix", "1"],
        "fx_layers": [fr, melody, *d, "--layers", "3", "--k", "10"],
        "fx_stretch": [fr, f"{melody}@0.2-1.5", *d],
        "fx_collfile": [fr, work / "fixture" / "audio" / "organ_b.wav", *d],
        "demo_xmas": [demo, rec / "xmas.wav", "--smooth", "0.3"],
        "demo_speech_desc": [demo, rec / "sms_speech-female.wav", "--match", "descriptors,hz=1", "--pitch", "match",
                             "--smooth", "0.3"],
        "demo_stretch_layers": [demo, f"{rec}/brahms_hungarian_dance_5_strings.ogg@1-8", "--layers", "3"],
        "demo_xfade_mix": [demo, rec / "sorohanro_-_solo-trumpet-06.ogg", "--crossfade", "20", "--mix", "0.3", *d],
        "demo_random_flac": [demo, rec / "xmas.wav", "--match", "random", "--seed", "2", "--max-reuse", "1"],
        "demo_multi": [demo, work / "multi.wav", "--match", "yamnet,hz=1", "--pitch", "match", "--mix", "0.2"],
    }
    if long.exists():
        out["bench_3min"] = [demo, long, "--match", "yamnet", "--k", "20", "--smooth", "0.3"]
        out["bench_3min_desc_layers"] = [demo, long, *d, "--layers", "2", "--crossfade", "10"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", default=str(ROOT / "src"), help="the sources to run (another checkout's src/)")
    parser.add_argument("--work", required=True, help="collections, targets and outputs (reused)")
    parser.add_argument("only", nargs="*", help="case names (default: all)")
    args = parser.parse_args()
    work = Path(args.work)
    build(work)
    out_dir = work / "out"
    out_dir.mkdir(exist_ok=True)
    results = {}
    for name, (coll, target, *opts) in cases(work).items():
        if args.only and name not in args.only:
            continue
        out = out_dir / f"{name}.{'flac' if name.endswith('_flac') else 'wav'}"
        score = out.with_suffix(".csv")
        r = cli(Path(args.src), "-C", coll, "mosaic", target, "-o", out, "--score", score, *opts)
        if r.returncode:
            results[name] = {"exit": r.returncode, "message": (r.stderr + r.stdout)[-300:]}
        else:
            results[name] = {"audio": hashlib.sha256(out.read_bytes()).hexdigest()[:16],
                             "score": hashlib.sha256(score.read_bytes()).hexdigest()[:16]}
        print(name, results[name], file=sys.stderr, flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
