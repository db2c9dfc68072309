"""Mosaic (issue 14): how close the re-made piece is to its target, and how fast at scale.

    python bench/bench_mosaic.py [--part quality,speed] [--rows 1000000] [--minutes 3]

quality  A collection of ../shared/data (speech, music, instruments, field, noise, archival;
         formats/, loudness/, pairs/ and video/ left out) plus fluidsynth-rendered instrument
         melodies, segmented (onset) and embedded per unit with yamnet and descriptors. Targets:
         speech (a LibriSpeech utterance of the collection: its own file is left out of the
         corpus), a melody (clarinet, rendered, outside the collection) and a drum loop (GM
         drums, rendered). For each way of choosing, the output against its target:
           lsd_db    log-mel spectral distance, dB (RMS over 64 mel bands, mean over the frames
                     where the target is within 60 dB of its loudest; lower is closer)
           chroma_r  correlation of the chromagrams (librosa chroma_stft; higher is closer)
           pitch_agree  share of the target's clearly pitched frames where the output has the
                     same pitch class (within half a semitone; dsp/pitch.py on both)
           onset_f   F-measure of the output's onsets against the target's (librosa onset
                     detection, 50 ms tolerance)
           jumps     consecutive target units whose corpus units do not follow each other
         The baseline is random units (--match random), measured in the same run.
speed    A million random unit vectors of YAMNet's dimension (1024) in the real index (faiss IVF,
         8-bit), mapped to 1 000 catalog files of 1 000 units each (their unit shards real, their
         audio one real recording seen through links), and a 3-minute target of real recordings:
         `make_mosaic` with --match yamnet on one core (faiss and onnxruntime single-threaded),
         CPU and wall time per stage, and the peak RSS of the process (VmHWM), for a 1- and a
         3-minute target. Embedding the corpus is not part of it (its rate is measured by the
         quality part and stated apart).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))
DATA = HERE.parent.parent / "shared" / "data"
if not DATA.exists():
    DATA = Path("/work/shared/data")
CORPUS_DIRS = ("speech", "music", "instruments", "field", "noise", "archival")
SPEECH_TARGET = "speech/librispeech-1995-1837-0001.wav"
SR = 16000


def peak_rss_mb(field: str = "VmHWM") -> float:
    """VmHWM: peak resident memory; RssAnon: private memory now; RssFile: mapped file pages now
    (the index's float16 vectors are memory-mapped: pages read stay counted until reclaimed)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def memory() -> dict:
    return {k: round(peak_rss_mb(k)) for k in ("VmHWM", "RssAnon", "RssFile")}


# --- material ---------------------------------------------------------------------------------

def render_material(folder: Path) -> dict[str, Path]:
    """Instrument melodies for the corpus, and the melody and drum-loop targets (fluidsynth)."""
    import midi_render as mr

    (folder / "corpus").mkdir(parents=True, exist_ok=True)
    out = {}
    for i, name in enumerate(("piano", "violin", "flute", "trumpet", "cello", "nylon guitar", "alto sax")):
        program, low, high = mr.INSTRUMENTS[name]
        notes = mr.melody(low=low, high=high, seconds=20.0, seed=10 + i, legato=i % 2 == 0)
        out[name] = mr.render(notes, program=program, path=folder / "corpus" / f"{name.replace(' ', '_')}.wav")
    program, low, high = mr.INSTRUMENTS["clarinet"]
    notes = mr.melody(low=low, high=high, seconds=15.0, seed=99, legato=False)
    out["target_melody"] = mr.render(notes, program=program, path=folder / "melody_clarinet.wav")
    out["target_drums"] = render_drums(folder / "drum_loop.wav", seed=3)
    out["corpus_drums"] = render_drums(folder / "corpus" / "drums_other.wav", seed=8, bars=6)
    return out


def render_drums(path: Path, *, seed: int, bars: int = 4) -> Path:
    """A GM drum loop at 120 BPM (kick, snare, closed/open hat, toms), rendered on channel 10."""
    import midi_render as mr

    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    notes = []
    step = 0.125  # sixteenths at 120 BPM
    for bar in range(bars):
        for s in range(16):
            t = (bar * 16 + s) * step
            if s in (0, 8) or (s in (6, 10) and rng.random() < 0.5):
                notes.append((t, 0.1, 36))
            if s in (4, 12):
                notes.append((t, 0.1, 38))
            if s % 2 == 0:
                notes.append((t, 0.05, 46 if s == 14 else 42))
            if bar % 2 == 1 and s >= 13 and rng.random() < 0.6:
                notes.append((t, 0.1, int(rng.choice([45, 47, 50]))))
    path.parent.mkdir(parents=True, exist_ok=True)
    mid = path.with_suffix(".mid")
    mr.write_midi(sorted(notes), mid, program=0, channel=9)
    tmp = path.with_name(path.stem + ".tmp.wav")
    subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", "44100", "-F", str(tmp), str(mr.SOUNDFONT),
                    str(mid)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tmp.rename(path)
    return path


def corpus_files(max_s: float = 150.0) -> list[Path]:
    import soundfile as sf

    files = []
    for d in CORPUS_DIRS:
        for p in sorted((DATA / d).rglob("*")):
            if p.suffix.lower() not in (".wav", ".flac", ".ogg", ".mp3") or "(!)" in p.name:
                continue
            try:
                if sf.info(p).duration <= max_s:
                    files.append(p)
            except Exception:  # noqa: BLE001 - unreadable by libsndfile: PyAV reads it in the collection
                files.append(p)
    return files


def cli(*args) -> None:
    exe = Path(sys.executable).with_name("audiotrove")
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    r = subprocess.run([str(exe), *map(str, args)], env=env, capture_output=True, text=True)
    if r.returncode not in (0, 1):
        raise SystemExit(f"audiotrove {' '.join(map(str, args))} failed:\n{r.stderr}")


# --- metrics ----------------------------------------------------------------------------------

def mono16k(audio: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    x = audio.mean(axis=1) if audio.ndim == 2 else audio
    return np.asarray(soxr.resample(x, rate, SR) if rate != SR else x, np.float32)


def lsd_db(out: np.ndarray, target: np.ndarray) -> float:
    from audiotrove.dsp.melspec import log_mel_spectrogram

    a = log_mel_spectrogram(out) * (20 / np.log(10))
    b = log_mel_spectrogram(target) * (20 / np.log(10))
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    loud = b.max(axis=1) >= b.max() - 60
    return float(np.mean(np.sqrt(np.mean((a[loud] - b[loud]) ** 2, axis=1))))


def chroma_r(out: np.ndarray, target: np.ndarray) -> float:
    import librosa

    a = librosa.feature.chroma_stft(y=out, sr=SR, n_fft=2048, hop_length=512)
    b = librosa.feature.chroma_stft(y=target, sr=SR, n_fft=2048, hop_length=512)
    rms = librosa.feature.rms(y=target, frame_length=2048, hop_length=512)[0]
    n = min(a.shape[1], b.shape[1], len(rms))
    loud = rms[:n] >= rms.max() * 10 ** (-40 / 20)
    return float(np.corrcoef(a[:, :n][:, loud].ravel(), b[:, :n][:, loud].ravel())[0, 1])


def pitch_agree(out: np.ndarray, target: np.ndarray) -> float:
    """Share of the target's clearly pitched frames (clarity >= 0.8, dsp/pitch.py) where the output
    has the same pitch class within half a semitone (octaves do not count)."""
    from audiotrove.dsp.pitch import pitch_track

    _, ht, ct = pitch_track(target, sample_rate_hz=SR)
    _, ho, co = pitch_track(out, sample_rate_hz=SR)
    n = min(len(ht), len(ho))
    voiced = (ct[:n] >= 0.8) & np.isfinite(ht[:n])
    if not voiced.any():
        return float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        d = 12 * np.log2(ho[:n][voiced] / ht[:n][voiced])
    d = np.abs((d + 6) % 12 - 6)
    return float(np.mean(np.nan_to_num(d, nan=12.0) <= 0.5))


def onset_f(out: np.ndarray, target: np.ndarray, tol_s: float = 0.05) -> float:
    import librosa

    est = librosa.onset.onset_detect(y=out, sr=SR, units="time")
    ref = librosa.onset.onset_detect(y=target, sr=SR, units="time")
    if len(est) == 0 or len(ref) == 0:
        return 0.0
    used, hits = set(), 0
    for r in ref:
        d = np.abs(est - r)
        for j in np.argsort(d):
            if d[j] > tol_s:
                break
            if j not in used:
                used.add(j)
                hits += 1
                break
    p, rcl = hits / len(est), hits / len(ref)
    return 0.0 if hits == 0 else 2 * p * rcl / (p + rcl)


# --- quality ----------------------------------------------------------------------------------

VARIANTS = [
    ("random units (baseline)", {"match": "random"}),
    ("mean MFCC (mfcc=1 over a descriptors pool of 4 k)", {"match": "descriptors=0,mfcc=1"}),
    ("yamnet", {"match": "yamnet"}),
    ("descriptors", {"match": "descriptors"}),
    ("descriptors + pitch match", {"match": "descriptors", "pitch": "match"}),
    ("descriptors + hz=1 + pitch match", {"match": "descriptors,hz=1", "pitch": "match"}),
    ("yamnet, smooth 0.3", {"match": "yamnet", "smooth": 0.3}),
    ("yamnet, layers 3", {"match": "yamnet", "layers": 3}),
    ("descriptors, layers 3", {"match": "descriptors", "layers": 3}),
]


def bench_quality(work: Path) -> dict:
    import soundfile as sf

    import audiotrove
    from audiotrove.io.decode import read_all

    material = render_material(work / "rendered")
    coll = work / "coll"
    out: dict = {"variants": {}}
    build = work / "corpus_build.json"
    if not (coll / ".audiotrove").exists() or not build.exists():
        shutil.rmtree(coll, ignore_errors=True)
        cli("init", coll)
        links = work / "corpus_links"
        links.mkdir(exist_ok=True)
        files = corpus_files() + sorted((work / "rendered" / "corpus").glob("*.wav"))
        list_file = work / "corpus.txt"
        list_file.write_text("\n".join(str(p) for p in files) + "\n")
        cli("-C", coll, "add", list_file)
        t0 = time.perf_counter()
        cli("-C", coll, "segment", "-j", "2")
        out["segment_s"] = time.perf_counter() - t0
        for model in ("yamnet", "descriptors"):
            t0, c0 = time.perf_counter(), _children_cpu()
            cli("-C", coll, "embed", "--units", "--model", model, "-j", "2")
            out[f"embed_{model}_s"] = time.perf_counter() - t0
            out[f"embed_{model}_cpu_s"] = _children_cpu() - c0
        build.write_text(json.dumps(out))
    out.update(json.loads(build.read_text()))
    with audiotrove.open(coll) as c:
        units = c.units()
        out["corpus_files"] = int(units["path"].nunique())
        out["corpus_units"] = int(len(units))
        out["corpus_s"] = float(units["dur"].sum())
        targets = {"speech": str(DATA / SPEECH_TARGET), "melody": str(material["target_melody"]),
                   "drums": str(material["target_drums"])}
        for label, opts in VARIANTS:
            row = {}
            for tname, tpath in targets.items():
                t0 = time.process_time()
                audio, score = c.mosaic(tpath, k=20, seed=0, **opts)
                elapsed = time.process_time() - t0
                x, rate = read_all(tpath)
                a, b = mono16k(audio, rate), mono16k(x, rate)
                main = score[(score["layer"] == 0) & score["path"].notna()]
                same = (main["path"].shift() == main["path"]) & (main["unit"].shift() + 1 == main["unit"])
                row[tname] = {"lsd_db": lsd_db(a, b), "chroma_r": chroma_r(a, b), "pitch_agree": pitch_agree(a, b),
                              "onset_f": onset_f(a, b),
                              "jumps": int((~same).sum() - 1), "units": int(score["target_unit"].nunique()),
                              "layers": int(len(score)), "cpu_s": elapsed}
                if label.startswith("descriptors + pitch"):
                    sf.write(work / f"mosaic_{tname}.wav", audio, rate)
            out["variants"][label] = row
            print(label, json.dumps({t: {k: round(v, 3) for k, v in r.items()} for t, r in row.items()}), flush=True)
    return out


def _children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


# --- speed ------------------------------------------------------------------------------------

UNITS_PER_FILE = 1000


def build_big_collection(root: Path, rows: int, audio_path: Path) -> None:
    """A collection whose catalog points 1 000 files (links to one real recording, each with its
    own content hash) at unit shards and at `rows` random YAMNet-sized vectors in the index."""
    import faiss
    import pandas as pd

    from audiotrove.catalog.db import Catalog
    from audiotrove.models.embedders import model_key
    from audiotrove.steps import embed as embed_step
    from audiotrove.steps import segment as segment_step
    from audiotrove.units.store import units_dir, write_shard
    from audiotrove.vectors import index as vindex
    from audiotrove.vectors.index import VectorIndex, VectorSet, index_dir, normalize
    from audiotrove.vectors.store import SHARDS_DIRNAME, vectors_root
    import soundfile as sf

    key = model_key("yamnet")
    cat = Catalog.create(root)
    n_files = rows // UNITS_PER_FILE
    links = root / "audio"
    links.mkdir()
    audio_s = sf.info(audio_path).duration
    paths = []
    for i in range(n_files):
        p = links / f"f{i:04d}.wav"
        os.symlink(audio_path, p)
        paths.append(str(p))
    cat.add_files([(p, "file", "bench") for p in paths])
    ids = cat.file_ids(paths)
    st = os.stat(audio_path)
    rng = np.random.default_rng(0)
    udir = units_dir(cat)
    vshards = vectors_root(root) / SHARDS_DIRNAME
    vshards.mkdir(parents=True, exist_ok=True)
    units_key = "bench0000000"
    names = []
    for i, p in enumerate(paths):
        digest = f"{i:032x}"
        starts = np.sort(rng.uniform(0, audio_s - 1.0, UNITS_PER_FILE))
        durs = rng.uniform(0.1, 0.6, UNITS_PER_FILE)
        hz = np.where(rng.random(UNITS_PER_FILE) < 0.5, rng.uniform(80, 1000, UNITS_PER_FILE), np.nan)
        unit_rows = [{"unit": u, "start": float(starts[u]), "dur": float(durs[u]), "power": float(rng.uniform(-50, -10)),
                      "hz": None if np.isnan(hz[u]) else float(hz[u]), "clarity": 0.5, "centroid": 1000.0,
                      "flatness": 0.1, "rolloff": 3000.0, "zcr": 0.05, "mfcc": [0.0] * 13} for u in range(UNITS_PER_FILE)]
        uname = f"{digest}-{units_key}.parquet"
        write_shard(udir, uname, unit_rows)
        vname = f"{digest}-vec.parquet"
        (vshards / vname).touch()  # the index holds the vectors; the shard only has to exist
        names.append((vname, starts, durs))
        fid = ids[p]
        common = dict(size_bytes=st.st_size, mtime_ns=st.st_mtime_ns, content_hash=f"bench{i:08d}", status="ok",
                      error=None, elapsed_s=0.0)
        cat.record(fid, step="segment", step_version=segment_step.VERSION, params_hash="bench",
                   params={"mode": "onset"}, data={"units": {"count": UNITS_PER_FILE, "shard": uname}}, **common)
        cat.record(fid, step="embed", step_version=embed_step.VERSION, params_hash="bench",
                   params={**key, "level": "unit", "units": units_key},
                   data={"embed": {"shard": vname, "count": UNITS_PER_FILE}}, **common)
    vs = VectorSet(key["model"], key["model_version"], "unit", None)
    vindex.ANN_MIN_ROWS = 1 << 62  # write every chunk first, train the IVF once
    index = VectorIndex(index_dir(cat, vs))
    per_chunk = 64
    for lo in range(0, n_files, per_chunk):
        group = names[lo:lo + per_chunk]
        vecs = normalize(rng.standard_normal((len(group) * UNITS_PER_FILE, 1024)).astype(np.float32))
        meta = pd.DataFrame({"shard": np.repeat([g[0] for g in group], UNITS_PER_FILE),
                             "unit": np.tile(np.arange(UNITS_PER_FILE, dtype=np.int32), len(group)),
                             "start": np.concatenate([g[1] for g in group]),
                             "dur": np.concatenate([g[2] for g in group])})
        index.add_arrays(vecs, meta, {g[0]: UNITS_PER_FILE for g in group})
    faiss.omp_set_num_threads(2)
    index.build_ann()
    cat.close()


def long_target(path: Path, minutes: float) -> Path:
    """Real recordings (music, speech) end to end, `minutes` long, 44.1 kHz mono."""
    import soundfile as sf
    import soxr

    from audiotrove.io.decode import read_all

    if path.exists():  # the big collection's files link to it: never rewritten (they would be stale)
        return path
    parts, total = [], 0
    sources = ["music/Kevin_MacLeod_-_Vibe_Ace.ogg", "music/Karissa_Hobbs_-_Lets_Go_Fishin.ogg",
               "speech/2412-153948-0000.flac", "music/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg"]
    i = 0
    while total < minutes * 60 * 44100:
        x, rate = read_all(DATA / sources[i % len(sources)])
        x = x.mean(axis=1)
        if rate != 44100:
            x = soxr.resample(x, rate, 44100)
        parts.append(x)
        total += len(x)
        i += 1
    sf.write(path, np.concatenate(parts)[:int(minutes * 60 * 44100)], 44100)
    return path


def speed_child(root: Path, target: Path) -> dict:
    """One mosaic on one core; runs in its own process (its peak RSS is its own)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import faiss

    faiss.omp_set_num_threads(1)
    from audiotrove.catalog.db import Catalog
    from audiotrove.mosaic import make_mosaic

    cat = Catalog.open(root)
    rss0 = memory()
    from audiotrove.mosaic.corpus import CollectionCorpus

    t0, c0 = time.perf_counter(), time.process_time()
    corpus = CollectionCorpus(cat, model="yamnet")
    corpus.search(np.ones((1, corpus.dim), np.float32), 20)  # the IVF in memory
    open_wall, open_cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_corpus = memory()
    t0, c0 = time.perf_counter(), time.process_time()
    result = make_mosaic(cat, str(target), match="yamnet", k=20, smooth=0.3, corpus=corpus)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"open_wall_s": open_wall, "open_cpu_s": open_cpu, "wall_s": wall, "cpu_s": cpu,
            "timings": result.timings, "target_units": result.target_units,
            "placed": int(result.score["path"].notna().sum()), "memory_start_mb": rss0,
            "memory_after_open_mb": rss_corpus, "memory_end_mb": memory(),
            "target_s": result.frames / result.sample_rate}


def bench_speed(work: Path, rows: int, minutes: float) -> dict:
    out: dict = {"rows": rows}
    root = work / f"big{rows}"
    audio = long_target(work / "long_source.wav", 5.0)
    if not (root / ".audiotrove" / "vectors").exists():
        if root.exists():
            shutil.rmtree(root)
        t0 = time.perf_counter()
        build_big_collection(root, rows, audio)
        out["build_s"] = time.perf_counter() - t0
    ivf = next((root / ".audiotrove" / "vectors" / "index").glob("*/ivf.faiss"))
    out["ivf_mb"] = ivf.stat().st_size / 1e6
    out["runs"] = {}
    for m in (1.0, minutes):
        target = long_target(work / f"target_{m:g}min.wav", m)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent / "src")}
        r = subprocess.run([sys.executable, __file__, "--child", str(root), str(target)], env=env,
                           capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(r.stderr)
        res = json.loads(r.stdout.strip().splitlines()[-1])
        out["runs"][f"{m:g} min"] = res
        print(f"{m:g} min target", json.dumps(res), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", default="quality,speed")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--work", default=None, help="keep the work folder here (reused when run again)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(speed_child(Path(args.child[0]), Path(args.child[1]))))
        return
    if not DATA.exists():
        raise SystemExit(f"needs the shared recordings at {DATA}")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-mosaic-"))
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    parts = args.part.split(",")
    if "quality" in parts:
        results["quality"] = bench_quality(work)
    if "speed" in parts:
        results["speed"] = bench_speed(work, args.rows, args.minutes)
    print(json.dumps(results, indent=1, default=float))
    (work / "results.json").write_text(json.dumps(results, indent=1, default=float))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
