"""The HTML report: one self-contained page (inline CSS, plots as base64 PNG, no script, no
network), written to a temporary name and renamed.

Sections: totals and estimate; uniformity tables (value counts, anomalies marked); distributions
(content shares, histograms of loudness, true peak, noise floor, SNR, bandwidth, duration,
speech/music/silence/other shares, and a statistics table); problem files (failed, clipped,
silent, very noisy, off-spec) with the query that lists each group, and per file why, a waveform
+ spectrogram thumbnail and a player (see report/media.py for how the original is played);
restored files, only when some selected files have an `enhance` result: per file the source and
the output, the chain, the before -> after numbers and two players (original, restored), played
the same way as the originals, or a note where the output no longer exists; transcripts, only
when some selected files have a `transcribe` result (report/transcripts.py): per file its first
segments, each line with its start time, and a player (an inline frame) that clicking a time or
a word loads with the original at that moment (a media-fragment link, `file.wav#t=12.30`: the
page needs no script to seek), or the times as text where the page cannot play the file.
"""
from __future__ import annotations

import datetime as _dt
import html
import math
import os
import sys
from pathlib import Path

import numpy as np

from ..catalog.index import FieldIndex
from ..catalog.query import Node
from ..io.write import temp_path
from ..models.whisper import word_gap
from . import format as fmt
from .media import MIME, browser_playable, data_uri, problem_media, relative_url, restored_media
from .plots import HISTOGRAMS, histogram_png, image_mime, shares_png
from .problems import CATEGORY_ORDER, TITLES, find_problems
from .restored import METRICS, find_restored
from .summary import summarize
from .tags import tag_table
from .transcripts import MAX_CHARS, MAX_FILES, find_transcripts

esc = html.escape

CSS = """
:root { --fg:#1d2330; --muted:#5b6473; --line:#e3e6eb; --bg:#f6f7f9; --accent:#3465a4; --bad:#c0392b;
        --warn:#d68910; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg);
       background:var(--bg); }
header { background:#1d2330; color:#fff; padding:22px 32px 16px; }
header h1 { margin:0 0 4px; font-size:22px; font-weight:600; }
header p { margin:0; color:#c9cfda; font-size:13px; }
nav { position:sticky; top:0; background:#fff; border-bottom:1px solid var(--line); padding:8px 32px;
      z-index:2; }
nav a { margin-right:18px; color:var(--accent); text-decoration:none; font-weight:500; }
main { padding:8px 32px 40px; max-width:1280px; }
section { margin-top:26px; }
h2 { font-size:18px; margin:0 0 12px; border-bottom:2px solid var(--line); padding-bottom:4px; }
h3 { font-size:15px; margin:0 0 6px; }
.cards { display:flex; flex-wrap:wrap; gap:12px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:10px 16px; min-width:150px; }
.card .n { font-size:22px; font-weight:600; }
.card .l { color:var(--muted); font-size:12px; }
.card.bad .n { color:var(--bad); }
.grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(380px,1fr)); gap:12px; }
.box { background:#fff; border:1px solid var(--line); border-radius:8px; padding:10px 12px; }
table { border-collapse:collapse; background:#fff; }
th, td { padding:3px 10px; border-bottom:1px solid var(--line); text-align:left; vertical-align:top; }
th { font-weight:600; color:var(--muted); font-size:12px; }
td.r, th.r { text-align:right; font-variant-numeric:tabular-nums; }
tr.anomaly td { background:#fdecea; }
.bar { display:inline-block; height:9px; background:var(--accent); border-radius:2px; vertical-align:middle; }
tr.anomaly .bar { background:var(--bad); }
.tag { display:inline-block; font-size:11px; padding:1px 7px; border-radius:10px; color:#fff;
       margin-right:4px; background:#777; }
.tag.failed { background:#7b1fa2; } .tag.clipped { background:var(--bad); }
.tag.silent { background:#607d8b; } .tag.noisy { background:var(--warn); }
.tag.off-spec { background:#2e86c1; } .tag.anomaly { background:var(--bad); }
.problem { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 14px; margin:12px 0; }
.problem .file { color:var(--muted); font-size:12px; word-break:break-all; }
.problem ul { margin:6px 0 8px 18px; padding:0; }
.problem img { display:block; max-width:100%; height:auto; border:1px solid var(--line); border-radius:4px; }
.nothumb { color:var(--muted); font-style:italic; padding:8px 0; }
.player { display:flex; align-items:center; gap:12px; margin-top:6px; flex-wrap:wrap; }
.player audio { width:360px; max-width:100%; }
.note { color:var(--muted); font-size:12px; }
code { background:#eef1f5; padding:1px 5px; border-radius:4px; font-size:12px; }
.uni { display:grid; grid-template-columns:repeat(auto-fill,minmax(300px,1fr)); gap:12px; }
.empty { color:var(--muted); font-style:italic; }
table.failed audio { height:30px; width:220px; vertical-align:middle; }
table.restored { width:100%; border:1px solid var(--line); border-radius:8px; }
table.restored > tbody > tr > td { padding:10px 12px; }
table.restored .name { font-weight:600; word-break:break-all; }
table.restored .name .note { font-weight:400; }
table.restored .file { color:var(--muted); font-size:12px; word-break:break-all; }
table.restored ul { margin:4px 0 0 18px; padding:0; }
.chain code { margin-right:4px; white-space:nowrap; display:inline-block; margin-top:3px; }
table.ba td { border:0; padding:1px 6px; font-size:13px; white-space:nowrap; }
table.ba td.l { color:var(--muted); }
td.good { color:#1e8449; font-weight:600; } td.worse { color:var(--bad); font-weight:600; }
td.listen { width:340px; }
td.listen .player { margin:0 0 8px; gap:6px; flex-wrap:nowrap; }
td.listen .player .lbl { flex:none; width:54px; color:var(--muted); font-size:12px; }
td.listen audio { width:270px; height:34px; }
td.listen > .note { display:block; margin:-6px 0 8px 60px; }
.missing { color:var(--bad); font-size:12px; padding:6px 0; }
.transcript { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 14px; margin:12px 0; }
.transcript .file { color:var(--muted); font-size:12px; word-break:break-all; }
.transcript iframe.play { display:block; width:420px; max-width:100%; height:58px; margin:8px 0;
                          border:1px solid var(--line); border-radius:6px; background:#fff; }
.transcript .lines p { margin:2px 0; }
.transcript .lines a { color:inherit; text-decoration:none; }
.transcript .lines a:hover { color:var(--accent); text-decoration:underline; }
.transcript .t, .transcript .lines a.t { color:var(--accent); font-variant-numeric:tabular-nums;
                                          font-size:12px; margin-right:4px; }
footer { color:var(--muted); font-size:12px; padding:16px 32px 40px; max-width:1280px; }
"""


