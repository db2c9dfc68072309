"""Collection statistics over the field index: totals, uniformity (value counts with anomalies),
distributions (count, mean, std, min, quartiles, max, histogram), processing and cost estimates.

Used by `audiotrove stats`, the HTML report and `Collection.stats()`. Everything is computed in
SQL and numpy over the index table (no per-file JSON decoding), so 100 000 files take a fraction
of a second.

Anomalies: for a discrete field, the most common non-null value is the collection's norm when at
least 80 % of the files with a value have it (`NORM_SHARE`); any other value held by less than
`minority` of them (default 25 %) is an anomaly (a 44.1 kHz file among 16 kHz ones). Without a
clear norm (a mixed collection: 52 % at 16 kHz is not a norm) nothing is flagged and the table
says "mixed collection, no norm" (`note`).

Bitrates are compared in bands, not to the bit/s (`bitrate_band`): every lossless file (PCM,
FLAC, ALAC...) is in the band "lossless" (its bitrate follows from rate, depth and channels,
which have their own tables); a lossy file is in the band of its codec and the nearest standard
bitrate ("mp3 ~128k", "opus ~12k (low)"), so 768k and 769k are one band. Each band carries the
query that lists its files. Bands under the codec's `LOW_BITRATE_BPS` are marked "(low)" and
listed as problem files of their own (report.problems).
"""
from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np

from ..catalog.fields import Field
from ..catalog.index import TABLE, FieldIndex, quote_ident
from ..catalog.records import PRIMARY_STEP
from ..catalog.query import And, InList, Node, QueryError

# What `stats` shows without FIELDS (the report uses the same lists).
DEFAULT_DISCRETE = (
    "media_info.container.kind", "media_info.audio.codec", "media_info.audio.sample_rate",
    "media_info.audio.channels", "media_info.audio.bit_depth", "media_info.container.bitrate",
    "media_info.has_video", "audio.noise.hum.frequency",
)
DEFAULT_CONTINUOUS = (
    "media_info.container.duration", "audio.loudness.measured", "audio.loudness.range",
    "audio.loudness.true_peak", "audio.loudness.sample_peak", "audio.clipping.percentage",
    "audio.noise.level_average", "audio.noise.snr_average", "audio.noise.clicks_per_minute",
    "audio.bandwidth.frequency", "audio.speech.percentage", "audio.music.percentage",
    "audio.silence.percentage", "audio.other.percentage", "audio.quality_score.dnsmos_ovrl",
    "units.count",
)
MAX_VALUES = 20  # value counts listed per discrete field (the rest are summed as "other values")
MAX_AUTO_BINS = 30
NORM_SHARE = 0.8  # a value is the norm when at least this share of the files with a value hold it
NO_NORM = "mixed collection, no norm"

# --- bitrate bands ------------------------------------------------------------------------------
BITRATE = "media_info.container.bitrate"
CODEC = "media_info.audio.codec"
LOSSLESS_CODECS = ("flac", "alac", "wavpack", "ape", "tta", "mlp", "truehd", "shorten", "wmalossless")
STANDARD_KBPS = (6, 8, 12, 16, 20, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
                 448, 512, 640, 768, 1024, 1411, 1536, 2048, 3072, 4096, 6144, 8192)
# under these a lossy codec's band is "(low)": speech-grade Opus holds up to 16 kb/s, MP3 needs more
LOW_BITRATE_BPS = {"opus": 16000, "vorbis": 32000, "aac": 32000, "mp3": 48000, "mp2": 64000,
                   "wmav2": 48000, "ac3": 64000, "amr_nb": 0, "amr_wb": 0}
DEFAULT_LOW_BITRATE_BPS = 32000
# band k holds [edge k-1, edge k): geometric midpoints between the standard bitrates (bit/s)
_BAND_EDGES = np.sqrt(np.asarray(STANDARD_KBPS[:-1], float) * np.asarray(STANDARD_KBPS[1:], float)) * 1000.0


def is_lossless(codec: str | None) -> bool:
    return bool(codec) and (codec.startswith("pcm_") or codec in LOSSLESS_CODECS)


def low_bitrate_bps(codec: str | None) -> int:
    return LOW_BITRATE_BPS.get(codec or "", DEFAULT_LOW_BITRATE_BPS)


