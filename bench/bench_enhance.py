"""Quality and speed benchmark of `enhance` denoising on real speech + real noise and
generated archival degradations.

    python bench/bench_enhance.py            # full run (about 5 min on 2 cores)
    python bench/bench_enhance.py --quick    # 3 speech files, for development
    python bench/bench_enhance.py --heldout  # 8 other speech files, other noise excerpts, 2.5 / 7.5 dB

Mixtures: clean speech (../shared/data/speech, resampled to 16 kHz, high-passed at 20 Hz,
0.5 s of silence in front so a leading noise profile exists) + one of
  - real noise recordings (../shared/data/noise): dishes, freesound 573577, ocean, rain;
  - "archival": generated hiss (tilted white noise), 50 Hz mains hum with harmonics,
    crackle (a dense bed of small impulses) and clicks (sparse large ones), the whole
    mixture band-limited to 150-5000 Hz (zero-phase) as on an old disc or tape transfer;
at 0, 5 and 10 dB SNR (speech power over noise power, both measured over the mixture).

Methods: the noisy input; classic spectral subtraction with a 0.2 s leading profile
(dsp.denoise, method "classic"); noisereduce (non-stationary default, bench-only
dependency); RNNoise alone (dsp.denoise, method "rnnoise"); DeepFilterNet3 alone
(dsp.deepfilter, AMOUNT 100); the archival chain with MMSE-LSA (`--denoise-method lsa`, the
default until issue 11); the default chain of `audiotrove enhance` (steps.enhance.enhance_array
with no options: declick, high-pass, dehum, then method auto = DeepFilterNet3 on speech).
Music (no worse): 6 music clips (../shared/data/music, 44.1 kHz, first 12 s), clean and with
ocean / rain noise at 10 and 20 dB: SI-SDR of the output against the clean music for the LSA
chain, the default chain and the chain forced to DeepFilterNet3.
Metrics against the clean speech: SI-SDR improvement (dB), PESQ wide-band (pesq package),
STOI (pystoi), and DNSMOS OVRL (dsp.quality, the clip repeated to 9.01 s) when available.
Speed: seconds of audio processed per second of one core's CPU time, for the default chain
at 16 kHz and 48 kHz (1 channel), measured in the same run.
--heldout checks that what was chosen on the mixtures above holds on others: 8 other speech
files (other speakers and recordings), other excerpts of the same noises (another seed), and
SNRs of 2.5 and 7.5 dB; speech only. "default chain, network alone" is the default chain with
the MMSE-LSA fusion off (dsp.deepfilter.FUSION_WEIGHTS all network).
Results are printed and, with --write, appended to bench/RESULTS_enhance.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import soundfile as sf
import soxr
from scipy import signal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SR = 16000
LEAD_S = 0.5

SPEECH = [
    "speech/2412-153948-0000.flac",
    "speech/librispeech-1995-1837-0001.wav",
    "speech/sense_and_sensibility_01_austen_64kb-0870.wav",
    "speech/cmu_arctic_us_aew_a0001.wav",
    "speech/cmu_arctic_us_axb_a0004.wav",
    "speech/LJ050-0131.wav",
    "speech/aishell-BAC009S0724W0121.wav",
    "speech/librispeech_tc100/201-122255-0000.flac",
]
NOISES = {
    "dishes": "noise/doing_the_dishes.wav",
    "freesound": "noise/noise_freesound_573577.wav",
    "ocean": "noise/sms_ocean.wav",
    "rain": "noise/sms_rain.wav",
}
SNRS_DB = (0, 5, 10)
SPEECH_HELDOUT = [
    "speech/cmu_arctic_us_aew_a0002.wav",
    "speech/cmu_arctic_us_axb_a0005.wav",
    "speech/librosa_198-209-0000.ogg",
    "speech/librosa_3436-172162-0000.ogg",
    "speech/sense_and_sensibility_01_austen_64kb-0880.wav",
    "speech/sms_speech-male.wav",
    "speech/common_voice_en_651325.mp3",
    "speech/ES2011a.Headset-0-40s-46s.wav",
]
SNRS_HELDOUT_DB = (2.5, 7.5)


def load(rel: str) -> np.ndarray:
    x, sr = sf.read(DATA / rel, dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    return soxr.resample(x, sr, SR) if sr != SR else x


def noise_segment(noise: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if len(noise) < n:
        noise = np.tile(noise, int(np.ceil(n / len(noise))) + 1)
    start = int(rng.integers(0, len(noise) - n + 1))
    return noise[start:start + n]


def archival_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Hiss + 50 Hz hum with harmonics + crackle + clicks (before scaling to the SNR)."""
    t = np.arange(n) / SR
    hiss = signal.lfilter([1.0, -0.6], [1.0], rng.standard_normal(n))  # tilted toward highs
    hiss /= np.std(hiss)
    hum = sum(a * np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 2 * np.pi))
              for k, a in ((1, 1.0), (2, 0.5), (3, 0.7), (4, 0.25), (5, 0.35), (7, 0.15)))
    hum *= 1.2 / np.std(hum)
    crackle = np.zeros(n)
    idx = rng.integers(0, n, int(40 * n / SR))          # 40 small impulses per second
    crackle[idx] = rng.standard_normal(len(idx)) * 4.0
    idx = rng.integers(0, n, int(2 * n / SR))           # 2 large clicks per second
    crackle[idx] = rng.choice([-1, 1], len(idx)) * rng.uniform(25, 60, len(idx))
    crackle = signal.lfilter([1.0], [1.0, -0.5], crackle)  # a little ringing, < 1 ms
    return hiss + hum + crackle


