"""Embeddings and similarity: speed, a 1M-vector index, retrieval quality. Results: RESULTS_embed.md.

    python bench/bench_embed.py [--part speed,index,quality] [--index-rows 1000000]

speed    embed step (YAMNet, descriptors) on real recordings of ../shared/data at window (1 s)
         and unit (onset) level: CPU seconds per core (process time, one onnxruntime thread),
         as x real time, and as a ratio to decoding + resampling alone (the baseline, same run).
index    an index of --index-rows YAMNet vectors: the real window and unit vectors of
         ../shared/data, augmented to the size by mixing two random real vectors (weight of the
         first uniform in [0.5, 1]) plus Gaussian noise (0.1 x the per-dimension std): build time
         (writing float16 chunks, then the faiss IVF-SQ8 training and filling), disk and memory
         (peak RSS), median k=10 query time on one thread (faiss IVF and, as the baseline, exact
         search), recall@10 against exact search, exact query time at growing sizes (the
         threshold), the time of adding 10 000 vectors, and a filtered query. Query times are
         CPU time of this process (one thread): the 2-core machine is shared, wall time is not
         the cost of a query.
quality  precision@5 of the same class for yamnet, descriptors and the plain mean-MFCC baseline
         (13 MFCC means, Euclidean) on labelled clips: General MIDI instruments and drum hits
         rendered with fluidsynth (Debian fluid-soundfont-gm) from MIDI written here, the
         drum-machine hits and speech of ../shared/data, noise types (rain, ocean from
         ../shared/data; white, pink generated).
"""
from __future__ import annotations

import os

# one thread per process, as the runner's workers have: speeds are per core
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DATA = ROOT.parent / "shared" / "data"
if not DATA.exists():
    DATA = Path("/work/shared/data")
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SR = 16000


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def audio_files(limit_s: float = 600.0) -> list[Path]:
    files = []
    for folder in ("music", "speech", "field", "instruments", "noise"):
        for p in sorted((DATA / folder).glob("*")):
            if p.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3"):
                files.append(p)
    return files


# --- speed ---------------------------------------------------------------------------------------

def bench_speed() -> dict:
    from audiotrove.io.decode import open_audio
    from audiotrove.models.embedders import get_embedder
    from audiotrove.vectors.embed import embed_file
    from audiotrove.steps.segment import segment_file

    import soxr

    files = audio_files()
    total_s = 0.0
    t0 = time.process_time()
    for p in files:
        reader = open_audio(p)
        rs = soxr.ResampleStream(reader.sample_rate, SR, 1, dtype="float32", quality="HQ") \
            if reader.sample_rate != SR else None
        n = 0
        for block in reader.blocks():
            n += len(block)
            mono = block.mean(axis=1, dtype=np.float32)
            if rs is not None:
                rs.resample_chunk(mono)
        total_s += n / reader.sample_rate
    decode_cpu = time.process_time() - t0
    out = {"files": len(files), "audio_s": total_s, "decode_x": total_s / decode_cpu}
    with tempfile.TemporaryDirectory() as tmp:
        units = {}
        for p in files:
            units[p] = segment_file(str(p), {"mode": "onset"}, units_dir=f"{tmp}/u")["units"]["shard"]
        n_units = 0
        for model in ("yamnet", "descriptors"):
            get_embedder(model)  # load outside the timing
            for level in ("window", "unit"):
                t0 = time.process_time()
                for p in files:
                    res = embed_file(str(p), {"model": model, "level": level}, shards_dir=f"{tmp}/v",
                                     units_path=f"{tmp}/u/{units[p]}" if level == "unit" else None)
                    if level == "unit" and model == "yamnet":
                        n_units += res["embed"]["count"]
                cpu = time.process_time() - t0
                out[f"{model}_{level}_x"] = total_s / cpu
                out[f"{model}_{level}_cpu_s"] = cpu
        out["units"] = n_units
    return out


# --- index ---------------------------------------------------------------------------------------

def real_vectors() -> np.ndarray:
    """YAMNet window (1 s) and unit vectors of the real recordings."""
    from audiotrove.vectors.embed import embed_file
    from audiotrove.steps.segment import segment_file
    from audiotrove.vectors.store import read_vectors

    vecs = []
    with tempfile.TemporaryDirectory() as tmp:
        for p in audio_files():
            shard = segment_file(str(p), {"mode": "onset"}, units_dir=f"{tmp}/u")["units"]["shard"]
            for level in ("window", "unit"):
                res = embed_file(str(p), {"model": "yamnet", "level": level}, shards_dir=f"{tmp}/v",
                                 units_path=f"{tmp}/u/{shard}")
                vecs.append(read_vectors(f"{tmp}/v/{res['embed']['shard']}")[1])
    return np.concatenate(vecs)