def _img(data: bytes, alt: str, cls: str = "") -> str:
    return (f'<img{f" class={cls!r}" if cls else ""} alt="{esc(alt)}" decoding="async" '
            f'src="{data_uri(image_mime(data), data)}">')


class PagePaths:
    """How the page shows and links files. Shown: relative to the collection folder (a page
    shared does not tell where the collection lives); with `redact`, file names only, no links
    to files at all (players then play embedded previews). Links (<a href>, <audio src>) are
    relative to the page."""

    def __init__(self, root: Path, report_dir: Path, *, redact: bool = False):
        self.root, self.report_dir, self.redact = Path(root), report_dir, redact

    def show(self, path: str) -> str:
        if self.redact:
            return path.rstrip("/").rsplit("/", 1)[-1] if "://" in path else Path(path).name
        if "://" in path:
            return path
        try:
            return os.path.relpath(path, self.root)
        except ValueError:  # another drive (Windows)
            return path

    def url(self, path: str) -> str | None:
        return None if self.redact else relative_url(path, self.report_dir)

    def scrub(self, text: str, *paths: str) -> str:
        """A stored message with the absolute paths it names shown as `show` shows them."""
        for p in sorted({x for x in (*paths, str(self.root)) if x and "://" not in x}, key=len, reverse=True):
            text = text.replace(p, self.show(p) if p != str(self.root) else ".")
        return text