def band_limit(x: np.ndarray) -> np.ndarray:
    """150-5000 Hz, zero-phase: the magnitude of an old transfer's band limits without its
    phase shifts (SI-SDR would count phase-shifted low frequencies as distortion and favour
    methods that simply remove them)."""
    sos = signal.butter(4, [150, 5000], btype="bandpass", fs=SR, output="sos")
    return signal.sosfiltfilt(sos, x)


def clean_speech(rel: str) -> np.ndarray:
    """The clean reference: 0.5 s of silence, then the speech, high-passed at 20 Hz
    (zero-phase): some LibriSpeech recordings hold 1-4 % of their energy below 20 Hz
    (subsonic rumble, not speech), which every rumble filter would be blamed for removing."""
    sos = signal.butter(4, 20, btype="highpass", fs=SR, output="sos")
    return np.concatenate([np.zeros(int(LEAD_S * SR)), signal.sosfiltfilt(sos, load(rel))])


def mixtures(speech_files, seed=7, snrs=SNRS_DB):
    rng = np.random.default_rng(seed)
    noises = {name: load(rel) for name, rel in NOISES.items()}
    for rel in speech_files:
        clean = clean_speech(rel)
        for kind in list(NOISES) + ["archival"]:
            base = archival_noise(len(clean), rng) if kind == "archival" else noise_segment(noises[kind], len(clean), rng)
            for snr in snrs:
                n = base * np.sqrt(np.mean(clean ** 2) / np.mean(base ** 2) / 10 ** (snr / 10))
                noisy = clean + n
                if kind == "archival":
                    noisy = band_limit(noisy)
                peak = np.max(np.abs(noisy))
                scale = 0.9 / peak if peak > 0.9 else 1.0
                yield Path(rel).stem, kind, snr, clean * scale, noisy * scale


# --- metrics ---------------------------------------------------------------------------

def si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    ref = ref - ref.mean()
    est = est - est.mean()
    target = np.dot(est, ref) / np.dot(ref, ref) * ref
    return float(10 * np.log10(np.sum(target ** 2) / max(np.sum((est - target) ** 2), 1e-20)))


def pesq_wb(ref, est) -> float:
    from pesq import pesq

    return float(pesq(SR, ref, est, "wb"))


def stoi_score(ref, est) -> float:
    from pystoi import stoi

    return float(stoi(ref, est, SR, extended=False))


def dnsmos_fn():
    try:
        from audiotrove.dsp.quality import DNSMOS_WINDOW_SAMPLES, dnsmos_scores
        from audiotrove.models.dnsmos import load_dnsmos
    except Exception:
        return None

    def score(x: np.ndarray) -> float:
        reps = int(np.ceil(DNSMOS_WINDOW_SAMPLES / len(x)))
        w = np.tile(x, reps)[:DNSMOS_WINDOW_SAMPLES]
        return float(dnsmos_scores(w[None, :], model=load_dnsmos())[0, 2])

    try:
        score(np.zeros(SR))
    except Exception:
        return None
    return score


# --- methods ---------------------------------------------------------------------------

def m_input(noisy):
    return noisy


def m_classic(noisy):
    from audiotrove.dsp.denoise import denoise

    return denoise(noisy, sample_rate=SR, method="classic", profile_sections=[[0.0, 0.2]])


def m_noisereduce(noisy):
    import noisereduce as nr

    return nr.reduce_noise(y=noisy, sr=SR)


def m_rnnoise(noisy):
    from audiotrove.dsp.denoise import denoise
    from audiotrove.models.rnnoise import load_rnnoise

    return denoise(noisy, sample_rate=SR, method="rnnoise", amount=100, rnnoise=load_rnnoise())


