"""enhance never loses data (issue 20, items 1, 2, 7, 8): an output never replaces an existing
file, names are unique per source and per settings, "already up to date" only when the output
on disk is the one the result describes, `-o FILE` is refused up front, leftovers of killed runs
are swept."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import db_rows, speech_like
from typer.testing import CliRunner

from audiotrove.cli import app

SR = 8000


def _speech(path: Path, seed: int, seconds: float = 1.0) -> Path:
    x = speech_like(seconds=seconds, sample_rate=SR, seed=seed)[:, 0]
    hiss = 0.02 * np.random.default_rng(seed).standard_normal(len(x))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.5 * x + hiss).astype(np.float32), SR, format=path.suffix[1:].upper(),
             subtype="PCM_16")
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(*args) -> tuple[int, str]:
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r.exit_code, r.output


def _outputs(coll: Path) -> dict[str, dict]:
    """source path -> enhance data of its ok results (every configuration)."""
    rows = db_rows(coll, "SELECT f.path, r.data, r.params FROM files f JOIN results r "
                         "ON r.content_hash = f.content_hash WHERE r.step = 'enhance' AND r.status = 'ok'")
    out: dict[str, list] = {}
    for path, data, params in rows:
        out.setdefault(path, []).append((json.loads(params), json.loads(data)["enhance"]))
    return out


def _check_recorded(enhance: dict) -> None:
    """The file the result names is exactly the one it describes."""
    out = Path(enhance["output"])
    assert out.is_file()
    assert out.stat().st_size == enhance["output_size"]
    from audiotrove.io.hashing import content_hash

    assert content_hash(out) == enhance["output_hash"]


def _init(tmp_path: Path, *sources: Path) -> Path:
    coll = tmp_path / "c"
    assert _cli("init", coll)[0] == 0
    assert _cli("-C", coll, "add", *sources)[0] == 0
    return coll


def test_an_output_never_replaces_a_registered_original(tmp_path):
    src = tmp_path / "in"
    a = _speech(src / "a.wav", seed=1)
    b = _speech(src / "a.enhanced.wav", seed=2)  # a registered original with an output's name
    before = {p: _digest(p) for p in (a, b)}
    coll = _init(tmp_path, src)
    code, out = _cli("-C", coll, "enhance", "-o", src, "--denoise", "40", "-j", "1")
    assert code == 0, out
    assert {p: _digest(p) for p in (a, b)} == before  # no original written to
    made = _outputs(coll)
    assert len(made) == 2
    names = {Path(e["output"]).name for (_, e), in made.values()}
    assert len(names) == 2 and not names & {"a.wav", "a.enhanced.wav"}
    for (_, e), in made.values():
        _check_recorded(e)


def test_same_stem_in_two_formats_and_two_folders_get_their_own_outputs(tmp_path):
    src = tmp_path / "in"
    wav, flac = _speech(src / "a.wav", seed=3), _speech(src / "a.flac", seed=4)
    b1, b2 = _speech(tmp_path / "d1" / "b.wav", seed=5), _speech(tmp_path / "d2" / "b.wav", seed=6)
    coll = _init(tmp_path, src)
    out = tmp_path / "out"
    assert _cli("-C", coll, "enhance", "-o", out, "--denoise", "40", "-j", "2")[0] == 0
    # d1/b.wav and d2/b.wav in two separate runs into the same folder
    assert _cli("-C", coll, "enhance", b1, "-o", out, "--denoise", "40", "-j", "1")[0] == 0
    assert _cli("-C", coll, "enhance", b2, "-o", out, "--denoise", "40", "-j", "1")[0] == 0
    made = _outputs(coll)
    assert set(made) == {str(wav), str(flac), str(b1), str(b2)}
    outputs = [e["output"] for (_, e), in made.values()]
    assert len(set(outputs)) == 4
    for (_, e), in made.values():
        _check_recorded(e)  # each result's numbers are about its own file
    # the after-numbers differ because the audio does: no result measured another's output
    assert len({e["after"]["loudness_lufs"] for (_, e), in made.values()}) == 4


def test_up_to_date_only_when_the_output_on_disk_is_the_one_recorded(tmp_path):
    src = tmp_path / "in"
    a = _speech(src / "a.wav", seed=7)
    coll = _init(tmp_path, src)
    out = tmp_path / "out"
    runs = {}
    for amount in ("20", "90", "20"):
        code, text = _cli("-C", coll, "enhance", "-o", out, "--denoise", amount, "-j", "1")
        assert code == 0, text
        runs.setdefault(amount, []).append(text)
    assert "1 already up to date" in runs["20"][1]
    made = {p["denoise"]: e for p, e in _outputs(coll)[str(a)]}
    assert set(made) == {20.0, 90.0} and made[20.0]["output"] != made[90.0]["output"]
    for e in made.values():
        _check_recorded(e)
    # someone writes other audio of the same size over the 20-output: not up to date any more,
    # made again under a free name, and the changed file is left as it is
    twenty = Path(made[20.0]["output"])
    x, _ = sf.read(twenty)
    sf.write(twenty, np.flip(x), SR, subtype="PCM_24")
    changed = _digest(twenty)
    code, text = _cli("-C", coll, "enhance", "-o", out, "--denoise", "20", "-j", "1")
    assert code == 0 and "1 output(s) missing or changed" in text and "1 ok" in text, text
    assert _digest(twenty) == changed
    again = {p["denoise"]: e for p, e in _outputs(coll)[str(a)]}
    assert again[20.0]["output"] != str(twenty)
    _check_recorded(again[20.0])
    # a deleted output is made again (the stale row is replaced, not duplicated)
    Path(again[20.0]["output"]).unlink()
    code, text = _cli("-C", coll, "enhance", "-o", out, "--denoise", "20", "-j", "1")
    assert code == 0 and "made again" in text
    rows = db_rows(coll, "SELECT status FROM results WHERE step = 'enhance'")
    assert sorted(s for (s,) in rows) == ["ok", "ok"]


def test_out_dir_naming_a_file_is_a_usage_error(tmp_path):
    src = tmp_path / "in"
    _speech(src / "a.wav", seed=8)
    coll = _init(tmp_path, src)
    target = tmp_path / "taken.wav"
    target.write_bytes(b"keep me")
    code, text = _cli("-C", coll, "enhance", "-o", target, "-j", "1")
    assert code == 2 and "existing file" in text
    assert target.read_bytes() == b"keep me"
    assert db_rows(coll, "SELECT count(*) FROM results") == [(0,)]  # nothing ran


def test_leftovers_of_a_killed_run_are_swept_and_never_look_like_outputs(tmp_path):
    src = tmp_path / "in"
    _speech(src / "a.wav", seed=9)
    coll = _init(tmp_path, src)
    out = tmp_path / "out"
    out.mkdir()
    dead = _dead_pid()
    left = [out / f".audiotrove-tmp-{dead}-0badc0de", out / f".a.enhanced.part-{dead}-0badc0de.wav",
            out / f".audiotrove-tmp-{dead}-0badc0de-a.wav.part"]
    left[0].mkdir()
    (left[0] / "a.enhanced.wav").write_bytes(b"half")
    for p in left[1:]:
        p.write_bytes(b"half")
    alive = out / f".audiotrove-tmp-{os.getpid()}-00000000-x.part"  # a live process's: kept
    alive.write_bytes(b"busy")
    code, text = _cli("-C", coll, "enhance", "-o", out, "--denoise", "30", "-j", "1")
    assert code == 0 and "removed 3 temporary file(s)" in text, text
    assert not any(p.exists() for p in left) and alive.exists()
    # what a run leaves is only its outputs: nothing else, hidden or not
    assert sorted(p.name for p in out.iterdir()) == sorted(["a.enhanced.wav", alive.name])


def _dead_pid() -> int:
    """The id of a process that has exited."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_long_names_are_shortened_and_stay_unique():
    from audiotrove.steps.enhance import DEFAULTS, output_candidates

    stem = "é" * 125 + "x" * 10  # 260 bytes of UTF-8
    params = {**DEFAULTS, "out_dir": "/out"}
    names = [p.name for p in output_candidates(f"/in/{stem}.wav", params, video=False)]
    assert all(len(n.encode()) <= 255 for n in names)
    assert names[0].endswith(".enhanced.wav") and len(set(names)) == len(names)
    other = [p.name for p in output_candidates(f"/in/{stem}y.wav", params, video=False)]
    assert other[0] != names[0]
    # different settings or sources give different second choices
    p2 = {**params, "denoise": 50.0}
    assert output_candidates("/in/a.wav", params, video=False)[1] != \
        output_candidates("/in/a.wav", p2, video=False)[1]
    assert output_candidates("/d1/b.wav", params, video=False)[1] != \
        output_candidates("/d2/b.wav", params, video=False)[1]


