"""Cost of enhance's final true-peak limiter and of the before/after meter (dsp.gain.TruePeakLimiter,
dsp.change.ChangeMeter), as a share of the default chain on the same audio, in the same run.

    python bench/bench_final_stage.py [--minutes 5]

Audio: speech-like bursts over noise, 44.1 kHz stereo, loud enough that the limiter acts
(peaks up to +3 dBFS) on part of it. One core, CPU time.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from audiotrove.dsp.change import ChangeMeter
from audiotrove.dsp.gain import TruePeakLimiter
from audiotrove.steps.enhance import DEFAULTS, build_chain, resolve_options, run_chain

SR = 44100


def audio(minutes: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    n = int(minutes * 60 * SR)
    t = np.arange(n) / SR
    env = np.clip(np.sin(2 * np.pi * 0.3 * t), 0, None) * (1.0 + 0.4 * np.sin(2 * np.pi * 0.05 * t))
    x = 0.8 * env * np.sin(2 * np.pi * 180 * t) + 0.01 * rng.standard_normal(n)
    return np.stack([x, 0.9 * x], axis=1).astype(np.float32)


def blocks(x):
    return (x[i:i + 65536] for i in range(0, len(x), 65536))


def cpu(fn) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=5.0)
    a = ap.parse_args()
    x = audio(a.minutes)
    seconds = len(x) / SR
    opts = resolve_options(dict(DEFAULTS))
    analysis = {"noise": {"hum": {"frequency": None, "harmonics": []}}}

    def chain():
        plan = build_chain(opts, sample_rate=SR, channels=2, analysis_audio=analysis, prepass={})
        run_chain(blocks(x), plan.stages, lambda y: None)

    lim = TruePeakLimiter(sample_rate=SR, channels=2)
    meter = ChangeMeter(sample_rate=SR, channels=2)

    def limiter():
        run_chain(blocks(x), [lim], lambda y: None)

    def change():
        for b in blocks(x):
            meter.update_input(b)
            meter.update_output(b)
        meter.result()

    t_chain, t_lim, t_change = cpu(chain), cpu(limiter), cpu(change)
    print(f"audio: {seconds / 60:.1f} min of 44.1 kHz stereo; limiter acted on {lim.limited_frames / SR:.1f} s "
          f"(up to -{lim.result()['max_reduction_db']:.1f} dB)")
    for name, t in (("default chain (archival preset)", t_chain), ("true-peak limiter", t_lim),
                    ("before/after meter", t_change)):
        print(f"{name:32s} {t:6.2f} s  {seconds / t:7.0f}x real time  {100 * t / t_chain:5.1f}% of the chain")


if __name__ == "__main__":
    main()
