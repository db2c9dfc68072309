"""Mosaic memory: the peak RSS of `audiotrove mosaic` end to end, as a user runs it, against the
target's length.

    python bench/bench_mosaic_memory.py [--minutes 10,120] [--src DIR] [--work DIR]

Corpus: the demo collection (demo/recordings: 7 files, about 2.5 minutes of music, speech,
field and noise), segmented (onset) and embedded per unit with yamnet. Targets: real recordings
of ../shared/data (music and speech) end to end, resampled to 44.1 kHz stereo and written as
FLAC (16-bit), `minutes` long (written file by file: the generator does not hold them either).
Each mosaic: `audiotrove -C demo mosaic TARGET -o out.flac --score out.csv --smooth 0.3`
(yamnet, onset units, k 20) under `/usr/bin/time -v`: peak RSS ("Maximum resident set
size"), wall time, the target's units. `--src DIR` runs another checkout's sources (main's, for
the figure before); the collection is built with this checkout's.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
DATA = HERE.parent.parent / "shared" / "data"
if not DATA.exists():
    DATA = Path("/work/shared/data")
AUDIOTROVE = Path(sys.executable).parent / "audiotrove"
SOURCES = ["music/Kevin_MacLeod_-_Vibe_Ace.ogg", "speech/2412-153948-0000.flac",
           "music/Karissa_Hobbs_-_Lets_Go_Fishin.ogg",
           "music/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg"]
RATE = 44100


def cli(src: Path, *args, timed: bool = False) -> subprocess.CompletedProcess:
    cmd = [str(AUDIOTROVE), *map(str, args)]
    if timed:
        cmd = ["/usr/bin/time", "-v", *cmd]
    return subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(src)}, capture_output=True, text=True)


def demo_collection(root: Path) -> Path:
    if (root / ".audiotrove").exists():
        return root
    for args in (["init", root], ["-C", root, "add", HERE.parent / "demo" / "recordings"],
                 ["-C", root, "segment", "-j", "1"], ["-C", root, "embed", "--units", "-j", "1"]):
        r = cli(SRC, *args)
        if r.returncode:
            raise SystemExit(r.stderr)
    return root


def long_target(path: Path, minutes: float) -> Path:
    """Real recordings end to end, `minutes` long, 44.1 kHz stereo FLAC, written source by source."""
    import soundfile as sf
    import soxr

    from audiotrove.io.decode import read_all

    if path.exists():
        return path
    want = int(minutes * 60 * RATE)
    tmp = path.with_name(path.stem + ".part.flac")
    with sf.SoundFile(tmp, "w", samplerate=RATE, channels=2, subtype="PCM_16") as out:
        i = 0
        while out.frames < want:
            x, rate = read_all(DATA / SOURCES[i % len(SOURCES)])
            x = np.repeat(x, 2, axis=1) if x.shape[1] == 1 else x[:, :2]
            if rate != RATE:
                x = soxr.resample(x, rate, RATE)
            out.write(x[:want - out.frames])
            i += 1
    tmp.rename(path)
    return path


def run(src: Path, coll: Path, target: Path, out: Path) -> dict:
    r = cli(src, "-C", coll, "mosaic", target, "-o", out, "--score", out.with_suffix(".csv"), "--smooth", "0.3",
            timed=True)
    text = r.stderr
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text).group(1)
    status = int(re.search(r"Exit status: (\d+)", text).group(1))
    res = {"peak_rss_mb": round(rss_kb / 1024), "wall": wall, "exit": status}
    if status == 0:
        import pandas as pd

        score = pd.read_csv(out.with_suffix(".csv"))
        res["target_units"] = int(score["target_unit"].nunique())
    else:
        res["message"] = text.split("\tCommand being timed")[0].strip()[-300:]
    return res


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", default="10,120")
    parser.add_argument("--src", default=str(SRC), help="the sources to measure (another checkout's src/)")
    parser.add_argument("--work", default=None, help="keep the targets and the collection here")
    args = parser.parse_args()
    sys.path.insert(0, str(SRC))
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-mosaic-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    coll = demo_collection(work / "demo")
    results = {}
    for m in [float(v) for v in args.minutes.split(",")]:
        target = long_target(work / f"target_{m:g}min.flac", m)
        res = run(Path(args.src), coll, target, work / f"mosaic_{m:g}min.flac")
        results[f"{m:g} min"] = res
        print(f"{m:g} min", json.dumps(res), flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