def test_a_250_character_name_is_enhanced(tmp_path):
    src = tmp_path / "in"
    a = _speech(src / ("n" * 250 + ".wav"), seed=10)
    coll = _init(tmp_path, src)
    code, text = _cli("-C", coll, "enhance", "-o", tmp_path / "out", "--denoise", "30", "-j", "1")
    assert code == 0, text
    ((_, e),) = _outputs(coll)[str(a)]
    _check_recorded(e)
    assert len(Path(e["output"]).name.encode()) <= 255


def test_one_off_enhance_prints_each_failure(tmp_path, monkeypatch):
    """Issue 10 item 2: the temporary collection goes with the command, so the reasons are
    printed (as one-off analyze does) and the exit status is 1."""
    good = _speech(tmp_path / "in" / "good.wav", seed=11)
    bad = tmp_path / "in" / "notes.wav"
    bad.write_text("not a recording\n" * 40)
    monkeypatch.chdir(tmp_path)
    code, text = _cli("enhance", good, bad, "-o", tmp_path / "out", "--denoise", "30", "-j", "1")
    assert code == 1, text
    assert f"failed {bad} [analyze]: not a readable audio/video file" in text.replace("\n", "")
    assert "audiotrove status" not in text  # there is no collection to look into
    assert (tmp_path / "out" / "good.enhanced.wav").is_file()
