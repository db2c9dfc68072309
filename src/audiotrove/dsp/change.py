"""What a processing changed, measured on its input and output streams together.

The output of a restoration (steps.enhance) is sample-aligned with its input, so both are cut
into the same 20 ms frames, the frames of dsp.noise (AC power averaged over channels; frames
that are digital silence in the input are left out). Each frame is binned by its INPUT level
(dsp.noise's 0.05 dB histogram) with the summed input and output powers per bin, so the
before and after numbers are read over the same frames, with dsp.noise's definitions
(`split_levels`: the noise lobe of the frame levels, active signal over noise):

- before: the noise level and SNR of the input, exactly the analysis' `audio.noise.level_average`
  and `audio.noise.snr_average` (the same histogram read by the same function).
- noise floor after (dBFS): the noise level moved by the change of the summed power of the
  frames it was read from (the input's noise lobe: pauses, gaps between words, room tone),
  over the core of that lobe: its frames below the lobe's centre. In a real recording the
  upper side of the lobe also holds faint sound that a restoration keeps (breath,
  reverberation, the ends of words), and its power would pass for remaining noise: jfk.flac,
  archival preset, reads -6.6 dB over the whole lobe, -11 dB over its core, -15 to -18 dB in
  its quietest frames; noise 15 dB down with faint sound kept (tests/test_enhance_levels.py)
  reads -15 dB over the core, -11 over the whole lobe; in steady noise both agree within about
  1.5 dB. Re-analysing the output instead would take ITS quietest frames, e.g. the pauses that
  speech isolation lowered, and report their level as if the noise under the speech had gone
  down as much.
- SNR after (dB): the signal is the mean output power of the input's active frames less the
  noise under it; the noise under the signal is the noise level moved by the change of the
  quietest frames INSIDE the speech sections (the core of their own noise lobe, read as
  dsp.noise reads one: the gaps between words) when speech sections are given and at least
  1 s of them is not silent ("snr_measured_on": "speech"), else of the core of the file's
  noise lobe ("file"). Lowering the pauses between speech sections therefore moves the
  floor, not the SNR.
- clipped samples: input samples at or beyond full scale (dsp.gain.full_scale_samples).

Memory: fixed histograms and the input frames not yet matched by output (the latency of the
processing), whatever the stream length.
"""
from __future__ import annotations

import math

import numpy as np

from .blocks import as_block
from .gain import full_scale_samples
from .noise import FRAME_S, HIST_MAX_DB, HIST_MIN_DB, HIST_STEP_DB, _LevelHistogram, split_levels

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

    def powers_between(self, lo_db: float, hi_db: float) -> tuple[float, float, int]:
        """(summed input power, summed output power, frames) of the bins `power_between` reads."""
        a, b = self._bin(lo_db), self._bin(hi_db)
        if b <= a:
            return 0.0, 0.0, 0
        return float(self.power[a:b].sum()), float(self.power_out[a:b].sum()), int(self.counts[a:b].sum())

    def noise_change(self) -> float | None:
        """Output over input power (a ratio) of the core of this histogram's noise lobe (the
        frames below its centre); None when they went silent."""
        split = split_levels(self)
        if split is None:
            return None
        p_in, p_out, _ = self.powers_between(HIST_MIN_DB, split.centre_db)
        return p_out / p_in if p_out > 0 and p_in > 0 else None


def _db(power: float) -> float:
    return 10 * math.log10(power)


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
        split = split_levels(self.file)
        if split is None:
            return out
        noise = split.noise_power
        before["noise_floor_dbfs"] = round(split.noise_db, 2)
        change = self.file.noise_change()
        if change is not None:
            after["noise_floor_dbfs"] = round(_db(noise * change) + gain_db, 2)
        if split.snr_db is None:
            return out
        before["snr_db"] = round(split.snr_db, 2)
        if self.speech.total >= MIN_SPEECH_FRAMES:
            out["snr_measured_on"], change = "speech", self.speech.noise_change()
        else:
            out["snr_measured_on"] = "file"
        _, p_out, n = self.file.powers_between(split.active_from_db, HIST_MAX_DB + 1)
        if change is not None and n:
            noise_after = noise * change
            signal_after = p_out / n - noise_after
            if signal_after > 0:
                after["snr_db"] = round(_db(signal_after / noise_after), 2)
        return out


def _frame_powers(x: np.ndarray, L: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(AC power per frame averaged over channels, frame is digital silence) as dsp.noise."""
    frames = x.reshape(-1, L, channels).astype(np.float64)
    raw = (frames ** 2).mean(axis=(1, 2))
    ac = raw - (frames.mean(axis=1) ** 2).mean(axis=1)
    return ac, (raw <= 0) | (ac <= _CONSTANT_FRAME_SHARE * raw)