def bitrate_band(codec: str | None, bps: float) -> str:
    """The band label of a bitrate (bit/s): "lossless", or "<codec> ~<standard>k[ (low)]"."""
    if is_lossless(codec):
        return "lossless"
    k = STANDARD_KBPS[int(np.searchsorted(_BAND_EDGES, float(bps), side="right"))]
    low = " (low)" if k * 1000 < low_bitrate_bps(codec) else ""
    return f"{codec + ' ' if codec else ''}~{k}k{low}"


def _band_query(codec: str | None, band: int | None) -> str:
    """The query listing the files of a band (band None: lossless)."""
    lossless = (f'{CODEC} ~ "pcm_*" or {CODEC} in ({", ".join(LOSSLESS_CODECS)})')
    if band is None:
        return f"{BITRATE}? and ({lossless})"
    lo = 0 if band == 0 else int(np.ceil(_BAND_EDGES[band - 1]))
    hi = None if band >= len(_BAND_EDGES) else int(np.ceil(_BAND_EDGES[band]))
    rng = f"{BITRATE} >= {lo}" + (f" and {BITRATE} < {hi}" if hi is not None else "")
    which = f'{CODEC} = "{codec}"' if codec else f"not {CODEC}?"
    return f"{which} and {rng}"


def _bitrate_bands(index: FieldIndex, where: Node | None, packed: tuple | None) -> tuple[list, int, dict]:
    """([(band label, files)], files without a bitrate, {label: query}) of the selection."""
    matrix, names = packed if packed is not None else index.packed_matrix(where)
    if not matrix.size:
        return [], 0, {}
    rate = matrix[:, names.index(BITRATE)]
    codes = matrix[:, names.index(CODEC)] if CODEC in names else np.full(len(rate), np.nan)
    has = ~np.isnan(rate)
    counts: dict[str, int] = {}
    queries: dict[str, str] = {}
    keys = np.stack([np.nan_to_num(codes[has], nan=-1.0),
                     np.searchsorted(_BAND_EDGES, rate[has], side="right").astype(float)], axis=1)
    if len(keys):
        pairs, n = np.unique(keys, axis=0, return_counts=True)
        for (code, band), c in zip(pairs, n):
            codec = index.decode(CODEC, code) if code >= 0 else None
            label = bitrate_band(codec, STANDARD_KBPS[int(band)] * 1000.0)
            counts[label] = counts.get(label, 0) + int(c)
            q = _band_query(codec, None if label == "lossless" else int(band))
            queries[label] = q if label not in queries or queries[label] == q else f"{queries[label]} or {q}"
    present = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return present, int((~has).sum()), queries


def _and(where: Node | None, other: Node) -> Node:
    return other if where is None else And((where, other))


def parse_bins(spec: str | int | Sequence[float] | None, field: Field):
    """'auto' | 'N' (equal bins) | 'e0,e1,...' (edges, units allowed: '1m,5m,10m') -> numpy bins."""
    if spec is None or spec == "auto":
        return "auto"
    if isinstance(spec, int):
        return spec
    if not isinstance(spec, str):
        return np.asarray(sorted(float(x) for x in spec))
    text = spec.strip()
    if text.isdigit():
        n = int(text)
        if n < 1:
            raise QueryError("--bins needs at least 1 bin")
        return n
    items = [t for t in text.replace(";", ",").split(",") if t.strip()]
    try:
        edges = sorted(field.parse(t.strip()) for t in items)
    except ValueError as exc:
        raise QueryError(f"--bins for {field.name}: {exc}") from None
    if len(edges) < 2:
        raise QueryError("--bins needs 'auto', a number of bins, or at least two edges: -60,-40,-20")
    return np.asarray(edges)


def _quantile(sorted_v: np.ndarray, q: float) -> float:
    """Linear-interpolated quantile of sorted data (numpy's default 'linear' method)."""
    pos = q * (sorted_v.size - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, sorted_v.size - 1)
    return float(sorted_v[lo] + (sorted_v[hi] - sorted_v[lo]) * (pos - lo))


