// mappage.js: the interactive map page around mapview.js: toolbar, legend, player, selection.
//
//   import { mountMapPage } from "./mappage.js";
//   mountMapPage(document.getElementById("app"), data, { audioUrl: (path, fileId) => url });
//
// `data` is views.map_points' result (plus, from `map --html`, files.url: a URL per file).
// Hover a point: its unit is shown (and played when "play on hover" is ticked); click: play it.
// Shift-drag (or drag in "select" mode): a box; alt-drag (or drag in "lasso" mode): a free-hand
// outline; with Ctrl / Cmd held, the new points are added; the selected units are listed, and can be
// copied as CSV or as a query (`audiotrove units QUERY` / `ls QUERY`).
import { mountMap, renderLegend } from "./mapview.js";

const LIST_MAX = 500; // rows listed on the page (the copies hold every selected point)
const QUERY_MAX_FILES = 100; // a units query names at most this many files (2 conditions each)

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const c of children) e.append(c);
  return e;
}

function baseName(path) { return path.split(/[\\/]/).pop(); }

function csvCell(v) {
  const s = v === null || v === undefined ? "" : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function quote(s) { return `"${String(s).replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`; }

export function mountMapPage(root, data, opts = {}) {
  const c = data.columns;
  const n = c.x.length;
  const pathOf = new Map(data.files.file_id.map((id, k) => [id, data.files.path[k]]));
  const urlOf = new Map(data.files.file_id.map((id, k) => [id, data.files.url ? data.files.url[k] : null]));
  const audioUrl = (i) => urlOf.get(c.file_id[i]) || (opts.audioUrl ? opts.audioUrl(pathOf.get(c.file_id[i]), c.file_id[i]) : null);
  const level = data.level;

  // --- DOM ----------------------------------------------------------------------------------
  const colour = el("select", { id: "map-color", title: "colour the points by" });
  for (const f of Object.keys(data.colors)) colour.append(el("option", { value: f, textContent: f }));
  colour.value = data.color in data.colors ? data.color : "cluster";
  const view = el("select", { id: "map-view", title: "the 2-D map or its grid" },
    el("option", { value: "map", textContent: "map" }));
  if (data.grid) view.append(el("option", { value: "grid", textContent: `grid ${data.grid[0]}x${data.grid[1]}` }));
  const mode = el("select", { id: "map-mode", title: "drag to pan, to select a box (shift-drag too) or to draw a lasso (alt-drag too)" },
    el("option", { value: "pan", textContent: "drag: pan" }), el("option", { value: "select", textContent: "drag: box" }),
    el("option", { value: "lasso", textContent: "drag: lasso" }));
  const hoverPlay = el("input", { type: "checkbox", id: "map-hoverplay", checked: true });
  const fitBtn = el("button", { id: "map-fit", textContent: "fit", type: "button" });
  const title = `${data.name}: ${data.shown.toLocaleString("en")}${data.sampled ? ` of ${data.count.toLocaleString("en")}` : ""} ${level}s` +
    ` · ${data.model || ""} / ${data.method || ""}`;
  const toolbar = el("div", { className: "map-toolbar" },
    el("strong", { textContent: title }), " colour ", colour, " view ", view, " ", mode, " ",
    el("label", {}, hoverPlay, " play on hover"), " ", fitBtn,
    el("span", { className: "map-help", textContent: " wheel: zoom · drag: pan · shift-drag: box · alt-drag: lasso · +Ctrl: add (Esc clears) · click: play · double-click: fit" }));
  const canvas = el("canvas", { id: "map-canvas" });
  const info = el("div", { id: "map-hovered", className: "map-hovered", textContent: "hover a point" });
  const legend = el("div", { id: "map-legend", className: "map-legend" });
  const audio = el("audio", { id: "map-audio", controls: true, preload: "none" });
  const selInfo = el("div", { id: "map-selcount", textContent: "no selection (shift-drag a box, alt-drag a lasso)" });
  const selList = el("table", { id: "map-selection", className: "map-selection" });
  const copyCsv = el("button", { id: "map-copy-csv", textContent: "copy CSV", type: "button", disabled: true });
  const copyQuery = el("button", { id: "map-copy-query", textContent: "copy query", type: "button", disabled: true });
  const clearBtn = el("button", { id: "map-clear", textContent: "clear", type: "button", disabled: true });
  const copied = el("textarea", { id: "map-copied", readOnly: true, rows: 4, placeholder: "copied text appears here too" });
  const side = el("div", { className: "map-side" }, info, audio, legend,
    el("div", { className: "map-selbar" }, selInfo, copyCsv, copyQuery, clearBtn), copied, selList);
  root.append(toolbar, el("div", { className: "map-main" }, el("div", { className: "map-canvas-box" }, canvas), side));

  // --- playing ------------------------------------------------------------------------------
  let stopTimer = 0;
  function play(i) {
    if (i < 0) return;
    const url = audioUrl(i);
    if (!url) return;
    const start = c.start[i] || 0, dur = c.dur[i];
    clearTimeout(stopTimer);
    audio.src = dur ? `${url}#t=${start},${start + dur}` : `${url}#t=${start}`;
    audio.dataset.point = String(i);
    const p = audio.play();
    if (p && p.catch) p.catch(() => {}); // autoplay refused before the first click: nothing to do
    if (dur) stopTimer = setTimeout(() => audio.pause(), dur * 1000 + 150);
  }

  const audioNote = el("div", { id: "map-audio-note", className: "map-audio-note" });
  audio.after(audioNote);
  audio.addEventListener("error", () => {
    const i = Number(audio.dataset.point);
    audioNote.textContent = `cannot play ${i >= 0 ? baseName(pathOf.get(c.file_id[i])) : "this"}: ` +
      "the file is not reachable from this page, or the browser does not decode its format";
  });
  audio.addEventListener("playing", () => { audioNote.textContent = ""; });

  function describe(i) {
    const path = pathOf.get(c.file_id[i]);
    const where = level === "file" ? "" : `:${c.unit[i]}`;
    const span = level === "file" ? `${(c.dur[i] ?? 0).toFixed(1)} s`
      : `${(c.start[i] ?? 0).toFixed(2)} s + ${(c.dur[i] ?? 0).toFixed(2)} s`;
    const spec = data.colors[colour.value];
    let value = "";
    if (spec) {
      const v = spec.values[i];
      value = spec.kind === "range" ? (v === null ? "none" : String(v))
        : (v >= 0 && v < spec.legend.length ? spec.legend[v].label : "none");
      value = ` · ${colour.value} ${value}`;
    }
    return { path, text: `${baseName(path)}${where} · ${span} · cluster ${c.cluster[i]}${value}` };
  }

  // --- the map --------------------------------------------------------------------------------
  const map = mountMap(canvas, data, {
    colorBy: colour.value,
    onHover(i) {
      if (i < 0) { info.textContent = "hover a point"; info.dataset.point = "-1"; return; }
      const d = describe(i);
      info.textContent = d.text;
      info.title = d.path;
      info.dataset.point = String(i);
      if (hoverPlay.checked) play(i);
    },
    onClick(i) { play(i); },
    onSelect: showSelection,
  });
  renderLegend(legend, data, colour.value);
  colour.addEventListener("change", () => { map.setColor(colour.value); renderLegend(legend, data, colour.value); });
  view.addEventListener("change", () => map.setView(view.value));
  mode.addEventListener("change", () => map.setMode(mode.value));
  fitBtn.addEventListener("click", () => map.fit());

  // --- the selection --------------------------------------------------------------------------
  let lastBox = null;
  function showSelection(sel) {
    selList.textContent = "";
    const any = sel.length > 0;
    copyCsv.disabled = copyQuery.disabled = clearBtn.disabled = !any;
    selList.dataset.count = String(sel.length);
    if (!any) { selInfo.textContent = "no selection (shift-drag a box, alt-drag a lasso)"; return; }
    selInfo.textContent = `${sel.length.toLocaleString("en")} selected` + (sel.length > LIST_MAX ? ` (first ${LIST_MAX} listed)` : "");
    selList.append(el("tr", {}, ...["path", level === "file" ? "file" : "unit", "start", "dur"].map((h) => el("th", { textContent: h }))));
    for (const i of sel.slice(0, LIST_MAX)) {
      const tr = el("tr", { className: "map-selrow" });
      tr.dataset.point = String(i);
      tr.append(el("td", { textContent: baseName(pathOf.get(c.file_id[i])), title: pathOf.get(c.file_id[i]) }),
        el("td", { textContent: String(level === "file" ? c.file_id[i] : c.unit[i]) }),
        el("td", { textContent: (c.start[i] ?? 0).toFixed(2) }), el("td", { textContent: (c.dur[i] ?? 0).toFixed(2) }));
      tr.addEventListener("click", () => play(i));
      selList.append(tr);
    }
  }

  function csv(sel) {
    const rows = [["path", "file_id", "unit", "start", "dur", "cluster"].join(",")];
    for (const i of sel) rows.push([pathOf.get(c.file_id[i]), c.file_id[i], c.unit[i], c.start[i], c.dur[i], c.cluster[i]].map(csvCell).join(","));
    return rows.join("\n") + "\n";
  }

  /** The selection as a query: `units QUERY` (units) or `ls QUERY` (files); null if none fits. */
  function query(sel) {
    const byFile = new Map();
    for (const i of sel) {
      if (!byFile.has(c.file_id[i])) byFile.set(c.file_id[i], []);
      byFile.get(c.file_id[i]).push(c.unit[i]);
    }
    if (level === "file") return `ls 'path in (${[...byFile.keys()].map((f) => quote(pathOf.get(f))).join(", ")})'`;
    if (level === "unit" && byFile.size <= QUERY_MAX_FILES) {
      const parts = [...byFile].map(([f, units]) => `(file_id = ${f} and unit in (${units.sort((a, b) => a - b).join(", ")}))`);
      return `units '${parts.join(" or ")}'`;
    }
    if (level === "unit" && data.name === "map" && lastBox && map.selectionShape === "box") { // the box itself, on the map's fields
      const [f1, f2] = map.view === "grid" ? ["grid.col", "grid.row"] : ["map.x", "map.y"];
      const [x0, y0, x1, y1] = lastBox;
      return `units '${f1} >= ${x0} and ${f1} <= ${x1} and ${f2} >= ${y0} and ${f2} <= ${y1}'`;
    }
    return null;
  }

  async function copy(text) {
    copied.value = text;
    copied.select();
    try { await navigator.clipboard.writeText(text); } catch (e) { document.execCommand?.("copy"); }
  }
  copyCsv.addEventListener("click", () => copy(csv(map.selected)));
  copyQuery.addEventListener("click", () => {
    const q = query(map.selected);
    copy(q || `# ${map.selected.length} ${level}s span too many files for one query: copy the CSV`);
  });
  clearBtn.addEventListener("click", () => map.select(null));
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && map.selected.length) map.select(null); });
  canvas.addEventListener("pointerup", () => { // remember the box (data units) for the box query
    const sel = map.selected;
    if (!sel.length) { lastBox = null; return; }
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    const xs = map.view === "grid" ? c.col : c.x, ys = map.view === "grid" ? c.row : c.y;
    for (const i of sel) {
      x0 = Math.min(x0, xs[i]); x1 = Math.max(x1, xs[i]); y0 = Math.min(y0, ys[i]); y1 = Math.max(y1, ys[i]);
    }
    const pad = map.view === "grid" ? 0 : 1e-4 * Math.max(x1 - x0, y1 - y0, 1e-9); // the shown values are rounded
    lastBox = [x0 - pad, y0 - pad, x1 + pad, y1 + pad].map((v) => +v.toPrecision(7));
  });

  return { map, play, csv, query };
}
