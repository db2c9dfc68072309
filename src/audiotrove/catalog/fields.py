"""The registry of known fields: dotted names, types, units and descriptions.

One name per measurement everywhere: the JSON of a file (`file_record`), the query language,
the columns of `ls`/`export`/`Collection.frame()`, `stats` and the HTML report.

    kind     number | text | bool | list   (list = a JSON array, e.g. sections [[start_s, end_s], ...])
    unit     s, Hz, bit/s, bytes, bits, LUFS, LU, dBFS, dBTP, dB, %, 1/min, FS (fraction of full
             scale), MOS (1-5), samples, count; None for unitless text
    discrete True when a value count is the useful summary (codec, sample rate...) rather than a
             distribution; `uniformity` marks the discrete fields whose minority values are
             anomalies across a collection (codec, sample rate, channels, bit depth, bitrate,
             container).

Fields that a step returns but that are not listed here still work (the index discovers them
from the data, `FieldSet.extended`); listing them adds a unit, a description and a typed column.

Short names: every field can be written by a unique dotted suffix (`sample_rate`,
`loudness.true_peak`), by the aliases in `ALIASES` (`duration`, `lufs`, `snr`...) and by its
column heading (`label`: `ch`, `bits`...). A fixed-size list field (`size=13`) has its elements
as number fields `<name>_1`..`<name>_13`.

Values: a field parses what users type (`Field.parse`: 10m, 1h30m, 1:30, 8kHz, 128k, 2MB,
-23LUFS, 5%), turns stored values into JSON (`json_value`) and formats them for tables and the
report (`format`, `format_stat`, `formatter`). Units decide both, in one place below.

Adding fields: list them in FIELDS, or, for a step of its own, `register_fields([Field(...)],
{alias: name})` from a light module named in FIELD_MODULES (imported when the registry is first
used). `registry()` (also `REGISTRY`) is the set in use.
"""
from __future__ import annotations

import difflib
import importlib
import json
import math
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

KINDS = ("number", "text", "bool", "list")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    unit: str | None = None
    description: str = ""
    discrete: bool = False
    uniformity: bool = False
    integer: bool = False
    label: str | None = None  # short column heading for tables (also accepted as a name)
    registered: bool = True  # False: discovered in the data, not listed in the registry
    size: int | None = None  # a list of fixed length: elements addressable as <name>_1.. (mfcc)

    @property
    def heading(self) -> str:
        return self.label or self.name.rsplit(".", 1)[-1]

    @property
    def continuous(self) -> bool:
        return self.kind == "number" and not self.discrete

    # --- values: parsing (queries, bins), JSON, formatting (tables, report) -------------
    def parse(self, raw: str) -> float:
        """A number written with an optional unit that fits this field, in the field's unit
        (ValueError if it does not fit): 10m, 1h30m, 1:30, 8kHz, 128k, 2MB, -23LUFS, 5%."""
        return parse_quantity(raw, self)

    def json_value(self, v):
        """A value as the index stores it (lists as JSON text, bools as 0/1) -> its JSON value."""
        if v is None:
            return None
        if self.kind == "list":
            return json.loads(v) if isinstance(v, str) else v
        if self.kind == "bool":
            return bool(v)
        return v

    def format(self, v, *, unit: bool = False) -> str:
        """A table cell: numbers rounded to what the unit deserves, '-' for missing; with
        `unit`, the unit follows the number."""
        return format_value(self, v, unit=unit)

    def format_stat(self, v) -> str:
        """A statistic of this field (mean, quartile...) in the field's unit."""
        return format_stat(self, v)

    def formatter(self) -> Callable[[object], str]:
        """`format` as a one-argument function, with the dispatch done once (long tables)."""
        return cell_formatter(self)


class UnknownFieldError(KeyError):
    """A name that is neither a field, an alias nor a unique suffix; `.suggestions` are the nearest."""

    def __init__(self, name: str, suggestions: list[str], *, ambiguous: bool = False):
        self.name = name
        self.suggestions = suggestions
        self.ambiguous = ambiguous
        super().__init__(name)

    def __str__(self) -> str:
        if self.ambiguous:
            return f"field name {self.name!r} is ambiguous: " + ", ".join(self.suggestions)
        text = f"unknown field {self.name!r}"
        if self.suggestions:
            text += "; did you mean " + ", ".join(self.suggestions) + "?"
        return text


# --------------------------------------------------------------------------------------------
# values with units

