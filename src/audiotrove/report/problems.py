"""Problem files: failed, clipped, silent, very noisy, DC offset, low bitrate, off-spec, each with
a sentence saying why.

DC offset: the mean sample value of a channel beyond 1 % of full scale (`dc_offset_fs`): it eats
headroom, clicks at every edit and hides the noise floor. Low bitrate: a lossy file under its
codec's floor (summary.LOW_BITRATE_BPS: Opus 16 kb/s, AAC and Vorbis 32, MP3 48...).

Every rule but off-spec is a query of the query language (so a user can list the same files with
`audiotrove ls "<query>"`); thresholds are keyword parameters. Off-spec files are those holding a
minority value of a uniformity field (see summary.uniformity) or, with `spec`, those that do
not match the user's spec query.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..catalog.index import FieldIndex
from ..catalog.query import And, Node, Not
from . import format as fmt


@dataclass(frozen=True)
class Rule:
    name: str
    title: str
    query: str
    why: Callable[[dict], str]


@dataclass
class Problem:
    file_id: int
    path: str
    categories: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    values: dict = field(default_factory=dict)


CATEGORY_ORDER = ("clipped", "silent", "noisy", "dc-offset", "low-bitrate", "off-spec", "failed")
TITLES = {"failed": "failed", "clipped": "clipped", "silent": "silent", "noisy": "very noisy",
          "dc-offset": "DC offset", "low-bitrate": "low bitrate", "off-spec": "off-spec"}

# Fields read for every problem file (reasons, thumbnails, players).
DETAIL_FIELDS = (
    "path", "status", "error", "media_info.container.kind", "media_info.container.duration",
    "media_info.audio.codec", "media_info.audio.sample_rate", "media_info.audio.channels",
    "audio.loudness.measured", "audio.loudness.sample_peak", "audio.loudness.true_peak",
    "audio.loudness.reason", "audio.clipping.num_sections", "audio.clipping.percentage",
    "audio.clipping.sections", "audio.noise.level_average", "audio.noise.snr_average",
    "audio.noise.hum.frequency", "audio.noise.hum.level", "audio.noise.clicks_per_minute",
    "audio.silence.percentage", "audio.silence.sections", "audio.noise.dc_offset",
    "media_info.container.bitrate", "media_info.has_video",
)


def _num(v, spec: str, unit: str = "") -> str:
    return "?" if v is None else f"{v:{spec}}{unit}"


def default_rules(*, silent_share: float = 90.0, silent_lufs: float = -60.0,
                  noisy_snr_db: float = 10.0, noisy_floor_dbfs: float = -35.0,
                  clicks_per_minute: float = 30.0, hum_level_db: float = 20.0,
                  dc_offset_fs: float = 0.01) -> list[Rule]:
    """The built-in rules; thresholds in the fields' units (%, LUFS, dB, dBFS, 1/min, FS)."""
    from .summary import BITRATE, CODEC, LOW_BITRATE_BPS, low_bitrate_bps

    def why_failed(v):
        return v.get("error") or "the analysis failed"

    def why_clipped(v):
        text = (f"{v['audio.clipping.num_sections']} clipped section(s), "
                f"{_num(v.get('audio.clipping.percentage'), '.2f', '%')} of the duration")
        sections = fmt.stored_list(v.get("audio.clipping.sections"))
        if sections:
            text += f", first at {fmt.clock(sections[0][0])}"
        if (v.get("audio.loudness.true_peak") or -99) > 0:
            text += f"; true peak {v['audio.loudness.true_peak']:+.1f} dBTP"
        return text

    def why_silent(v):
        parts = []
        share = v.get("audio.silence.percentage")
        if share is not None and share >= silent_share:
            parts.append(f"{share:.0f}% silence")
        lufs = v.get("audio.loudness.measured")
        if lufs is not None and lufs < silent_lufs:
            parts.append(f"integrated loudness {lufs:.1f} LUFS")
        peak = v.get("audio.loudness.sample_peak")
        if peak is not None and peak < silent_lufs:
            parts.append(f"peak {peak:.1f} dBFS")
        reason = v.get("audio.loudness.reason")
        if reason and "silen" in reason.lower():
            parts.append(reason)
        return "; ".join(parts) or "silent"

    def why_noisy(v):
        parts = []
        snr, floor = v.get("audio.noise.snr_average"), v.get("audio.noise.level_average")
        if snr is not None and snr < noisy_snr_db:
            parts.append(f"SNR {snr:.1f} dB")
        if floor is not None and floor > noisy_floor_dbfs:
            parts.append(f"noise floor {floor:.1f} dBFS")
        clicks = v.get("audio.noise.clicks_per_minute")
        if clicks is not None and clicks > clicks_per_minute:
            parts.append(f"{clicks:.0f} clicks/min")
        hum, level = v.get("audio.noise.hum.frequency"), v.get("audio.noise.hum.level")
        if hum is not None and level is not None and level > hum_level_db:
            parts.append(f"{hum:g} Hz hum {level:.0f} dB over the floor")
        return "; ".join(parts) or "noisy"

    def why_dc(v):
        dc = v["audio.noise.dc_offset"]
        return f"DC offset {dc:+.3f} of full scale ({100 * abs(dc):.1f}%, over {100 * dc_offset_fs:g}%)"

    def why_low(v):
        codec, rate = v.get(CODEC), v.get(BITRATE)
        return (f"{codec or 'lossy'} at {rate / 1000:.0f} kb/s, under the {low_bitrate_bps(codec) / 1000:.0f} kb/s "
                f"{codec or 'lossy'} needs")

    low = " or ".join(f'({CODEC} = "{c}" and {BITRATE} < {t})' for c, t in LOW_BITRATE_BPS.items() if t)
    return [
        Rule("failed", "failed", "status = error", why_failed),
        Rule("dc-offset", "DC offset",
             f"audio.noise.dc_offset > {dc_offset_fs:g} or audio.noise.dc_offset < {-dc_offset_fs:g}", why_dc),
        Rule("low-bitrate", "low bitrate", f"not media_info.has_video and ({low})", why_low),
        Rule("clipped", "clipped", "audio.clipping.num_sections > 0", why_clipped),
        Rule("silent", "silent",
             f"audio.silence.percentage >= {silent_share:g} or audio.loudness.measured < {silent_lufs:g}"
             f" or audio.loudness.sample_peak < {silent_lufs:g} or audio.loudness.reason ~ \"*silen*\"",
             why_silent),
        Rule("noisy", "very noisy",
             f"audio.noise.snr_average < {noisy_snr_db:g} or audio.noise.level_average > {noisy_floor_dbfs:g}"
             f" or audio.noise.clicks_per_minute > {clicks_per_minute:g}"
             f" or audio.noise.hum.level > {hum_level_db:g}", why_noisy),
    ]