def write_report(index: FieldIndex, output: str | os.PathLike, *, where: str | Node | None = None,
                 max_problems: int = 60, embed_audio: bool = False, spec: str | None = None,
                 title: str | None = None, workers: int | None = None, minority: float = 0.25,
                 progress: bool = False, max_restored: int = 60, redact_paths: bool = False,
                 max_transcripts: int = MAX_FILES, transcript_chars: int = MAX_CHARS) -> dict:
    """Write the report; return {"files", "problems", "restored", "transcripts", "path"}.

    Paths are shown relative to the collection folder; `redact_paths` shows file names only and
    links to no file (it implies `embed_audio`: the players play embedded previews).
    max_restored: restored files (with an `enhance` result) listed with players; the count and
    the query listing all of them are always shown.
    max_transcripts, transcript_chars: transcribed files shown, and characters of each (the
    count and the query listing all of them are always shown)."""
    output = Path(output)
    report_dir = output.resolve().parent
    embed_audio = embed_audio or redact_paths
    paths = PagePaths(index.catalog.root, report_dir, redact=redact_paths)
    node = index.parse(where) if isinstance(where, str) and where.strip() else (
        where if not isinstance(where, str) else None)
    where_text = where if isinstance(where, str) and where.strip() else None
    stats = summarize(index, where=node, minority=minority)
    problems, groups = find_problems(index, where=node, stats=stats, spec=spec)
    # Files that decode get a card (picture + player); failed files a compact table at the end.
    shown = [p for p in problems if p.categories != ["failed"]][:max_problems]
    media = _problem_media(shown, embed_audio=embed_audio, workers=workers, progress=progress)
    restored, restored_info = find_restored(index, where=node, limit=max_restored)
    tag_rows, tagged = tag_table(index, where=node)
    transcripts, transcript_info = find_transcripts(index, where=node, limit=max_transcripts,
                                                    max_chars=transcript_chars)
    restored_players = _restored_media(restored, embed_audio=embed_audio, workers=workers,
                                       progress=progress)
    root = index.catalog.root
    title = title or f"{root.name} — audiotrove report"
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>{esc(title)}</h1><p>collection <b>{esc(root.name)}</b> · "
        f"generated {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}"
        + (f" · files matching <code>{esc(where_text)}</code>" if where_text else "") + "</p></header>",
        '<nav><a href="#totals">Totals</a><a href="#uniformity">Uniformity</a>'
        '<a href="#distributions">Distributions</a>'
        + ('<a href="#tags">What is in it</a>' if tagged else "") + '<a href="#problems">Problem files</a>'
        + ('<a href="#restored">Restored files</a>' if restored_info["count"] else "")
        + ('<a href="#transcripts">Transcripts</a>' if transcript_info["count"] else "") + "</nav><main>",
        _totals_html(stats, len(problems)),
        _uniformity_html(index, stats),
        _distributions_html(index, stats, node),
        _tags_html(tag_rows, tagged, paths=paths),
        _problems_html(index, problems, shown, groups, media, paths=paths),
        _restored_html(restored, restored_info, restored_players, paths=paths),
        _transcripts_html(transcripts, transcript_info, paths=paths),
        "</main>", _footer_html(embed_audio, restored=bool(restored_info["count"]), redact=redact_paths,
                                transcripts=bool(transcript_info["count"])),
        "</body></html>",
    ]
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(output)
    try:
        tmp.write_text("\n".join(parts), encoding="utf-8")
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()
    return {"files": stats["totals"]["files"], "problems": len(problems),
            "restored": restored_info["count"], "transcripts": transcript_info["count"],
            "path": str(output)}


# ----------------------------------------------------------------------------------- sections


def _totals_html(stats: dict, n_problems: int) -> str:
    t, est = stats["totals"], stats["estimate"]
    cards = [
        (f"{t['files']}", "files"), (fmt.hours(t["audio_s"]), f"of audio ({t['hours']:.2f} h)"),
        (fmt.size(t["bytes"]), "on disk"), (f"{t['ok']}", "analyzed ok"),
    ]
    html_cards = [f'<div class="card"><div class="n">{esc(n)}</div><div class="l">{esc(l)}</div></div>'
                  for n, l in cards]
    for n, label in ((t["failed"], "failed"), (t["pending"], "not analyzed yet"),
                     (n_problems, "problem files")):
        cls = "card bad" if n and label != "not analyzed yet" else "card"
        html_cards.append(f'<div class="{cls}"><div class="n">{n}</div><div class="l">{label}</div></div>')
    if est.get("throughput_x_realtime"):
        line = (f"Re-running <code>{esc(est['step'])}</code> on these files takes about "
                f"<b>{esc(fmt.hours(est['processing_s']))}</b> with {est['workers']} worker(s), at the "
                f"measured {est['throughput_x_realtime']:.0f}× real time per worker.")
    else:
        line = f"No measured <code>{esc(est['step'])}</code> times yet."
    return (f'<section id="totals"><h2>Totals</h2><div class="cards">{"".join(html_cards)}</div>'
            f'<p class="note">{line}</p></section>')


def _uniformity_html(index: FieldIndex, stats: dict) -> str:
    boxes = []
    for name, s in stats["fields"].items():
        if s["kind"] != "discrete":
            continue
        f = index.fields.resolve(name)
        rows = []
        for v in s["values"]:
            cls = ' class="anomaly"' if v["anomaly"] else ""
            tag = ' <span class="tag anomaly">anomaly</span>' if v["anomaly"] else ""
            width = max(1, int(round(120 * v["share"])))
            rows.append(f"<tr{cls}><td>{esc(fmt.value(f, v['value'], unit=True))}{tag}</td>"
                        f'<td class="r">{v["count"]}</td><td class="r">{100 * v["share"]:.1f}%</td>'
                        f'<td><span class="bar" style="width:{width}px"></span></td></tr>')
        if "other_values" in s:
            o = s["other_values"]
            rows.append(f'<tr><td>({o["distinct"]} other values)</td><td class="r">{o["count"]}</td>'
                        "<td></td><td></td></tr>")
        if s["missing"]:
            rows.append(f'<tr><td class="note">no value</td><td class="r">{s["missing"]}</td><td></td><td></td></tr>')
        flag = (f' <span class="tag anomaly">{s["anomalous_files"]} file(s) off the norm</span>'
                if s["anomalies"] else "") + (f' <span class="note">{esc(s["note"])}</span>' if s.get("note") else "")
        boxes.append(f'<div class="box"><h3>{esc(f.heading)}{flag}</h3><div class="note">{esc(name)}</div>'
                     f'<table><tr><th>value</th><th class="r">files</th><th class="r">share</th><th></th></tr>'
                     f'{"".join(rows)}</table></div>')
    body = "".join(boxes) or '<p class="empty">No files analyzed yet.</p>'
    return (f'<section id="uniformity"><h2>Uniformity</h2><p class="note">A value held by less than '
            f'{100 * stats["minority"]:.0f}% of the files, where at least 80% of them share one value '
            f'(the norm), is an anomaly; those files are listed as off-spec below. Bitrates are compared '
            f'in bands (lossless; per lossy codec, around the nearest standard bitrate).</p><div class="uni">{body}</div></section>')


