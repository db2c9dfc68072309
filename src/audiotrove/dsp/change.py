"""What a processing changed, measured on its input and output streams together.

The output of a restoration (steps.enhance) is sample-aligned with its input, so both are cut
into the same 20 ms frames, the frames of dsp.noise (AC power averaged over channels; frames
that are digital silence in the input are left out). Each frame is binned by its INPUT level
(dsp.noise's 0.05 dB histogram) with the summed input and output powers per bin, so the
before and after numbers are read over the same frames:

- noise floor (dBFS): before, the 5th percentile of the input frame levels (exactly the
  analysis' `audio.noise.level_average`); after, that level moved by the change of the summed
  power of the frames at or below it: the same stretches (pauses, room tone). Re-analysing the
  output instead would take ITS quietest frames, e.g. the pauses that speech isolation lowered,
  and report their level as if the noise under the speech had gone down as much.
- SNR (dB): under speech when speech sections are given and at least 1 s of them is not
  silent, else over the whole file: the floor as above over those frames only (the gaps
  between words), and the mean power of those of them more than 6 dB above it (the active
  frames of the input, the analysis' definition), before and after.
- clipped samples: input samples at or beyond full scale (dsp.gain.full_scale_samples).

Memory: two fixed histograms and the input frames not yet matched by output (the latency of
the processing), whatever the stream length.
"""
from __future__ import annotations

import math

import numpy as np

from .blocks import as_block
from .gain import full_scale_samples
from .noise import ACTIVE_MARGIN_DB, FLOOR_PERCENTILE, FRAME_S, HIST_MIN_DB, HIST_STEP_DB, _LevelHistogram

_CONSTANT_FRAME_SHARE = 1e-10  # as dsp.noise: a frame this close to constant is digital silence
MIN_SPEECH_FRAMES = 50         # 1 s of non-silent speech frames to measure the SNR under speech


class _PairHistogram(_LevelHistogram):
    """dsp.noise's level histogram of the input frames, plus the output power per input bin."""

    def __init__(self):
        super().__init__()
        self.power_out = np.zeros(self.n_bins, np.float64)

    def add_pair(self, p_in: np.ndarray, p_out: np.ndarray) -> None:
        level = 10 * np.log10(np.maximum(p_in, 1e-300))
        idx = np.clip(((level - HIST_MIN_DB) / HIST_STEP_DB).astype(np.int64), 0, self.n_bins - 1)
        self.counts += np.bincount(idx, minlength=self.n_bins)
        self.power += np.bincount(idx, weights=p_in, minlength=self.n_bins)
        self.power_out += np.bincount(idx, weights=p_out, minlength=self.n_bins)

    def floor(self) -> tuple[float, float | None]:
        """(floor before in dBFS, its change in dB over the same frames; None if they went silent)."""
        floor = self.percentile_db(FLOOR_PERCENTILE)
        top = min(int((floor - HIST_MIN_DB) / HIST_STEP_DB), self.n_bins - 1) + 1
        p_in, p_out = float(self.power[:top].sum()), float(self.power_out[:top].sum())
        return floor, (10 * math.log10(p_out / p_in) if p_out > 0 and p_in > 0 else None)

    def active(self, level_db: float) -> tuple[float, float, int]:
        """(mean input power, mean output power, frames) of the bins at or above level_db."""
        i = min(max(math.ceil((level_db - HIST_MIN_DB) / HIST_STEP_DB), 0), self.n_bins)
        n = int(self.counts[i:].sum())
        if not n:
            return 0.0, 0.0, 0
        return float(self.power[i:].sum()) / n, float(self.power_out[i:].sum()) / n, n


def _db(power: float) -> float | None:
    return 10 * math.log10(power) if power > 0 else None


class ChangeMeter:
    """Before / after noise floor, SNR and clipped samples of a sample-aligned processing.

    Feed the input with `update_input(block)` and the output with `update_output(block)`, in
    any interleaving; `result(gain_db=0)` (gain_db: a linear gain applied to the whole output
    afterwards) returns {"before": {...}, "after": {...}, "snr_measured_on": "speech" | "file"}
    with "noise_floor_dbfs", "snr_db", and "clipped_samples" in "before" (the output's
    clipped samples are counted where it is written).
    """

    def __init__(self, *, sample_rate: int, channels: int, speech_sections: list | None = None):
        self.sample_rate, self.channels = int(sample_rate), int(channels)
        self.frame = max(1, round(FRAME_S * self.sample_rate))
        self._in = np.zeros((0, self.channels), np.float32)
        self._out = np.zeros((0, self.channels), np.float32)
        self._frames = 0
        self.file = _PairHistogram()
        self.speech = _PairHistogram()
        spans = sorted((float(a), float(b)) for a, b in (speech_sections or ()) if float(b) > float(a))
        self._starts = np.array([a for a, _ in spans])
        self._ends = np.array([b for _, b in spans])
        self.clipped_in = 0

    def update_input(self, block: np.ndarray) -> None:
        block = as_block(block, self.channels, np.float32)
        self.clipped_in += full_scale_samples(block)
        self._in = np.concatenate([self._in, block])
        self._drain()

    def update_output(self, block: np.ndarray) -> None:
        self._out = np.concatenate([self._out, as_block(block, self.channels, np.float32)])
        self._drain()

    def _drain(self) -> None:
        L = self.frame
        n = min(len(self._in), len(self._out)) // L
        if not n:
            return
        p_in, silent = _frame_powers(self._in[:n * L], L, self.channels)
        p_out, _ = _frame_powers(self._out[:n * L], L, self.channels)
        self._in, self._out = self._in[n * L:], self._out[n * L:]
        keep = ~silent
        self.file.add_pair(p_in[keep], p_out[keep])
        if len(self._starts):
            centre = (self._frames + np.arange(n) + 0.5) * L / self.sample_rate
            j = np.searchsorted(self._starts, centre, side="right") - 1
            inside = (j >= 0) & (centre <= self._ends[np.maximum(j, 0)]) & keep
            self.speech.add_pair(p_in[inside], p_out[inside])
        self._frames += n

    def result(self, *, gain_db: float = 0.0) -> dict:
        before = {"noise_floor_dbfs": None, "snr_db": None, "clipped_samples": self.clipped_in}
        after = {"noise_floor_dbfs": None, "snr_db": None}
        out = {"before": before, "after": after, "snr_measured_on": None}
        if not self.file.total:
            return out
        floor, change = self.file.floor()
        before["noise_floor_dbfs"] = round(floor, 2)
        if change is not None:
            after["noise_floor_dbfs"] = round(floor + change + gain_db, 2)
        hist, scope = (self.speech, "speech") if self.speech.total >= MIN_SPEECH_FRAMES else (self.file, "file")
        floor, change = hist.floor()
        p_in, p_out, n = hist.active(floor + ACTIVE_MARGIN_DB)
        if n:
            out["snr_measured_on"] = scope
            before["snr_db"] = round(_db(p_in) - floor, 2)
            if change is not None and _db(p_out) is not None:
                after["snr_db"] = round(_db(p_out) - (floor + change), 2)
        return out


def _frame_powers(x: np.ndarray, L: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(AC power per frame averaged over channels, frame is digital silence) as dsp.noise."""
    frames = x.reshape(-1, L, channels).astype(np.float64)
    raw = (frames ** 2).mean(axis=(1, 2))
    ac = raw - (frames.mean(axis=1) ** 2).mean(axis=1)
    return ac, (raw <= 0) | (ac <= _CONSTANT_FRAME_SHARE * raw)