def augmented(real: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    std = real.std(axis=0)
    a = real[rng.integers(0, len(real), n)]
    b = real[rng.integers(0, len(real), n)]
    w = rng.uniform(0.5, 1.0, (n, 1)).astype(np.float32)
    x = w * a + (1 - w) * b + 0.1 * std * rng.standard_normal((n, real.shape[1])).astype(np.float32)
    return x.astype(np.float32)


def exact_topk(index, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k rows for many queries in one pass over the chunks."""
    from audiotrove.vectors.index import normalize

    q = normalize(queries)
    best_s = np.full((len(q), k), -np.inf, np.float32)
    best_r = np.zeros((len(q), k), np.int64)
    offset = 0
    for chunk in index.chunks():
        sims = np.asarray(chunk, np.float32) @ q.T  # (rows, queries)
        top = np.argpartition(-sims, k - 1, axis=0)[:k].T  # (queries, k)
        s = np.take_along_axis(sims.T, top, axis=1)
        cand_s = np.concatenate([best_s, s], axis=1)
        cand_r = np.concatenate([best_r, top + offset], axis=1)
        order = np.argsort(-cand_s, axis=1)[:, :k]
        best_s = np.take_along_axis(cand_s, order, axis=1)
        best_r = np.take_along_axis(cand_r, order, axis=1)
        offset += len(chunk)
    return best_r


_QUERY_PROCESS = """
import sys
import numpy as np
from audiotrove.vectors.index import VectorIndex
index = VectorIndex(sys.argv[1])
index.alive_shards = set(index.state["shards"])
for q in np.load(sys.argv[2]):
    index.search(q, 10)
# VmHWM: this process' own peak (ru_maxrss would carry the parent's peak over fork/exec)
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
print(int(hwm.split()[1]) / 1024)
"""


def bench_index(rows: int) -> dict:
    import faiss
    import pandas as pd

    from audiotrove.vectors import index as vindex
    from audiotrove.vectors.index import VectorIndex, normalize

    faiss.omp_set_num_threads(1)
    out: dict = {}
    t0 = time.perf_counter()
    real = real_vectors()
    out["real_vectors"] = len(real)
    out["real_embed_s"] = time.perf_counter() - t0
    tmp = Path(tempfile.mkdtemp(prefix="bench-embed-index-"))
    try:
        # exact search time at growing sizes (in memory, float32: the best case of exact search)
        sizes = {}
        for n in (10_000, 30_000, 100_000):
            m = normalize(augmented(real, n, seed=n))
            q = normalize(augmented(real, 20, seed=1))
            times = []
            for v in q:
                t = time.process_time()
                sims = m @ v
                np.argpartition(-sims, 9)[:10]
                times.append(time.process_time() - t)
            sizes[n] = float(np.median(times) * 1000)
        out["exact_ms_by_size"] = sizes
        del m

        vindex.ANN_MIN_ROWS = 1 << 62  # write everything first, then train once (timed apart)
        index = VectorIndex(tmp / "ix")
        t0, c0 = time.perf_counter(), time.process_time()
        chunk = 65_536
        for i, lo in enumerate(range(0, rows, chunk)):
            n = min(chunk, rows - lo)
            vecs = normalize(augmented(real, n, seed=100 + i))
            meta = pd.DataFrame({"shard": f"s{i}", "unit": np.arange(n, dtype=np.int32),
                                 "start": np.zeros(n), "dur": np.ones(n)})
            index.add_arrays(vecs, meta, {f"s{i}": n})
        out["write_s"] = time.perf_counter() - t0
        out["write_cpu_s"] = time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        faiss.omp_set_num_threads(2)
        index.build_ann()
        faiss.omp_set_num_threads(1)
        out["ann_build_s"] = time.perf_counter() - t0
        out["ann_build_cpu_s"] = time.process_time() - c0
        out["nlist"] = int(index.ann().nlist)
        index.alive_shards = set(index.state["shards"])
        out["disk_mb"] = sum(p.stat().st_size for p in (tmp / "ix").iterdir()) / 1e6
        out["ann_mb"] = (tmp / "ix" / "ivf.faiss").stat().st_size / 1e6

        queries = normalize(augmented(real, 200, seed=7))
        t0 = time.perf_counter()
        truth = exact_topk(index, queries, 10)
        out["exact_batch_s"] = time.perf_counter() - t0
        index.search(queries[0], 10)  # warm: the alive mask, the IVF in memory
        for nprobe in (8, 16, 24, 48, 96):
            times, recalls = [], []
            for q, t in zip(queries, truth):
                s = time.process_time()
                rows_found, _ = index.search(q, 10, nprobe=nprobe)
                times.append(time.process_time() - s)
                recalls.append(len(set(rows_found) & set(t)) / 10)
            out[f"nprobe_{nprobe}"] = {"median_ms": float(np.median(times) * 1000),
                                       "p90_ms": float(np.percentile(times, 90) * 1000),
                                       "recall10": float(np.mean(recalls))}
        times = []
        for q in queries[:3]:
            s = time.process_time()
            index.search(q, 10, exact=True)
            times.append(time.process_time() - s)
        out["exact_query_ms"] = float(np.median(times) * 1000)
        # a filter leaving a tenth of the rows: k results, all allowed
        allowed = np.zeros(index.rows, bool)
        allowed[::10] = True
        times, ok = [], True
        for q in queries[:50]:
            s = time.process_time()
            r, _ = index.search(q, 10, allowed=allowed)
            times.append(time.process_time() - s)
            ok &= len(r) == 10 and bool(allowed[r].all())
        out["filtered_median_ms"] = float(np.median(times) * 1000)
        out["filtered_ok"] = ok
        # adding 10 000 vectors to the trained index
        vecs = normalize(augmented(real, 10_000, seed=999))
        meta = pd.DataFrame({"shard": "new", "unit": np.arange(10_000, dtype=np.int32),
                             "start": np.zeros(10_000), "dur": np.ones(10_000)})
        t0, c0 = time.perf_counter(), time.process_time()
        index.add_arrays(vecs, meta, {"new": 10_000})
        out["add_10k_s"] = time.perf_counter() - t0
        out["add_10k_cpu_s"] = time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        index.save_ann()  # the periodic rewrite of the IVF file (every ANN_SAVE_ROWS added rows)
        out["save_ann_s"] = time.perf_counter() - t0
        out["save_ann_cpu_s"] = time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        VectorIndex(tmp / "ix").ann()
        out["open_ann_s"] = time.perf_counter() - t0
        out["open_ann_cpu_s"] = time.process_time() - c0
        out["rows"] = index.rows
        out["peak_rss_mb"] = peak_rss_mb()
        # what a process answering queries holds: open the index, 50 queries, its peak RSS
        np.save(tmp / "queries.npy", queries[:50])
        child = subprocess.run([sys.executable, "-c", _QUERY_PROCESS, str(tmp / "ix"), str(tmp / "queries.npy")],
                               capture_output=True, text=True, check=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        out["query_process_rss_mb"] = float(child.stdout.split()[-1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# --- quality -------------------------------------------------------------------------------------

def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def write_midi(path: Path, notes: list[tuple[float, float, int, int, int]], program: int | None) -> None:
    """A format-0 MIDI file: notes (start_s, dur_s, pitch, velocity, channel); 960 ticks per s."""
    ticks = 960
    events = []
    if program is not None:
        events.append((0, bytes([0xC0, program])))
    for start, dur, pitch, vel, ch in notes:
        events.append((int(start * ticks), bytes([0x90 | ch, pitch, vel])))
        events.append((int((start + dur) * ticks), bytes([0x80 | ch, pitch, 0])))
    events.sort(key=lambda e: (e[0], e[1][0] & 0xF0 == 0x90))
    track, now = b"", 0
    track += _vlq(0) + b"\xff\x51\x03" + (500000).to_bytes(3, "big")  # 120 bpm, 480 ppq -> 960/s
    for t, data in events:
        track += _vlq(t - now) + data
        now = t
    track += _vlq(0) + b"\xff\x2f\x00"
    path.write_bytes(b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(track)) + track)


INSTRUMENTS = {"piano": 0, "vibraphone": 11, "organ": 19, "guitar": 24, "violin": 40,
               "trumpet": 56, "flute": 73}
DRUMS = {"kick": 36, "snare": 38, "hihat": 42}
CLIP_S = 1.5
PER_CLASS = 8


def render_clips(tmp: Path) -> dict[str, list[np.ndarray]]:
    import soundfile as sf

    rng = np.random.default_rng(0)
    clips: dict[str, list[np.ndarray]] = {}
    gap = 2.0
    for name, program in {**INSTRUMENTS, **DRUMS}.items():
        notes = []
        for c in range(PER_CLASS):
            t0 = c * gap
            if name in DRUMS:
                hits = rng.integers(1, 4)
                for h in range(hits):
                    notes.append((t0 + h * 0.4, 0.2, DRUMS[name], int(rng.integers(70, 120)), 9))
            else:
                low, high = (40, 84) if name not in ("flute", "violin") else (60, 90)
                for h in range(3):
                    notes.append((t0 + h * 0.45, 0.4, int(rng.integers(low, high)), int(rng.integers(60, 110)), 0))
        mid = tmp / f"{name}.mid"
        wav = tmp / f"{name}.wav"
        write_midi(mid, notes, None if name in DRUMS else program)
        subprocess.run(["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.6", "-r", str(SR),
                        "-F", str(wav), str(SOUNDFONT), str(mid)], check=True, capture_output=True)
        x, sr = sf.read(wav, dtype="float32", always_2d=True)
        x = x.mean(axis=1)
        clips[name] = [x[int(c * gap * sr):int((c * gap + CLIP_S) * sr)] for c in range(PER_CLASS)]
    return clips


def shared_clips() -> dict[str, list[np.ndarray]]:
    import soxr

    from audiotrove.io.decode import read_all

    def load(p):
        x, sr = read_all(p)
        return soxr.resample(x.mean(axis=1), sr, SR).astype(np.float32)

    clips: dict[str, list[np.ndarray]] = {"speech": [], "rain": [], "ocean": []}
    n = int(CLIP_S * SR)
    for p in sorted((DATA / "speech").glob("*.wav")):
        x = load(p)
        if len(x) >= 2 * n:
            clips["speech"].append(x[n // 2:n // 2 + n])
        if len(clips["speech"]) == PER_CLASS:
            break
    for name, file in (("rain", "sms_rain.wav"), ("ocean", "sms_ocean.wav")):
        x = load(DATA / "noise" / file)
        step = (len(x) - n) // (PER_CLASS - 1)  # overlapping clips where the file is short
        clips[name] = [x[i * step:i * step + n] for i in range(PER_CLASS)]
    rng = np.random.default_rng(1)
    white = [0.1 * rng.standard_normal(n).astype(np.float32) for _ in range(PER_CLASS)]
    pink = []
    for _ in range(PER_CLASS):
        spec = np.fft.rfft(rng.standard_normal(n))
        spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1))
        y = np.fft.irfft(spec, n)
        pink.append((0.1 * y / y.std()).astype(np.float32))
    clips["white noise"], clips["pink noise"] = white, pink
    # the drum machines of ../shared/data join the rendered drum classes
    for p in sorted((DATA / "instruments" / "drums").glob("*")):
        name = p.stem.lower()
        cls = "kick" if "kick" in name else "snare" if "snare" in name else "hihat" if "hat" in name else None
        if cls:
            x = load(p)[:n]
            clips.setdefault(f"_{cls}", []).append(np.pad(x, (0, n - len(x))))
    return clips


def mean_mfcc(x: np.ndarray) -> np.ndarray:
    from audiotrove.dsp.features import FeatureSeries

    fs = FeatureSeries(sample_rate_hz=SR, hop_s=len(x) / SR + 1, features=("mfcc",))
    rows = fs.update(x[:, None])
    last = fs.finish()
    cols = [f"mfcc_{i}" for i in range(1, 14)]
    vals = [np.concatenate([np.atleast_1d(rows.get(c, [])), np.atleast_1d(last.get(c, []))]) for c in cols]
    return np.array([np.nanmean(v) if len(v) else 0.0 for v in vals], np.float32)


def precision_at_5(vectors: np.ndarray, labels: list[str], metric: str) -> dict[str, float]:
    if metric == "cosine":
        v = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        d = 1 - v @ v.T
    else:
        d = np.linalg.norm(vectors[:, None] - vectors[None], axis=2)
    np.fill_diagonal(d, np.inf)
    labels_a = np.array(labels)
    per: dict[str, list[float]] = {}
    for i, lab in enumerate(labels):
        top = np.argsort(d[i], kind="stable")[:5]
        per.setdefault(lab, []).append(float(np.mean(labels_a[top] == lab)))
    out = {k: float(np.mean(v)) for k, v in per.items()}
    out["overall"] = float(np.mean([x for v in per.values() for x in v]))
    return out


def bench_quality() -> dict:
    from audiotrove.models.embedders import get_embedder

    if shutil.which("fluidsynth") is None or not SOUNDFONT.exists():
        raise SystemExit("quality: needs fluidsynth and fluid-soundfont-gm (apt-get install fluidsynth fluid-soundfont-gm)")
    with tempfile.TemporaryDirectory() as tmp:
        clips = render_clips(Path(tmp))
    extra = shared_clips()
    for cls in ("kick", "snare", "hihat"):
        clips[cls] = clips[cls] + extra.pop(f"_{cls}", [])
    clips.update(extra)
    labels = [c for c, xs in clips.items() for _ in xs]
    signals = [x for xs in clips.values() for x in xs]
    out = {"classes": {c: len(xs) for c, xs in clips.items()}}
    out["yamnet"] = precision_at_5(get_embedder("yamnet").embed_many(signals), labels, "cosine")
    out["descriptors"] = precision_at_5(get_embedder("descriptors").embed_many(signals), labels, "cosine")
    out["mean_mfcc"] = precision_at_5(np.stack([mean_mfcc(x) for x in signals]), labels, "euclidean")
    return out


def vindex_save_rows() -> int:
    from audiotrove.vectors.index import ANN_SAVE_ROWS

    return ANN_SAVE_ROWS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", default="speed,quality,index")
    parser.add_argument("--index-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    parts = args.part.split(",")
    if not DATA.exists():
        raise SystemExit(f"needs the shared recordings at {DATA}")
    results = {}
    if "speed" in parts:
        r = bench_speed()
        results["speed"] = r
        print(f"speed: {r['files']} files, {r['audio_s'] / 60:.1f} min of audio, {r['units']} units; "
              f"decode+resample alone {r['decode_x']:.0f}x real time per core")
        for model in ("yamnet", "descriptors"):
            for level in ("window", "unit"):
                x = r[f"{model}_{level}_x"]
                print(f"  {model:<12} {level:<7} {x:7.0f}x real time per core "
                      f"({r['decode_x'] / x:.1f}x the time of decoding + resampling alone)")
    if "quality" in parts:
        r = bench_quality()
        results["quality"] = r
        print("precision@5 (same class among the 5 nearest), clips per class:", r["classes"])
        print(f"  {'class':<12} {'yamnet':>7} {'descr.':>7} {'MFCC':>7}")
        for c in list(r["classes"]) + ["overall"]:
            print(f"  {c:<12} {r['yamnet'][c]:7.2f} {r['descriptors'][c]:7.2f} {r['mean_mfcc'][c]:7.2f}")
    if "index" in parts:
        r = bench_index(args.index_rows)
        results["index"] = r
        print(f"index: {r['rows']} vectors ({r['real_vectors']} real YAMNet vectors, augmented), 1024-d")
        print(f"  exact search in memory, median per query: " +
              ", ".join(f"{n}: {ms:.1f} ms" for n, ms in r["exact_ms_by_size"].items()))
        print(f"  write float16 chunks (generating the vectors included) {r['write_s']:.0f} s wall, {r['write_cpu_s']:.0f} s CPU; "
              f"IVF-SQ8 train+fill ({r['nlist']} lists, 2 threads) {r['ann_build_s']:.0f} s wall, "
              f"{r['ann_build_cpu_s']:.0f} s CPU; disk {r['disk_mb']:.0f} MB (IVF {r['ann_mb']:.0f} MB); peak RSS {r['peak_rss_mb']:.0f} MB")
        print(f"  a process opening the index and answering 50 queries: peak RSS {r['query_process_rss_mb']:.0f} MB")
        print(f"  exact search from disk (baseline): {r['exact_query_ms']:.0f} ms per query")
        for key in sorted(k for k in r if k.startswith("nprobe_")):
            v = r[key]
            print(f"  {key}: median {v['median_ms']:.2f} ms, p90 {v['p90_ms']:.2f} ms, recall@10 {v['recall10']:.3f}, "
                  f"{r['exact_query_ms'] / v['median_ms']:.0f}x faster than exact")
        print(f"  filtered (1 row in 10 allowed): median {r['filtered_median_ms']:.2f} ms, k results all allowed: {r['filtered_ok']}")
        print(f"  adding 10 000 vectors: {r['add_10k_s']:.2f} s wall, {r['add_10k_cpu_s']:.2f} s CPU; "
              f"rewriting the IVF file (every {vindex_save_rows()} added rows): {r['save_ann_s']:.1f} s wall, "
              f"{r['save_ann_cpu_s']:.1f} s CPU; opening the IVF: {r['open_ann_s']:.1f} s wall, {r['open_ann_cpu_s']:.1f} s CPU")


if __name__ == "__main__":
    main()
