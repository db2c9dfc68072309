// The Map page: fetch the points (/map.json, views.map_points) and mount the map module
// (/static/maps/mappage.js around mapview.js). A point plays its stretch of the original through
// /file/ID/audio (HTTP Range). A box selection links to the same units (or files) as a list.
import { mountMapPage } from "/static/maps/mappage.js";

const root = document.getElementById("app");
const open = document.getElementById("map-open");

// /map.bin: uint32 header length, the JSON header, then typed arrays (web/mappage.py binary()).
function decode(buffer) {
  const size = new DataView(buffer).getUint32(0, true);
  const head = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, size)));
  const base = 4 + size;
  for (const b of head.binary) {
    const Type = b.type === "int32" ? Int32Array : Float32Array;
    const array = new Type(buffer, base + b.offset, b.length);
    const [group, name] = [b.name.slice(0, b.name.indexOf(".")), b.name.slice(b.name.indexOf(".") + 1)];
    if (group === "columns") head.columns[name] = array;
    else head.colors[name].values = array;
  }
  return head;
}

async function main() {
  const t0 = performance.now();
  const response = await fetch(root.dataset.src);
  const data = decode(await response.arrayBuffer());
  window.audiotroveMapData = { shown: data.shown, count: data.count, level: data.level };
  const page = mountMapPage(root, data, { audioUrl: (path, fileId) => `/file/${fileId}/audio` });
  window.audiotroveMap = page;
  window.audiotroveMapReadyMs = performance.now() - t0;
  page.map.draw();
  window.audiotroveMapDrawnMs = performance.now(); // since the navigation started (the bench reads it)
  const canvas = document.getElementById("map-canvas");
  const update = () => {
    const q = page.map.selected.length ? page.query(page.map.selected) : null;
    const m = q && /^(units|ls) '(.*)'$/s.exec(q);
    if (!m) { open.hidden = true; return; }
    open.href = (m[1] === "units" ? "/units?q=" : "/files?q=") + encodeURIComponent(m[2]);
    open.hidden = false;
  };
  canvas.addEventListener("pointerup", () => setTimeout(update, 0));
  document.getElementById("map-clear").addEventListener("click", () => setTimeout(update, 0));
}

main();