def _and(a: Node | None, b: Node) -> Node:
    return b if a is None else And((a, b))


def find_problems(index: FieldIndex, *, where: Node | None = None, stats: dict | None = None,
                  spec: str | None = None, rules: list[Rule] | None = None) -> tuple[list[Problem], dict]:
    """(problem files in order of severity then path, {category: {"count", "query", "title"}})."""
    from .summary import anomaly_query

    rules = default_rules() if rules is None else rules
    found: dict[int, Problem] = {}
    summary: dict = {}
    hits: dict[str, set[int]] = {}
    for rule in rules:
        ids = index.file_ids(_and(where, index.parse(rule.query)))
        hits[rule.name] = ids
        summary[rule.name] = {"title": rule.title, "count": len(ids), "query": rule.query}
    off_ids: set[int] = set()
    off_query = None
    spec_ids: set[int] = set()
    anomalies = anomaly_query(index, stats) if stats else None
    if anomalies is not None:
        off_ids |= index.file_ids(_and(where, anomalies))
    if spec:
        spec_node = index.parse(spec)
        spec_ids = index.file_ids(_and(where, Not(spec_node)))
        off_ids |= spec_ids
        off_query = f"not ({spec})"
    summary["off-spec"] = {"title": "off-spec", "count": len(off_ids), "query": off_query}
    hits["off-spec"] = off_ids
    every = set().union(*hits.values()) if hits else set()
    if not every:
        return [], summary
    uniform = {n: s for n, s in (stats or {}).get("fields", {}).items()
               if s.get("kind") == "discrete" and s.get("anomalies")}
    names = list(DETAIL_FIELDS) + [n for n in uniform if n not in DETAIL_FIELDS]
    cols = [index.fields.resolve(n) for n in names]
    values: dict[int, dict] = {}
    for chunk_start in range(0, len(every), 900):
        chunk = sorted(every)[chunk_start:chunk_start + 900]
        rows = index.conn.execute(
            f"SELECT file_id, {', '.join(index.column(c) for c in cols)} FROM file_fields "
            f"WHERE file_id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
        for r in rows:
            values[r[0]] = {c.name: r[k + 1] for k, c in enumerate(cols)}
    by_name = {r.name: r for r in rules}
    for fid in every:
        v = values.get(fid)
        if v is None:
            continue
        p = Problem(fid, v["path"], values=v)
        for name in CATEGORY_ORDER:
            if fid not in hits.get(name, ()):
                continue
            p.categories.append(name)
            if name == "off-spec":
                p.reasons.extend(_off_spec_reasons(index, uniform, v, spec if fid in spec_ids else None))
            else:
                p.reasons.append(f"{TITLES[name]}: {by_name[name].why(v)}")
        found[fid] = p
    order = {c: k for k, c in enumerate(CATEGORY_ORDER)}
    problems = sorted(found.values(), key=lambda p: (order[p.categories[0]], p.path))
    return problems, summary


def _off_spec_reasons(index: FieldIndex, uniform: dict, v: dict, failed_spec: str | None) -> list[str]:
    """Why a file is off-spec: each anomalous value against the norm, and the spec it fails."""
    reasons = []
    for name, st in uniform.items():
        field = index.fields.resolve(name)
        value = v.get(name)
        if value is None:
            continue
        if field.kind == "bool":
            value = bool(value)
        key = value
        if st.get("bands") and isinstance(value, (int, float)):  # as summary.uniformity bands bitrates
            from .summary import CODEC, bitrate_band

            key = value = bitrate_band(v.get(CODEC), value)
        bad = [x["value"] for x in st["values"] if x["anomaly"]]
        bad += st.get("other_values", {}).get("anomalous_values", [])
        if key in bad:
            norm = next((x for x in st["values"] if x["value"] == st["norm"]), None)
            share = f", {100 * norm['share']:.0f}% of files" if norm else ""
            reasons.append(f"off-spec: {field.heading} {fmt.value(field, value, unit=True)} "
                           f"(the norm is {fmt.value(field, st['norm'], unit=True)}{share})")
    if failed_spec:
        reasons.append(f"off-spec: does not match the spec {failed_spec!r}")
    return reasons or ["off-spec"]