def _distributions_html(index: FieldIndex, stats: dict, node) -> str:
    fields = stats["fields"]
    out = ['<section id="distributions"><h2>Distributions</h2>']
    shares = _content_shares(index, node)
    plots = []
    if shares:
        plots.append(f'<div class="box">{_img(shares_png(shares, title="Audio time by content"), "content shares")}</div>')
    for name, title, refs in HISTOGRAMS:
        s = fields.get(name)
        if not s or s.get("kind") != "continuous" or not s["count"]:
            continue
        if s["min"] == s["max"]:  # one value everywhere: a sentence, not a single meaningless bar
            value = fmt.shared(index.fields.resolve(name), s["min"])  # "all 0%", not "all 0.0%"
            plots.append(f'<div class="box allsame"><h3>{esc(title)}</h3><p>all {esc(value)}</p>'
                         f'<div class="note">{s["count"]} files · <code>{esc(name)}</code></div></div>')
            continue
        png = histogram_png(s["histogram"], title=title, median=s["median"], refs=refs)
        plots.append(f'<div class="box">{_img(png, "histogram of " + title)}'
                     f'<div class="note">{s["count"]} files · median {esc(fmt.number(index.fields.resolve(name), s["median"]))}'
                     f' · <code>{esc(name)}</code></div></div>')
    if plots:
        out.append(f'<div class="grid">{"".join(plots)}</div>')
    else:
        out.append('<p class="empty">No measurements yet: run <code>audiotrove analyze</code>.</p>')
    rows = []
    for name, s in fields.items():
        if s.get("kind") != "continuous":
            continue
        f = index.fields.resolve(name)
        cells = [fmt.number(f, s[k]) for k in ("mean", "std", "min", "q25", "median", "q75", "max")]
        rows.append(f"<tr><td>{esc(name)}</td><td>{esc(s['unit'] or '')}</td><td class='r'>{s['count']}</td>"
                    + "".join(f"<td class='r'>{esc(c)}</td>" for c in cells) + "</tr>")
    if rows:
        out.append("<h3 style='margin-top:16px'>Statistics</h3><table><tr><th>field</th><th>unit</th>"
                   "<th class='r'>files</th><th class='r'>mean</th><th class='r'>std</th><th class='r'>min</th>"
                   "<th class='r'>25%</th><th class='r'>median</th><th class='r'>75%</th><th class='r'>max</th></tr>"
                   + "".join(rows) + "</table>")
    out.append("</section>")
    return "".join(out)


def _content_shares(index: FieldIndex, node) -> dict[str, float]:
    matrix, names = index.packed_matrix(node)
    if not matrix.size:
        return {}
    dur = matrix[:, names.index("media_info.container.duration")]
    out = {}
    for part in ("speech", "music", "silence", "other"):
        col = matrix[:, names.index(f"audio.{part}.percentage")]
        ok = ~np.isnan(col) & ~np.isnan(dur)
        if ok.any() and dur[ok].sum() > 0:
            out[part] = float((col[ok] * dur[ok]).sum() / dur[ok].sum())
    return out if sum(out.values()) > 0 else {}


def _link(url: str | None, text: str) -> str:
    return f'<a href="{esc(url)}">{esc(text)}</a>' if url else esc(text)