def m_deepfilter(noisy, sample_rate=SR):
    from audiotrove.dsp.deepfilter import DeepFilterStream
    from audiotrove.dsp.denoise import run_stream
    from audiotrove.models.deepfilternet import load_deepfilternet

    return run_stream(DeepFilterStream(load_deepfilternet(), sample_rate=sample_rate, channels=1, amount=100), noisy)


def m_lsa_chain(noisy, sample_rate=SR):
    from audiotrove.steps.enhance import enhance_array

    return enhance_array(noisy, sample_rate=sample_rate, options={"preset": "archival", "denoise_method": "lsa"})


def m_deepfilter_chain(noisy, sample_rate=SR):
    from audiotrove.steps.enhance import enhance_array

    return enhance_array(noisy, sample_rate=sample_rate, options={"preset": "archival", "denoise_method": "deepfilter"})


def m_default(noisy, sample_rate=SR):
    from audiotrove.steps.enhance import enhance_array

    return enhance_array(noisy, sample_rate=sample_rate)


def m_default_unfused(noisy, sample_rate=SR):
    import audiotrove.dsp.deepfilter as df

    saved = df.FUSION_WEIGHTS
    df.FUSION_WEIGHTS = ((0.0, 1.0, 0.0),)  # all network at every SNR: the fusion off
    try:
        return m_default(noisy, sample_rate)
    finally:
        df.FUSION_WEIGHTS = saved


METHODS = {
    "input": m_input,
    "classic 0.2 s": m_classic,
    "noisereduce": m_noisereduce,
    "rnnoise": m_rnnoise,
    "deepfilter": m_deepfilter,
    "lsa chain": m_lsa_chain,
    "default chain, network alone": m_default_unfused,
    "default chain": m_default,
}
MUSIC = [
    "music/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg",
    "music/Kevin_MacLeod_-_Vibe_Ace.ogg",
    "music/Karissa_Hobbs_-_Lets_Go_Fishin.ogg",
    "music/sms_cello-phrase.wav",
    "music/sms_orchestra.wav",
    "music/sms_sax-phrase-short.wav",
]
MUSIC_SR = 44100


def evaluate(methods: dict, speech_files, *, with_dnsmos=True, verbose=False, seed=7, snrs=SNRS_DB):
    dnsmos = dnsmos_fn() if with_dnsmos else None
    rows = []
    for name, kind, snr, clean, noisy in mixtures(speech_files, seed=seed, snrs=snrs):
        base_sdr = si_sdr(clean, noisy)
        for mname, fn in methods.items():
            est = np.asarray(fn(noisy.astype(np.float32)), np.float64)
            assert len(est) == len(clean), (mname, len(est), len(clean))
            row = {"file": name, "noise": kind, "snr": snr, "method": mname,
                   "si_sdr_i": si_sdr(clean, est) - base_sdr, "pesq": pesq_wb(clean, est),
                   "stoi": stoi_score(clean, est)}
            if dnsmos is not None:
                row["dnsmos"] = dnsmos(est)
            rows.append(row)
            if verbose:
                print(row, flush=True)
    return rows