NUMBER_PATTERN = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_QUANTITY = re.compile(rf"({NUMBER_PATTERN})([A-Za-z%/µ_]*)")
_CLOCK = re.compile(r"^([+-]?)(\d+):([0-5]?\d)(?::([0-5]?\d))?(\.\d+)?$")
_DB_UNITS = {"dB", "dBFS", "dBTP", "LUFS", "LU"}

# Parsing: the suffixes each unit accepts, and their factors to the field's unit.
_TIME = {"": 1.0, "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
         "ms": 1e-3, "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
         "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0, "d": 86400.0}
_SCALES: dict[str, dict[str, float]] = {
    "s": _TIME,
    "Hz": {"": 1.0, "hz": 1.0, "k": 1e3, "khz": 1e3},
    "bit/s": {"": 1.0, "bps": 1.0, "b/s": 1.0, "k": 1e3, "kbps": 1e3, "kb/s": 1e3, "kbit/s": 1e3,
              "m": 1e6, "mbps": 1e6, "mb/s": 1e6, "mbit/s": 1e6},
    "bytes": {"": 1.0, "b": 1.0, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
              "t": 1e12, "tb": 1e12, "kib": 1024.0, "mib": 1024.0 ** 2, "gib": 1024.0 ** 3,
              "tib": 1024.0 ** 4},
    "%": {"": 1.0, "%": 1.0},
    "bits": {"": 1.0, "bit": 1.0, "bits": 1.0},
    "1/min": {"": 1.0, "/min": 1.0},
    "count": {"": 1.0, "k": 1e3},
    "samples": {"": 1.0, "k": 1e3},
}

_UNIT_NAMES = {"db": "dB", "dbfs": "dBFS", "dbtp": "dBTP", "lufs": "LUFS", "lu": "LU", "hz": "Hz",
               "khz": "kHz", "kb": "kB", "mb": "MB", "gb": "GB", "tb": "TB", "kib": "KiB",
               "mib": "MiB", "gib": "GiB", "tib": "TiB"}


ALL_UNIT_WORDS = {k for table in _SCALES.values() for k in table if k} | {u.lower() for u in _DB_UNITS}
_UNITS_SHOWN = {"s": "ms, s, min, h, d (also 1h30m, 1:30)", "Hz": "Hz, kHz, k",
                "bit/s": "bps, kbps, Mbps, k, M", "bytes": "B, kB, MB, GB, TB, KiB, MiB, GiB, TiB",
                "%": "%", "bits": "bits", "1/min": "/min", "count": "k", "samples": "k"}


def parse_quantity(raw: str, field: Field) -> float:
    """A number written with an optional unit, converted to the field's unit (ValueError if it does
    not fit). Time also takes 1h30m, 2m30s and clock form 1:30 / 1:02:03.5."""
    unit = field.unit or ""
    text = raw.strip()
    clock = _CLOCK.match(text)
    if clock:
        if unit != "s":
            raise ValueError(f"a clock time ({raw}) only fits a time field; {field.name} is in {unit or 'no unit'}")
        sign, a, b, c, frac = clock.groups()
        parts = [int(a), int(b)] + ([int(c)] if c is not None else [])
        seconds = 0.0
        for p in parts:
            seconds = seconds * 60 + p
        seconds += float(frac) if frac else 0.0
        return -seconds if sign == "-" else seconds
    pieces = []
    pos = 0
    for m in _QUANTITY.finditer(text):
        if m.start() != pos:
            break
        pieces.append((m.group(1), m.group(2)))
        pos = m.end()
    if not pieces or pos != len(text):
        raise ValueError(f"{raw!r} is not a number")
    if unit in _DB_UNITS:
        scale = {"": 1.0, "dB": 1.0, unit: 1.0}
        scale = {k.lower(): v for k, v in scale.items()}
    else:
        scale = _SCALES.get(unit, {"": 1.0})
    if len(pieces) > 1 and unit != "s":
        raise ValueError(f"{raw!r}: only time values can be written in several parts (1h30m)")
    sign = -1.0 if pieces[0][0].startswith("-") else 1.0
    total = 0.0
    for i, (number, suffix) in enumerate(pieces):
        key = suffix.lower()
        if key not in scale:
            known = _UNITS_SHOWN.get(unit) or ", ".join(
                sorted({_UNIT_NAMES.get(k, k) for k in scale if k})) or "none (a plain number)"
            raise ValueError(f"unit {suffix!r} does not fit {field.name} ({unit or 'no unit'}); "
                             f"units that fit: {known}")
        if i and number.startswith(("+", "-")):
            raise ValueError(f"{raw!r}: a sign goes only at the start")
        total += abs(float(number)) * scale[key]
    return sign * total


# Formatting: one place decides how a value of each unit reads.
_DB_FAMILY = _DB_UNITS | {"%"}


def clock(seconds: float | None, *, decimals: int = 1) -> str:
    """83.4 -> '1:23.4', 3725 -> '1:02:05'."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    sign = "-" if seconds < 0 else ""
    s = round(abs(seconds), decimals)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h >= 1:
        return f"{sign}{int(h)}:{int(m):02d}:{int(sec):02d}"
    width = 3 + decimals if decimals else 2
    return f"{sign}{int(m)}:{sec:0{width}.{decimals}f}"


def size(num_bytes: float | None) -> str:
    """1234567 -> '1.2 MB'."""
    if num_bytes is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(num_bytes) < 1000 or unit == "TB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1000.0
    return "-"


def format_value(field: Field, v, *, unit: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    u = field.unit
    if field.kind == "bool":
        return "yes" if v else "no"
    if field.kind == "list":
        items = json.loads(v) if isinstance(v, str) else v
        if isinstance(items, list) and all(isinstance(i, str) for i in items):
            return ", ".join(items)  # a list of words (enhance.chain) reads as the words
        return f"[{len(items)}]" if isinstance(items, list) else str(items)
    if field.kind == "text" or not isinstance(v, (int, float)):
        return str(v)
    if u == "s":
        text = clock(float(v))
    elif u == "bytes":
        text = size(float(v))
    elif u == "bit/s":
        text = f"{v / 1000:.0f}k" if v >= 1000 else f"{v:.0f}"
    elif u in _DB_FAMILY:
        text = f"{v:.1f}"
    elif u == "Hz":
        text = f"{v:.0f}"
    elif u == "FS":
        text = f"{v:.4f}"
    elif field.integer or (isinstance(v, int)) or float(v).is_integer():
        text = f"{int(v)}"
    elif abs(v) >= 100:
        text = f"{v:.0f}"
    else:
        text = f"{v:.2f}"
    if unit and u and u not in ("s", "bytes", "bit/s", "count"):
        text += f" {u}" if u != "%" else "%"
    return text


def cell_formatter(field: Field) -> Callable[[object], str]:
    u, kind = field.unit, field.kind
    if kind == "number" and u in _DB_FAMILY:
        return lambda v: "-" if v is None else (f"{v:.1f}" if isinstance(v, (int, float)) else str(v))
    if kind == "number" and u == "Hz":
        return lambda v: "-" if v is None else (f"{v:.0f}" if isinstance(v, (int, float)) else str(v))
    if kind == "text":
        return lambda v: "-" if v is None else str(v)
    if kind == "number" and u == "s":
        return _clock_cell
    if kind == "number" and field.integer and u not in ("bytes", "bit/s"):
        return lambda v: "-" if v is None else (str(v) if type(v) is int else format_value(field, v))
    return lambda v: format_value(field, v)


def _clock_cell(v) -> str:
    """clock() for table cells: the common case (under an hour) without divmod chains."""
    if v is None or not isinstance(v, (int, float)):
        return "-" if v is None else str(v)
    v = round(v, 1)
    if 0 <= v < 3600:
        m = int(v // 60)
        return f"{m}:{v - 60 * m:04.1f}"
    return clock(float(v))


def format_stat(field: Field, v) -> str:
    if v is None:
        return "-"
    if field.unit == "s":
        return clock(v)
    if field.unit == "bytes":
        return size(v)
    if abs(v) >= 1000:
        return f"{v:.0f}"
    if abs(v) >= 100:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _f(name, kind, unit=None, description="", **kw) -> Field:
    return Field(name, kind, unit, description, **kw)


_SECTIONS = "[[start_s, end_s], ...] (stored list may be capped; counts stay exact)"

FIELDS: tuple[Field, ...] = (
    # --- the file ---------------------------------------------------------------------------
    _f("path", "text", None, "absolute path of the file, or its URL"),
    _f("status", "text", None, "state of the analyze step: ok, error or pending", discrete=True),
    _f("error", "text", None, "why the analyze step failed (null when ok)"),
    # --- media_info (container header) ------------------------------------------------------
    _f("media_info.container.kind", "text", None, "container format (wav, flac, mp3, ogg, mp4...)",
       discrete=True, uniformity=True, label="container"),
    _f("media_info.container.duration", "number", "s", "duration (decoded length)", label="duration"),
    _f("media_info.container.bitrate", "number", "bit/s", "overall bitrate", discrete=True,
       uniformity=True, integer=True, label="bitrate"),
    _f("media_info.container.size", "number", "bytes", "file size", integer=True, label="size"),
    _f("media_info.audio.codec", "text", None, "audio codec (pcm_s16le, flac, mp3, aac, opus...)",
       discrete=True, uniformity=True, label="codec"),
    _f("media_info.audio.channels", "number", "count", "number of audio channels", discrete=True,
       uniformity=True, integer=True, label="ch"),
    _f("media_info.audio.sample_rate", "number", "Hz", "sample rate", discrete=True, uniformity=True,
       integer=True, label="sample_rate"),
    _f("media_info.audio.bit_depth", "number", "bits", "bits per sample (null where lossy)",
       discrete=True, uniformity=True, integer=True, label="bits"),
    _f("media_info.has_audio", "bool", None, "the file has an audio stream", discrete=True),
    _f("media_info.has_video", "bool", None, "the file has a video stream (cover art does not count)",
       discrete=True, label="video"),
    # --- audio: analyze measurements --------------------------------------------------------
    _f("audio.non_finite_samples", "number", "samples", "NaN/inf samples (replaced by 0 for measuring)",
       integer=True),
    _f("audio.loudness.measured", "number", "LUFS", "integrated loudness (ITU-R BS.1770-4 / EBU R128)",
       label="loudness"),
    _f("audio.loudness.range", "number", "LU", "loudness range (EBU Tech 3342)", label="lra"),
    _f("audio.loudness.momentary_max", "number", "LUFS", "maximum momentary loudness (400 ms)"),
    _f("audio.loudness.short_term_max", "number", "LUFS", "maximum short-term loudness (3 s)"),
    _f("audio.loudness.sample_peak", "number", "dBFS", "highest sample magnitude", label="peak"),
    _f("audio.loudness.true_peak", "number", "dBTP", "highest inter-sample peak (oversampled)",
       label="true_peak"),
    _f("audio.loudness.gating_mode", "text", None, "loudness gating used (ebu_r128)", discrete=True),
    _f("audio.loudness.reason", "text", None, "why a loudness value is null"),
    _f("audio.clipping.num_sections", "number", "count", "clipped sections", integer=True,
       label="clipped"),
    _f("audio.clipping.percentage", "number", "%", "share of the duration that is clipped",
       label="clipped_pct"),
    _f("audio.clipping.sections", "list", "s", "clipped sections " + _SECTIONS),
    _f("audio.noise.level_average", "number", "dBFS",
       "noise level: mean power of the lobe of quiet 20 ms frame levels (digital zero excluded)",
       label="noise"),
    _f("audio.noise.snr_average", "number", "dB",
       "active signal power over noise power (frames above the noise lobe, as P.56 active speech)",
       label="snr"),
    _f("audio.noise.hum.frequency", "number", "Hz", "mains hum fundamental (50/60 Hz; null if none)",
       discrete=True, label="hum"),
    _f("audio.noise.hum.level", "number", "dB", "hum line over the local spectral floor",
       label="hum_level"),
    _f("audio.noise.hum.harmonics", "list", None, "hum harmonics found above threshold"),
    _f("audio.noise.clicks_per_minute", "number", "1/min", "impulsive clicks per minute",
       label="clicks"),
    _f("audio.noise.dc_offset", "number", "FS", "mean sample value (signed fraction of full scale)",
       label="dc"),
    _f("audio.noise.reason", "text", None, "why a noise value is null"),
    _f("audio.bandwidth.frequency", "number", "Hz", "effective upper frequency of the content",
       label="bandwidth"),
    _f("audio.bandwidth.reason", "text", None, "why the bandwidth is null"),
    *(
        f
        for part in ("speech", "music", "silence", "other")
        for f in (
            _f(f"audio.{part}.percentage", "number", "%", f"share of the duration that is {part}",
               label=f"{part}_pct"),
            _f(f"audio.{part}.num_sections", "number", "count", f"{part} sections", integer=True),
            _f(f"audio.{part}.sections", "list", "s", f"{part} sections " + _SECTIONS),
        )
    ),
    _f("audio.quality_score.dnsmos_ovrl", "number", "MOS", "DNSMOS overall speech quality (1-5)",
       label="mos"),
    _f("audio.quality_score.dnsmos_sig", "number", "MOS", "DNSMOS speech signal quality (1-5)"),
    _f("audio.quality_score.dnsmos_bak", "number", "MOS", "DNSMOS background noise quality (1-5)"),
    _f("audio.quality_score.windows", "number", "count", "speech windows scored by DNSMOS",
       integer=True),
    # --- units (segment step summary) -------------------------------------------------------
    _f("units.count", "number", "count", "units cut from the file", integer=True, label="units"),
    _f("units.median_power", "number", "dB", "median unit power (dB RMS)"),
    _f("units.median_hz", "number", "Hz", "median unit fundamental frequency"),
    _f("units.median_clarity", "number", None, "median unit pitch clarity (0-1)"),
    _f("units.median_dur", "number", "s", "median unit duration"),
    # --- transcript (transcribe step; steps/transcribe.py) -----------------------------------
    _f("transcript.text", "text", None, "the words said (Whisper), segment texts joined by spaces",
       label="transcript"),
    _f("transcript.language", "text", None, "spoken language, ISO 639-1 code (detected or given)",
       discrete=True, label="language"),
    _f("transcript.language_probability", "number", None,
       "confidence of the language detection (0-1; 1 when given or English-only model)"),
    _f("transcript.words", "list", "s", "[[start_s, end_s, word, probability], ...] in the file's timeline"),
    _f("transcript.segments", "list", "s", "[[start_s, end_s, text], ...] (sentence-like segments)"),
    _f("transcript.word_count", "number", "count", "words transcribed", integer=True, label="word_count"),
    _f("transcript.words_per_minute", "number", "1/min", "words per minute of speech (speaking rate)",
       label="wpm"),
    _f("transcript.speech_duration", "number", "s", "duration of the speech the rate is taken over"),
    _f("transcript.decoded_duration", "number", "s", "audio decoded by Whisper (speech + context)"),
    _f("transcript.model", "text", None, "Whisper model used (tiny.en, base or a folder)",
       discrete=True),
    _f("transcript.speech_source", "text", None,
       "what was transcribed: analysis (its speech sections) or whole file", discrete=True),
    # --- the file map (`audiotrove map`, maps/): a map named NAME stores map.NAME.x ... --------
    _f("map.x", "number", None, "x on the map of the files (t-SNE / UMAP / PCA units)"),
    _f("map.y", "number", None, "y on the map of the files"),
    _f("map.order", "number", "rank", "rank in the similarity order, 0 first (1-D layout, "
       "each cluster one run)", integer=True),
    _f("map.cluster", "number", None, "k-means cluster of the file's vector, numbered along "
       "map.order", integer=True, discrete=True),
    _f("grid.col", "number", None, "column of the file's cell on the map's grid", integer=True),
    _f("grid.row", "number", None, "row of the file's cell on the map's grid", integer=True),
    # --- more analyze detail ----------------------------------------------------------------
    _f("audio.noise.hum.frequency_measured", "number", "Hz", "measured hum fundamental"),
    _f("audio.noise.hum.level_dbfs", "number", "dBFS", "level of the hum lines together"),
    _f("audio.noise.num_clicks", "number", "count", "impulsive clicks found", integer=True),
    _f("audio.noise.digital_silence_duration", "number", "s",
       "exact-zero or constant stretches (left out of the noise floor)"),
    _f("audio.silence.threshold_dbfs", "number", "dBFS", "silence threshold that applied"),
    # --- enhance (before / after / change per restored file) --------------------------------
    _f("enhance.output", "text", None, "path of the restored output"),
    _f("enhance.preset", "text", None, "enhance preset used", discrete=True),
    _f("enhance.loudness_gain_db", "number", "dB", "gain applied by --loudness"),
    _f("enhance.clicks_repaired", "number", "count", "clicks repaired by --declick", integer=True),
    _f("enhance.stem", "text", None, "path of a video's audio stem (--stem)"),
    _f("enhance.snr_measured_on", "text", None,
       "where enhance.after.snr_db reads the noise under the signal: speech (the gaps between "
       "words of the speech sections) or file (the file's quiet frames)", discrete=True),
    _f("enhance.isolation_floor_db", "number", "dB", "the most --isolate-speech lowers anything"),
    *(
        _f(f"enhance.{when}.{key}", "number", unit, f"{what} ({label})")
        for when, label in (("before", "input"), ("after", "output"), ("change", "output - input"))
        for key, unit, what in (
            ("noise_floor_dbfs", "dBFS" if when != "change" else "dB", "noise floor"),
            ("snr_db", "dB", "SNR"),
            ("loudness_lufs", "LUFS" if when != "change" else "LU", "integrated loudness"),
            ("true_peak_dbtp", "dBTP" if when != "change" else "dB", "true peak"),
            ("clicks_per_min", "1/min", "clicks per minute"),
            ("hum_level_db", "dB", "hum over the local floor"),
            ("clipped_samples", "count", "samples at or beyond full scale"),
        )
    ),
    # --- tags (tag step; steps/tag.py): plus tags.<class>, % per class present (DISCOVERED) ---
    _f("tags.top", "text", None, "the 5 most present YAMNet (AudioSet) classes with their % "
       "of the duration: 'speech 80%, music 12.5%, ...'", label="top_tags"),
    _f("tags.classes", "text", None, "the classes present, most present first, space-separated",
       label="tags"),
    _f("tags.sections", "list", "s", "[[start_s, end_s, class], ...] where each class is present"),
    _f("tags.windows", "number", "count", "0.96 s windows scored by YAMNet", integer=True),
    _f("tags.min_score", "number", None, "score (0-1) from which a class counts as present"),
    _f("tags.model", "text", None, "tagging model (yamnet)", discrete=True),
    _f("tags.model_version", "text", None, "version of the tagging model", discrete=True),
    _f("tags.unit_table", "text", None, "a segmented file: the table of its units' tags (tag, tag_score)"),
    # --- class (classify step: your trained classifier; plus class.scores.<label>) ------------
    _f("class.label", "text", None, "the label your classifier gives (null below --min-confidence)",
       discrete=True, label="class"),
    _f("class.confidence", "number", None, "the classifier's probability of that label (0-1)"),
    _f("class.model", "text", None, "the classifier model file used", discrete=True),
    _f("class.level", "text", None, "what the classifier labels: file, window or unit", discrete=True),
    _f("class.count", "number", "count", "windows or units classified", integer=True),
    _f("class.unlabelled", "number", "%", "share of the classified time below --min-confidence"),
    _f("class.shard", "text", None, "window / unit level: the table of each item's label"),
    # --- remote sources: facts of the file (URL), not of its content (sources/, io/fetch.py) --
    _f("source.origin", "text", None, "how the URL was added: template (--ids) or ia (--ia-query)",
       discrete=True),
    _f("source.id", "text", None, "record id a --template URL was built from"),
    _f("source.identifier", "text", None, "Internet Archive item identifier"),
    _f("source.title", "text", None, "Internet Archive item title"),
    _f("source.date", "text", None, "Internet Archive item date, as the archive gives it"),
    _f("source.creator", "text", None, "Internet Archive creator(s), '; '-separated"),
    _f("source.collection", "text", None, "Internet Archive collection(s), '; '-separated"),
    _f("source.license_url", "text", None, "licence URL of the Internet Archive item"),
    _f("source.file", "text", None, "file name inside the Internet Archive item"),
    _f("source.format", "text", None, "Internet Archive file format (MPEG4, Flac, VBR MP3...)",
       discrete=True),
    _f("source.size", "number", "bytes", "file size announced by the source", integer=True),
    *(_f(f"source.{a}", "text", None, f"expected {a} of the download (list file or archive)")
      for a in ("sha256", "md5", "sha1")),
    _f("fetch.status", "text", None, "download state: ok or error (absent: not fetched yet)",
       discrete=True),
    _f("fetch.error", "text", None, "why the download failed (HTTP status and URL, checksum...)"),
    _f("fetch.url", "text", None, "URL downloaded (credentials masked)"),
    _f("fetch.final_url", "text", None, "URL after redirects, when different"),
    _f("fetch.local_path", "text", None, "verified local copy that the steps read"),
    _f("fetch.rejected_path", "text", None, "copy kept aside after a checksum mismatch"),
    _f("fetch.bytes", "number", "bytes", "size of the verified copy", integer=True),
    _f("fetch.sha256", "text", None, "sha256 of the verified copy"),
    _f("fetch.http_status", "number", None, "HTTP status of the last response", discrete=True,
       integer=True),
    _f("fetch.etag", "text", None, "ETag the server sent"),
    _f("fetch.last_modified", "text", None, "Last-Modified the server sent"),
    _f("fetch.content_type", "text", None, "Content-Type the server sent", discrete=True),
    _f("fetch.fetched_at", "number", "s", "when the download finished (Unix time)"),
    _f("fetch.elapsed_s", "number", "s", "time the download took, retries included"),
    _f("fetch.attempts", "number", "count", "requests made (1 = no retry)", integer=True),
    _f("fetch.resumed_from", "number", "bytes", "bytes already on disk when the last attempt began",
       integer=True),
)

ALIASES: dict[str, str] = {
    "duration": "media_info.container.duration",
    "size": "media_info.container.size",
    "bitrate": "media_info.container.bitrate",
    "container": "media_info.container.kind",
    "format": "media_info.container.kind",
    "codec": "media_info.audio.codec",
    "channels": "media_info.audio.channels",
    "sample_rate": "media_info.audio.sample_rate",
    "sr": "media_info.audio.sample_rate",
    "bit_depth": "media_info.audio.bit_depth",
    "has_video": "media_info.has_video",
    "loudness": "audio.loudness.measured",
    "lufs": "audio.loudness.measured",
    "lra": "audio.loudness.range",
    "true_peak": "audio.loudness.true_peak",
    "peak": "audio.loudness.sample_peak",
    "clipped": "audio.clipping.num_sections",
    "noise": "audio.noise.level_average",
    "snr": "audio.noise.snr_average",
    "hum": "audio.noise.hum.frequency",
    "audio.hum.frequency": "audio.noise.hum.frequency",
    "audio.hum.level": "audio.noise.hum.level",
    "audio.hum.harmonics": "audio.noise.hum.harmonics",
    "clicks": "audio.noise.clicks_per_minute",
    "dc_offset": "audio.noise.dc_offset",
    "bandwidth": "audio.bandwidth.frequency",
    "audio.bandwidth": "audio.bandwidth.frequency",
    "speech": "audio.speech.percentage",
    "music": "audio.music.percentage",
    "silence": "audio.silence.percentage",
    "other": "audio.other.percentage",
    "mos": "audio.quality_score.dnsmos_ovrl",
    "quality": "audio.quality_score.dnsmos_ovrl",
    "units": "units.count",
    "transcript": "transcript.text",
}


# Fields found in the data under these groups get a unit and a description (dynamic names).
DISCOVERED: dict[str, tuple[str, str]] = {
    "tags.": ("%", "share of the duration where YAMNet finds this AudioSet class (tag step)"),
    "class.scores.": (None, "your classifier's probability of this label (0-1)"),
    "class.shares.": ("%", "share of the classified windows' or units' time given this label"),
}


def discovered_field(name: str, kind: str) -> Field:
    """A field found in the data, described when its group is in DISCOVERED."""
    for prefix, (unit, description) in DISCOVERED.items():
        if name.startswith(prefix) and kind == "number":
            return Field(name, kind, unit, description, registered=False)
    return Field(name, kind, registered=False)


class FieldSet:
    """A set of fields with aliases and suffix resolution (the query language's vocabulary).

    Every name a table or an export prints resolves: dotted names, aliases, unique dotted
    suffixes, column headings (labels: `ch`, `sr`...), and the elements of fixed-size list
    fields (`mfcc_1` .. `mfcc_13`, number fields of their own)."""

    def __init__(self, fields: Iterable[Field], aliases: dict[str, str] | None = None):
        self._fields: dict[str, Field] = {}
        for f in fields:
            if f.kind not in KINDS:
                raise ValueError(f"field {f.name!r}: kind must be one of {KINDS}")
            self._fields[f.name] = f
            for element in elements(f):
                self._fields.setdefault(element.name, element)
        self.aliases = {a: t for a, t in (aliases or {}).items() if t in self._fields}
        for f in list(self._fields.values()):  # headings are names too, where unambiguous
            if f.label and f.label not in self._fields and f.label not in self.aliases:
                self.aliases[f.label] = f.name
        self._suffixes: dict[str, list[str]] = {}
        for name in self._fields:
            parts = name.split(".")
            for i in range(1, len(parts)):
                self._suffixes.setdefault(".".join(parts[i:]), []).append(name)

    def __iter__(self) -> Iterator[Field]:
        return iter(self._fields.values())

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, name: object) -> bool:
        return name in self._fields

    def get(self, name: str) -> Field | None:
        return self._fields.get(name)

    def names(self) -> list[str]:
        return list(self._fields)

    def resolve(self, name: str) -> Field:
        """The field for a dotted name, an alias or a unique dotted suffix; else UnknownFieldError."""
        if name in self._fields:
            return self._fields[name]
        if name in self.aliases:
            return self._fields[self.aliases[name]]
        matches = self._suffixes.get(name, [])
        if len(matches) == 1:
            return self._fields[matches[0]]
        if len(matches) > 1:
            raise UnknownFieldError(name, sorted(matches), ambiguous=True)
        raise UnknownFieldError(name, self.nearest(name))

    def nearest(self, name: str, n: int = 3) -> list[str]:
        """Known names closest to a misspelled one (full dotted names first)."""
        candidates = list(self._fields) + list(self.aliases) + list(self._suffixes)
        close = difflib.get_close_matches(name, candidates, n=n * 3, cutoff=0.6)
        if not close and "." in name:  # compare the last part: 'audio.noise.snr' -> snr_average
            tail = name.rsplit(".", 1)[-1]
            close = difflib.get_close_matches(tail, list(self._suffixes), n=n * 3, cutoff=0.6)
        out: list[str] = []
        for c in close:
            full = self._canonical(c)
            for item in full:
                if item not in out:
                    out.append(item)
        return out[:n]

    def _canonical(self, name: str) -> list[str]:
        if name in self._fields:
            return [name]
        if name in self.aliases:
            return [self.aliases[name]]
        return sorted(self._suffixes.get(name, []))

    def extended(self, extra: Iterable[Field]) -> "FieldSet":
        """This set plus fields discovered in the data (registered ones win on a clash)."""
        fields = list(self._fields.values())
        fields += [discovered_field(f.name, f.kind) if not f.registered and not f.description else f
                   for f in extra if f.name not in self._fields]
        return FieldSet(fields, self.aliases)


def elements(field: Field) -> list[Field]:
    """The element fields of a fixed-size list field: mfcc -> mfcc_1 .. mfcc_13 (numbers)."""
    if field.kind != "list" or not field.size:
        return []
    return [Field(f"{field.name}_{k}", "number", field.unit, f"{field.description}: element {k}",
                  registered=field.registered) for k in range(1, field.size + 1)]


# Fields other modules contribute (a step's own fields): module names whose FIELDS (a sequence
# of Field) and ALIASES (optional {alias: field name}) join the registry when it is first used.
# Such a module must import nothing heavy (it is imported by every `ls`). Add yours here, or call
# `register_fields` before the registry is first used.
FIELD_MODULES: list[str] = []
_EXTRA_FIELDS: list[Field] = []
_EXTRA_ALIASES: dict[str, str] = {}
_REGISTRY: FieldSet | None = None


def register_fields(fields: Iterable[Field], aliases: dict[str, str] | None = None) -> None:
    """Add fields (and aliases) to the registry: `register_fields([Field("embed.dim", "number",
    "count", "embedding size", integer=True)], {"dim": "embed.dim"})`. Registered fields get a
    typed column, a unit, a description, parsing and formatting; the index is rebuilt once when
    the set of fields changes."""
    global _REGISTRY
    _EXTRA_FIELDS.extend(fields)
    _EXTRA_ALIASES.update(aliases or {})
    _REGISTRY = None


def registry() -> FieldSet:
    """Every known field: the ones listed here, then those of FIELD_MODULES and register_fields."""
    global _REGISTRY
    if _REGISTRY is None:
        for name in FIELD_MODULES:
            module = importlib.import_module(name)
            register_fields(getattr(module, "FIELDS", ()), getattr(module, "ALIASES", None))
        FIELD_MODULES.clear()
        names = {f.name for f in FIELDS}
        extra = [f for f in _EXTRA_FIELDS if f.name not in names]
        _REGISTRY = FieldSet([*FIELDS, *extra], {**ALIASES, **_EXTRA_ALIASES})
    return _REGISTRY


def __getattr__(name: str):  # `from .fields import REGISTRY`: built on first use
    if name == "REGISTRY":
        return registry()
    raise AttributeError(name)


def infer_kind(value) -> str | None:
    """The kind of one JSON value (None for null and objects)."""
    if value is None or isinstance(value, dict):
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "list"
    return "text"


def describe_fields(fields: FieldSet | None = None) -> list[dict]:
    """One dict per field (name, kind, unit, description, aliases): for `audiotrove fields`, docs."""
    fields = registry() if fields is None else fields
    by_target: dict[str, list[str]] = {}
    for alias, target in fields.aliases.items():
        by_target.setdefault(target, []).append(alias)
    return [
        {"name": f.name, "kind": f.kind, "unit": f.unit, "description": f.description,
         "discrete": f.discrete, "aliases": by_target.get(f.name, [])}
        for f in fields
    ]
