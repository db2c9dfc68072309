"""Clipping detection, streaming: where the waveform was flattened against a ceiling.

Three kinds of clipped run are found, per channel and per polarity (positive and negative
peaks are separate ceilings, so asymmetric clipping and DC offsets are handled):

1. Overs: at least `min_run_samples` consecutive samples beyond full scale (|x| > 1.0, in
   float files). They clip on any conversion to integer PCM.
2. Full-scale plateaus: the classic QC rule ("N consecutive samples at full scale"), made
   robust: at least `min_run_samples` samples at |x| >= `full_scale` (0.999, -0.009 dBFS)
   that are flat (as in 3) and entered through a corner (as in 3). One is enough. Without
   the flatness and corner tests, a clean low-frequency crest peak-normalised to 0 dBFS
   would count: a 50 Hz crest stays above 0.999 for 13 samples at 48 kHz.
3. Plateaus below full scale, left when a clipped recording was later turned down (or up):
   a run of at least `min_run_samples` samples whose consecutive differences are all
   <= `plateau_tolerance`, that
   - lies at or above `min_plateau_level` (|x|, full scale 1.0),
   - is entered through a corner: its first sample is at least `min_corner_drop` above
     the sample two before it. A natural, unclipped crest is rounded: near its top the
     slope goes to zero, so samples equal to within 1e-4 are reached with a tiny slope (a
     20 Hz sine quantised to 16 bits has runs of equal samples at its crests, entered with
     a drop below 1e-4). A clipped crest is cut off while the waveform still rises steeply.
     The drop must also be at least 10 quantisation steps: the step is `quantization_step`
     when given (the caller knows the format), else 1/128 while every sample so far is a
     multiple of 1/128 (8-bit PCM, recognised by itself), else negligible.
   - is at the channel's own extreme so far: its level is within `level_tolerance` of the
     largest value of that polarity seen up to the plateau (a ceiling is never exceeded),
   - and is hit repeatedly: a plateau level counts as a ceiling once `min_plateau_hits`
     plateaus have been found at it (within `level_tolerance`); the earlier ones are then
     reported too. When a higher plateau level appears, it becomes the candidate ceiling.

Runs of all channels are merged (union), then sections closer than `merge_gap_s`
(50 ms) are joined. `percentage` is the total duration of the sections over the duration
of the stream, in %. At most `max_sections` sections are listed; `num_sections` and
`percentage` stay exact beyond that.

Square waves. A square wave (or any synthetic signal with flat tops, e.g. a test pulse
train) has exactly the shape of a hard-clipped signal: flat runs at the signal's extreme,
entered through a corner, repeated at the same level. Sample values cannot tell the two
apart, and this meter reports such signals as clipped, by design: a real recording that
looks like that *is* damaged; a synthetic test signal is known for what it is by whoever
made it.

Limits. Companded 8-bit audio (mu-law, A-law) has steps of up to 1/32 near full scale:
natural crests there look flat. Pass its largest step as `quantization_step` (1/32), or
expect false sections on loud passages. A clipped recording that went through a lossy
codec (MP3, AAC...) or had noise or dither added afterwards has rippled, not flat,
plateaus: they are not found unless they reach full scale. Gentle clipping of low
frequencies can be missed, when the waveform enters the ceiling with a drop smaller than
`min_corner_drop` over two samples (a 50 Hz tone clipped by 0.4 dB at 44.1 kHz, or by
1 dB at 96 kHz).

Block-size independence: runs are tracked across block boundaries (open runs, the last
three samples and the running extremes are carried), so the result is the same for any
cut of the stream into blocks. Memory: per channel a few numbers, at most
`max_sections` reported sections, and the sections not yet final (a section is final once
no later run can merge with it). Those are normally a handful; while a plateau waits for
its second hit they accumulate, at most one per `merge_gap_s` of audio (72,000 pairs of
integers per hour in the worst case).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .blocks import as_block

__all__ = ["ClippingMeter"]

_POLARITIES = (1.0, -1.0)
# A corner must also drop by this many quantisation steps. With 8-bit audio, natural crests
# are flat over several samples and are entered with a drop of a few steps (0.008 each),
# more than `min_corner_drop`: a crest flat over 3 samples (to within a step) is entered
# with at most 8 steps over two samples (a parabola through the crest), so 10 is safe.
CORNER_QUANTISATION_STEPS = 10.0


@dataclass
class _OpenRun:
    start: int  # global index of the first sample of the run
    level: float = 0.0  # signed level (first sample) for plateaus
    candidate: bool = True  # plateaus: corner and extreme tests passed


@dataclass
class _Ceiling:
    """Candidate plateau level of one channel and polarity, with its hits."""

    level: float | None = None  # level times polarity (positive)
    hits: int = 0
    pending: list[tuple[int, int]] = field(default_factory=list)  # unconfirmed runs


class ClippingMeter:
    """Streaming clipping detector; see the module docstring for the rules.

    result() -> {"clipping": {"num_sections": int, "percentage": % of duration,
                              "sections": [[start_s, end_s], ...]}}
    """

    def __init__(
        self,
        sample_rate: int,
        channels: int,
        *,
        min_run_samples: int = 3,
        full_scale: float = 0.999,
        plateau_tolerance: float = 1e-4,
        level_tolerance: float = 1e-4,
        min_plateau_level: float = 0.1,
        min_corner_drop: float = 2e-3,
        min_plateau_hits: int = 2,
        merge_gap_s: float = 0.05,
        max_sections: int = 1000,
        quantization_step: float | None = None,
    ):
        if sample_rate <= 0 or channels <= 0:
            raise ValueError("sample_rate and channels must be positive")
        if min_run_samples < 2:
            raise ValueError("min_run_samples must be at least 2")
        if min_plateau_hits < 1:
            raise ValueError("min_plateau_hits must be at least 1")
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.min_run = int(min_run_samples)
        self.full_scale = float(full_scale)
        self.plateau_tol = float(plateau_tolerance)
        self.level_tol = float(level_tolerance)
        self.min_level = float(min_plateau_level)
        self.min_corner = float(min_corner_drop)
        self.min_hits = int(min_plateau_hits)
        self.quantization_step = None if quantization_step is None else float(quantization_step)
        self.gap = max(1, round(merge_gap_s * self.sample_rate))
        self.max_sections = int(max_sections)

        self.frames = 0
        c = self.channels
        self._tail = np.full((3, c), np.nan, dtype=np.float32)  # last 3 samples
        self._extreme = np.full((2, c), -np.inf)  # running max of x and of -x
        # Index (global) of the first sample off the 8-bit grid (k/128), per channel; -1 =
        # none found yet. Before it, the stream looks like 8-bit PCM.
        self._off_grid = np.full(c, -1, dtype=np.int64)
        self._fs_open: list[list[_OpenRun | None]] = [[None] * c for _ in _POLARITIES]
        self._pl_open: list[_OpenRun | None] = [None] * c
        self._ceiling = [[_Ceiling() for _ in range(c)] for _ in _POLARITIES]
        # Sections: not yet final (sorted, merged) and final.
        self._buf_starts = np.zeros(0, dtype=np.int64)
        self._buf_ends = np.zeros(0, dtype=np.int64)
        self._num_sections = 0
        self._clipped_samples = 0
        self._sections: list[tuple[int, int]] = []

    # -- streaming -----------------------------------------------------------------------
    def update(self, block: np.ndarray) -> None:
        x = as_block(block, self.channels)
        n = x.shape[0]
        if n == 0:
            return
        if x.dtype != np.float32:
            x = x.astype(np.float32)
        offset = self.frames
        new_starts: list[np.ndarray] = []
        new_ends: list[np.ndarray] = []

        xt = np.ascontiguousarray(x.T)  # (channels, frames): rows are contiguous
        ax = np.abs(xt)
        for c in np.flatnonzero(self._off_grid < 0):  # still looks like 8-bit PCM?
            scaled = xt[c] * 128.0
            off = np.flatnonzero(scaled != np.round(scaled))
            if off.size:
                self._off_grid[c] = offset + off[0]

        # 1. overs (beyond full scale)
        over = ax > 1.0
        over_any = over.any(axis=1)
        for c in range(self.channels):
            for p, sign in enumerate(_POLARITIES):
                if not over_any[c] and self._fs_open[p][c] is None:
                    continue
                mask = over[c] & ((xt[c] > 0) if sign > 0 else (xt[c] < 0))
                s, e = self._over_runs(mask, offset, p, c)
                new_starts.append(s)
                new_ends.append(e)

        # 2. and 3. plateaus (at full scale or below): pair i is flat when |x[i] - x[i-1]| <= tol and |x[i]| >= min level
        flat = np.abs(np.diff(xt, axis=1, prepend=self._tail[-1:].T)) <= self.plateau_tol
        flat &= ax >= self.min_level
        flat_any = flat.any(axis=1)
        for c in range(self.channels):
            if not flat_any[c] and self._pl_open[c] is None:
                continue
            self._plateaus(xt[c], flat[c], offset, c, new_starts, new_ends)

        # running extremes and carried samples (after the plateau tests, which need the
        # extremes before this block)
        np.maximum(self._extreme[0], xt.max(axis=1), out=self._extreme[0])
        np.maximum(self._extreme[1], -xt.min(axis=1), out=self._extreme[1])
        self._tail = np.concatenate([self._tail, x[-3:]], axis=0)[-3:]
        self.frames = offset + n

        starts = np.concatenate(new_starts) if new_starts else np.zeros(0, dtype=np.int64)
        ends = np.concatenate(new_ends) if new_ends else np.zeros(0, dtype=np.int64)
        self._add_sections(starts, ends)
        self._finalize(self._watermark())

    def _over_runs(
        self, mask: np.ndarray, offset: int, p: int, c: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Runs [s, e) (global indices) of at least `min_run` overs, one channel and polarity.

        The run still open at the end of the block is carried to the next one.
        """
        starts, ends = _runs(mask)
        run = self._fs_open[p][c]
        self._fs_open[p][c] = None
        out_s: list[int] = []
        out_e: list[int] = []
        if run is not None:
            if starts.size and starts[0] == 0:  # goes on in this block
                end = int(ends[0])
                starts, ends = starts[1:], ends[1:]
                if end == mask.size:
                    self._fs_open[p][c] = run
                    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
                end_g = offset + end
            else:
                end_g = offset
            if end_g - run.start >= self.min_run:
                out_s.append(run.start)
                out_e.append(end_g)
        if starts.size:
            last_open = bool(ends[-1] == mask.size)
            m = starts.size - (1 if last_open else 0)
            keep = (ends[:m] - starts[:m]) >= self.min_run
            out_s.extend((starts[:m][keep] + offset).tolist())
            out_e.extend((ends[:m][keep] + offset).tolist())
            if last_open:
                self._fs_open[p][c] = _OpenRun(start=int(starts[-1]) + offset)
        return np.array(out_s, dtype=np.int64), np.array(out_e, dtype=np.int64)

    def _min_corner(self, first: np.ndarray, offset: int, c: int) -> np.ndarray:
        """Smallest corner drop for runs whose first sample is at block indices `first`."""
        min_corner = np.full(first.shape, self.min_corner)
        if self.quantization_step is not None:
            np.maximum(
                min_corner, CORNER_QUANTISATION_STEPS * self.quantization_step, out=min_corner
            )
        else:  # 8-bit PCM so far (every sample up to the run on the k/128 grid)?
            off = self._off_grid[c]
            coarse = (first + offset < off) | (off < 0)
            min_corner[coarse] = max(self.min_corner, CORNER_QUANTISATION_STEPS / 128.0)
        return min_corner

    def _plateaus(self, xc, flat, offset, c, new_starts, new_ends) -> None:
        """Plateau runs of channel c in this block: close, test and accept them."""
        n = xc.size
        pair_starts, pair_ends = _runs(flat)  # runs of flat pairs; pair i is (i-1, i)
        closed: list[tuple[int, int, float, bool]] = []  # (start, end, level, candidate)
        run = self._pl_open[c]
        self._pl_open[c] = None
        if run is not None:
            if pair_starts.size and pair_starts[0] == 0:  # the open plateau goes on
                end = int(pair_ends[0])
                pair_starts, pair_ends = pair_starts[1:], pair_ends[1:]
                if end == n:  # ... through the whole block
                    self._pl_open[c] = run
                    return
                closed.append((run.start, offset + end, run.level, run.candidate))
            else:  # it ended with the previous block
                closed.append((run.start, offset, run.level, run.candidate))

        if pair_starts.size:
            first = pair_starts - 1  # block index of each plateau's first sample (>= -1)
            levels = self._values(xc, first, c)
            signs = np.where(levels >= 0, 1.0, -1.0)
            corner = signs * (levels - self._values(xc, first - 2, c))
            with np.errstate(invalid="ignore"):
                candidate = corner >= self._min_corner(first, offset, c)
            last_open = bool(pair_ends[-1] == n)
            long_enough = pair_ends - first >= self.min_run
            if last_open:
                long_enough[-1] = True  # may still grow
            candidate &= long_enough
            # At the channel's extreme so far: compare with the running extreme of the same
            # polarity up to and including the plateau's first sample (only where needed).
            below_fs = np.abs(levels) < self.full_scale  # full-scale plateaus need no more
            for p, sign in enumerate(_POLARITIES):
                sel = np.flatnonzero(candidate & below_fs & (signs == sign))
                if sel.size:
                    peak = self._prefix_extreme(sign * xc, first[sel], p, c)
                    candidate[sel] = sign * levels[sel] >= peak - self.level_tol
            starts_g = (first + offset).tolist()
            ends_g = (pair_ends + offset).tolist()
            n_closed = pair_starts.size - (1 if last_open else 0)
            for i in np.flatnonzero(candidate[:n_closed]).tolist():
                closed.append((starts_g[i], ends_g[i], float(levels[i]), True))
            if last_open:
                self._pl_open[c] = _OpenRun(
                    start=starts_g[-1], level=float(levels[-1]), candidate=bool(candidate[-1])
                )
        if closed:
            self._accept_plateaus(closed, c, new_starts, new_ends)

    def _values(self, xc: np.ndarray, idx: np.ndarray, c: int) -> np.ndarray:
        """Samples at block indices `idx` (>= -3: negative ones come from the carried tail)."""
        out = np.empty(idx.shape, dtype=np.float64)
        inside = idx >= 0
        out[inside] = xc[idx[inside]]
        out[~inside] = self._tail[idx[~inside] + 3, c]
        return out

    def _prefix_extreme(self, xs: np.ndarray, idx: np.ndarray, p: int, c: int) -> np.ndarray:
        """max(extreme before this block, xs[:i + 1].max()) for each block index i in `idx`."""
        before = self._extreme[p, c]
        out = np.full(idx.shape, before, dtype=np.float64)
        if idx.size <= 8:
            for k, i in enumerate(idx.tolist()):
                if i >= 0:
                    out[k] = max(before, float(xs[: i + 1].max()))
            return out
        running = np.maximum.accumulate(xs)
        inside = idx >= 0
        out[inside] = np.maximum(before, running[idx[inside]])
        return out

    def _accept_plateaus(self, closed, c, new_starts, new_ends) -> None:
        acc_s: list[int] = []
        acc_e: list[int] = []
        for start, end, level, candidate in closed:
            if not candidate or end - start < self.min_run:
                continue
            lv = abs(level)
            if lv >= self.full_scale:  # clipped at full scale: one is enough
                acc_s.append(start)
                acc_e.append(end)
                continue
            p = 0 if level >= 0 else 1
            ceil = self._ceiling[p][c]
            if ceil.level is None or lv > ceil.level + self.level_tol:
                ceil.level, ceil.hits, ceil.pending = lv, 0, []
            elif lv < ceil.level - self.level_tol:
                continue
            ceil.hits += 1
            if ceil.hits < self.min_hits:
                ceil.pending.append((start, end))
                continue
            for s, e in ceil.pending:
                acc_s.append(s)
                acc_e.append(e)
            ceil.pending = []
            acc_s.append(start)
            acc_e.append(end)
        if acc_s:
            new_starts.append(np.array(acc_s, dtype=np.int64))
            new_ends.append(np.array(acc_e, dtype=np.int64))

    # -- sections -------------------------------------------------------------------------
    def _watermark(self) -> int:
        """No run found later can start before this global sample index."""
        mark = self.frames - 1
        for p in range(2):
            for c in range(self.channels):
                run = self._fs_open[p][c]
                if run is not None:
                    mark = min(mark, run.start)
                for s, _ in self._ceiling[p][c].pending:
                    mark = min(mark, s)
        for run in self._pl_open:
            if run is not None and run.candidate:
                mark = min(mark, run.start)
        return mark

    def _add_sections(self, starts: np.ndarray, ends: np.ndarray) -> None:
        if starts.size == 0:
            return
        s = np.concatenate([self._buf_starts, starts.astype(np.int64)])
        e = np.concatenate([self._buf_ends, ends.astype(np.int64)])
        self._buf_starts, self._buf_ends = _merge(s, e, self.gap)

    def _finalize(self, watermark: int) -> None:
        final = (watermark - self._buf_ends) >= self.gap
        if not final.any():
            return
        k = int(np.argmin(final)) if not final.all() else final.size  # final is a prefix
        for s, e in zip(self._buf_starts[:k].tolist(), self._buf_ends[:k].tolist()):
            self._num_sections += 1
            self._clipped_samples += e - s
            if len(self._sections) < self.max_sections:
                self._sections.append((s, e))
        self._buf_starts = self._buf_starts[k:]
        self._buf_ends = self._buf_ends[k:]

    # -- result ---------------------------------------------------------------------------
    def result(self) -> dict:
        """{"clipping": {"num_sections", "percentage" (% of duration), "sections" [[s, e], ...]}}."""
        # Close the open runs on a copy of the state: result() can be called again.
        starts: list[int] = []
        ends: list[int] = []
        for p in range(2):
            for c in range(self.channels):
                run = self._fs_open[p][c]
                if run is not None and self.frames - run.start >= self.min_run:
                    starts.append(run.start)
                    ends.append(self.frames)
        pending_final: list[tuple[int, int]] = []
        saved = [[(ce.level, ce.hits, list(ce.pending)) for ce in row] for row in self._ceiling]
        for c, run in enumerate(self._pl_open):
            if run is not None:
                acc_s: list[np.ndarray] = []
                acc_e: list[np.ndarray] = []
                self._accept_plateaus(
                    [(run.start, self.frames, run.level, run.candidate)], c, acc_s, acc_e
                )
                for a, b in zip(acc_s, acc_e):
                    pending_final.extend(zip(a.tolist(), b.tolist()))
        for row, saved_row in zip(self._ceiling, saved):
            for ce, (level, hits, pending) in zip(row, saved_row):
                ce.level, ce.hits, ce.pending = level, hits, pending
        for s, e in pending_final:
            starts.append(s)
            ends.append(e)

        s_all = np.concatenate([self._buf_starts, np.array(starts, dtype=np.int64)])
        e_all = np.concatenate([self._buf_ends, np.array(ends, dtype=np.int64)])
        if s_all.size:
            s_all, e_all = _merge(s_all, e_all, self.gap)
        num = self._num_sections + int(s_all.size)
        clipped = self._clipped_samples + int((e_all - s_all).sum())
        sections = list(self._sections)
        for s, e in zip(s_all.tolist(), e_all.tolist()):
            if len(sections) >= self.max_sections:
                break
            sections.append((s, e))
        fs = self.sample_rate
        out: dict = {
            "num_sections": num,
            "percentage": round(100.0 * clipped / self.frames, 4) if self.frames else None,
            "sections": [[round(s / fs, 4), round(e / fs, 4)] for s, e in sections],
        }
        if not self.frames:
            out["reason"] = "no audio samples"
        return {"clipping": out}


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the runs of True in a 1-D boolean array."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return idx, idx
    breaks = np.flatnonzero(np.diff(idx) > 1)
    starts = idx[np.concatenate(([0], breaks + 1))]
    ends = idx[np.concatenate((breaks, [idx.size - 1]))] + 1
    return starts, ends


def _merge(starts: np.ndarray, ends: np.ndarray, gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Union of intervals [s, e), joining those separated by fewer than `gap` samples."""
    order = np.argsort(starts, kind="stable")
    s = starts[order]
    e = ends[order]
    reach = np.maximum.accumulate(e)
    new = np.ones(s.size, dtype=bool)
    new[1:] = s[1:] - reach[:-1] >= gap
    first = np.flatnonzero(new)
    return s[first], np.maximum.reduceat(e, first)
