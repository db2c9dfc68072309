"""The embed step: streaming cuts, shards, levels, keys."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from audiotrove.vectors.embed import StreamCutter, WindowCutter, embed_file
from audiotrove.vectors.store import read_vectors


def _feed(cutter, x, block):
    out = []
    for i in range(0, len(x), block):
        out += cutter.push(x[i:i + block])
    return out + cutter.finish()


@pytest.mark.parametrize("block", [1, 7, 1000, 100000])
def test_stream_cutter_cuts_exactly_whatever_the_blocks(block):
    x = np.arange(5000, dtype=np.float32)
    spans = [(10, 200), (150, 400), (900, 2500), (2500, 2600), (4900, 5200)]
    got = dict(_feed(StreamCutter(spans), x, block))
    assert sorted(got) == list(range(len(spans)))
    for i, (s, e) in enumerate(spans):
        assert np.array_equal(got[i], x[s:min(e, 5000)])
    windows = _feed(WindowCutter(1000), np.arange(4600, dtype=np.float32), block)
    assert [len(w) for _, w in windows] == [1000] * 4 + [600]  # last >= half a window: kept
    windows = _feed(WindowCutter(1000), np.arange(4300, dtype=np.float32), block)
    assert [len(w) for _, w in windows] == [1000] * 4  # last < half: dropped
    assert [len(w) for _, w in _feed(WindowCutter(1000), np.arange(300, dtype=np.float32), block)] == [300]


def test_cutter_memory_is_bounded():
    cutter = WindowCutter(16000)
    for _ in range(200):
        cutter.push(np.zeros(5000, np.float32))
        assert len(cutter._buf) < 16000
    spans = [(i * 1000, i * 1000 + 500) for i in range(1000)]
    cutter = StreamCutter(spans)
    for _ in range(100):
        cutter.push(np.zeros(10000, np.float32))
        assert len(cutter._buf) <= 10000


def test_window_and_file_levels(tmp_path):
    sr = 22050
    t = np.arange(int(3.6 * sr)) / sr
    x = np.stack([0.3 * np.sin(2 * np.pi * 330 * t), 0.2 * np.sin(2 * np.pi * 660 * t)], axis=1)
    path = tmp_path / "a.wav"
    sf.write(path, x, sr)
    out = tmp_path / "shards"
    params = {"model": "descriptors", "window_s": 1.0}
    win = embed_file(str(path), {**params, "level": "window"}, shards_dir=out)["embed"]
    assert win["count"] == 4 and win["dim"] > 100 and win["model"] == "descriptors"
    meta, vecs = read_vectors(out / win["shard"])
    assert meta.column("start").to_pylist() == [0.0, 1.0, 2.0, 3.0]
    assert meta.column("dur").to_pylist()[-1] == pytest.approx(0.6, abs=0.01)
    one = embed_file(str(path), {**params, "level": "file"}, shards_dir=out)["embed"]
    fmeta, fvec = read_vectors(out / one["shard"])
    assert one["count"] == 1 and fmeta.column("dur")[0].as_py() == pytest.approx(3.6, abs=0.01)
    # the file vector is the duration-weighted mean of the windows (stored as float16)
    weights = np.array([1, 1, 1, 0.6])
    assert np.allclose(fvec[0], (vecs * weights[:, None]).sum(0) / weights.sum(), atol=0.02)
    # same audio, same parameters: the same shard; no temporary file left
    assert embed_file(str(path), {**params, "level": "window"}, shards_dir=out)["embed"]["shard"] == win["shard"]
    assert not list(out.glob(".tmp-*"))


def test_unit_level_reads_the_unit_shard_and_the_step_key_holds_the_model(tmp_path):
    from audiotrove.catalog.db import Catalog
    from audiotrove.models.embedders import get_embedder
    from audiotrove.runner import run_step
    from audiotrove.steps.segment import segment_file

    sr = 16000
    x = np.zeros(3 * sr, np.float32)
    for i, f in enumerate((220, 330, 440, 550)):
        s = int((0.2 + 0.6 * i) * sr)
        n = int(0.4 * sr)
        x[s:s + n] = 0.4 * np.sin(2 * np.pi * f * np.arange(n) / sr) * np.hanning(n)
    folder = tmp_path / "audio"
    folder.mkdir()
    sf.write(folder / "notes.wav", x, sr)
    seg = segment_file(str(folder / "notes.wav"), {"mode": "onset"}, units_dir=str(tmp_path / "u"))
    data = embed_file(str(folder / "notes.wav"), {"model": "descriptors", "level": "unit", "units": "x"},
                      shards_dir=tmp_path / "v", units_path=str(tmp_path / "u" / seg["units"]["shard"]))
    assert data["embed"]["count"] == seg["units"]["count"] == 4

    cat = Catalog.create(tmp_path / "coll")
    cat.add_files([(str(folder / "notes.wav"), "file", str(folder))])
    key = get_embedder("descriptors").key
    first = run_step(cat, "embed", {**key, "level": "file"}, workers=1, show_progress=False)
    again = run_step(cat, "embed", {**key, "level": "file"}, workers=1, show_progress=False)
    assert (first.ok, again.ok, again.up_to_date) == (1, 0, 1)
    other = run_step(cat, "embed", {**key, "model_version": "0", "level": "file"}, workers=1, show_progress=False)
    assert other.failed == 1  # another version than the installed one is refused, not mixed up
    assert "version" in cat.failures()[0][2]
    cat.close()
