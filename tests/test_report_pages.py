"""What the report shows and how heavy it is (issue 10, item 17): no one-bar histograms of a
constant, no players for files that do not decode, content labels that fit, compressed pictures,
a page that stays light at 10 000 files."""
from __future__ import annotations

import base64
import re
import sys
from pathlib import Path

import numpy as np

from audiotrove.catalog.db import Catalog
from audiotrove.catalog.index import FieldIndex
from audiotrove.report.html import write_report
from audiotrove.report.plots import shares_figure

sys.path.insert(0, str(Path(__file__).resolve().parent))
from insight_synth import build_collection  # noqa: E402
from test_norms import _data, catalog  # noqa: E402


def _rows(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n):
        d = _data(sample_rate=44100 if k % 10 == 9 else 16000, dc=0.05 if k % 4 == 3 else 0.0)
        d["audio"]["loudness"] = {"measured": float(rng.normal(-24, 6)), "true_peak": float(rng.uniform(-10, 1))}
        d["audio"]["clipping"] = {"num_sections": 0, "percentage": 0.0, "sections": []}
        rows.append(d)
    return rows


def test_constant_values_are_a_sentence_not_a_bar(tmp_path):
    idx = catalog(tmp_path, _rows(30))
    write_report(idx, tmp_path / "r.html", workers=1)
    page = (tmp_path / "r.html").read_text()
    assert 'alt="histogram of Clipped share (%)"' not in page
    box = re.search(r'<div class="box allsame"><h3>Clipped share \(%\)</h3><p>(.*?)</p>', page)
    assert box and box.group(1) == "all 0%"
    assert 'alt="histogram of Integrated loudness (LUFS)"' in page  # a real spread keeps its plot


def test_files_that_do_not_decode_get_no_player(tmp_path):
    # analyzed ok once, but the file is gone or undecodable now: the card says so, no <audio>
    idx = catalog(tmp_path, [_data()] * 5 + [_data(dc=0.2)])
    write_report(idx, tmp_path / "r.html", workers=1)
    page = (tmp_path / "r.html").read_text()
    card = re.search(r'<article class="problem".*?</article>', page, re.S).group(0)
    assert "f005.wav" in card and "no waveform" in card
    assert "<audio" not in card and "the file cannot be decoded" in card


def test_content_bar_labels_fit_in_the_picture():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = shares_figure({"speech": 10.0, "music": 2.0, "silence": 80.0, "other": 8.0}, title="Audio time by content")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.bbox
    texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_text") and a.get_visible()) if t.get_text()]
    labels = [t.get_text() for t in texts]
    assert {"speech 10%", "music 2%", "silence 80%", "other 8%"} <= set(labels)
    for t in texts:
        e = t.get_window_extent(renderer)
        assert e.x0 >= box.x0 - 0.5 and e.x1 <= box.x1 + 0.5 and e.y0 >= box.y0 - 0.5 and e.y1 <= box.y1 + 0.5, \
            (t.get_text(), e, box)


def test_pictures_are_compressed(tmp_path):
    root = tmp_path / "coll"
    build_collection(root)
    with Catalog.open(root) as cat:
        write_report(FieldIndex.open(cat), tmp_path / "r.html", workers=1)
    page = (tmp_path / "r.html").read_text()
    pictures = re.findall(r'<img [^>]*alt="([^"]*)"[^>]*src="data:(image/[a-z]+);base64,([^"]*)"', page)
    thumbs = [(m, base64.b64decode(b)) for alt, m, b in pictures if alt.startswith("waveform")]
    charts = [(m, base64.b64decode(b)) for alt, m, b in pictures if not alt.startswith("waveform")]
    assert len(thumbs) == 5 and len(charts) >= 8
    assert all(m == "image/webp" and d[8:12] == b"WEBP" and len(d) < 60_000 for m, d in thumbs), \
        [len(d) for _, d in thumbs]
    assert all(m == "image/png" and len(d) < 8_000 for m, d in charts), [len(d) for _, d in charts]
    assert all('decoding="async"' in tag for tag in re.findall(r"<img [^>]*>", page))


def test_page_stays_light_at_10000_files(tmp_path):
    idx = catalog(tmp_path, _rows(10_000))
    info = write_report(idx, tmp_path / "r.html", workers=1)
    size = (tmp_path / "r.html").stat().st_size
    assert info["files"] == 10_000 and info["problems"] > 2000
    # 60 cards with pictures at most (--max-problems), the rest one table row each
    assert size < 2_000_000, size
    page = (tmp_path / "r.html").read_text()
    assert page.count('<article class="problem"') == 60


def test_a_shared_value_reads_as_the_registry_writes_it():
    # one value for every file: the registry's formatting, a whole number without ".0"; values
    # the registry writes otherwise (clock, size, bitrate in k) stay as it writes them
    from audiotrove.catalog.fields import Field, registry
    from audiotrove.report.format import shared

    r = registry()
    assert shared(r.resolve("audio.clipping.percentage"), 0.0) == "0%"
    assert shared(r.resolve("audio.clipping.percentage"), 2.5) == "2.5%"
    assert shared(r.resolve("audio.loudness.measured"), -23.0) == "-23 LUFS"
    assert shared(r.resolve("media_info.audio.sample_rate"), 16000.0) == "16000 Hz"
    assert shared(r.resolve("media_info.container.duration"), 60.0) == "1:00.0"
    assert shared(r.resolve("media_info.container.size"), 1000.0) == "1.0 kB"
    assert shared(r.resolve("media_info.container.bitrate"), 128000.0) == "128k"
    # decided by the field's kind and unit through the registry, not by its name
    assert shared(Field("x.stream_rate", "number", "bit/s"), 64000.0) == "64k"
    assert shared(Field("x.label", "text"), "1.0") == "1.0"
