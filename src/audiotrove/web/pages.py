"""The pages' HTML: plain Python functions over the data the views return (no template engine).

Every text from the collection goes through `esc`; no page has an inline script or style (the
Content-Security-Policy forbids them): behaviour lives in static/app.js, looks in static/app.css,
and positions (timeline sections) travel as data-* attributes that app.js applies.
"""
from __future__ import annotations

import html
import json
import math
from urllib.parse import urlencode

from ..catalog.query import QueryError

NAV = [("overview", "/overview", "Overview"), ("files", "/files", "Files"), ("units", "/units", "Units"),
       ("search", "/search", "Search"), ("map", "/map", "Map")]


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def url(path: str, **params) -> str:
    """`path?a=1&b=2`, leaving out parameters that are None or ''."""
    kept = {k: v for k, v in params.items() if v is not None and v != ""}
    return path + ("?" + urlencode(kept) if kept else "")


def layout(title: str, body: str, *, active: str, collection: str, twin: str | None = None,
           notice: str | None = None, scripts: tuple[str, ...] = ("app.js",), styles: tuple[str, ...] = ()) -> str:
    nav = "".join(f'<a href="{href}"{" class=active" if key == active else ""}>{label}</a>'
                  for key, href, label in NAV)
    twin_link = f' <a class="twin" href="{esc(twin)}">JSON</a>' if twin else ""
    note = f'<p class="notice">{esc(notice)}</p>' if notice else ""
    js = "".join(f'<script type="module" src="/static/{s}"></script>' for s in scripts)
    js += "".join(f'<link rel=stylesheet href="/static/{s}">' for s in styles)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width, initial-scale=1'><title>{esc(title)} — audiotrove</title>"
        f'<link rel=stylesheet href="/static/app.css"><link rel=icon href="/static/icon.svg">{js}</head><body>'
        f'<header><span class=brand>audiotrove</span> <span class=coll>{esc(collection)}</span><nav>{nav}</nav></header>'
        f"<main><h1>{esc(title)}{twin_link}</h1>{note}{body}</main></body></html>")


def number(v, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}f}".rstrip("0").rstrip(".") if "." in f"{v:.{digits}f}" else f"{v:.{digits}f}"
    return esc(v)


def hours(seconds: float | None) -> str:
    if not seconds:
        return "0 s"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s" if m else f"{s} s"


def size(n: int | None) -> str:
    n = float(n or 0)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def clock(seconds: float) -> str:
    m, s = divmod(max(0.0, float(seconds)), 60)
    return f"{int(m)}:{s:06.3f}"


def query_error(exc: QueryError, path: str, param: str, params: dict) -> str:
    """The error with its caret under the place, and each suggestion as a link that applies it."""
    sugg = ""
    if exc.suggestions and exc.query:
        links = []
        for s in exc.suggestions[:6]:
            fixed = exc.query[:exc.position] + s + exc.query[exc.position + exc.length:]
            links.append(f'<a href="{esc(url(path, **{**params, param: fixed}))}">{esc(s)}</a>')
        sugg = f'<p class=suggest>did you mean: {", ".join(links)}</p>'
    caret = ""
    if exc.query:
        n = min(exc.length, max(1, len(exc.query) - exc.position))
        caret = f'<pre class=caret>{esc(exc.query)}\n{" " * exc.position}{"^" * n}</pre>'
    return f'<div class=error role=alert><p>{esc(exc.message)} (at position {exc.position + 1})</p>{caret}{sugg}</div>'


def plain_error(message: str) -> str:
    return f'<div class=error role=alert><p>{esc(message)}</p></div>'


# --------------------------------------------------------------------------------- overview

def histogram_svg(hist: dict, *, width: int = 220, height: int = 48) -> str:
    counts = hist.get("counts") or []
    if not counts:
        return ""
    top = max(counts) or 1
    w = width / len(counts)
    bars = "".join(
        f'<rect x="{k * w:.1f}" y="{height - height * c / top:.1f}" width="{max(w - 1, 1):.1f}" '
        f'height="{height * c / top:.1f}"><title>[{hist["edges"][k]:.4g}, {hist["edges"][k + 1]:.4g}): {c}</title></rect>'
        for k, c in enumerate(counts))
    return f'<svg class=hist width="{width}" height="{height}" viewBox="0 0 {width} {height}" role=img>{bars}</svg>'


def _tag_name(cls: str) -> str:
    return cls if all(c.isalnum() or c in "_." for c in cls) else json.dumps(cls)


