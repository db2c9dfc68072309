// The Map page: fetch the points (/map.json, views.map_points) and mount the map module
// (/static/maps/mappage.js around mapview.js). A point plays its stretch of the original through
// /file/ID/audio (HTTP Range). A box selection links to the same units (or files) as a list.
import { mountMapPage } from "/static/maps/mappage.js";

const root = document.getElementById("app");
const open = document.getElementById("map-open");

async function main() {
  const t0 = performance.now();
  const response = await fetch(root.dataset.src);
  const data = await response.json();
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