def summarize(rows) -> str:
    import pandas as pd

    df = pd.DataFrame(rows)
    metrics = [c for c in ("si_sdr_i", "pesq", "stoi", "dnsmos") if c in df]
    order = list(dict.fromkeys(df["method"]))
    lines = []
    overall = df.groupby("method")[metrics].mean().reindex(order)
    lines.append("Mean over all mixtures (%d per method):\n" % (len(df) // len(order)))
    lines.append(_md(overall))
    by_snr = df.pivot_table(index="method", columns="snr", values=metrics, aggfunc="mean").reindex(order)
    lines.append("\nBy input SNR (dB):\n")
    lines.append(_md(by_snr))
    by_noise = df.pivot_table(index="method", columns="noise", values=["si_sdr_i", "pesq"], aggfunc="mean").reindex(order)
    lines.append("\nBy noise type:\n")
    lines.append(_md(by_noise))
    return "\n".join(lines)


def _md(frame) -> str:
    cols = [" ".join(str(c) for c in col) if isinstance(col, tuple) else str(col) for col in frame.columns]
    out = ["| method | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for idx, row in frame.iterrows():
        out.append(f"| {idx} | " + " | ".join(f"{v:.3f}" for v in row.values) + " |")
    return "\n".join(out)


def music(with_pesq: bool = False) -> str:
    """SI-SDR (dB) of the output against the clean music: the default must not be worse than
    the LSA chain (the content pre-pass should send music to MMSE-LSA)."""
    import pandas as pd

    rng = np.random.default_rng(11)
    noises = {k: load_at(NOISES[k], MUSIC_SR) for k in ("ocean", "rain")}
    methods = {"lsa chain": m_lsa_chain, "default chain": m_default, "deepfilter chain": m_deepfilter_chain}
    rows = []
    for rel in MUSIC:
        clean = load_at(rel, MUSIC_SR)[: 12 * MUSIC_SR]
        clean = 0.3 * clean / np.max(np.abs(clean))
        cases = [("clean", None)] + [(k, snr) for k in noises for snr in (10, 20)]
        for kind, snr in cases:
            if snr is None:
                noisy = clean
            else:
                n = noise_segment(noises[kind], len(clean), rng)
                noisy = clean + n * np.sqrt(np.mean(clean ** 2) / np.mean(n ** 2) / 10 ** (snr / 10))
            outs = {m: np.asarray(f(noisy.astype(np.float32), sample_rate=MUSIC_SR), np.float64) for m, f in methods.items()}
            for m, est in outs.items():
                rows.append({"file": Path(rel).stem[:24], "case": kind if snr is None else f"{kind} {snr} dB",
                             "method": m, "si_sdr": si_sdr(clean, est),
                             "same_as_lsa": bool(np.array_equal(est, outs["lsa chain"]))})
    df = pd.DataFrame(rows)
    order = list(methods)
    table = df.pivot_table(index="file", columns="method", values="si_sdr", aggfunc="mean")[order]
    table.loc["mean"] = table.mean()
    same = df[df.method == "default chain"]["same_as_lsa"]
    return (_md(table) + f"\n\nDefault chain output identical to the LSA chain's: {int(same.sum())} of "
            f"{len(same)} music cases (mean SI-SDR over the clean, 10 dB and 20 dB cases of each clip).")


def load_at(rel: str, sr: int) -> np.ndarray:
    x, file_sr = sf.read(DATA / rel, dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    return soxr.resample(x, file_sr, sr) if sr != file_sr else x


def speed(seconds: float = 60.0) -> str:
    """Real-time factor on one core (process CPU time, least of 3 runs), 16 and 48 kHz, of the default chain
    (speech: method auto takes DeepFilterNet3, after the content pre-pass) and the LSA chain."""
    from audiotrove.steps.enhance import enhance_array

    lines = []
    rng = np.random.default_rng(0)
    speech = load(SPEECH[0])
    chains = {"default chain": None, "lsa chain": {"preset": "archival", "denoise_method": "lsa"}}
    for sr in (16000, 48000):
        x = soxr.resample(speech, SR, sr) if sr != SR else speech
        x = np.tile(x, int(np.ceil(seconds * sr / len(x))))[: int(seconds * sr)]
        x = (x + 0.01 * rng.standard_normal(len(x))).astype(np.float32)
        for name, options in chains.items():
            enhance_array(x[: sr], sample_rate=sr, options=options)  # warm-up (imports, tables, model)
            cpu = float("inf")
            for _ in range(3):  # the least of 3: the machine is shared, other loads only add time
                t0 = time.process_time()
                enhance_array(x, sample_rate=sr, options=options)
                cpu = min(cpu, time.process_time() - t0)
            lines.append(f"| {name}, {sr} Hz mono, {seconds:.0f} s | {cpu:.2f} s CPU | {seconds / cpu:.0f}x real time |")
    return "| case | cost | speed |\n|---|---|---|\n" + "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--write", action="store_true", help="append to bench/RESULTS_enhance.md")
    ap.add_argument("--no-dnsmos", action="store_true")
    ap.add_argument("--heldout", action="store_true", help="other speech files, noise excerpts and SNRs; speech only")
    args = ap.parse_args()
    files = SPEECH_HELDOUT if args.heldout else SPEECH[:3] if args.quick else SPEECH
    snrs = SNRS_HELDOUT_DB if args.heldout else SNRS_DB
    started = time.time()
    rows = evaluate(METHODS, files, with_dnsmos=not args.no_dnsmos, seed=11 if args.heldout else 7, snrs=snrs)
    text = summarize(rows)
    if not args.heldout:
        text += "\n\nMusic: SI-SDR (dB) of the output against the clean music:\n\n" + music()
        text += "\n\nSpeed (one core):\n\n" + speed()
    print(text)
    if args.write:
        cmd = "python bench/bench_enhance.py" + (" --quick" if args.quick else "") + (" --heldout" if args.heldout else "")
        header = (f"\n## {time.strftime('%Y-%m-%d')} — `{cmd}`\n\nmachine: 2-core x86_64, 24 GB; "
                  f"{len(files)} speech files x {len(NOISES) + 1} noises x {len(snrs)} SNRs; "
                  f"wall {time.time() - started:.0f} s\n\n")
        with open(ROOT / "bench" / "RESULTS_enhance.md", "a") as f:
            f.write(header + text + "\n")


if __name__ == "__main__":
    main()
