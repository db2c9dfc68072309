"""Cut a stream of analysis frames into units: onsets, speech phrases, fixed windows.

All three segmenters take the per-frame features of audiotrove.dsp.features (frame k is
centred on sample k * hop; `level_db` is the level of the hop around it, `onset_db` its
mel-band levels) and return units as (start_sample, end_sample) pairs, end exclusive, in
order, as soon as they are final. They carry their state across batches, so the units do
not depend on how the stream was cut into blocks, and keep only a bounded history (a few
seconds of per-frame numbers).

    seg = OnsetSegmenter(sample_rate_hz=sr, hop=hop)
    for batch in frame_batches:
        units += seg.update(batch.start, batch.level_db, batch.onset_db, batch.hz, batch.clarity)
    units += seg.finish(total_samples)

Onset mode: three cues.
- Spectral-flux novelty (mean rise in dB over the onset bands, 24 per octave, SuperFlux-style:
  the previous frame max-filtered across bands so vibrato does not count), peak-picked against a local mean
  (librosa-style pre/post max and average windows, a minimum gap), gated by level; each such
  onset is moved back to the preceding level minimum (backtracking), then to the middle of
  the quiet hop there (frames are a hop apart: the rise starts after it).
- Pitch change, for soft attacks (bowed strings, winds, voice played legato, where the flux
  hardly rises): when per-frame pitch is given (hz, clarity of audiotrove.dsp.pitch), the
  median pitch of the pitch_window_s after a frame differs from that before it by at least
  pitch_jump_semitones, both sides mostly voiced; the local maximum of that difference is an
  onset, unless a flux onset lies within pitch_merge_s (the flux onset is kept), and only
  when the new note's partials rose (pitch_rise_db) and some onset band rose pitch_shape_db
  above the bands' median change (a reading that moves while the spectrum keeps its shape,
  as in a chorus of detuned voices, is the estimator's, not a new note).
- Note changes, for cross-fades that stay unpitched or mixed longer than that window (a
  cello's or a choir's slow attack under the old note's release): a stable pitch (pitched
  frames within note_spread_semitones for note_stable_s) that differs from the last stable
  note's by pitch_jump_semitones, whatever lies between. Its unit starts where the new
  note's partials (the onset bands of its first 4 partials, not the old note's) began to
  rise, searched back to note_pad_s before the old note was last heard stable (or, when
  they rise less than note_weak_rise_db, where the old note's partials fell, if that came
  within note_fall_back_s before); when a flux or pitch onset already marks the change but
  later than that, its start moves back there (units are held until no such move can come).
  A step of whole octaves is usually the estimator's error; a leap up counts when the lower
  note's odd partials fell octave_odd_db against its even ones (the balance of a steady note
  stays) and the new note's partials rose; it starts where the old note's odd partials began
  to fall for good.
A flux onset inside one held note is dropped: the same pitch 150-20 ms before it and 80-200 ms
(or 30-90 ms) after, a level dip of at most swell_dip_db, and no onset band rising more than swell_shape_db
above the bands' median change (a swell: tremolo, breath, bow pressure; a new note whose
partials the old one shares still raises its own bands far above the rest).
A unit lasts until the next onset, or until its level falls to the floor (release_db below its
peak, the noise floor, or an absolute floor), or max_dur_s. A unit that ends (released) before
min_dur_s is extended to min_dur_s, but never past the next onset: a short percussive hit is a
unit of its own even when hits come faster than min_dur_s (units shorter than
min_unit_s, 10 ms, are dropped).

Speech mode: frames inside the given speech sections (or everywhere, when none are given)
whose level is above a floor are active; a run of inactive frames of at least pause_s is a
pause; the units are the stretches between pauses, split at their quietest frame when longer
than max_dur_s.

Window mode: consecutive windows of window_s; a last partial window is kept if >= min_dur_s.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .features import MEL_FLOOR_DB, analysis_frame, onset_filterbank, spectral_flux

ONSET_DEFAULTS = {"min_dur_s": 0.08, "max_dur_s": 1.0}
SPEECH_DEFAULTS = {"min_dur_s": 0.2, "max_dur_s": 10.0}


def _frames(seconds: float, frame_rate_hz: float, minimum: int = 1) -> int:
    return max(minimum, int(round(seconds * frame_rate_hz)))


class _FloorTracker:
    """Noise floor per frame: the minimum, over the past window_s, of the level smoothed
    over 5 frames (dB). Causal, so it streams."""

    SMOOTH = 5

    def __init__(self, window_frames: int):
        self.window = max(1, window_frames)
        self._tail_lvl = np.zeros(0)
        self._tail_sm = np.zeros(0)

    def update(self, level_db: np.ndarray) -> np.ndarray:
        lvl = np.concatenate([self._tail_lvl, level_db])
        pad = self.SMOOTH - 1 - len(self._tail_lvl)
        src = np.concatenate([np.full(max(pad, 0), lvl[0] if len(lvl) else 0.0), lvl])
        sm_new = np.lib.stride_tricks.sliding_window_view(src, self.SMOOTH).mean(axis=1)[-len(level_db):] \
            if len(level_db) else np.zeros(0)
        sm = np.concatenate([self._tail_sm, sm_new])
        pad = self.window - 1 - len(self._tail_sm)
        src = np.concatenate([np.full(max(pad, 0), np.inf), sm])
        floor = np.lib.stride_tricks.sliding_window_view(src, self.window).min(axis=1)[-len(level_db):] \
            if len(level_db) else np.zeros(0)
        self._tail_lvl = lvl[-(self.SMOOTH - 1):] if self.SMOOTH > 1 else np.zeros(0)
        self._tail_sm = sm[-(self.window - 1):] if self.window > 1 else np.zeros(0)
        return floor


class _Track:
    """Per-frame arrays with absolute frame indices, trimmed from the front."""

    def __init__(self, names: tuple[str, ...]):
        self.start = 0
        self.data = {n: np.zeros(0) for n in names}

    @property
    def end(self) -> int:
        return self.start + len(next(iter(self.data.values())))

    def append(self, **arrays: np.ndarray) -> None:
        for n, a in arrays.items():
            self.data[n] = np.concatenate([self.data[n], np.asarray(a, dtype=np.float64)])

    def get(self, name: str, lo: int, hi: int) -> np.ndarray:
        lo, hi = max(lo, self.start), min(hi, self.end)
        return self.data[name][lo - self.start:max(lo, hi) - self.start]

    def trim(self, keep_from: int) -> None:
        cut = min(max(0, keep_from - self.start), self.end - self.start)
        if cut:
            for n in self.data:
                self.data[n] = self.data[n][cut:]
            self.start += cut


class OnsetSegmenter:
    """Units from spectral-flux onsets (see the module docstring)."""

    def __init__(self, *, sample_rate_hz: float, hop: int, min_dur_s: float = 0.08, max_dur_s: float = 1.0,
                 delta_db: float = 0.3, delta_rel: float = 0.07, norm_window_s: float = 10.0,
                 pre_max_s: float = 0.03, post_max_s: float = 0.03,
                 pre_avg_s: float = 0.1, post_avg_s: float = 0.1, wait_s: float = 0.03,
                 backtrack_s: float = 0.1, backtrack_tol_db: float = 3.0, backtrack_bump_db: float = 1.0, attack_s: float = 0.05, release_db: float = 30.0,
                 floor_db: float = -70.0, noise_window_s: float = 3.0, noise_margin_db: float = 20.0,
                 pitch_window_s: float = 0.06, pitch_jump_semitones: float = 0.75,
                 pitch_clarity: float = 0.7, pitch_voiced_share: float = 0.6,
                 pitch_merge_s: float = 0.15, pitch_rise_db: float = 6.0, pitch_rise_back_s: float = 0.15,
                 pitch_skip_octaves: bool = True,
                 retrigger_s: float = 0.15, retrigger_dip_db: float = 3.0, ending_drop_db: float = 15.0,
                 breath_s: float = 0.25, note_stable_s: float = 0.06, note_spread_semitones: float = 0.5,
                 note_back_s: float = 0.5, note_pad_s: float = 0.15, note_rise_share: float = 0.35,
                 note_revise_s: float = 0.025, note_weak_rise_db: float = 20.0, note_fall_db: float = 5.0,
                 note_fall_s: float = 0.05, note_fall_back_s: float = 0.09, note_heard_s: float = 0.1,
                 octave_odd_db: float = 20.0, swell_dip_db: float = 6.0, swell_shape_db: float = 12.0,
                 pitch_shape_db: float = 15.0,
                 min_unit_s: float = 0.01):
        if not 0 < min_dur_s <= max_dur_s:
            raise ValueError("need 0 < min_dur_s <= max_dur_s")
        self.sr, self.hop = float(sample_rate_hz), int(hop)
        fr = self.sr / self.hop
        self.min_len = int(round(min_dur_s * self.sr))
        self.min_unit = max(1, int(round(min(min_unit_s, min_dur_s) * self.sr)))
        self.pitch_win = _frames(pitch_window_s, fr, 2)
        self.pitch_jump, self.pitch_clarity = pitch_jump_semitones, pitch_clarity
        self.pitch_voiced = pitch_voiced_share
        self.pitch_merge = _frames(pitch_merge_s, fr)
        self.pitch_rise_db = pitch_rise_db
        self.skip_octaves, self.octave_tol = pitch_skip_octaves, 0.5
        self.rise_back = _frames(pitch_rise_back_s, fr)
        self.retrigger, self.retrigger_dip_db = _frames(retrigger_s, fr), retrigger_dip_db
        self.breath = _frames(breath_s, fr)
        self.note_stable = _frames(note_stable_s, fr, 2)
        self.note_spread = note_spread_semitones
        self.note_back = _frames(note_back_s, fr)
        self.note_rise_share = note_rise_share
        self.note_pad = _frames(note_pad_s, fr, 0)
        self.note_revise = _frames(note_revise_s, fr, 0)
        self.note_weak_rise_db, self.note_fall_db = note_weak_rise_db, note_fall_db
        self.note_fall, self.note_fall_back = _frames(note_fall_s, fr), _frames(note_fall_back_s, fr)
        self.note_heard = _frames(note_heard_s, fr)
        self.octave_odd_db = octave_odd_db
        self.swell_dip_db, self.swell_shape_db = swell_dip_db, swell_shape_db
        self.pitch_shape_db = pitch_shape_db
        # _swell's windows (frames): pitch 150-20 ms before vs 80-200 ms after; onset bands
        # 115-25 ms before vs 35-115 ms after
        self._swell_pitch = (_frames(0.15, fr), _frames(0.02, fr), _frames(0.08, fr), _frames(0.2, fr))
        # or 30-90 ms after: a swell that the next note follows within 0.2 s
        self._swell_soon = (_frames(0.03, fr), _frames(0.09, fr))
        self._swell_bands = (_frames(0.115, fr), _frames(0.025, fr), _frames(0.035, fr), _frames(0.115, fr))
        self._swell_back = _frames(1.0, fr)  # how far back the note's peak level is looked for
        self._note_pitch = math.nan  # the pitch of the last stable note (semitones), its last frame
        self._note_end = -(10 ** 9)
        self._note_from = -(10 ** 9)  # the first frame of its stable runs
        self.ending_drop_db = ending_drop_db
        self._last_by_pitch = False
        self.max_len = int(round(max_dur_s * self.sr))
        self.max_frames = int(math.ceil(self.max_len / self.hop))
        self.delta_db, self.delta_rel = delta_db, delta_rel
        self.norm = _frames(norm_window_s, fr)
        self.pre_max, self.post_max = _frames(pre_max_s, fr), _frames(post_max_s, fr)
        self.pre_avg, self.post_avg = _frames(pre_avg_s, fr), _frames(post_avg_s, fr)
        self.wait = _frames(wait_s, fr, 0)
        self.backtrack = _frames(backtrack_s, fr)
        # how far before its onset frame a unit may start (backtracking, pitch refinement)
        self._back = max(self.backtrack, self.rise_back + self.pitch_win, 3 * self.pitch_win, self.note_back) + 1
        self.backtrack_tol_db, self.backtrack_bump_db = backtrack_tol_db, backtrack_bump_db
        self.attack = _frames(attack_s, fr)
        self.release_db, self.floor_db, self.noise_margin_db = release_db, floor_db, noise_margin_db
        # frames needed after a frame before deciding it: the flux peak picking, and the pitch
        # window plus the merge distance (a flux onset just after a pitch change wins)
        self.lookahead = max(self.post_max, self.post_avg, self.pitch_win + self.pitch_merge + self.post_max,
                             self.retrigger + 1, self.note_stable + self.pitch_win,
                             self._swell_pitch[3] + 1, self._swell_bands[3] + 1)
        self._floor = _FloorTracker(_frames(noise_window_s, fr))
        self._track = _Track(("level", "flux", "noise", "semi", "mel"))
        self._track.data["mel"] = np.zeros((0, 0))
        self._mel_centres: np.ndarray | None = None  # Hz, of the onset_db bands
        self._prev_db: np.ndarray | None = None
        self._decided = 0  # frames [0, _decided) have had their onset decision
        self._last_onset = -(10 ** 9)
        # (onset frame, start frame, start offset in samples after the start frame's centre)
        self._pending: list[tuple[int, int, int]] = []
        self._last_end = 0  # end sample of the last unit emitted (units never overlap)
        self.onset_frames: list[int] = []  # every onset found (for inspection and tests)

    @property
    def earliest_needed_sample(self) -> int:
        """Samples before this are no longer needed by any unit still to come."""
        if self._pending:
            return self._pending[0][1] * self.hop
        # a start found later lies at most this far before the first undecided frame
        return max(0, (self._decided - self._back - 1) * self.hop)

    def update(self, start: int, level_db: np.ndarray, onset_db: np.ndarray,
               hz: np.ndarray | None = None, clarity: np.ndarray | None = None) -> list[tuple[int, int]]:
        """Feed consecutive frames; hz and clarity (per-frame pitch) enable the pitch cue."""
        if start != self._track.end:
            raise ValueError("frames must be consecutive")
        if len(level_db):
            flux = spectral_flux(onset_db, self._prev_db)
            self._prev_db = np.asarray(onset_db[-1], dtype=np.float32)
            semi = np.full(len(level_db), np.nan)
            if hz is not None and clarity is not None:
                hz = np.asarray(hz, dtype=np.float64)
                ok = np.isfinite(hz) & (hz > 0) & (np.asarray(clarity) >= self.pitch_clarity)
                semi[ok] = 69.0 + 12.0 * np.log2(hz[ok] / 440.0)
            onset_db = np.asarray(onset_db, dtype=np.float32)
            if self._mel_centres is None:
                self._mel_centres = self._band_centres(onset_db.shape[1])
                self._log_centres = np.log(self._mel_centres)
                self._track.data["mel"] = np.zeros((0, onset_db.shape[1]), np.float32)
            self._track.append(level=level_db, flux=flux, noise=self._floor.update(np.asarray(level_db, float)),
                               semi=semi)
            self._track.data["mel"] = np.concatenate([self._track.data["mel"], onset_db])
        self._decide(final=False)
        units = self._resolve(final=False, total_samples=None)
        self._trim()
        return units

    def _band_centres(self, n_bands: int) -> np.ndarray:
        """Centre frequencies (Hz) of the onset bands of audiotrove.dsp.features on this grid."""
        n_fft, hop = analysis_frame(self.sr)
        centres = onset_filterbank(sample_rate_hz=self.sr, n_fft=n_fft)[1]
        if hop != self.hop or len(centres) != n_bands:
            raise ValueError("onset_db must hold the onset bands of FrameAnalyzer on the analysis_frame grid")
        return centres

    def finish(self, total_samples: int) -> list[tuple[int, int]]:
        self._decide(final=True)
        units = self._resolve(final=True, total_samples=total_samples)
        return units

    # -- onsets
    def _decide(self, *, final: bool) -> None:
        avail = self._track.end
        hi = avail if final else avail - self.lookahead
        lo = self._decided
        if hi <= lo:
            return
        flux_frames = self._flux_candidates(np.arange(lo, hi))
        # (onset frame, start frame or None to backtrack, by pitch)
        events = [(int(f), None, False, None) for f in flux_frames] + \
                 [(f, start, True, None) for f, start in self._pitch_changes(lo, hi)] + \
                 [(f, start, True, note) for f, start, note in self._note_changes(lo, hi)]
        for frame, start, by_pitch, note in sorted(events, key=lambda e: (e[0], e[2], e[3] is not None)):
            last = self.onset_frames[-1] if self.onset_frames else None
            since, old_from, octave = note if note is not None else (None, None, False)
            if since is not None and last is not None and last >= since - self.pitch_merge:
                if octave:
                    continue  # an octave leap already marked (by the flux): its start stands
                # a note change already marked by an onset since the old note was heard: the
                # unit starts where the new note's partials began to rise, if that is earlier
                self._revise_start(since - self.pitch_merge, frame, start)
                continue
            if last is not None and frame - last <= self.pitch_merge and by_pitch != self._last_by_pitch:
                continue  # the same note seen by both cues: the first one found stands
            if frame - self._last_onset <= self.wait:
                continue
            if not by_pitch and self._ending(frame):
                continue
            if not by_pitch and last is not None and self._retrigger(last, frame):
                continue
            if not by_pitch and last is not None and self._swell(last, frame):
                continue
            # a note change whose old note was heard stable for note_heard_s after the
            # previous onset, and whose new partials began to rise after that: the previous
            # onset was the old note's, not a breath before this one
            heard = since is not None and last is not None and since - max(last, old_from) >= self.note_heard \
                and start > last + self.note_stable
            if last is not None and self._same_attack(last, frame, breath=not heard):
                continue
            self._add_onset(frame, start=start)
            self._last_by_pitch = by_pitch
        self._decided = hi

    def _flux_candidates(self, k: np.ndarray) -> np.ndarray:
        """Frames of k that are flux onsets: peak-picked novelty, gated by level."""
        t = self._track
        if not len(k):
            return k
        avail = t.end
        ctx_lo = max(t.start, int(k[0]) - max(self.pre_max, self.pre_avg, self.norm))
        flux = t.get("flux", ctx_lo, avail)
        level = t.get("level", ctx_lo, avail)
        i = k - ctx_lo
        n = len(flux)
        # windowed max and mean, truncated at the edges of what is known
        pad_lo, pad_hi = max(self.pre_max, self.pre_avg, self.norm), max(self.post_max, self.post_avg)
        fpad = np.concatenate([np.full(pad_lo, -np.inf), flux, np.full(pad_hi, -np.inf)])
        wmax = np.lib.stride_tricks.sliding_window_view(fpad, self.pre_max + self.post_max + 1)
        wmax = wmax[i + pad_lo - self.pre_max].max(axis=1)
        # windowed mean: each window summed on its own (no running sum), so the result
        # does not depend on where the history starts
        zpad = np.concatenate([np.zeros(pad_lo), flux, np.zeros(pad_hi)])
        ones = np.concatenate([np.zeros(pad_lo), np.ones(n), np.zeros(pad_hi)])
        width = self.pre_avg + self.post_avg + 1
        j = i + pad_lo - self.pre_avg
        wsum = np.lib.stride_tricks.sliding_window_view(zpad, width)[j].sum(axis=1)
        wcount = np.lib.stride_tricks.sliding_window_view(ones, width)[j].sum(axis=1)
        wmean = wsum / np.maximum(wcount, 1)
        lpad = np.concatenate([level, np.full(self.post_max, -np.inf)])
        peak_level = np.lib.stride_tricks.sliding_window_view(lpad, self.post_max + 1)[i].max(axis=1)
        # the scale of the novelty: its maximum over the past norm_window_s (as librosa
        # normalises by the file's maximum, but causal, so it streams)
        rmax = np.lib.stride_tricks.sliding_window_view(fpad, self.norm + self.post_max + 1)
        rmax = rmax[i + pad_lo - self.norm].max(axis=1)
        threshold = wmean + np.maximum(self.delta_db, self.delta_rel * rmax)
        cand = (flux[i] >= wmax) & (flux[i] >= threshold) & (peak_level >= self.floor_db) & (flux[i] > 0)
        return k[cand]

    def _pitch_changes(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """(onset frame, start frame) of the pitch changes detected in [lo, hi) (see the module
        docstring): the onset is the first frame with the new pitch, the start one frame before."""
        t = self._track
        w = self.pitch_win
        half = max(1, w // 2)
        a = max(t.start, lo - half - 3 * w)  # the refinement looks back 2w before f - w
        b = min(t.end, hi + half + w)
        semi = t.get("semi", a, b)
        if len(semi) < 2 * w or np.isfinite(semi).sum() < w:
            return []
        # median pitch of the w frames from each frame on, NaN where mostly unvoiced
        win = np.lib.stride_tricks.sliding_window_view(semi, w)  # win[j] = semi[a+j : a+j+w]
        voiced = np.isfinite(win).mean(axis=1) >= self.pitch_voiced
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(np.where(voiced[:, None], win, 0.0), axis=1)
        med[~voiced] = np.nan
        # frame f: before = med[f - w - a] (frames f-w..f-1), after = med[f - a] (f..f+w-1)
        frames = np.arange(a + w, b - w + 1)
        if not len(frames):
            return []
        d = np.abs(med[frames - a] - med[frames - w - a])
        d = np.where(np.isfinite(d), d, 0.0)
        lvl = t.get("level", int(frames[0]), int(frames[-1]) + 1)
        # one onset per change: the first frame of the largest difference within +-half frames
        out: list[int] = []
        for j in np.flatnonzero((d >= self.pitch_jump) & (lvl >= self.floor_db)
                                & (frames >= lo) & (frames < hi)):
            before = d[max(0, j - half):j]
            after = d[j + 1:j + half + 1]
            if (not len(before) or d[j] > before.max()) and (not len(after) or d[j] >= after.max()):
                # a jump of one or two octaves (+-0.5) is the pitch estimator's usual error
                # (clarinets, voices with a weak fundamental), not a new note: the flux must say it
                octave = abs(d[j] - 12.0 * round(d[j] / 12.0)) < self.octave_tol and d[j] > 6
                if not (self.skip_octaves and octave):
                    out.append(int(frames[j]))
        # refine: the first frame (from w before) that has the new pitch and keeps it
        refined = []
        for f in out:
            new = med[f - a]
            lo_j = max(a, f - w)
            seg = semi[lo_j - a:f + w - a]
            near = np.abs(seg - new) <= 0.5
            ok = near[:-1] & near[1:]
            j = lo_j + int(np.argmax(ok)) if ok.any() else f
            # the start: just after the last frame that still had the old pitch (the frames
            # between are the new note's attack, too mixed for a pitch)
            old = med[f - w - a]
            seg = semi[max(a, j - 2 * w) - a:j - a]
            was_old = np.flatnonzero(np.abs(seg - old) <= 0.5)
            start = max(a, j - 2 * w) + int(was_old[-1]) + 1 if was_old.size else j - 1
            rise_at, rise_db = self._partials_rise(j, new, old)
            if rise_db < self.pitch_rise_db:
                continue  # no new partials rose: a ringing mixture or a pitch error, not a note
            shape = self._shape_change(f)
            if shape is not None and shape < self.pitch_shape_db:
                continue  # the spectrum kept its shape: the estimator's reading moved, not the note
            start = min(start, rise_at)
            # the event keeps its detection frame f (>= lo): events are then decided in the
            # same order whatever the blocks; the unit starts at the refined start
            refined.append((int(f), max(min(start, j - 1), 0)))
        return refined

    def _note_changes(self, lo: int, hi: int) -> list[tuple[int, int, int]]:
        """The note-level pitch cue: stable pitches, compared across what lies between them.
        A frame starts a stable run when the note_stable_s from it are all pitched (clarity
        >= pitch_clarity) within note_spread_semitones; the run's median is its pitch. A run
        whose pitch differs from the last stable note's by pitch_jump_semitones or more (and
        not by whole octaves, the estimator's usual error) is a new note, however long the
        cross-fade between them stayed unpitched or mixed (the short-window pitch cue needs
        pitched frames on both sides of the change). Returns (the run's first frame, the
        unit's start: where the new note's partials start rising within note_back_s before
        it, the old note's last stable frame); state carries across batches."""
        t = self._track
        n = self.note_stable
        a, b = max(t.start, lo), min(t.end, hi + n - 1)
        semi = t.get("semi", a, b)
        if len(semi) < n:
            return []
        win = np.lib.stride_tricks.sliding_window_view(semi, n)  # win[j] = frames a+j .. a+j+n-1
        with np.errstate(invalid="ignore"):
            spread = win.max(axis=1) - win.min(axis=1)
        stable = np.isfinite(spread) & (spread <= self.note_spread)
        out = []
        idx = np.flatnonzero(stable[:hi - a])
        meds = np.median(win[idx], axis=1).tolist() if idx.size else []
        for j, m in zip(idx.tolist(), meds):
            f = a + j
            d = abs(m - self._note_pitch)
            if not math.isfinite(d) or d < self.pitch_jump / 2:
                if not math.isfinite(d):
                    self._note_from = f
                self._note_pitch, self._note_end = m, f + n - 1  # the same note (or a slow drift)
                continue
            if d < self.pitch_jump:
                continue
            octave = self.skip_octaves and d > 6 and abs(d - 12.0 * round(d / 12.0)) < self.octave_tol
            old, since, old_from = self._note_pitch, self._note_end, self._note_from
            # the new note began at most note_pad_s before the old one was last heard stable
            back = min(self.note_back, max(f - since + self.note_pad, self.rise_back))
            if octave:
                # usually the estimator's error; a real leap changes the balance of the lower
                # note's odd partials against its even ones (an octave-up leap silences the
                # odd ones, an octave-down leap brings them): no change, no new note
                shift = self._odd_shift(f, m, old, since)
                # Leaps up only: a reading an octave below the old note is, as often as not,
                # a third of the new note's frequency (a fifth above the old one), whose odd
                # partials (the new note at 3 f among them) rise as well
                if m < old or not shift >= self.octave_odd_db:
                    continue
                # and the new note's partials rose (not a decaying note whose partials fade
                # at different rates while the estimator changes its octave)
                if self._partials_rise(f, m, math.nan, back=back)[1] < self.pitch_rise_db:
                    continue
                # the mixture of the two notes has the lower one's period: the estimator reads
                # the old note until it is nearly gone, so the start is looked for over
                # note_back_s: where the old note's odd partials began to fall for good (or
                # else where the new note's partials began to rise)
                fall_at = self._partials_fall(f, old, m, back=self.note_back)
                rise_at = fall_at if fall_at is not None else self._partials_rise(
                    f, m, math.nan, back=self.note_back, share=self.note_rise_share)[0]
                self._note_pitch, self._note_end, self._note_from = m, f + n - 1, f
                out.append((f, max(min(rise_at, f - 1), 0), (since, old_from, True)))
                continue
            rise_at, rise_db = self._partials_rise(f, m, old, back=back, share=self.note_rise_share)
            if rise_db < self.pitch_rise_db:
                continue  # no new partials rose: a misreading (a mixture, a subharmonic)
            self._note_pitch, self._note_end, self._note_from = m, f + n - 1, f
            if rise_db < self.note_weak_rise_db:
                # the new partials hardly stand out (a step of a semitone or two in a low
                # register, a slow swell): the old note's release, when it comes shortly
                # before, marks the change better
                fall_at = self._partials_fall(f, old, m, back=back)
                if fall_at is not None and rise_at - self.note_fall_back <= fall_at < rise_at:
                    rise_at = fall_at
            out.append((f, max(min(rise_at, f - 1), 0), (since, old_from, False)))
        return out

    def _backtracked(self, frame: int) -> int:
        """The latest frame within backtrack_tol_db of the minimum level in the backtrack_s
        before the onset (and after the previous onset): where the rise starts (plain argmin
        would land anywhere in a stretch of noise); never before a bump of more than
        backtrack_bump_db on the way back from the onset. Unless the level does not rise at the
        onset (its attack_s after it stays within backtrack_tol_db of the highest level since
        that minimum): a change of timbre or pitch with no attack (a legato horn, a violin's
        bow change) starts at its frame; the rise before it belonged to the old note."""
        t = self._track
        floor = max(t.start, frame - self.backtrack)
        if self._pending:
            floor = max(floor, self._pending[-1][0] + 1)
        elif self.onset_frames:
            floor = max(floor, self.onset_frames[-1] + 1)
        seg = t.get("level", floor, frame + 1)
        if not len(seg):
            return frame
        near_min = np.flatnonzero(seg <= seg.min() + self.backtrack_tol_db)
        b = floor + int(near_min[-1])
        # never behind a bump: the rise starts after the last frame where the level, going
        # back from the onset, grew by more than backtrack_bump_db (the beating of a choir's
        # detuned voices makes dips deeper than the one the new note rises from)
        j = len(seg) - 1
        while j > 0 and seg[j - 1] <= seg[j] + self.backtrack_bump_db:
            j -= 1
        b = max(b, floor + j)
        after = t.get("level", frame, frame + self.attack + 1)
        before = t.get("level", b, frame)
        if len(before) and len(after) and after.max() <= before.max() + self.backtrack_tol_db:
            return max(b, frame - 1)
        return b

    def _partials_rise(self, frame: int, new_semi: float, old_semi: float,
                       back: int | None = None, share: float = 0.0) -> tuple[int, float]:
        """Where the new note's partials start to rise, before a pitch onset at `frame`: the
        level of the onset bands holding its first partials (and not the old note's),
        backtracked as a flux onset is. A soft attack builds up for tens of ms before the new
        pitch dominates the frame. Returns (that frame, how much those bands rose in dB from
        it to pitch_window_s after the onset)."""
        if self._mel_centres is None or not np.isfinite(new_semi):
            return frame, 0.0
        top = self._mel_centres[-1]
        f_new = 440.0 * 2 ** ((new_semi - 69) / 12)
        partials = f_new * np.arange(1, 5)
        bands = set(self._nearest_band(partials[partials < top]).tolist())
        if np.isfinite(old_semi):  # not the bands of the old note's first 8 partials
            olds = 440.0 * 2 ** ((old_semi - 69) / 12) * np.arange(1, 9)
            bands -= set(self._nearest_band(olds[olds < top]).tolist())
        if not bands:
            return frame, 0.0
        t = self._track
        lo = max(t.start, frame - (self.rise_back if back is None else back))
        if lo > frame:  # the previous onset is at or after this frame
            return frame, 0.0
        mel = t.get("mel", lo, frame + self.pitch_win)
        if len(mel) <= frame - lo:
            return frame, 0.0
        e = mel[:, sorted(bands)].mean(axis=1)
        before = e[:frame - lo + 1]
        rise = float(e[frame - lo:].max() - before.min())
        near_min = np.flatnonzero(before <= before.min() + max(self.backtrack_tol_db, share * rise))
        return lo + int(near_min[-1]), rise

    def _partials_fall(self, frame: int, old_semi: float, new_semi: float, back: int) -> int | None:
        """Where the old note's partials (the onset bands of its first 4, not the new note's
        first 8) start to fall for good, in the `back` frames before `frame`: the first frame
        note_fall_db below their highest level so far, after which they stay backtrack_tol_db
        below it, reached within note_fall_s from the last frame within backtrack_tol_db of
        it (that frame is returned). None if they do not fall so."""
        if self._mel_centres is None or not np.isfinite(old_semi):
            return None
        top = self._mel_centres[-1]
        olds = 440.0 * 2 ** ((old_semi - 69) / 12) * np.arange(1, 5)
        bands = set(self._nearest_band(olds[olds < top]).tolist())
        news = 440.0 * 2 ** ((new_semi - 69) / 12) * np.arange(1, 9)
        bands -= set(self._nearest_band(news[news < top]).tolist())
        if not bands:
            return None
        t = self._track
        lo = max(t.start, frame - back)
        e = t.get("mel", lo, frame + 1)[:, sorted(bands)].mean(axis=1)
        if len(e) < 2:
            return None
        runmax = np.maximum.accumulate(e)
        tol = self.backtrack_tol_db
        plateau = np.flatnonzero(e >= runmax - tol)
        for d in np.flatnonzero(e <= runmax - self.note_fall_db):
            top = runmax[d]
            if (e[d:] < top - tol).all():  # down for good
                j = int(plateau[plateau < d][-1])  # the plateau's last frame before the drop
                return lo + j if d - j <= self.note_fall else None
        return None

    def _odd_shift(self, frame: int, new_semi: float, old_semi: float, since: int) -> float:
        """For an octave step from old_semi (last stable at `since`) to new_semi (stable from
        `frame`): by how many dB the lower note's odd partials (1, 3, 5) changed against its
        even ones (2, 4, 6), in the direction a real leap moves them (down for a leap up, up
        for a leap down), between the old note's last note_stable_s and the new one's first."""
        if self._mel_centres is None:
            return 0.0
        top = self._mel_centres[-1]
        low = 440.0 * 2 ** ((min(new_semi, old_semi) - 69) / 12)
        odd, even = low * np.array([1.0, 3.0, 5.0]), low * np.array([2.0, 4.0, 6.0])
        odd, even = self._nearest_band(odd[odd < top]), self._nearest_band(even[even < top])
        if not len(odd) or not len(even):
            return 0.0
        n = self.note_stable
        before = self._track.get("mel", since - n + 1, since + 1)
        after = self._track.get("mel", frame, frame + n)
        if not len(before) or not len(after):
            return 0.0
        balance = lambda mel: float(mel[:, odd].mean() - mel[:, even].mean())
        shift = balance(after) - balance(before)
        return -shift if new_semi > old_semi else shift

    def _nearest_band(self, hz: np.ndarray) -> np.ndarray:
        """Index of the onset band whose centre is nearest (in log frequency) to each hz."""
        lc = self._log_centres
        x = np.log(hz)
        i = np.clip(np.searchsorted(lc, x), 1, len(lc) - 1)
        return np.where(x - lc[i - 1] <= lc[i] - x, i - 1, i)

    def _ending(self, frame: int) -> bool:
        """A flux peak where a sound stops: the level from two hops after it to retrigger_s
        stays ending_drop_db below the level just before it (the splatter of a fast fade-out rises
        in the sparse high bands; a real attack, even one after a breath, restores the level)."""
        t = self._track
        before = t.get("level", frame - 2, frame)
        after = t.get("level", frame + 2, frame + self.retrigger + 1)  # from the hop after the next
        if not len(before) or len(after) < self.retrigger - 1:
            return False
        return bool(after.max() < before.max() - self.ending_drop_db)

    def _same_attack(self, last: int, frame: int, *, breath: bool = True) -> bool:
        """The same note seen twice, not a new one:
        - an onset less than min_dur_s after the previous one while the level has not dipped
          since (a double-peaked flux). Hits faster than min_dur_s each dip before the next,
          and stay units of their own;
        - an onset less than breath_s after the previous one, when the level stayed below
          its value just before the previous onset all the way between: the previous onset
          was the old note stopping (a breath, a bow change: a burst of noise as the level
          falls) and this is the new note's tone arriving. A real attack raises the level."""
        if breath and frame - last <= self.breath:
            lvl = self._track.get("level", last - 2, frame + 1)
            between = lvl[3:frame - last + 2]  # after the previous onset frame, before this one
            if len(lvl) == frame - last + 3 and len(between) and between.max() < lvl[:2].max():
                return True
        if (frame - last) * self.hop >= self.min_len:
            return False
        lvl = self._track.get("level", last, frame + 1)
        if len(lvl) < 2:
            return True
        runmax = np.maximum.accumulate(lvl)
        return bool((lvl >= runmax - self.retrigger_dip_db).all())

    def _retrigger(self, last: int, frame: int) -> bool:
        """A flux onset soon after the previous onset, on the same pitch, with no dip in level
        between: the same note swelling (bow pressure, vibrato), not a new one."""
        if frame - last > self.retrigger:
            return False
        t = self._track
        w = self.pitch_win
        before = t.get("semi", last, frame)
        after = t.get("semi", frame, frame + w)
        if np.isfinite(before).mean() < self.pitch_voiced or np.isfinite(after).mean() < self.pitch_voiced:
            return False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            same = abs(np.nanmedian(after) - np.nanmedian(before)) < self.pitch_jump / 2
        lvl = t.get("level", last, frame + 1)
        no_dip = lvl[1:].min() >= np.maximum.accumulate(lvl)[:-1].max() - self.retrigger_dip_db if len(lvl) > 1 else True
        return bool(same and no_dip)

    def _swell(self, last: int, frame: int) -> bool:
        """A flux onset inside one steady note, however long after the previous onset: the
        pitch 80-200 ms after it, or 30-90 ms after it (the next note may come within 0.2 s of
        a swell: TimGM6mb's choir swells 85-145 ms before many note-ons), is the pitch 150-20
        ms before it (within half the pitch jump, both sides mostly voiced), the level dipped at most swell_dip_db under its peak since
        the previous onset (at most 1 s back), and no onset band rose more than swell_shape_db
        above the bands' median change: the note's spectrum kept its shape, it only swelled
        (tremolo, breath, bow pressure). A new note, even one whose period the old note shares
        (a leap up an octave or a twelfth: the mixture's period stays the old one), raises the
        bands of its own partials far above the rest (measured on rendered melodies: 16-37 dB
        for such leaps, 0.5-12 dB for the swells of sustained flute, saxophone and violin
        notes). A note repeated after a gap dips deeper; one repeated without a dip or a change
        of timbre is not told apart."""
        t = self._track
        b0, b1, a0, a1 = self._swell_pitch
        before = t.get("semi", frame - b0, frame - b1 + 1)
        if len(before) == 0 or np.isfinite(before).mean() < self.pitch_voiced:
            return False
        if not any(self._same_pitch(before, t.get("semi", frame + lo, frame + hi + 1))
                   for lo, hi in ((a0, a1), self._swell_soon)):
            return False
        lvl = t.get("level", max(last, frame - self._swell_back), frame + 1)
        if len(lvl) < 2 or lvl.max() - lvl[-4:].min() > self.swell_dip_db:
            return False
        shape = self._shape_change(frame)
        return shape is not None and shape < self.swell_shape_db

    def _shape_change(self, frame: int) -> float | None:
        """How far the onset band that rose most (the mean of 35-115 ms after `frame` less the
        mean of 115-25 ms before) rose above the median band's change, in dB, over the bands
        within 40 dB of the loudest: a new note raises the bands of its own partials far above
        the rest; a swell, or a pitch reading that moves while the note stays, raises none
        apart. None when the frames are not there."""
        t = self._track
        m0, m1, n0, n1 = self._swell_bands
        mel_before = t.get("mel", frame - m0, frame - m1 + 1)
        mel_after = t.get("mel", frame + n0, frame + n1 + 1)
        if len(mel_before) == 0 or len(mel_after) == 0:
            return None
        mb, ma = mel_before.mean(axis=0), mel_after.mean(axis=0)
        heard = np.maximum(ma, mb) > max(ma.max(), mb.max()) - 40.0
        change = (ma - mb)[heard]
        return float(change.max() - np.median(change)) if change.size else None

    def _same_pitch(self, before: np.ndarray, after: np.ndarray) -> bool:
        """Both stretches of frame pitches mostly voiced, their medians within half a pitch jump."""
        if len(after) == 0 or np.isfinite(after).mean() < self.pitch_voiced:
            return False
        return bool(abs(np.nanmedian(after) - np.nanmedian(before)) < self.pitch_jump / 2)

    def _revise_start(self, since: int, frame: int, start: int) -> None:
        """Move the start of the first onset found after `since` (and at most note_back_s
        before `frame`) back to `start` when that is more than note_revise_s earlier, never
        before the previous onset's frame. (A flux or short-window pitch onset found while
        the new note was already under way: the note-level cue knows where it began.)"""
        for i, (onset, b, shift) in enumerate(self._pending):
            if onset < since or onset < frame - self.note_back:
                continue
            if start < b - self.note_revise:  # (less is within the onset bands' 46 ms frames)
                prev = self._pending[i - 1][0] if i else (self.onset_frames[-len(self._pending) - 1]
                                                          if len(self.onset_frames) > len(self._pending) else -1)
                self._pending[i] = (onset, max(start, prev + 1), shift)
            return

    def _add_onset(self, frame: int, *, start: int | None = None) -> None:
        b = self._backtracked(frame) if start is None else start
        if self._pending:
            b = max(b, self._pending[-1][0] + 1)
        elif self.onset_frames:
            b = max(b, self.onset_frames[-1] + 1)
        # a start frame is quiet (backtracked) or still the old note: the new one begins after
        # the hop around its centre
        self._pending.append((frame, min(b, frame), self.hop // 2))
        self.onset_frames.append(frame)
        self._last_onset = frame

    # -- units
    def _resolve(self, *, final: bool, total_samples: int | None) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        t = self._track
        while self._pending:
            onset, b, shift = self._pending[0]
            next_start = self._pending[1][1] if len(self._pending) > 1 else None
            next_sample = next_start * self.hop + self._pending[1][2] if next_start is not None else None
            limit = b + self.max_frames
            if next_start is not None:
                limit = min(limit, next_start)
            known = min(limit, t.end)
            if next_start is not None and not final and self._decided <= self._pending[1][0] + self.note_back:
                break  # the next unit's start may still move back (_revise_start): this one's end
            lvl = t.get("level", b, known)
            noise = t.get("noise", b, known)
            end_frame = None
            if len(lvl):
                p0 = onset - b
                p = p0 + int(np.argmax(lvl[p0:p0 + self.attack + 1])) if p0 < len(lvl) else len(lvl) - 1
                runmax = np.maximum.accumulate(lvl)
                # the noise floor counts only when well below the unit's peak: over a
                # sustained sound the running minimum is the sound itself, not noise
                noise_floor = np.where(noise < runmax - self.noise_margin_db, noise + 3.0, -np.inf)
                floor = np.maximum(np.maximum(self.floor_db, runmax - self.release_db), noise_floor)
                below = np.flatnonzero(lvl[p + 1:] < floor[p + 1:])
                if below.size:
                    end_frame = b + p + 1 + int(below[0])
                    # released before min_dur: extend to min_dur, never past the next onset
                    min_end = -(-(b * self.hop + shift + self.min_len) // self.hop)
                    end_frame = min(max(end_frame, min_end), limit)
            # an onset decided later may start up to self._back frames before its frame: a unit
            # without a next onset is final only once that could no longer cut it
            if end_frame is None:
                if next_start is not None:
                    end_frame = next_start
                elif final or (t.end >= limit and self._decided >= limit + self._back):
                    end_frame = limit
                else:
                    break  # wait for more frames
            elif next_start is None and not final and self._decided < end_frame + self._back:
                break  # an onset might still come before the release
            self._pending.pop(0)
            start_sample = max(b * self.hop + shift, self._last_end)
            end_sample = end_frame * self.hop
            if next_sample is not None and end_frame >= next_start:
                end_sample = next_sample  # cut by the next onset: ends where it starts
            end_sample = min(end_sample, start_sample + self.max_len)
            if total_samples is not None:
                end_sample = min(end_sample, total_samples)
            if end_sample - start_sample >= self.min_unit:
                out.append((start_sample, end_sample))
                self._last_end = end_sample
        return out

    def _trim(self) -> None:
        # history the next decisions read: the flux windows (norm), backtracking and the
        # partials' rise, the pitch windows and the same-note checks
        keep = self._decided - max(self.pre_max, self.pre_avg, self.norm) \
            - max(self.backtrack, self.rise_back, self.retrigger, self.breath, self.note_back) \
            - 3 * self.pitch_win - self.pitch_merge - 4
        if self._pending:
            keep = min(keep, self._pending[0][1])
        self._track.trim(keep)


class SpeechSegmenter:
    """Units from speech sections (or level alone) cut at pauses (see the module docstring)."""

    def __init__(self, *, sample_rate_hz: float, hop: int, sections: list[list[float]] | None = None,
                 sections_until_s: float | None = None, min_dur_s: float = 0.2, max_dur_s: float = 10.0,
                 pause_s: float = 0.2, floor_db: float = -55.0, above_noise_db: float = 10.0,
                 pad_s: float = 0.03, noise_window_s: float = 3.0):
        """sections: [[start_s, end_s], ...] where speech is; None: everywhere (level only).
        sections_until_s: the sections list covers only [0, this) (a capped list): level alone
        decides after it."""
        if not 0 < min_dur_s <= max_dur_s:
            raise ValueError("need 0 < min_dur_s <= max_dur_s")
        self.sr, self.hop = float(sample_rate_hz), int(hop)
        fr = self.sr / self.hop
        self.min_len = int(round(min_dur_s * self.sr))
        self.max_frames = max(2, int(max_dur_s * fr))
        self.max_len = int(round(max_dur_s * self.sr))
        self.pause = _frames(pause_s, fr)
        self.pad = int(round(pad_s * self.sr))
        self.floor_db, self.above_noise_db = floor_db, above_noise_db
        self._floor = _FloorTracker(_frames(noise_window_s, fr))
        self.sections = None
        if sections is not None:
            arr = np.asarray(sections, dtype=np.float64).reshape(-1, 2)
            self.sections = arr[np.argsort(arr[:, 0])] if len(arr) else arr
        self.sections_until = sections_until_s
        self._track = _Track(("level",))
        self._open: int | None = None  # first active frame of the unit being built
        self._last_active = -1
        self._last_end = 0
        self._frames_seen = 0

    @property
    def earliest_needed_sample(self) -> int:
        if self._open is not None:
            return max(0, self._open * self.hop - self.hop - self.pad)
        return max(0, self._frames_seen * self.hop - self.hop - self.pad)

    def _allowed(self, k: np.ndarray) -> np.ndarray:
        if self.sections is None:
            return np.ones(len(k), dtype=bool)
        t = k * self.hop / self.sr
        inside = np.zeros(len(k), dtype=bool)
        if len(self.sections):
            i = np.searchsorted(self.sections[:, 0], t, side="right") - 1
            ok = i >= 0
            inside[ok] = t[ok] < self.sections[i[ok], 1]
        if self.sections_until is not None:
            inside |= t >= self.sections_until
        return inside

    def update(self, start: int, level_db: np.ndarray, onset_db: np.ndarray | None = None,
               hz: np.ndarray | None = None, clarity: np.ndarray | None = None) -> list[tuple[int, int]]:
        level_db = np.asarray(level_db, dtype=np.float64)
        if start != self._frames_seen:
            raise ValueError("frames must be consecutive")
        out: list[tuple[int, int]] = []
        m = len(level_db)
        if m == 0:
            return out
        noise = self._floor.update(level_db)
        k = np.arange(start, start + m)
        active = self._allowed(k) & (level_db >= np.maximum(self.floor_db, noise + self.above_noise_db))
        self._track.append(level=level_db)
        self._frames_seen += m
        # runs of active frames in this batch
        edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
        for r0, r1 in zip(edges[::2], edges[1::2]):
            a0, a1 = start + int(r0), start + int(r1) - 1
            if self._open is not None and a0 - self._last_active - 1 >= self.pause:
                out += self._close(None)
            if self._open is None:
                self._open = a0
            self._last_active = a1
            out += self._split_long()
        if self._open is not None and self._frames_seen - 1 - self._last_active >= self.pause:
            out += self._close(None)
        keep = self._open if self._open is not None else self._frames_seen - 1
        self._track.trim(keep)
        return out

    def finish(self, total_samples: int) -> list[tuple[int, int]]:
        return self._close(total_samples) if self._open is not None else []

    def _split_long(self) -> list[tuple[int, int]]:
        out = []
        while self._open is not None and self._last_active - self._open + 1 > self.max_frames:
            lo = self._open + self.max_frames // 2
            hi = self._open + self.max_frames
            seg = self._track.get("level", lo, hi)
            split = lo + int(np.argmin(seg))
            s = max(self._open * self.hop - self.hop // 2 - self.pad, self._last_end, 0)
            e = min(split * self.hop, s + self.max_len)
            if e - s >= self.min_len:
                out.append((s, e))
            self._last_end = e
            self._open = split
        return out

    def _close(self, total_samples: int | None) -> list[tuple[int, int]]:
        s = max(self._open * self.hop - self.hop // 2 - self.pad, self._last_end, 0)
        e = self._last_active * self.hop + self.hop // 2 + self.pad
        if total_samples is not None:
            e = min(e, total_samples)
        e = min(e, s + self.max_len)
        self._open = None
        if e - s >= self.min_len:
            self._last_end = e
            return [(s, e)]
        return []


class WindowSegmenter:
    """Consecutive windows of window_s seconds (the last one kept if >= min_dur_s)."""

    def __init__(self, *, sample_rate_hz: float, hop: int, window_s: float, min_dur_s: float | None = None):
        if window_s <= 0:
            raise ValueError("window length must be > 0 s")
        self.sr, self.hop = float(sample_rate_hz), int(hop)
        self.window_s = window_s
        self.min_len = int(round((window_s / 2 if min_dur_s is None else min_dur_s) * self.sr))
        self._next = 0
        self._frames_seen = 0

    def _edge(self, i: int) -> int:
        return int(round(i * self.window_s * self.sr))

    @property
    def earliest_needed_sample(self) -> int:
        return self._edge(self._next)

    def update(self, start: int, level_db: np.ndarray, onset_db: np.ndarray | None = None,
               hz: np.ndarray | None = None, clarity: np.ndarray | None = None) -> list[tuple[int, int]]:
        self._frames_seen = start + len(level_db)
        out = []
        # a window is final when the frames centred before its end are all known
        while self._edge(self._next + 1) <= (self._frames_seen - 1) * self.hop:
            out.append((self._edge(self._next), self._edge(self._next + 1)))
            self._next += 1
        return out

    def finish(self, total_samples: int) -> list[tuple[int, int]]:
        out = []
        while self._edge(self._next) < total_samples:
            s, e = self._edge(self._next), min(self._edge(self._next + 1), total_samples)
            if e - s >= self.min_len or (e - s > 0 and self._next == 0 and e == total_samples):
                out.append((s, e))
            self._next += 1
        return out


def detect_onsets(level_db: np.ndarray, onset_db: np.ndarray, *, sample_rate_hz: float, hop: int,
                  **params) -> np.ndarray:
    """Onset frame indices of a whole (in-memory) frame sequence; params as OnsetSegmenter."""
    seg = OnsetSegmenter(sample_rate_hz=sample_rate_hz, hop=hop, **params)
    seg.update(0, np.asarray(level_db), np.asarray(onset_db))
    seg.finish(len(level_db) * hop)
    return np.asarray(seg.onset_frames, dtype=np.int64)


__all__ = ["OnsetSegmenter", "SpeechSegmenter", "WindowSegmenter", "detect_onsets",
           "ONSET_DEFAULTS", "SPEECH_DEFAULTS", "MEL_FLOOR_DB"]