def _auto_edges(v: np.ndarray) -> np.ndarray:
    """numpy's 'auto' bins (the smaller of Freedman-Diaconis and Sturges widths) from sorted
    data without re-sorting, capped at MAX_AUTO_BINS (then 20 equal bins)."""
    lo, hi = float(v[0]), float(v[-1])
    if lo == hi:
        return np.array([lo - 0.5, hi + 0.5])
    span = hi - lo
    sturges = span / (np.log2(v.size) + 1.0)
    iqr = _quantile(v, 0.75) - _quantile(v, 0.25)
    fd = 2.0 * iqr * v.size ** (-1.0 / 3.0)
    width = min(fd, sturges) if fd > 0 else sturges
    n = int(np.ceil(span / width)) if width > 0 else 1
    if n > MAX_AUTO_BINS:
        n = 20
    return np.linspace(lo, hi, max(n, 1) + 1)


def histogram(values: np.ndarray, bins, *, is_sorted: bool = False) -> dict:
    """{"edges", "counts", "below", "above"} of finite values (below/above: outside given edges;
    the last bin includes its right edge, like numpy.histogram)."""
    v = values[np.isfinite(values)]
    if not is_sorted:
        v = np.sort(v)
    if isinstance(bins, np.ndarray):
        edges = bins
    elif v.size == 0:
        return {"edges": [], "counts": [], "below": 0, "above": 0}
    elif isinstance(bins, int):
        edges = (np.linspace(v[0], v[-1], bins + 1) if v[0] != v[-1]
                 else np.array([v[0] - 0.5, v[0] + 0.5]))
    else:
        edges = _auto_edges(v)
    idx = np.searchsorted(v, edges, side="left")
    counts = np.diff(idx)
    # numpy.histogram: the last bin is closed on the right
    last = int(np.searchsorted(v, edges[-1], side="right")) - int(idx[-1])
    if counts.size:
        counts[-1] += last
    below = int(idx[0])
    above = int(v.size - idx[-1] - last)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts],
            "below": below, "above": above}


def describe(values: np.ndarray, selected: int, bins) -> dict:
    """count, missing, mean, std, min, q25, median, q75, max and the histogram of one field."""
    v = np.sort(values[np.isfinite(values)])
    out: dict = {"count": int(v.size), "missing": int(selected - v.size)}
    if v.size:
        out.update(mean=float(v.mean()), std=float(v.std(ddof=1)) if v.size > 1 else 0.0,
                   min=float(v[0]), q25=_quantile(v, 0.25), median=_quantile(v, 0.5),
                   q75=_quantile(v, 0.75), max=float(v[-1]))
    else:
        out.update(mean=None, std=None, min=None, q25=None, median=None, q75=None, max=None)
    out["histogram"] = histogram(v, bins, is_sorted=True)
    return out


def _json_value(field: Field, value):
    if value is None:
        return None
    if field.kind == "bool":
        return bool(value)
    if field.kind == "number" and isinstance(value, float) and value.is_integer() and field.integer:
        return int(value)
    return value


def uniformity(index: FieldIndex, field: Field, where: Node | None, *, minority: float,
               packed: tuple | None = None) -> dict:
    """Value counts of a discrete field with the norm and the anomalies flagged."""
    queries: dict = {}
    if field.name == BITRATE:
        present, missing, queries = _bitrate_bands(index, where, packed)
    elif packed is not None and field.name in packed[1]:
        matrix, names = packed
        col = matrix[:, names.index(field.name)] if matrix.size else np.zeros(0)
        missing = int(np.isnan(col).sum())
        vals, cnts = np.unique(col[~np.isnan(col)], return_counts=True)
        order = np.lexsort((vals, -cnts))
        present = []
        for k in order:
            v = float(vals[k])
            if field.kind == "text":
                v = index.decode(field.name, v)
            elif field.kind == "bool":
                v = bool(v)
            elif v.is_integer():
                v = int(v)
            present.append((v, int(cnts[k])))
    else:
        counts = index.value_counts(field, where)
        missing = sum(n for v, n in counts if v is None)
        present = [(v, n) for v, n in counts if v is not None]
    with_value = sum(n for _, n in present)
    norm = present[0][0] if present and present[0][1] >= NORM_SHARE * with_value else None
    values = []
    for v, n in present:
        share = n / with_value if with_value else 0.0
        anomaly = norm is not None and v != norm and share < minority
        values.append({"value": _json_value(field, v) if not queries else v, "count": int(n), "share": share,
                       "anomaly": bool(anomaly)})
        if queries:
            values[-1]["query"] = queries[v]
    shown = values[:MAX_VALUES]
    rest = values[MAX_VALUES:]
    out = {"kind": "discrete", "unit": field.unit, "count": int(with_value), "missing": int(missing),
           "distinct": len(values), "norm": _json_value(field, norm), "values": shown,
           "anomalies": sum(1 for v in values if v["anomaly"]),
           "anomalous_files": sum(v["count"] for v in values if v["anomaly"]),
           "note": NO_NORM if norm is None and len(values) > 1 else None}
    if queries:
        out["bands"] = True
        out["anomaly_queries"] = [v["query"] for v in values if v["anomaly"]]
    if rest:
        out["other_values"] = {"distinct": len(rest), "count": sum(v["count"] for v in rest),
                               "anomalous_values": [v["value"] for v in rest if v["anomaly"]]}
    return out


