"""Histogram plots of the report (matplotlib, object API with the Agg canvas: no global state).

Pictures are stored compactly (`figure_bytes`), so that a report stays light whatever the size
of the collection: charts as 64-colour palette PNG (flat colours and text stay crisp, about a
third of a true-colour PNG), the waveform + spectrogram thumbnails as WebP (a fifth).
"""
from __future__ import annotations

import io

import numpy as np

# (field, title, reference lines {label: x}) in the order the report shows them.
HISTOGRAMS = (
    ("audio.loudness.measured", "Integrated loudness (LUFS)", {"-23 LUFS (EBU R128)": -23.0}),
    ("audio.loudness.true_peak", "True peak (dBTP)", {"-1 dBTP": -1.0}),
    ("audio.noise.level_average", "Noise floor (dBFS)", {}),
    ("audio.noise.snr_average", "SNR (dB)", {}),
    ("audio.bandwidth.frequency", "Bandwidth (Hz)", {}),
    ("media_info.container.duration", "Duration (s)", {}),
    ("audio.speech.percentage", "Speech share (%)", {}),
    ("audio.music.percentage", "Music share (%)", {}),
    ("audio.silence.percentage", "Silence share (%)", {}),
    ("audio.other.percentage", "Other share (%)", {}),
    ("audio.clipping.percentage", "Clipped share (%)", {}),
    ("audio.quality_score.dnsmos_ovrl", "Speech quality (DNSMOS, 1-5)", {}),
)


PALETTE_COLOURS = 64
WEBP_QUALITY = 80


def figure_bytes(fig, *, kind: str = "png") -> bytes:
    """Render a matplotlib Figure: "png" (palette PNG, for charts) or "webp" (for thumbnails)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    img = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3])
    buf = io.BytesIO()
    if kind == "webp":
        img.save(buf, "WEBP", quality=WEBP_QUALITY, method=4)
    else:
        img.quantize(colors=PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT,
                     dither=Image.Dither.NONE).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def image_mime(data: bytes) -> str:
    return "image/webp" if data[:4] == b"RIFF" and data[8:12] == b"WEBP" else "image/png"


def histogram_png(hist: dict, *, title: str, median: float | None = None,
                  refs: dict[str, float] | None = None, width_px: int = 380, dpi: int = 100) -> bytes:
    """A small bar chart from a summary histogram {"edges", "counts"}."""
    from matplotlib.figure import Figure

    edges = np.asarray(hist["edges"], dtype=float)
    counts = np.asarray(hist["counts"], dtype=float)
    fig = Figure(figsize=(width_px / dpi, 2.3), dpi=dpi)
    ax = fig.add_axes((0.15, 0.2, 0.81, 0.68))
    if counts.size:
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#3465a4",
               edgecolor="white", linewidth=0.5)
    ymax = counts.max() if counts.size else 1
    for label, x in (refs or {}).items():
        if edges.size and edges[0] <= x <= edges[-1]:
            ax.axvline(x, color="#cc0000", linewidth=1, linestyle="--")
            ax.text(x, ymax, " " + label, color="#cc0000", fontsize=7, va="top")
    if median is not None:
        ax.axvline(median, color="#222", linewidth=1)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("files", fontsize=8)
    ax.tick_params(labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return figure_bytes(fig)


def shares_figure(shares: dict[str, float], *, title: str, width_px: int = 380, dpi: int = 100):
    """One horizontal stacked bar: the collection's audio time by content class (%), named in a
    legend under it (labels inside the segments were cut where a segment is narrow)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    colors = {"speech": "#3465a4", "music": "#73d216", "silence": "#babdb6", "other": "#f57900"}
    fig = Figure(figsize=(width_px / dpi, 1.5), dpi=dpi)
    ax = fig.add_axes((0.03, 0.5, 0.94, 0.22))
    left = 0.0
    for name, share in shares.items():
        ax.barh([0], [share], left=left, color=colors.get(name, "#888"), edgecolor="white")
        left += share
    ax.set_xlim(0, max(100.0, left))
    ax.set_yticks([])
    ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=9)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    handles = [Patch(color=colors.get(name, "#888"), label=f"{name} {share:.0f}%") for name, share in shares.items()]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False,
               handlelength=1.0, columnspacing=1.0, borderaxespad=0.2)
    return fig


def shares_png(shares: dict[str, float], *, title: str, width_px: int = 380, dpi: int = 100) -> bytes:
    return figure_bytes(shares_figure(shares, title=title, width_px=width_px, dpi=dpi))
