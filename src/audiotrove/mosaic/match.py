"""What "similar" means for a mosaic: `--match yamnet|descriptors|random|FIELD=WEIGHT,...`.

    spec = parse_match("yamnet,hz=2,centroid=1")
    spec.model, spec.model_weight, spec.fields     # "yamnet", 1.0, {"hz": 2.0, "centroid": 1.0}

Items, comma-separated:
    MODEL[=WEIGHT]   yamnet, descriptors or PATH.onnx: the embedding whose index proposes the
                     candidates; its cosine distance (0 = same, 1 = unrelated) counts with
                     WEIGHT (default 1; 0 = the index only proposes, the fields decide)
    FIELD=WEIGHT     a unit descriptor (units/schema.py): power, hz (alias pitch), clarity,
                     centroid, flatness, rolloff, zcr, dur, mfcc (the 13 together), mfcc_1..13
    random           the baseline: candidates drawn at random from the corpus units (those with
                     yamnet vectors, else descriptors vectors), with --seed
Without a model the index of yamnet proposes the candidates (weight 0). The cost of a
candidate is the weighted mean of its terms:
    (w_model * cosine distance + sum_f w_f * d_f) / (w_model + sum_f w_f)
each descriptor distance d_f scaled so that 1 is a clear difference:
    power 10 dB; hz, centroid, rolloff, dur 1 octave (|log2 ratio|); flatness 0.2;
    clarity 0.3; zcr 0.1; mfcc (RMS over the 13) and mfcc_k 5.
A pitched unit against an unpitched one is 1 octave apart on hz; two unpitched ones 0. With
`--pitch match` the hz term counts what is left after the shift (0 within +-12 semitones).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import UsageError
from ..units.schema import N_MFCC

DEFAULT_MODEL = "yamnet"
_SCALES = {"power": 10.0, "hz": 1.0, "centroid": 1.0, "rolloff": 1.0, "dur": 1.0,
           "flatness": 0.2, "clarity": 0.3, "zcr": 0.1, "mfcc": 5.0}
_LOG_FIELDS = ("hz", "centroid", "rolloff", "dur")
_ALIASES = {"pitch": "hz", "level": "power", "loudness": "power", "duration": "dur"}
FIELDS = tuple(_SCALES) + tuple(f"mfcc_{k}" for k in range(1, N_MFCC + 1))


@dataclass
class MatchSpec:
    model: str = DEFAULT_MODEL
    model_weight: float = 1.0
    fields: dict[str, float] = field(default_factory=dict)
    random: bool = False

    @property
    def text(self) -> str:
        if self.random:
            return "random"
        parts = [f"{self.model}={self.model_weight:g}"] + [f"{k}={v:g}" for k, v in self.fields.items()]
        return ",".join(parts)


def parse_match(text: str | None) -> MatchSpec:
    """Parse a --match value (see the module docstring); UsageError when it makes no sense."""
    items = [p.strip() for p in (text or DEFAULT_MODEL).split(",") if p.strip()]
    if not items:
        items = [DEFAULT_MODEL]
    spec = MatchSpec(model_weight=0.0)
    model = None
    for item in items:
        name, _, weight_text = item.partition("=")
        name = name.strip()
        if name.lower() == "random":
            if len(items) > 1:
                raise UsageError("--match random stands alone (it is the baseline: no distance counts)")
            return MatchSpec(random=True, model_weight=0.0)
        key = _ALIASES.get(name.lower(), name.lower())
        try:
            weight = float(weight_text) if weight_text.strip() else None
        except ValueError:
            raise UsageError(f"--match {item!r}: the weight must be a number (FIELD=WEIGHT)") from None
        if weight is not None and (weight < 0 or not math.isfinite(weight)):
            raise UsageError(f"--match {item!r}: weights are >= 0")
        if key in FIELDS:
            if weight is None:
                raise UsageError(f"--match {name}: give it a weight ({name}=1)")
            spec.fields[key] = weight
        elif name in ("yamnet", "descriptors") or name.endswith(".onnx") or "/" in name:
            if model is not None:
                raise UsageError(f"--match names two models ({model}, {name}): one index proposes the candidates")
            model = name
            spec.model_weight = 1.0 if weight is None else weight
        else:
            raise UsageError(f"--match: unknown item {name!r}; use yamnet, descriptors, PATH.onnx, random "
                             f"or FIELD=WEIGHT with FIELD one of {', '.join(FIELDS[:9])}, mfcc_1..mfcc_{N_MFCC}")
    spec.model = model or DEFAULT_MODEL
    if spec.model_weight + sum(spec.fields.values()) <= 0:
        raise UsageError("--match: every weight is 0, nothing would decide")
    return spec


def _num(v) -> float:
    if v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _column(values, name: str) -> np.ndarray:
    """Values of a field as float64 (NaN where missing); mfcc as (n, 13)."""
    if name == "mfcc":
        out = np.full((len(values), N_MFCC), np.nan)
        for i, v in enumerate(values):
            if v is not None and not (isinstance(v, float) and math.isnan(v)) and len(v) == N_MFCC:
                out[i] = np.asarray(v, np.float64)
        return out
    return np.array([_num(v) for v in values], np.float64)


def field_values(rows, name: str) -> np.ndarray:
    """A field of unit rows (a list of dicts or a DataFrame); mfcc_k from the mfcc list."""
    if name.startswith("mfcc_"):
        k = int(name[5:]) - 1
        return _column(_get(rows, "mfcc"), "mfcc")[:, k]
    return _column(_get(rows, name), name)


def _get(rows, name: str) -> list:
    if hasattr(rows, "columns"):
        return list(rows[name]) if name in rows.columns else [None] * len(rows)
    return [r.get(name) for r in rows]


def descriptor_distance(target_rows, cand_rows, *, spec: MatchSpec, shift_semitones: np.ndarray | None = None
                        ) -> np.ndarray:
    """(T, K) weighted descriptor distances, sum_f w_f d_f (not yet divided by the weights).

    target_rows: T unit rows; cand_rows: a function field -> (T, K) values of the candidates
    (see MosaicLattice), shift_semitones: (T, K) the pitch shift each candidate will get
    (its hz moves by it before comparing), or None."""
    total = None
    for name, weight in spec.fields.items():
        if weight == 0:
            continue
        t = field_values(target_rows, name)
        c = cand_rows(name)
        if name == "mfcc":
            d = np.sqrt(np.nanmean((c - t[:, None, :]) ** 2, axis=2)) / _SCALES["mfcc"]
            d = np.where(np.isnan(d), 1.0, d)
        else:
            tt = t[:, None]
            if name == "hz" and shift_semitones is not None:
                c = c * 2.0 ** (shift_semitones / 12.0)
            if name in _LOG_FIELDS:
                with np.errstate(divide="ignore", invalid="ignore"):
                    d = np.abs(np.log2(c / tt)) / _SCALES[name]
            else:
                scale = _SCALES.get(name, _SCALES["mfcc"])
                d = np.abs(c - tt) / scale
            missing_t, missing_c = np.isnan(tt) | (tt <= 0 if name in _LOG_FIELDS else False), np.isnan(c)
            if name in _LOG_FIELDS:
                missing_c = missing_c | (c <= 0)
            both = missing_t & missing_c
            one = missing_t ^ missing_c
            d = np.where(both, 0.0, np.where(one, 1.0, d))
        d = weight * np.nan_to_num(d, nan=1.0, posinf=1.0)
        total = d if total is None else total + d
    return total if total is not None else 0.0


__all__ = ["DEFAULT_MODEL", "FIELDS", "MatchSpec", "descriptor_distance", "field_values", "parse_match"]