def _tags_html(rows: list[dict], tagged: int, *, paths: PagePaths) -> str:
    """The "what is in it" table: the classes of the `tag` step in most files (none: no section)."""
    if not tagged:
        return ""
    out = [f'<section id="tags"><h2>What is in it</h2><p class="note">{tagged} file(s) tagged with '
           "YAMNet's AudioSet classes (<code>audiotrove tag</code>); share: % of their duration where "
           "the class is present.</p><table><tr><th>class</th><th class=\"r\">files</th>"
           '<th class="r">share</th><th class="r">hours</th><th>list them</th><th>most of it</th></tr>']
    for r in rows:
        links = ", ".join(f"{_link(paths.url(p), paths.show(p))} ({v:.0f}%)" for p, v in r["examples"])
        hours = "" if r["hours"] is None else f"{r['hours']:.2f}"
        out.append(f'<tr><td>{esc(r["class"])}</td><td class="r">{r["files"]}</td>'
                   f'<td class="r">{r["share"]:.1f}%</td><td class="r">{hours}</td>'
                   f"<td><code>audiotrove ls 'tags.{esc(r['class'])}?'</code></td><td>{links}</td></tr>")
    out.append("</table></section>")
    return "".join(out)


def _problems_html(index: FieldIndex, problems, shown, groups, media, *, paths: PagePaths) -> str:
    out = ['<section id="problems"><h2>Problem files</h2>']
    rows = []
    for name in CATEGORY_ORDER:
        g = groups.get(name)
        if g is None:
            continue
        q = f"<code>audiotrove ls '{esc(g['query'])}'</code>" if g.get("query") else \
            '<span class="note">minority values in the uniformity tables</span>'
        rows.append(f'<tr><td><span class="tag {name}">{esc(TITLES[name])}</span></td>'
                    f'<td class="r">{g["count"]}</td><td>{q}</td></tr>')
    out.append('<table><tr><th>problem</th><th class="r">files</th><th>list them</th></tr>'
               + "".join(rows) + "</table>")
    if not problems:
        out.append('<p class="empty">No problem files found.</p></section>')
        return "".join(out)
    for p in shown:
        out.append(_problem_card(index, p, media.get(p.file_id, {}), paths))
    shown_ids = {p.file_id for p in shown}
    failed = [p for p in problems if p.categories == ["failed"]]
    rest = [p for p in problems if p.file_id not in shown_ids and p.categories != ["failed"]]
    if rest:
        out.append(f"<h3>{len(rest)} more problem file(s)</h3><p class='note'>Raise --max-problems "
                   "to see them with pictures and players.</p><table><tr><th>file</th><th>why</th></tr>")
        for p in rest:
            out.append(f'<tr><td>{_link(paths.url(p.path), paths.show(p.path))}</td>'
                       f"<td>{esc(paths.scrub('; '.join(p.reasons), p.path))}</td></tr>")
        out.append("</table>")
    if failed:
        out.append(f'<h3 id="failed">Failed files ({len(failed)})</h3><table class="failed">'
                   "<tr><th>file</th><th>why it failed</th><th>original</th></tr>")
        for p in failed:  # no player: a file that failed to decode would not play either
            url = paths.url(p.path)
            out.append(f'<tr id="file-{p.file_id}"><td>{esc(paths.show(p.path))}</td>'
                       f'<td>{esc(paths.scrub(p.values.get("error") or "failed", p.path))}</td>'
                       f'<td>{_link(url, "open") if url else ""}</td></tr>')
        out.append("</table>")
    out.append("</section>")
    return "".join(out)


def _problem_card(index: FieldIndex, p, m: dict, paths: PagePaths) -> str:
    v = p.values
    tags = "".join(f'<span class="tag {c}">{esc(TITLES[c])}</span>' for c in p.categories)
    name = Path(p.path).name if "://" not in p.path else p.path
    facts = []
    dur = v.get("media_info.container.duration")
    if dur is not None:
        facts.append(fmt.clock(dur))
    for key in ("media_info.audio.codec", "media_info.audio.sample_rate", "media_info.audio.channels"):
        if v.get(key) is not None:
            f = index.fields.resolve(key)
            facts.append(f"{fmt.value(f, v[key], unit=True)}{' ch' if key.endswith('channels') else ''}")
    why = "".join(f"<li>{esc(paths.scrub(r, p.path))}</li>" for r in p.reasons)
    if v.get("tags.top"):
        why += f'<li class="note">what is in it: {esc(v["tags.top"])}</li>'
    if m.get("image"):
        picture = _img(m["image"], f"waveform and spectrogram of {name}")
    else:
        picture = f'<div class="nothumb">no waveform: {esc(m.get("thumb_error") or "not rendered")}</div>'
    url = paths.url(p.path)
    original = f'<a href="{esc(url)}">original</a>' if url else ""
    if v.get("status") == "error" or (m.get("thumb_error") and not m.get("preview") and "://" not in p.path):
        # nothing decodes: a player would only show an error
        player = (f'<div class="player"><span class="note">no player: the file cannot be decoded</span>'
                  f'{original}</div>')
    else:
        audio, note = _audio(url, m.get("preview"), v.get("media_info.container.kind"),
                             v.get("media_info.audio.codec"))
        player = f'<div class="player">{audio}{original}{note}</div>'
    return (f'<article class="problem" id="file-{p.file_id}"><h3>{tags} {esc(name)}</h3>'
            f'<div class="file">{esc(paths.show(p.path))}{" · " + esc(" · ".join(facts)) if facts else ""}</div>'
            f"<ul>{why}</ul>{picture}{player}</article>")


