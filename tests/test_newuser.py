"""What a new user tripped on (issue 10): output folders, `add` exit status and skipped files,
render selection vs order and output rate, features output, help in plain words, status."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audiotrove.catalog.db import Catalog

from conftest import run_cli, run_step_quiet, tone


def _melody(path: Path, sr: int, freqs: list[float]) -> Path:
    parts = []
    for f in freqs:
        t = tone(freq_hz=f, seconds=0.3, sample_rate=sr, amplitude=0.2 + 0.05 * len(parts))
        parts += [t, np.zeros((int(0.2 * sr), 1), np.float32)]
    sf.write(path, np.concatenate(parts), sr, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def coll(tmp_path_factory) -> Path:
    """Two files at 8 and 16 kHz, segmented into onset units."""
    tmp = tmp_path_factory.mktemp("newuser")
    a = _melody(tmp / "low.wav", 8000, [220, 330, 262, 392])
    b = _melody(tmp / "high.wav", 16000, [440, 523, 660, 880])
    root = tmp / "coll"
    with Catalog.create(root) as cat:
        cat.add_files([(str(a), "file", "t"), (str(b), "file", "t")])
        run_step_quiet(cat, "segment", None, workers=1)
    return root


def test_every_command_creates_its_output_folder(coll, tmp_path):
    deep = tmp_path / "not" / "there"
    r = run_cli("-C", coll, "render", "-o", deep / "r.wav")
    assert r.returncode == 0, r.stderr
    assert (deep / "r.wav").is_file()
    r = run_cli("sort", Path(coll).parent / "low.wav", "--by", "hz", "-o", deep / "s" / "sorted.wav")
    assert r.returncode == 0, r.stderr
    assert (deep / "s" / "sorted.wav").is_file()
    r = run_cli("-C", coll, "units", "--format", "csv", "-o", deep / "u" / "units.csv")
    assert r.returncode == 0 and (deep / "u" / "units.csv").is_file(), r.stderr
    r = run_cli("features", Path(coll).parent / "low.wav", "-o", deep / "f" / "feat.parquet")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr


def test_render_selects_with_sort_and_plays_in_order(coll, tmp_path):
    from audiotrove.units.select import order_units, parse_order
    from audiotrove.views import list_units

    with Catalog.open(coll) as cat:
        chosen = list_units(cat, sort="power:desc:0.75,clarity:desc", per_file=2).frame
    ordered = order_units(chosen, parse_order("hz"))
    assert set(zip(ordered["path"], ordered["start"])) == set(zip(chosen["path"], chosen["start"]))
    hz = list(ordered["hz"].dropna())
    assert hz == sorted(hz) and len(ordered) == 4
    out = tmp_path / "by_pitch.wav"
    r = run_cli("-C", coll, "render", "--sort", "power:desc:0.75,clarity:desc", "--per-file", "2",
                "--order", "hz", "-o", out)
    assert r.returncode == 0, r.stderr
    assert "4 units" in r.stderr
    r = run_cli("-C", coll, "render", "--sort", "power:desc,clarity", "-o", out)
    assert r.returncode == 2 and "would change nothing" in r.stderr


def test_render_rate_is_the_highest_and_resampling_is_said(coll, tmp_path):
    out = tmp_path / "all.wav"
    r = run_cli("-C", coll, "render", "-o", out)
    assert r.returncode == 0, r.stderr
    assert sf.info(str(out)).samplerate == 16000
    assert "resampled to 16000 Hz" in r.stderr
    r = run_cli("-C", coll, "render", "--where", "path ~ high", "-o", out)
    assert "resampled" not in r.stderr


def test_features_says_what_it_wrote_and_one_off_has_no_file_ids(coll, tmp_path):
    out = tmp_path / "f.parquet"
    r = run_cli("features", Path(coll).parent / "low.wav", "-o", out)
    assert r.returncode == 0, r.stderr
    df = pd.read_parquet(out)
    assert "file_id" not in df.columns
    assert f"wrote {len(df)} row(s) x {len(df.columns)} column(s) to {out}" in r.stderr
    r = run_cli("-C", coll, "features", "-o", out)
    assert pd.read_parquet(out)["file_id"].notna().all()
    help_text = run_cli("features", "--help").stdout
    assert "Default: rms, zcr, centroid, rolloff, flatness, mfcc, pitch" in " ".join(help_text.split())


def test_add_lists_skipped_files_and_fails_when_nothing_is_added(tmp_path):
    root = tmp_path / "c"
    Catalog.create(root).close()
    r = run_cli("-C", root, "add", tmp_path / "missing.wav")
    assert r.returncode == 1 and "not found" in r.stderr and "nothing could be added" in r.stderr
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "goforward.raw").write_bytes(np.zeros(800, np.int16).tobytes())
    _melody(folder / "ok.wav", 8000, [440])
    r = run_cli("-C", root, "add", folder)
    assert r.returncode == 0
    assert r.stdout.strip() == "added 1, already present 0, skipped 1"
    assert "goforward.raw: not an audio or video file name (extension .raw); headerless PCM? add it with --raw" in r.stderr


def test_help_is_in_plain_words():
    for command in ("analyze", "ls", "render", "units", "enhance"):
        text = run_cli(command, "--help").stdout
        for jargon in ("<bool>", "<list[str]>", "<int range>", "<float range>", "[x>=", "<str>"):
            assert jargon not in text, (command, jargon)
    lines = run_cli("ls", "--help").stdout.splitlines()
    assert any("audiotrove fields lists the field names" in line for line in lines)  # not wrapped at 80


def test_status_shows_steps_run_and_urls_not_fetched(coll, tmp_path):
    root = tmp_path / "s"
    with Catalog.create(root) as cat:
        a = _melody(tmp_path / "a.wav", 8000, [440])
        b = _melody(tmp_path / "b.wav", 8000, [330])
        cat.add_files([(str(a), "file", "t"), (str(b), "file", "t"),
                       ("https://example.org/x.mp3", "url", "u")])
        run_step_quiet(cat, "segment", None, workers=1, file_ids={cat.files()[0].id})
    st = json.loads(run_cli("-C", root, "status", "--format", "json").stdout)
    states = {(s["step"], s["state"]): s["files"] for s in st["steps"]}
    assert states == {("analyze", "ok"): 1, ("analyze", "todo"): 1, ("segment", "ok"): 1}
    assert st["urls_not_fetched"] == 1
    text = run_cli("-C", root, "status").stdout
    assert "segment    todo" not in text and "1 URL(s) not fetched" in text


def test_headerless_pcm_is_read_with_raw(tmp_path):
    sr = 8000
    x = tone(freq_hz=440, seconds=1.5, sample_rate=sr, amplitude=0.25)[:, 0]
    pcm = tmp_path / "goforward.raw"
    (x * 32767).astype("<i2").tofile(pcm)
    root = tmp_path / "c"
    Catalog.create(root).close()
    run_cli("-C", root, "add", pcm)
    r = run_cli("-C", root, "analyze", "--workers", "1")
    assert r.returncode == 1
    status = run_cli("-C", root, "status").stdout
    assert "--raw RATE:CHANNELS:FORMAT" in status  # the failure says how to read it
    r = run_cli("-C", root, "add", "--raw", "8000:1:s16le", pcm)
    assert r.returncode == 0, r.stderr
    r = run_cli("-C", root, "analyze", "--workers", "1")
    assert r.returncode == 0, r.stderr
    (rec,) = json.loads(run_cli("-C", root, "ls", "--format", "json").stdout)
    assert rec["media_info"]["audio"] == {"codec": "pcm_s16le", "channels": 1, "sample_rate": 8000,
                                          "bit_depth": 16}
    assert rec["media_info"]["container"]["duration"] == pytest.approx(1.5)
    # a 0.25 amplitude sine: -12 dBFS peak, about -15 LUFS integrated
    assert rec["audio"]["loudness"]["sample_peak"] == pytest.approx(-12.04, abs=0.1)
    # another stated format is other audio: re-read, not taken from the old result
    run_cli("-C", root, "add", "--raw", "16000:1:s16le", pcm)
    run_cli("-C", root, "analyze", "--workers", "1")
    (rec,) = json.loads(run_cli("-C", root, "ls", "--format", "json").stdout)
    assert rec["media_info"]["container"]["duration"] == pytest.approx(0.75)
    one_off = json.loads(run_cli("analyze", "--raw", "8000:1:s16le", pcm, "--format", "json").stdout)
    assert one_off[0]["media_info"]["audio"]["sample_rate"] == 8000
    r = run_cli("-C", root, "add", "--raw", "8000:1:s17", pcm)
    assert r.returncode == 2 and "unknown raw sample format 's17'" in r.stderr
