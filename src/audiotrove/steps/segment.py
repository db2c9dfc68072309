"""The `segment` step: cut a file into units, describe each, store them as a Parquet shard.

Parameters
    mode       onset | speech | window:SECONDS
    min_dur    s, shortest unit kept (None: the mode's default, see units.extract)
    max_dur    s, longest unit (None: the mode's default)

The result stored with the file (queryable like other fields: `units.count > 500`):
    {"units": {"count", "median_power" (dB), "median_hz" (Hz), "median_clarity" (0-1),
               "median_dur" (s), "shard" (the shard's file name in <collection>/.audiotrove/units),
               "speech_source" ("analysis" | "level"; speech mode only)}}

Speech mode uses the speech sections of the analysis (audio.speech.sections, from the
required analyze step), cut at pauses; when the analysis has no speech sections field
(older analysis, or content detection not run), it falls back to level alone and says so
in `units.speech_source`.

The file is decoded once, in blocks; memory stays bounded at any length.
"""
from __future__ import annotations

import hashlib
import os

import numpy as np

from ..errors import ItemError
from ..io.decode import open_audio
from ..units.extract import (
    ModeError,
    UnitExtractor,
    parse_mode,
    resolve_durations,
    summarize_units,
)
from ..units.store import UNITS_DIRNAME, shard_name, write_shard
from .base import Item, Step

VERSION = "2"  # 2: MFCC and flatness as librosa (issue 11)
DEFAULTS: dict = {"mode": "onset", "min_dur": None, "max_dur": None}


def segmentation_config(params: dict) -> dict:
    """What the units depend on (not where they are stored): names the shard."""
    mode = str(params.get("mode") or "onset")
    lo, hi = resolve_durations(mode, params.get("min_dur"), params.get("max_dur"))
    kind, window = parse_mode(mode)
    return {"version": VERSION, "mode": kind if window is None else f"window:{window:g}",
            "min_dur": lo, "max_dur": hi}


def speech_sections(analysis: dict | None) -> tuple[list | None, float | None]:
    """(sections, covered_until_s) from an analyze result; (None, None) when it has none.

    A capped list (fewer sections stored than counted) covers the file only up to the end
    of its last section; level alone decides after that.
    """
    speech = (((analysis or {}).get("audio") or {}).get("speech"))
    if not isinstance(speech, dict) or not isinstance(speech.get("sections"), list):
        return None, None
    sections = [s for s in speech["sections"] if isinstance(s, (list, tuple)) and len(s) == 2]
    count = speech.get("num_sections")
    until = None
    if isinstance(count, int) and count > len(sections):
        until = max((float(s[1]) for s in sections), default=0.0)
    return sections, until


def segment_file(path: str, params: dict, inputs: dict | None = None, *, units_dir) -> dict:
    """Segment and describe `path`; write its shard into `units_dir`; return the summary.
    Raises ItemError (a decode failure, bad parameters, a shard that cannot be written)."""
    params = {**DEFAULTS, **params}
    try:
        config = segmentation_config(params)
    except ModeError as exc:
        raise ItemError(f"bad segmentation parameters: {exc}") from None
    kind, _ = parse_mode(params["mode"])
    sections, until = (None, None)
    source = None
    if kind == "speech":
        sections, until = speech_sections((inputs or {}).get("analyze"))
        source = "level" if sections is None else "analysis"
    reader = open_audio(path)
    extractor = UnitExtractor(sample_rate_hz=reader.sample_rate, channels=reader.channels,
                              mode=params["mode"], min_dur_s=config["min_dur"], max_dur_s=config["max_dur"],
                              speech_sections=sections, speech_sections_until_s=until)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{reader.sample_rate}:{reader.channels}:".encode())
    rows: list[dict] = []
    for block in reader.blocks():
        bad = ~np.isfinite(block)
        if bad.any():
            block = np.where(bad, np.float32(0.0), block)
        digest.update(np.ascontiguousarray(block, dtype=np.float32).tobytes())
        rows += extractor.update(block)
    rows += extractor.finish()
    name = shard_name(digest.hexdigest(), config)
    try:
        write_shard(units_dir, name, rows)
    except OSError as exc:
        raise ItemError(f"cannot write the unit shard into {units_dir}: {exc.strerror or exc}") from None
    summary = summarize_units(rows)
    summary["shard"] = name
    if source is not None:
        summary["speech_source"] = source
    return {"units": summary}


def _run(item: Item) -> dict:
    if not item.workdir:
        raise ItemError("segment runs in a collection: its units are stored there")
    return segment_file(item.path, item.params, item.inputs,
                        units_dir=os.path.join(item.workdir, UNITS_DIRNAME))


STEP = Step(
    name="segment",
    version=VERSION,
    run=_run,
    defaults=DEFAULTS,
    requires=("analyze",),
    summary="cut into units (onset, speech or windows), describe each unit, store them (Parquet)",
)