def _audio(url: str | None, preview: bytes | None, container: str | None, codec: str | None) -> tuple[str, str]:
    """(<audio> element, note): the embedded MP3 preview when there is one, else the file itself
    (none when the page links to no file)."""
    if not preview and url is None:
        return "", '<span class="note">no preview</span>'
    if preview:
        src = data_uri("audio/mpeg", preview)
        note = '<span class="note">embedded preview (first 30 s, MP3)</span>'
    else:
        src = url
        note = "" if browser_playable(container, codec) else \
            '<span class="note">your browser may not play this format</span>'
    mime = "audio/mpeg" if preview else MIME.get(container or "", "")
    type_attr = f' data-type="{esc(mime)}"' if mime else ""
    return f'<audio controls preload="none" src="{esc(src)}"{type_attr}></audio>', note


def _restored_html(restored, info: dict, players: dict, *, paths: PagePaths) -> str:
    """The 'Restored files' section (empty string when no selected file has an enhance result)."""
    if not info["count"]:
        return ""
    med = info["median_change"]
    summary = [f"{_signed(med[key])} {cunit}" + f" {label}" for key, label, _, cunit, _ in METRICS
               if key in med and key in ("snr_db", "noise_floor_dbfs", "loudness_lufs")]
    out = ['<section id="restored"><h2>Restored files</h2>',
           f'<p class="note">{info["count"]} file(s) restored with <code>audiotrove enhance</code>'
           + (f"; median change: {esc(', '.join(summary))}" if summary else "")
           + f". List them: <code>audiotrove ls '{esc(info['query'])}' --fields "
             "enhance.output,enhance.change.snr_db</code></p>",
           ('<table class="restored"><tr><th>file and restoration</th><th>before → after</th>'
            "<th>listen</th></tr>")]
    for r in restored:
        out.append(_restored_row(r, players.get(r.file_id, {}), paths))
    out.append("</table>")
    rest = info["count"] - len(restored)
    if rest > 0:
        out.append(f'<p class="note">{rest} more restored file(s) not shown: list them with the query '
                   "above.</p>")
    out.append("</section>")
    return "".join(out)


def _signed(x: float) -> str:
    return f"{x:+.1f}"


def _restored_row(r, m: dict, paths: PagePaths) -> str:
    v = r.values
    src_url = paths.url(r.path)
    out_url = paths.url(r.output)
    exists = m.get("exists", True)
    name = Path(r.path).name if "://" not in r.path else r.path
    out_name = Path(r.output).name if "://" not in r.output else r.output
    facts = []
    if v.get("media_info.container.duration") is not None:
        facts.append(fmt.clock(v["media_info.container.duration"]))
    if v.get("enhance.preset"):
        facts.append(f"preset {v['enhance.preset']}")
    output_line = (f"→ {_link(out_url, out_name)}" if exists else
                   f"→ {esc(out_name)} <b>(no longer exists)</b>")
    chain = "".join(f"<code>{esc(c)}</code>" for c in r.chain)
    notes = "".join(f"<li>{esc(paths.scrub(n, r.path, r.output))}</li>" for n in r.notes)
    left = (f'<div class="name">{_link(src_url, name)}'
            f'{" <span class=note>" + esc(" · ".join(facts)) + "</span>" if facts else ""}</div>'
            f'<div class="file">{esc(paths.show(r.path))}</div>'
            f'<div class="file">{output_line}</div><div class="file">{esc(paths.show(r.output))}</div>'
            + (f'<div class="chain">{chain}</div>' if chain else "")
            + (f'<ul class="note">{notes}</ul>' if notes else ""))
    rows = []
    for key, label, unit, cunit, better in METRICS:
        b, a, c = (v.get(f"enhance.{w}.{key}") for w in ("before", "after", "change"))
        if b is None and a is None:
            continue
        empty = "none" if key == "hum_level_db" else "-"
        digits = 0 if key == "clipped_samples" else 1
        suffix = f" {cunit}" if cunit else ""
        cls = "r"
        if c is not None and better and abs(c) >= 0.05:
            cls = "r good" if c * better > 0 else "r worse"
        rows.append(f'<tr><td class="l">{esc(label)}</td>'
                    f'<td class="r">{esc(empty if b is None else f"{b:.{digits}f}")}</td><td>→</td>'
                    f'<td class="r">{esc(empty if a is None else f"{a:.{digits}f}")}</td>'
                    f'<td class="l">{esc(unit)}</td>'
                    f'<td class="{cls}">{esc("" if c is None else f"({c:+.{digits}f}{suffix})")}</td></tr>')
    numbers = f'<table class="ba">{"".join(rows)}</table>' if rows else \
        '<span class="note">no measurements</span>'
    audio, note = _audio(src_url, m.get("original_preview"), v.get("media_info.container.kind"),
                         v.get("media_info.audio.codec"))
    listen = [f'<div class="player original"><span class="lbl">original</span>{audio}</div>{note}']
    if not exists:
        listen.append(f'<div class="missing">The restored file no longer exists: {esc(paths.show(r.output))}</div>')
    elif m.get("error"):
        listen.append(f'<div class="missing">The restored file cannot be read: '
                      f'{esc(paths.scrub(m["error"], r.path, r.output))}</div>')
    else:
        audio, note = _audio(out_url, m.get("preview"), m.get("kind") or Path(r.output).suffix.lstrip(".").lower(),
                             m.get("codec"))
        listen.append(f'<div class="player restored"><span class="lbl">restored</span>{audio}</div>{note}')
    return (f'<tr id="restored-{r.file_id}"><td>{left}</td><td>{numbers}</td>'
            f'<td class="listen">{"".join(listen)}</td></tr>')


