// mapview.js: draw a map of up to 1 000 000 points on a <canvas>, with no dependencies.
//
//   import { mountMap, renderLegend } from "./mapview.js";
//   const map = mountMap(canvas, data, { onHover, onClick, onSelect, colorBy: "cluster" });
//   map.setColor("power"); map.setView("grid"); map.setMode("select"); map.fit();
//
// `data` is what audiotrove's views.map_points returns (`map --html` inlines it): columns
// x, y, cluster, col, row, file_id, unit, start, dur (one entry per point), colors (per field:
// {kind: "category", values: codes, legend} or {kind: "range", values, low, high}), grid.
//
// Drawing: every frame writes the points straight into an ImageData (one pixel each when
// zoomed out, squares growing with the zoom while the points on screen are few), then strokes
// the hovered point and the selection box on top. Hover: a bucket grid over the data (each
// bucket holding about 4 points) answers "nearest point within 12 px" by looking at a few
// buckets. Pan: drag; zoom: wheel; box select: shift-drag (or drag in "select" mode); lasso
// select: alt-drag (or drag in "lasso" mode), a free-hand outline closed by a straight line;
// holding Ctrl (or Cmd) while a box or lasso ends adds its points to the selection;
// double-click: fit. Callbacks get point indices (into the columns).

const HOVER_PX = 12;
const BACKGROUND = [255, 255, 255];
// tab20, reordered so the first ten are tab10 (distinct first)
export const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
  "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5", "#555555"];
const NONE_COLOUR = "#bbbbbb";
// viridis, 9 stops (matplotlib), interpolated
const VIRIDIS = [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]];

function hexRgb(hex) {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

export function viridis(t) {
  t = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(t));
  const f = t - i;
  return VIRIDIS[i].map((c, k) => Math.round(c + f * (VIRIDIS[i + 1][k] - c)));
}

function rgbCss(c) { return `rgb(${c[0]},${c[1]},${c[2]})`; }

function packRgb(c) { return (255 << 24) | (c[2] << 16) | (c[1] << 8) | c[0]; } // ImageData is RGBA bytes, little-endian

/** The legend of colour field `field`: {kind: "category", items: [{label, count, css}]}
 *  or {kind: "range", low, high, unit, stops: [css...]}. */
export function legendOf(data, field) {
  const spec = data.colors[field];
  if (!spec) return null;
  if (spec.kind === "range") {
    return { kind: "range", field, low: spec.low, high: spec.high, unit: spec.unit || "",
      stops: Array.from({ length: 11 }, (_, k) => rgbCss(viridis(k / 10))) };
  }
  const items = spec.legend.map((e, k) => ({ label: e.label, count: e.count,
    css: e.value === null && e.label === "other" ? PALETTE[PALETTE.length - 1] : PALETTE[k % (PALETTE.length - 1)] }));
  const missing = spec.values.reduce((n, v) => n + (v < 0 ? 1 : 0), 0);
  if (missing) items.push({ label: "none", count: missing, css: NONE_COLOUR });
  return { kind: "category", field, items };
}

/** Write the legend of `field` into element `el` (plain DOM). */
export function renderLegend(el, data, field) {
  const lg = legendOf(data, field);
  el.textContent = "";
  if (!lg) return;
  const title = document.createElement("div");
  title.className = "legend-title";
  title.textContent = field + (lg.unit ? ` (${lg.unit})` : "");
  el.appendChild(title);
  if (lg.kind === "range") {
    const bar = document.createElement("div");
    bar.className = "legend-bar";
    bar.style.background = `linear-gradient(to right, ${lg.stops.join(",")})`;
    bar.style.height = "10px";
    const ends = document.createElement("div");
    ends.className = "legend-ends";
    ends.style.display = "flex";
    ends.style.justifyContent = "space-between";
    ends.innerHTML = "<span></span><span></span>";
    ends.children[0].textContent = `≤ ${lg.low}`;
    ends.children[1].textContent = `≥ ${lg.high}`;
    el.append(bar, ends);
    return;
  }
  for (const it of lg.items) {
    const row = document.createElement("div");
    row.className = "legend-item";
    const sw = document.createElement("span");
    sw.className = "legend-swatch";
    sw.style.cssText = `display:inline-block;width:10px;height:10px;margin-right:4px;background:${it.css}`;
    row.append(sw, document.createTextNode(`${it.label} (${it.count})`));
    el.appendChild(row);
  }
}