def overview(data: dict, status: dict, fields, tags: list | None = None) -> str:
    st = data["stats"]
    t = st["totals"]
    parts = [f'<section class=totals><div><b>{t["files"]}</b> files</div><div><b>{t["ok"]}</b> ok</div>'
             f'<div><a href="{esc(url("/files", q="status = error"))}"><b>{t["failed"]}</b> failed</a></div>'
             f'<div><b>{t["pending"]}</b> pending</div><div><b>{hours(t["audio_s"])}</b> of audio</div>'
             f'<div><b>{size(t["bytes"])}</b></div></section>']
    steps = "".join(f"<tr><td>{esc(s['step'])}</td><td>{esc(s['state'])}</td><td class=n>{s['files']}</td></tr>"
                    for s in status["steps"])
    if steps:
        parts.append(f"<h2>Steps</h2><table class=small><tr><th>step</th><th>state</th><th>files</th></tr>{steps}</table>")
    groups = data["problems"]["groups"]
    if groups:
        rows = "".join(
            f'<tr><td><a href="{esc(url("/files", q=g["query"]))}">{esc(g["title"])}</a></td><td class=n>{g["count"]}</td></tr>'
            for g in groups.values() if g.get("query"))
        parts.append(f"<h2>Problems</h2><table class=small><tr><th>class</th><th>files</th></tr>{rows}</table>")
    disc = [(n, s) for n, s in st["fields"].items() if s["kind"] == "discrete"]
    if disc:
        cards = []
        for name, s in disc:
            vals = []
            for v in s["values"]:
                q = v.get("query") or f"{name} = {json.dumps(v['value'])}"
                flag = " class=anomaly" if v["anomaly"] else ""
                vals.append(f'<li{flag}><a href="{esc(url("/files", q=q))}">{esc(_value(v["value"]))}</a> '
                            f'<span class=n>{v["count"]}</span></li>')
            note = f' <span class=anomaly>{s["anomalies"]} anomalous</span>' if s.get("anomalies") else ""
            cards.append(f'<div class=card><h3>{esc(name)}{note}</h3><ul>{"".join(vals)}</ul></div>')
        parts.append(f'<h2>Uniformity</h2><div class=cards>{"".join(cards)}</div>')
    cont = [(n, s) for n, s in st["fields"].items() if s["kind"] == "continuous"]
    if cont:
        cards = []
        for name, s in cont:
            unit = f' ({esc(s["unit"])})' if s.get("unit") else ""
            cards.append(f'<div class=card><h3><a href="{esc(url("/files", q=name + "?", sort=name))}">{esc(name)}</a>{unit}</h3>'
                         f'{histogram_svg(s["histogram"])}<p class=small>median {number(s["median"])}, '
                         f'{number(s["min"])} … {number(s["max"])}, {s["count"]} files</p></div>')
        parts.append(f'<h2>Distributions</h2><div class=cards>{"".join(cards)}</div>')
    if tags:
        rows = "".join(
            f'<tr><td><a href="{esc(url("/files", q="tags." + _tag_name(t["class"]) + "?", sort="tags." + _tag_name(t["class"]) + ":desc"))}">'
            f'{esc(t["class"])}</a></td><td class=n>{t["files"]}</td><td class=n>{number(t["share"], 1)} %</td></tr>'
            for t in tags)
        parts.append(f"<h2>What is in the recordings</h2><table class=small><tr><th>class</th><th>files</th>"
                     f"<th>share of time</th></tr>{rows}</table>")
    restored = data.get("restored") or {}
    if restored.get("count"):
        parts.append(f'<h2>Restored</h2><p><a href="{esc(url("/files", q=restored["query"]))}">'
                     f'{restored["count"]} restored files</a></p>')
    parts.append(f'<p class=small>{len(fields)} fields known: <a href="/fields.json">fields.json</a>, '
                 '<a href="/status.json">status.json</a>.</p>')
    return "".join(parts)


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return "(missing)" if v is None else str(v)


# ------------------------------------------------------------------------------------ files