def _footer_html(embed_audio: bool, *, restored: bool = False, redact: bool = False,
                 transcripts: bool = False) -> str:
    how = ("File names only, no paths and no links to files (--redact-paths): players play embedded "
           "30-second MP3 previews. " if redact else "Paths are relative to the collection folder. ")
    how += ("Players embed a 30-second MP3 preview of each problem file, so this page works anywhere; "
           "the 'original' links point to the files themselves." if embed_audio else
           "Players play the original files through paths relative to this page: keep the page where "
           "it was written (or next to the collection) to listen, or write it with --embed-audio for "
           "a portable page. Formats browsers cannot play get an embedded 30-second MP3 preview.")
    if restored:
        how += (" Restored files are played the same way as the originals, next to them; the numbers "
                "are the enhance step's measurements of the input and of the output.")
    if transcripts and not redact:
        how += (" A transcript's times and words link to the original at that moment (file.wav#t=SECONDS),"
                " played in the frame above the text; keep the page where it was written to play them.")
    return (f"<footer>{how} Waveforms show the first 10 minutes at most; red bands mark clipped "
            "sections. Made by audiotrove.</footer>")


# ----------------------------------------------------------------------------------- transcripts

PLAYER_HINT = ('<p style="margin:6px 8px;font:12px/1.4 system-ui,sans-serif;color:#5b6473">'
               "&#9654; Click a time or a word below to play the recording from there.</p>")


def _transcripts_html(shown, info: dict, *, paths: PagePaths) -> str:
    """The 'Transcripts' section (empty string when no selected file has a transcript)."""
    if not info["count"]:
        return ""
    out = ['<section id="transcripts"><h2>Transcripts</h2>',
           f'<p class="note">{info["count"]} file(s) transcribed with <code>audiotrove transcribe</code>. '
           f"Each shows its first {info['max_chars']} characters; a line starts with its time "
           "(m:ss from the start of the file). Click a time or a word to play the recording from "
           'there. Every occurrence of a phrase in all of them: <code>audiotrove search "phrase"</code>; '
           "the whole texts and subtitles: <code>audiotrove transcribe --export txt|srt|vtt -o DIR</code>.</p>"]
    for t in shown:
        out.append(_transcript_card(t, paths))
    rest = info["count"] - len(shown)
    if rest > 0:
        out.append(f'<p class="note">{rest} more transcribed file(s) not shown: list them with '
                   f"<code>audiotrove ls '{esc(info['query'])}' --fields path,transcript.word_count</code>"
                   ".</p>")
    out.append("</section>")
    return "".join(out)


def _stamp(seconds: float) -> str:
    """[m:ss] (or [h:mm:ss]) of the second a line starts in."""
    return f"[{fmt.clock(float(math.floor(max(seconds, 0.0))), decimals=0)}]"