def anomaly_query(index: FieldIndex, stats: dict) -> Node | None:
    """An AST selecting the files that hold an anomalous value of any discrete field in `stats`."""
    from ..catalog.query import Or

    parts = []
    for name, st in stats.get("fields", {}).items():
        if st.get("kind") != "discrete" or not st.get("anomalies"):
            continue
        field = index.fields.resolve(name)
        if st.get("bands"):
            parts.extend(index.parse(q) for q in st.get("anomaly_queries", ()))
            continue
        bad = [v["value"] for v in st["values"] if v["anomaly"]]
        bad += st.get("other_values", {}).get("anomalous_values", [])
        bad = [int(b) if isinstance(b, bool) else b for b in bad]
        if bad:
            parts.append(InList(field, tuple(bad)))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else Or(tuple(parts))


def totals(index: FieldIndex, where: Node | None, *, step: str = "analyze",
           packed: tuple | None = None) -> dict:
    """files, ok/failed/pending, audio seconds and hours, bytes, and the measured step time."""
    if packed is None:
        packed = index.packed_matrix(where)
    matrix, names = packed
    col = {n: (matrix[:, k] if matrix.size else np.zeros(0)) for k, n in enumerate(names)}
    codes = index.codes().get("status", {})
    status = col["status"]
    count = lambda s: int((status == codes[s]).sum()) if s in codes else 0  # noqa: E731
    dur = col["media_info.container.duration"]
    size = np.where(np.isnan(col["_size_bytes"]), col["media_info.container.size"], col["_size_bytes"])
    has_dur = ~np.isnan(dur)
    if step == PRIMARY_STEP:
        el = col["_elapsed_s"]
        ok = has_dur & (el > 0) & (dur > 0)
        measured = (float(dur[ok].sum()), float(el[ok].sum()))
    else:
        measured = _measured_sql(index, where, step)
    audio_s = float(dur[has_dur].sum())
    return {"files": int(len(status)), "ok": count("ok"), "failed": count("error"),
            "pending": count("pending"), "audio_s": audio_s, "hours": audio_s / 3600.0,
            "files_with_duration": int(has_dur.sum()), "bytes": int(np.nansum(size)),
            "_measured": measured}


def _measured_sql(index: FieldIndex, where: Node | None, step: str) -> tuple[float, float]:
    """(audio seconds, step seconds) over files with a measured time for a non-primary step."""
    sql, params = index.where(where)
    dur = f"{TABLE}.{quote_ident('media_info.container.duration')}"
    path = f'$."{step}"' if step.replace("_", "").isalnum() else "$.none"
    row = index.conn.execute(
        f"SELECT total(CASE WHEN json_extract({TABLE}.elapsed, ?) > 0 AND {dur} > 0 THEN {dur} END), "
        f"total(CASE WHEN json_extract({TABLE}.elapsed, ?) > 0 AND {dur} > 0 "
        f"THEN json_extract({TABLE}.elapsed, ?) END) FROM {TABLE} WHERE {sql}",
        [path, path, path, *params]).fetchone()
    return float(row[0]), float(row[1])