def files(*, q: str, fields_text: str, sort: str, columns: list, rows: list[dict], count: int | None,
          next_url: str | None, error: str, field_names: list[str], export: dict, first_url: str | None) -> str:
    options = "".join(f"<option value='{esc(n)}'>" for n in field_names)
    form = (
        '<form class=query method=get action="/files">'
        f'<input id=q name=q type=search value="{esc(q)}" placeholder="query, e.g. duration > 10m and snr < 20" '
        'autocomplete=off spellcheck=false aria-label=query>'
        f'<input id=fields name=fields value="{esc(fields_text)}" list=fieldnames placeholder="columns: snr,lufs,duration" aria-label=columns>'
        f'<input type=hidden name=sort value="{esc(sort)}"><button type=submit>Show</button>'
        f'<datalist id=fieldnames>{options}</datalist></form>')
    if error:
        return form + error
    current = {k: (v[:-5] if v.endswith(":desc") else v) for k, v in [("s", sort.split(",")[0] if sort else "")]}["s"]
    desc = bool(sort) and sort.split(",")[0].endswith(":desc")
    heads = []
    for f in columns:
        if f.kind == "list":
            heads.append(f"<th>{esc(f.heading)}</th>")
            continue
        new = f.name + (":desc" if f.name == current and not desc else "")
        mark = (" ▼" if desc else " ▲") if f.name == current else ""
        heads.append(f'<th><a href="{esc(url("/files", q=q, fields=fields_text, sort=new))}" '
                     f'title="{esc(f.name)}">{esc(f.heading)}{mark}</a></th>')
    body = []
    for r in rows:
        cells = []
        for f in columns:
            v = r.get(f.name)
            if f.name == "path":
                cells.append(f'<td class=path><a href="/file/{r["_id"]}">{esc(v)}</a></td>')
            elif f.kind == "number":
                cells.append(f"<td class=n>{esc(f.format(v))}</td>")
            elif f.kind == "list":
                text = json.dumps(v) if v is not None else "–"
                cells.append(f"<td class=list>{esc(text if len(text) < 80 else text[:77] + '…')}</td>")
            else:
                cells.append(f"<td>{esc(f.format(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    n = f"{count} file{'' if count == 1 else 's'} match" if count is not None else ""
    exports = " ".join(f'<a href="{esc(href)}" download>{label}</a>' for label, href in export.items())
    pager = []
    if first_url:
        pager.append(f'<a href="{esc(first_url)}">first page</a>')
    if next_url:
        pager.append(f'<a id=next href="{esc(next_url)}" rel=next>next page</a>')
    return (form + f'<p class=meta><span id=count>{n}</span> · export: {exports}</p>'
            f'<table id=files class=data><thead><tr>{"".join(heads)}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            f'<p class=pager>{" · ".join(pager)}</p>')


# ------------------------------------------------------------------------------------- file

SECTION_ROWS = [("speech", "audio.speech.sections"), ("music", "audio.music.sections"),
                ("silence", "audio.silence.sections"), ("other", "audio.other.sections"),
                ("clipping", "audio.clipping.sections")]


def _get(record: dict, dotted: str):
    v = record
    for part in dotted.split("."):
        if not isinstance(v, dict) or part not in v:
            return None
        v = v[part]
    return v


def timeline(record: dict, duration: float | None) -> str:
    if not duration:
        return ""
    rows = []
    for label, name in SECTION_ROWS:
        secs = _get(record, name) or []
        rows.append((label, [(s[0], s[1], label) for s in secs if isinstance(s, list) and len(s) >= 2]))
    tags = _get(record, "tags.sections") or []
    if tags:
        rows.append(("tags", [(s[0], s[1], str(s[2]) if len(s) > 2 else "tag") for s in tags]))
    out = []
    for label, secs in rows:
        bars = "".join(
            f'<span class="sec {esc(label)}" data-start="{float(a):.3f}" data-end="{float(b):.3f}" '
            f'data-total="{duration:.3f}" data-seek="{float(a):.3f}" title="{esc(t)} {clock(a)}–{clock(b)}">'
            f'{esc(t) if label == "tags" else ""}</span>' for a, b, t in secs[:500])
        out.append(f'<div class=tl-row><span class=tl-label>{esc(label)}</span><div class=tl-track>{bars}</div></div>')
    return f'<div class=timeline id=timeline data-total="{duration:.3f}"><div class=tl-row><span class=tl-label></span><div class=tl-track><span id=playhead></span></div></div>{"".join(out)}</div>'


def transcript(record: dict) -> str:
    words = _get(record, "transcript.words") or []
    if not words:
        text = _get(record, "transcript.text")
        return f"<p>{esc(text)}</p>" if text else ""
    spans = "".join(f'<span class=w data-seek="{float(w[0]):.3f}" title="{clock(w[0])}">{esc(w[2])}</span> '
                    for w in words if isinstance(w, list) and len(w) >= 3)
    return f'<div class=transcript id=transcript>{spans}</div>'


def fields_table(record: dict) -> str:
    from ..catalog.records import flatten

    rows = []
    for name, v in flatten(record).items():
        if name.endswith(".sections") or name in ("transcript.words", "transcript.segments"):
            shown = f"{len(v)} items" if isinstance(v, list) else json.dumps(v)
        else:
            shown = json.dumps(v) if isinstance(v, (list, dict, bool)) or v is None else str(v)
        if len(shown) > 200:
            shown = shown[:197] + "…"
        rows.append(f"<tr><th>{esc(name)}</th><td>{esc(shown)}</td></tr>")
    return f'<table class="fields small">{"".join(rows)}</table>'


def file_page(file_id: int, record: dict, *, playable: bool, enhanced: bool, similar_html: str) -> str:
    duration = _get(record, "media_info.container.duration")
    parts = [f'<p class=path>{esc(record.get("path"))}</p>']
    if record.get("status") == "error":
        parts.append(plain_error(record.get("error") or "failed"))
    mi = record.get("media_info") or {}
    a = mi.get("audio") or {}
    facts = [("duration", clock(duration) if duration else None), ("container", _get(mi, "container.kind")),
             ("codec", a.get("codec")), ("sample rate", f'{a["sample_rate"]} Hz' if a.get("sample_rate") else None),
             ("channels", a.get("channels")), ("loudness", _fmt_unit(_get(record, "audio.loudness.measured"), "LUFS")),
             ("true peak", _fmt_unit(_get(record, "audio.loudness.true_peak"), "dBTP")),
             ("SNR", _fmt_unit(_get(record, "audio.noise.snr_average"), "dB")), ("tags", _get(record, "tags.top"))]
    parts.append("<dl class=facts>" + "".join(f"<div><dt>{k}</dt><dd>{esc(v)}</dd></div>" for k, v in facts
                                              if v is not None) + "</dl>")
    if playable:
        parts.append(f'<div class=players><figure><figcaption>original</figcaption>'
                     f'<audio id=player controls preload=metadata src="/file/{file_id}/audio"></audio></figure>')
        if enhanced:
            parts.append(f'<figure><figcaption>enhanced</figcaption><audio id=enhanced controls preload=none '
                         f'src="/file/{file_id}/enhanced"></audio></figure>')
        parts.append("</div>")
    else:
        parts.append('<p class=notice>no player: the file is not here (a URL not fetched, a file moved) or the '
                     'browser cannot play its format; its units and search hits play as WAV cuts</p>')
    if record.get("status") == "ok":
        parts.append(f'<img class=picture id=picture src="/file/{file_id}/picture.webp" '
                     'alt="waveform and spectrogram">')
    parts.append(timeline(record, duration))
    tr = transcript(record)
    if tr:
        parts.append(f"<h2>Transcript</h2>{tr}")
    parts.append(f"<h2>Most similar files</h2>{similar_html}")
    parts.append(f'<p><a href="{esc(url("/units", where=_path_query(record.get("path"))))}">units of this file</a></p>')
    parts.append(f"<h2>Fields</h2>{fields_table(record)}")
    return "".join(parts)


def _unit_ref(file_id, unit) -> str:
    return f"{file_id}:{unit}"


def _path_query(path) -> str:
    return "path = " + json.dumps(str(path))


def _fmt_unit(v, unit: str):
    return None if v is None else f"{v} {unit}"


# ------------------------------------------------------------------------------------ units

UNIT_SHOWN = ("start", "dur", "power", "hz", "note", "clarity", "centroid")


def units(*, params: dict, records: list[dict], error: str, render_url: str | None, note: str) -> str:
    form = (
        '<form class=query method=get action="/units">'
        f'<input id=uq name=q value="{esc(params.get("q"))}" placeholder="unit filter: power > -30 and clarity > 0.8" aria-label="unit filter">'
        f'<input name=where value="{esc(params.get("where"))}" placeholder="file filter: duration > 1m" aria-label="file filter">'
        f'<input name=sort value="{esc(params.get("sort"))}" placeholder="sort: power:desc:0.75,clarity:desc" aria-label=sort>'
        f'<input name=per_file type=number min=1 value="{esc(params.get("per_file"))}" placeholder="per file" aria-label="per file">'
        f'<input name=limit type=number min=1 value="{esc(params.get("limit"))}" placeholder="limit" aria-label=limit>'
        '<button type=submit>Show</button></form>')
    if error:
        return form + error
    head = "".join(f"<th>{c}</th>" for c in ("", *UNIT_SHOWN, "path", ""))
    body = []
    for r in records:
        cells = [f'<td><button class=play data-src="/unit/{r["file_id"]}/{r["unit"]}.wav" '
                 f'title="play unit {r["unit"]}">▶</button></td>']
        for c in UNIT_SHOWN:
            v = r.get(c)
            if c == "note" and v is not None and r.get("octave") is not None:
                v = f"{v}{int(r['octave'])}"
            cells.append(f"<td class=n>{number(v)}</td>" if c != "note" else f"<td>{esc(v or '')}</td>")
        cells.append(f'<td class=path><a href="/file/{r["file_id"]}">{esc(r["path"])}</a></td>')
        cells.append(f'<td><a href="{esc(url("/similar", target=_unit_ref(r["file_id"], r["unit"])))}">similar</a></td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    render = f' · <a id=render href="{esc(render_url)}" download>render the selection as one WAV</a>' if render_url else ""
    hover = ' · <label><input type=checkbox id=hoverplay> play on hover</label>'
    return (form + f'<p class=meta><span id=count>{len(records)} units</span>{render}{hover}{" · " + esc(note) if note else ""}</p>'
            f'<table id=units class=data><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')


# ---------------------------------------------------------------------------------- similar

def neighbours(records: list[dict], ids: dict[str, int]) -> str:
    if not records:
        return "<p>no neighbours</p>"
    has_units = any("power" in r for r in records)  # unit level (the CLI tells it the same way)
    rows = []
    for r in records:
        fid = ids.get(r.get("path"))
        start, dur = float(r.get("start") or 0), float(r.get("dur") or 0)
        src = (f'/unit/{fid}/{r["unit"]}.wav' if has_units and r.get("unit") is not None
               else url(f"/file/{fid}/cut.wav", start=f"{start:.3f}", dur=f"{min(dur, 30.0):.3f}"))
        play = f'<button class=play data-src="{esc(src)}">▶</button>' if fid is not None and dur > 0 else ""
        link = f'<a href="/file/{fid}">{esc(r.get("path"))}</a>' if fid is not None else esc(r.get("path"))
        more = f'<a href="{esc(url("/similar", target=_unit_ref(fid, r["unit"])))}">similar</a>' if has_units and fid is not None else ""
        rows.append(f'<tr><td>{play}</td><td class=n>{r.get("rank")}</td><td class=n>{number(r.get("distance"), 4)}</td>'
                    f'<td class=n>{number(start, 3)}</td><td class=n>{number(dur, 3)}</td><td class=path>{link}</td><td>{more}</td></tr>')
    return ('<table class="data neighbours"><thead><tr><th></th><th>rank</th><th>distance</th><th>start</th><th>dur</th>'
            f'<th>path</th><th></th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def similar_page(*, target: str, params: dict, body: str) -> str:
    form = ('<form class=query method=get action="/similar">'
            f'<input name=target value="{esc(target)}" placeholder="FILE_ID:UNIT or FILE_ID" aria-label=target>'
            f'<input name=k type=number min=1 max=200 value="{esc(params.get("k"))}" placeholder=k aria-label=k>'
            f'<input name=level value="{esc(params.get("level"))}" placeholder="level: unit, window, file" aria-label=level>'
            f'<input name=model value="{esc(params.get("model"))}" placeholder="model: yamnet, descriptors" aria-label=model>'
            '<button type=submit>Find</button></form>')
    return form + body


# ----------------------------------------------------------------------------------- search

def search(*, params: dict, hits: list[dict], ids: dict[str, int], error: str, searched: int | None) -> str:
    form = ('<form class=query method=get action="/search">'
            f'<input id=phrase name=phrase type=search value="{esc(params.get("phrase"))}" placeholder="words to find" aria-label=phrase>'
            f'<input name=where value="{esc(params.get("where"))}" placeholder="file filter" aria-label="file filter">'
            f'<input name=context value="{esc(params.get("context"))}" placeholder="context: 5s" aria-label=context>'
            '<button type=submit>Search</button></form>')
    if error:
        return form + error
    if searched is None:
        return form
    rows = []
    for h in hits:
        fid = ids.get(h["path"])
        start, end = float(h["start"]), float(h["end"])
        src = url(f"/file/{fid}/cut.wav", start=f"{max(0.0, start - 0.25):.3f}", dur=f"{end - start + 0.5:.3f}")
        ctx = esc(h["context"]).replace("[", "<mark>").replace("]", "</mark>")
        rows.append(f'<tr><td><button class=play data-src="{esc(src)}">▶</button></td>'
                    f'<td><a href="/file/{fid}">{esc(h["path"])}</a></td><td class=n>{clock(start)}</td><td>{ctx}</td></tr>')
    return (form + f'<p class=meta><span id=count>{len(hits)} hit{"" if len(hits) == 1 else "s"}</span> in {searched} transcript(s)</p>'
            f'<table id=hits class=data><thead><tr><th></th><th>path</th><th>time</th><th>context</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


__all__ = ["layout", "esc", "url", "query_error", "plain_error", "overview", "files", "file_page",
           "units", "neighbours", "similar_page", "search"]