/** Point i's colour codes for field `field`: a Uint32Array of packed RGBA. */
function colourArray(data, field, n) {
  const out = new Uint32Array(n);
  const spec = data.colors[field] || data.colors.cluster;
  const none = packRgb(hexRgb(NONE_COLOUR));
  if (spec.kind === "range") {
    const lut = Array.from({ length: 256 }, (_, k) => packRgb(viridis(k / 255)));
    const lo = spec.low, span = spec.high - spec.low || 1;
    for (let i = 0; i < n; i++) {
      const v = spec.values[i];
      out[i] = v === null || v === undefined ? none
        : lut[Math.max(0, Math.min(255, Math.round(((v - lo) / span) * 255)))];
    }
  } else {
    const pal = spec.legend.map((e, k) => packRgb(hexRgb(
      e.value === null && e.label === "other" ? PALETTE[PALETTE.length - 1] : PALETTE[k % (PALETTE.length - 1)])));
    for (let i = 0; i < n; i++) {
      const c = spec.values[i];
      out[i] = c >= 0 && c < pal.length ? pal[c] : none;
    }
  }
  return out;
}

/** Positions of the points in view "map" (x, y) or "grid" (cell centres). NaN: not placed. */
function positions(data, view, n) {
  const px = new Float64Array(n), py = new Float64Array(n);
  const c = data.columns;
  for (let i = 0; i < n; i++) {
    if (view === "grid") {
      const col = c.col[i], row = c.row[i];
      px[i] = col === null ? NaN : col + 0.5;
      py[i] = row === null ? NaN : row + 0.5;
    } else {
      px[i] = c.x[i] === null ? NaN : c.x[i];
      py[i] = c.y[i] === null ? NaN : c.y[i];
    }
  }
  return [px, py];
}

/** A bucket grid over the points: nearest point to (x, y) within r, in data units. */
export function bucketIndex(px, py) {
  const n = px.length;
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity, placed = 0;
  for (let i = 0; i < n; i++) {
    const x = px[i], y = py[i];
    if (!(x === x && y === y)) continue; // NaN
    placed++;
    if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
  }
  if (!placed) { x0 = y0 = 0; x1 = y1 = 1; }
  const B = Math.max(1, Math.min(2048, Math.ceil(Math.sqrt(placed / 4))));
  const bw = (x1 - x0) / B || 1, bh = (y1 - y0) / B || 1;
  const cell = new Int32Array(n);
  const start = new Int32Array(B * B + 1);
  for (let i = 0; i < n; i++) {
    const x = px[i], y = py[i];
    if (!(x === x && y === y)) { cell[i] = -1; continue; }
    const bx = Math.min(B - 1, Math.floor((x - x0) / bw)), by = Math.min(B - 1, Math.floor((y - y0) / bh));
    cell[i] = by * B + bx;
    start[cell[i] + 1]++;
  }
  for (let k = 0; k < B * B; k++) start[k + 1] += start[k];
  const fill = start.slice(0, B * B);
  const order = new Int32Array(placed);
  for (let i = 0; i < n; i++) if (cell[i] >= 0) order[fill[cell[i]]++] = i;
  return {
    bounds: [x0, y0, x1, y1],
    nearest(x, y, r) {
      const bxa = Math.max(0, Math.floor((x - r - x0) / bw)), bxb = Math.min(B - 1, Math.floor((x + r - x0) / bw));
      const bya = Math.max(0, Math.floor((y - r - y0) / bh)), byb = Math.min(B - 1, Math.floor((y + r - y0) / bh));
      let best = -1, bestD = r * r;
      for (let by = bya; by <= byb; by++) {
        for (let bx = bxa; bx <= bxb; bx++) {
          const k = by * B + bx;
          for (let j = start[k]; j < start[k + 1]; j++) {
            const i = order[j], dx = px[i] - x, dy = py[i] - y, d = dx * dx + dy * dy;
            if (d <= bestD) { bestD = d; best = i; }
          }
        }
      }
      return best;
    },
  };
}