def estimate(index: FieldIndex, tot: dict, *, step: str, workers: int | None,
             price_per_minute: float | None) -> dict:
    """Processing time of the selection at the measured per-worker throughput, and its cost."""
    audio, cpu = tot.pop("_measured")
    source = "selection"
    if cpu <= 0:
        audio, cpu = totals(index, None, step=step)["_measured"]
        source = "collection"
    workers = workers or os.cpu_count() or 1
    out: dict = {"step": step, "workers": workers, "audio_s": tot["audio_s"],
                 "throughput_x_realtime": None, "processing_s": None, "measured_on": None}
    if cpu > 0 and audio > 0:
        speed = audio / cpu
        out.update(throughput_x_realtime=speed, processing_s=tot["audio_s"] / (speed * workers),
                   measured_on=source)
    unknown = tot["files"] - tot["files_with_duration"]
    if unknown:
        out["files_without_duration"] = unknown
    if price_per_minute is not None:
        minutes = tot["audio_s"] / 60.0
        out["price_per_minute"] = float(price_per_minute)
        out["minutes"] = minutes
        out["cost"] = minutes * float(price_per_minute)
    return out


def summarize(index: FieldIndex, *, where: str | Node | None = None,
              fields: Sequence[str | Field] | None = None, bins: str | int | None = "auto",
              minority: float = 0.25, price_per_minute: float | None = None,
              workers: int | None = None, step: str = "analyze") -> dict:
    """The whole `stats` object (JSON-ready). FIELDS default to DEFAULT_DISCRETE + DEFAULT_CONTINUOUS
    (those with data); a field named explicitly is always listed."""
    node = index.parse(where) if isinstance(where, str) and where.strip() else (
        where if not isinstance(where, str) else None)
    packed = index.packed_matrix(node)
    matrix, names = packed
    tot = totals(index, node, step=step, packed=packed)
    est = estimate(index, tot, step=step, workers=workers, price_per_minute=price_per_minute)
    if fields:
        chosen = [f if isinstance(f, Field) else index.fields.resolve(f) for f in fields]
    else:
        defaults = [index.fields.resolve(n) for n in DEFAULT_DISCRETE + DEFAULT_CONTINUOUS]
        chosen = [f for f in defaults
                  if matrix.size and not np.isnan(matrix[:, names.index(f.name)]).all()]
    discrete = [f for f in chosen if f.discrete or f.kind in ("text", "bool")]
    continuous = [f for f in chosen if f not in discrete and f.kind == "number"]
    lists = [f for f in chosen if f.kind == "list"]
    out_fields: dict = {}
    for f in discrete:
        out_fields[f.name] = uniformity(index, f, node, minority=minority, packed=packed)
    unpacked = [f for f in continuous if f.name not in names]
    extra = index.matrix(unpacked, node) if unpacked else None
    for f in continuous:
        if f.name in names:
            col = matrix[:, names.index(f.name)] if matrix.size else np.zeros(0)
        else:
            col = extra[:, unpacked.index(f)] if extra.size else np.zeros(0)
        out_fields[f.name] = {"kind": "continuous", "unit": f.unit,
                              **describe(col, tot["files"], parse_bins(bins, f))}
    for f in lists:
        present = index.count(_and(node, _present(f)))
        out_fields[f.name] = {"kind": "list", "unit": f.unit, "count": present,
                              "missing": tot["files"] - present}
    ordered = {f.name: out_fields[f.name] for f in chosen if f.name in out_fields}
    return {"where": where if isinstance(where, str) else None, "totals": tot, "estimate": est,
            "minority": minority, "fields": ordered}


def _present(field: Field) -> Node:
    from ..catalog.query import Present

    return Present(field)


def to_json(summary: dict) -> str:
    return json.dumps(summary, indent=2, default=float)


__all__ = ["summarize", "uniformity", "describe", "histogram", "parse_bins", "totals", "estimate",
           "anomaly_query", "bitrate_band", "is_lossless", "low_bitrate_bps", "DEFAULT_DISCRETE",
           "DEFAULT_CONTINUOUS", "NORM_SHARE", "NO_NORM", "LOW_BITRATE_BPS"]
