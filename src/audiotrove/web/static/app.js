// audiotrove serve: the behaviour of every page (no inline script: the CSP allows only this origin's files).
// - [data-start][data-end][data-total]: timeline sections, placed here from their times
// - [data-seek]: click to seek the page's player (#player) there and play
// - button.play[data-src]: click to play a short WAV (a unit, a search hit, a neighbour)

const player = document.getElementById("player");

for (const el of document.querySelectorAll("[data-start][data-end][data-total]")) {
  const total = parseFloat(el.dataset.total) || 1;
  const a = parseFloat(el.dataset.start), b = parseFloat(el.dataset.end);
  el.style.left = `${(100 * a) / total}%`;
  el.style.width = `${Math.max(0.3, (100 * (b - a)) / total)}%`;
}

export function seek(seconds) {
  if (!player) return;
  player.currentTime = seconds;
  const p = player.play();
  if (p) p.catch(() => {});
}

document.addEventListener("click", (ev) => {
  const target = ev.target.closest("[data-seek]");
  if (target && player) {
    seek(parseFloat(target.dataset.seek));
  }
});

if (player) {
  const head = document.getElementById("playhead");
  const timeline = document.getElementById("timeline");
  const words = [...document.querySelectorAll("#transcript .w")];
  const total = timeline ? parseFloat(timeline.dataset.total) : 0;
  player.addEventListener("timeupdate", () => {
    const t = player.currentTime;
    if (head && total) head.style.left = `${Math.min(100, (100 * t) / total)}%`;
    for (const w of words) {
      const start = parseFloat(w.dataset.seek);
      const next = w.nextElementSibling ? parseFloat(w.nextElementSibling.dataset.seek) : Infinity;
      w.classList.toggle("now", t >= start && t < next);
    }
  });
}

// One shared element plays the short cuts: a new click stops the last one.
const cut = new Audio();
cut.id = "cut-player";
let playing = null;
cut.addEventListener("ended", () => { if (playing) playing.classList.remove("playing"); playing = null; });
document.addEventListener("click", (ev) => {
  const button = ev.target.closest("button.play[data-src]");
  if (!button) return;
  if (playing) playing.classList.remove("playing");
  if (playing === button && !cut.paused) { cut.pause(); playing = null; return; }
  playing = button;
  button.classList.add("playing");
  cut.src = button.dataset.src;
  const p = cut.play();
  if (p) p.catch(() => {});
});
window.audiotroveCut = cut; // the browser tests read its currentTime

// "play on hover" (units page): a row plays when the pointer rests on it
const hoverPlay = document.getElementById("hoverplay");
let hoverTimer = 0;
document.addEventListener("mouseover", (ev) => {
  if (!hoverPlay || !hoverPlay.checked) return;
  const row = ev.target.closest("tr");
  const button = row && row.querySelector("button.play[data-src]");
  clearTimeout(hoverTimer);
  if (button && button !== playing) hoverTimer = setTimeout(() => button.click(), 120);
});