/**
 * Draw `data` on `canvas` and make it interactive. Options: colorBy (a key of data.colors),
 * view ("map" | "grid"), mode ("pan" | "select" | "lasso"), onHover(i | -1, event), onClick(i, event),
 * onSelect(Int32Array of indices), onDraw({drawn, ms}). Returns the controller.
 */
export function mountMap(canvas, data, opts = {}) {
  const n = data.columns.x.length;
  const ctx = canvas.getContext("2d");
  const state = { view: opts.view === "grid" && data.grid ? "grid" : "map", colorBy: opts.colorBy || data.color || "cluster",
    mode: opts.mode || "pan", scale: 1, tx: 0, ty: 0, hover: -1, box: null, lasso: null, selected: null, shape: null,
    drawn: 0, visible: n, frame: 0 };
  let px, py, index, colours, dimmed, mark;

  function flip() { return state.view === "grid" ? 1 : -1; } // the map's y grows upwards, grid rows downwards
  function toScreen(x, y) { return [x * state.scale + state.tx, flip() * y * state.scale + state.ty]; }
  function toData(sx, sy) { return [(sx - state.tx) / state.scale, flip() * (sy - state.ty) / state.scale]; }

  function layoutPoints() {
    [px, py] = positions(data, state.view, n);
    index = bucketIndex(px, py);
  }
  function paint() {
    colours = colourArray(data, state.colorBy, n);
    dimmed = null;
    if (state.selected) {
      dimmed = new Uint32Array(n);
      const [br, bg, bb] = BACKGROUND;
      for (let i = 0; i < n; i++) {
        const c = colours[i];
        const r = c & 255, g = (c >> 8) & 255, b = (c >> 16) & 255;
        dimmed[i] = packRgb([(r + 3 * br) >> 2, (g + 3 * bg) >> 2, (b + 3 * bb) >> 2]);
      }
      mark = new Uint8Array(n);
      for (const i of state.selected) mark[i] = 1;
    }
  }

  function resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(canvas.clientWidth * dpr)), h = Math.max(1, Math.round(canvas.clientHeight * dpr));
    if (canvas.width !== w || canvas.height !== h) {
      const cx = canvas.width / 2, cy = canvas.height / 2;
      canvas.width = w; canvas.height = h;
      return [cx, cy];
    }
    return null;
  }

  function fit() {
    resize();
    let [x0, y0, x1, y1] = index.bounds;
    if (state.view === "grid") { x0 = 0; y0 = 0; x1 = data.grid[0]; y1 = data.grid[1]; }
    const w = canvas.width, h = canvas.height, pad = 12 * (window.devicePixelRatio || 1);
    const sx = (x1 - x0) || 1, sy = (y1 - y0) || 1;
    state.scale = Math.min((w - 2 * pad) / sx, (h - 2 * pad) / sy);
    state.tx = w / 2 - ((x0 + x1) / 2) * state.scale;
    state.ty = h / 2 - flip() * ((y0 + y1) / 2) * state.scale;
    request();
  }

  function pointSize() {
    const dpr = window.devicePixelRatio || 1;
    if (state.view === "grid") return Math.max(1, Math.floor(state.scale * 0.9));
    const area = canvas.width * canvas.height;
    const s = Math.round(0.35 * Math.sqrt(area / Math.max(1, state.visible)));
    return Math.max(1, Math.min(Math.round(8 * dpr), s));
  }

  function draw() {
    const t0 = performance.now();
    const w = canvas.width, h = canvas.height;
    const img = ctx.createImageData(w, h);
    const buf = new Uint32Array(img.data.buffer);
    buf.fill(packRgb(BACKGROUND));
    const s = pointSize(), half = s >> 1;
    const sc = state.scale, tx = state.tx, ty = state.ty, fy = flip() * sc;
    const col = dimmed || colours;
    let drawn = 0;
    for (let pass = 0; pass < (dimmed ? 2 : 1); pass++) { // selected points on top
      for (let i = 0; i < n; i++) {
        if (dimmed && mark[i] !== pass) continue;
        const x = px[i], y = py[i];
        if (!(x === x && y === y)) continue;
        const sx = Math.floor(x * sc + tx) - half, sy = Math.floor(y * fy + ty) - half;
        if (sx + s <= 0 || sy + s <= 0 || sx >= w || sy >= h) continue;
        drawn++;
        const c = pass ? colours[i] : col[i];
        if (s === 1) { buf[sy * w + sx] = c; continue; }
        const xa = Math.max(0, sx), xb = Math.min(w, sx + s), ya = Math.max(0, sy), yb = Math.min(h, sy + s);
        for (let yy = ya; yy < yb; yy++) buf.fill(c, yy * w + xa, yy * w + xb);
      }
    }
    ctx.putImageData(img, 0, 0);
    state.drawn = drawn;
    state.visible = drawn;
    overlay();
    canvas.dataset.drawn = String(drawn);
    canvas.dataset.view = state.view;
    const ms = performance.now() - t0;
    if (opts.onDraw) opts.onDraw({ drawn, ms });
  }

  function overlay() {
    const dpr = window.devicePixelRatio || 1;
    if (state.hover >= 0) {
      const [sx, sy] = toScreen(px[state.hover], py[state.hover]);
      ctx.lineWidth = 2 * dpr;
      ctx.strokeStyle = "#000";
      ctx.beginPath();
      ctx.arc(sx, sy, Math.max(5 * dpr, pointSize()), 0, 2 * Math.PI);
      ctx.stroke();
    }
    if (state.box) {
      const [ax, ay, bx, by] = state.box;
      ctx.lineWidth = dpr;
      ctx.strokeStyle = "#0060df";
      ctx.fillStyle = "rgba(0,96,223,0.08)";
      ctx.fillRect(Math.min(ax, bx), Math.min(ay, by), Math.abs(bx - ax), Math.abs(by - ay));
      ctx.strokeRect(Math.min(ax, bx), Math.min(ay, by), Math.abs(bx - ax), Math.abs(by - ay));
    }
    if (state.lasso && state.lasso.length > 1) {
      ctx.lineWidth = dpr;
      ctx.strokeStyle = "#0060df";
      ctx.fillStyle = "rgba(0,96,223,0.08)";
      ctx.beginPath();
      ctx.moveTo(state.lasso[0][0], state.lasso[0][1]);
      for (const [x, y] of state.lasso) ctx.lineTo(x, y);
      ctx.closePath();
      ctx.fill();
      ctx.stroke();
    }
  }

  function request() {
    if (state.frame) return;
    state.frame = requestAnimationFrame(() => { state.frame = 0; draw(); });
  }

  function eventXY(e) {
    const r = canvas.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
    return [(e.clientX - r.left) * dpr, (e.clientY - r.top) * dpr];
  }

  /** Index of the point nearest canvas pixel (sx, sy) within HOVER_PX, or -1. */
  function nearest(sx, sy) {
    const [x, y] = toData(sx, sy);
    const r = (HOVER_PX * (window.devicePixelRatio || 1)) / state.scale;
    return index.nearest(x, y, r);
  }

  /** Indices of the points inside the canvas-pixel box (ax, ay)-(bx, by). */
  function inBox(ax, ay, bx, by) {
    const [x0, y0] = toData(Math.min(ax, bx), Math.min(ay, by));
    const [x1, y1] = toData(Math.max(ax, bx), Math.max(ay, by));
    const xa = Math.min(x0, x1), xb = Math.max(x0, x1), ya = Math.min(y0, y1), yb = Math.max(y0, y1);
    const hits = [];
    for (let i = 0; i < n; i++) {
      const x = px[i], y = py[i];
      if (x >= xa && x <= xb && y >= ya && y <= yb) hits.push(i);
    }
    return Int32Array.from(hits);
  }

  /** Indices of the points inside the polygon of canvas pixels [[sx, sy], ...] (closed by a
   * straight line from the last vertex to the first; even-odd rule, as canvas fills it). */
  function inPolygon(vertices) {
    if (!vertices || vertices.length < 3) return new Int32Array(0);
    const vx = new Float64Array(vertices.length), vy = new Float64Array(vertices.length);
    vertices.forEach(([sx, sy], k) => { [vx[k], vy[k]] = toData(sx, sy); });
    let xa = Infinity, xb = -Infinity, ya = Infinity, yb = -Infinity;
    for (let k = 0; k < vx.length; k++) {
      xa = Math.min(xa, vx[k]); xb = Math.max(xb, vx[k]); ya = Math.min(ya, vy[k]); yb = Math.max(yb, vy[k]);
    }
    const m = vx.length, hits = [];
    for (let i = 0; i < n; i++) {
      const x = px[i], y = py[i];
      if (!(x >= xa && x <= xb && y >= ya && y <= yb)) continue;
      let inside = false;
      for (let a = 0, b = m - 1; a < m; b = a++) { // a crossing of the ray from (x, y) towards +x
        if ((vy[a] > y) !== (vy[b] > y) && x < vx[b] + ((y - vy[b]) * (vx[a] - vx[b])) / (vy[a] - vy[b])) inside = !inside;
      }
      if (inside) hits.push(i);
    }
    return Int32Array.from(hits);
  }

  // --- events ---------------------------------------------------------------------------
  let drag = null;
  const onDown = (e) => {
    if (e.button !== 0) return;
    const [sx, sy] = eventXY(e);
    const kind = e.altKey || state.mode === "lasso" ? "lasso" : e.shiftKey || state.mode === "select" ? "box" : "pan";
    drag = { sx, sy, tx: state.tx, ty: state.ty, kind, moved: false };
    if (kind === "lasso") state.lasso = [[sx, sy]];
    canvas.setPointerCapture?.(e.pointerId);
  };
  const onMove = (e) => {
    const [sx, sy] = eventXY(e);
    if (drag) {
      if (Math.abs(sx - drag.sx) + Math.abs(sy - drag.sy) > 3) drag.moved = true;
      if (drag.kind === "box") state.box = [drag.sx, drag.sy, sx, sy];
      else if (drag.kind === "lasso") {
        const [lx, ly] = state.lasso[state.lasso.length - 1];
        if (Math.abs(sx - lx) + Math.abs(sy - ly) >= 2) state.lasso.push([sx, sy]);
      } else { state.tx = drag.tx + sx - drag.sx; state.ty = drag.ty + sy - drag.sy; }
      request();
      return;
    }
    const i = nearest(sx, sy);
    if (i !== state.hover) {
      state.hover = i;
      request();
      if (opts.onHover) opts.onHover(i, e);
    }
  };
  const onUp = (e) => {
    if (!drag) return;
    const d = drag;
    drag = null;
    const [sx, sy] = eventXY(e);
    const add = e.ctrlKey || e.metaKey; // Ctrl / Cmd: add to the selection
    if (d.kind === "box" && d.moved) {
      state.box = null;
      select(inBox(d.sx, d.sy, sx, sy), { add, shape: "box" });
    } else if (d.kind === "lasso" && d.moved) {
      const outline = state.lasso.concat([[sx, sy]]);
      state.lasso = null;
      select(inPolygon(outline), { add, shape: "lasso" });
    } else if (!d.moved) {
      state.lasso = null;
      const i = nearest(sx, sy);
      if (opts.onClick) opts.onClick(i, e);
    }
    request();
  };
  const onWheel = (e) => {
    e.preventDefault();
    const [sx, sy] = eventXY(e);
    const k = Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015));
    state.tx = sx - (sx - state.tx) * k;
    state.ty = sy - (sy - state.ty) * k;
    state.scale *= k;
    request();
  };
  const onLeave = () => {
    if (state.hover >= 0) { state.hover = -1; request(); if (opts.onHover) opts.onHover(-1, null); }
  };
  const onDbl = () => fit();
  canvas.addEventListener("pointerdown", onDown);
  canvas.addEventListener("pointermove", onMove);
  canvas.addEventListener("pointerup", onUp);
  canvas.addEventListener("pointerleave", onLeave);
  canvas.addEventListener("wheel", onWheel, { passive: false });
  canvas.addEventListener("dblclick", onDbl);
  const observer = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(() => {
    const old = resize();
    if (old) { state.tx += canvas.width / 2 - old[0]; state.ty += canvas.height / 2 - old[1]; request(); }
  });
  observer?.observe(canvas);

  /** Make `indices` the selection (null or empty: none); with add, add them to it. shape: what
   * drew it ("box", "lasso"; "points" when given); an added-to selection is a "union". */
  function select(indices, { add = false, shape = "points" } = {}) {
    if (add && state.selected && indices) {
      shape = "union";
      const union = new Uint8Array(n);
      for (const i of state.selected) union[i] = 1;
      for (const i of indices) union[i] = 1;
      const all = [];
      for (let i = 0; i < n; i++) if (union[i]) all.push(i);
      indices = all;
    }
    state.selected = indices && indices.length ? Int32Array.from(indices) : null;
    state.shape = state.selected ? shape : null;
    paint();
    request();
    if (opts.onSelect) opts.onSelect(state.selected || new Int32Array(0));
  }

  layoutPoints();
  paint();
  fit();
  draw();

  return {
    get n() { return n; },
    get drawn() { return state.drawn; },
    get view() { return state.view; },
    get colorBy() { return state.colorBy; },
    get selected() { return state.selected || new Int32Array(0); },
    /** What drew the selection: "box", "lasso", "union" (added to), "points" (given), or null. */
    get selectionShape() { return state.shape; },
    get hover() { return state.hover; },
    draw,
    fit,
    nearest,
    inBox,
    inPolygon,
    select,
    /** Canvas pixel (device pixels) and CSS pixel of point i in the current view. */
    screenOf(i) { const [sx, sy] = toScreen(px[i], py[i]); const dpr = window.devicePixelRatio || 1; return { sx, sy, cssX: sx / dpr, cssY: sy / dpr }; },
    setColor(field) { state.colorBy = field in data.colors ? field : "cluster"; paint(); request(); },
    setView(view) {
      if (view === "grid" && !data.grid) return false;
      state.view = view; state.hover = -1; layoutPoints(); fit(); return true;
    },
    setMode(mode) { state.mode = mode; },
    destroy() {
      observer?.disconnect();
      canvas.removeEventListener("pointerdown", onDown);
      canvas.removeEventListener("pointermove", onMove);
      canvas.removeEventListener("pointerup", onUp);
      canvas.removeEventListener("pointerleave", onLeave);
      canvas.removeEventListener("wheel", onWheel);
      canvas.removeEventListener("dblclick", onDbl);
    },
  };
}