def _transcript_card(t, paths: PagePaths) -> str:
    v = t.values
    name = Path(t.path).name if "://" not in t.path else t.path
    url = paths.url(t.path)
    facts = []
    if v.get("media_info.container.duration") is not None:
        facts.append(fmt.clock(v["media_info.container.duration"]))
    if v.get("transcript.language"):
        facts.append(f"language {v['transcript.language']}")
    if v.get("transcript.word_count") is not None:
        facts.append(f"{int(v['transcript.word_count'])} words")
    if v.get("transcript.words_per_minute"):
        facts.append(f"{v['transcript.words_per_minute']:.0f} words/min")
    if v.get("transcript.model"):
        facts.append(f"model {paths.show(v['transcript.model']) if os.sep in v['transcript.model'] else v['transcript.model']}")
    playable = (url is not None and "#" not in url
                and browser_playable(v.get("media_info.container.kind"), v.get("media_info.audio.codec")))
    frame = f"play-{t.file_id}"
    if playable:
        player = (f'<iframe class="play" name="{frame}" title="player of {esc(name)}" '
                  f'srcdoc="{esc(PLAYER_HINT)}"></iframe>')
    elif url is None:
        player = '<div class="note">no player: this page links to no file (times as text)</div>'
    else:
        player = ('<div class="note">no player: browsers do not play this format (times as text); '
                  f'{_link(url, "open the original")}</div>')
    lines = []
    for line in t.lines:
        if playable:
            def link(s: float, text: str, cls: str = "") -> str:
                c = f' class="{cls}"' if cls else ""
                return f'<a{c} href="{esc(url)}#t={s:.2f}" target="{frame}">{esc(text)}</a>'
            head = link(line.start, _stamp(line.start), "t")
            body = "".join((word_gap(line.words[k - 1][1], w) if k else "") + link(s, w)
                           for k, (s, w) in enumerate(line.words)) if line.words else esc(line.text)
        else:
            head = f'<span class="t">{_stamp(line.start)}</span>'
            body = esc(line.text)
        lines.append(f"<p>{head} {body}{' …' if line.cut else ''}</p>")
    if not lines:
        lines.append('<p class="empty">no words</p>')
    more = ""
    if t.cut:
        more = (f'<p class="note">{max(0, t.total_chars - t.shown_chars)} more character(s) in '
                f"{t.more_segments} more line(s) not shown: the whole text with "
                "<code>audiotrove transcribe --export txt -o DIR</code></p>")
    return (f'<article class="transcript" id="transcript-{t.file_id}"><h3>{_link(url, name)}</h3>'
            f'<div class="file">{esc(paths.show(t.path))}{" · " + esc(" · ".join(facts)) if facts else ""}</div>'
            f'{player}<div class="lines">{"".join(lines)}</div>{more}</article>')


# ----------------------------------------------------------------------------------- media


def _problem_media(shown, *, embed_audio: bool, workers: int | None, progress: bool) -> dict[int, dict]:
    tasks = []
    for p in shown:
        v = p.values
        sections = v.get("audio.clipping.sections")
        if isinstance(sections, str):
            import json

            try:
                sections = json.loads(sections)
            except ValueError:
                sections = None
        tasks.append({"file_id": p.file_id, "path": p.path, "duration": v.get("media_info.container.duration"),
                      "sections": sections, "embed": embed_audio,
                      "playable": browser_playable(v.get("media_info.container.kind"),
                                                   v.get("media_info.audio.codec"))})
    return _run_tasks(problem_media, tasks, workers=workers, progress=progress, what="pictures")


def _restored_media(restored, *, embed_audio: bool, workers: int | None, progress: bool) -> dict[int, dict]:
    tasks = [{"file_id": r.file_id, "path": r.path, "output": r.output, "embed": embed_audio,
              "playable": browser_playable(r.values.get("media_info.container.kind"),
                                           r.values.get("media_info.audio.codec"))} for r in restored]
    # Without previews to encode a task is a stat and a probe: not worth starting processes.
    heavy = embed_audio or any(not t["playable"] or Path(t["output"]).suffix.lower().lstrip(".") not in MIME
                               for t in tasks)
    return _run_tasks(restored_media, tasks, workers=workers if heavy else 1, progress=progress,
                      what="restored players")


def _run_tasks(func, tasks: list[dict], *, workers: int | None, progress: bool, what: str) -> dict[int, dict]:
    """{file_id: func(task)}: in this process for few tasks, else on the runner's executor (one
    task that crashes or runs out of time gives {"error", "thumb_error"}, the others go on)."""
    from ..runner.executor import LocalPoolExecutor, default_workers

    if not tasks:
        return {}
    workers = max(1, min(workers or default_workers(), len(tasks)))
    results: dict[int, dict] = {}
    if workers == 1 or len(tasks) < 3:
        for k, t in enumerate(tasks):
            results[t["file_id"]] = func(t)
            _tick(progress, k + 1, len(tasks), what)
        return results

    def on_outcome(done) -> None:
        task = done.item
        results[task["file_id"]] = done.value if done.error is None else \
            {"error": done.error, "thumb_error": done.error}
        _tick(progress, len(results), len(tasks), what)

    LocalPoolExecutor(workers, initializer=_quiet_stderr).run(func, tasks, on_outcome)
    return results


def _quiet_stderr() -> None:
    """Workers only: decoder libraries print resync notes on broken files straight to fd 2;
    what matters comes back as the task's error text."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def _tick(progress: bool, done: int, total: int, what: str = "pictures") -> None:
    if progress and (sys.stderr.isatty() or done == total):
        end = "\n" if done == total else "\r"
        print(f"report: {what} {done}/{total}", end=end, file=sys.stderr, flush=True)
