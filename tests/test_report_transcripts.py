"""The report's Transcripts section (issue 16): lines with their start times, words that play the
recording from their time in the file's player (a frame the links target, `file.wav#t=S`: no
script), times as text where the page cannot play the file, and a bounded size.

Transcripts are stored as the transcribe step stores them (no model needed here): a known
sentence every 10 s in a 60 s file of tones, so that where a link lands can be checked.
"""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from audiotrove.catalog.db import Catalog
from audiotrove.catalog.index import FieldIndex
from audiotrove.report.html import write_report
from audiotrove.report.transcripts import cut_lines, find_transcripts
from audiotrove.views.report import report_data

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import tone, write_audio  # noqa: E402
from test_report import CHROMIUM, DevTools  # noqa: E402

SR = 16000
SENTENCES = ["Good morning and welcome to the archive.", "We keep every interview about freedom.",
             "Please remember the river crossing.", "It happened at midnight in March.",
             "Nobody spoke of it for years.", "That is all for today."]


def _transcript(duration_s: float, *, every_s: float = 10.0) -> dict:
    """Segments every `every_s` s (the SENTENCES over and over), words 0.4 s apart."""
    segments, words = [], []
    k = 0
    while k * every_s + 3.0 < duration_s:
        start = k * every_s + 1.25
        text = SENTENCES[k % len(SENTENCES)]
        ws = text.split(" ")
        for j, w in enumerate(ws):
            words.append([round(start + 0.4 * j, 3), round(start + 0.4 * j + 0.35, 3), w, 0.9])
        segments.append([start, round(start + 0.4 * len(ws), 3), text])
        k += 1
    text = " ".join(s[2] for s in segments)
    return {"transcript": {"text": text, "language": "en", "language_probability": 1.0,
                           "words": words, "segments": segments, "word_count": len(words),
                           "words_per_minute": 150.0, "speech_duration": duration_s,
                           "decoded_duration": duration_s, "model": "tiny.en",
                           "speech_source": "analysis"}}


def _analysis(kind: str, codec: str, duration_s: float) -> dict:
    return {"media_info": {"container": {"kind": kind, "duration": duration_s, "bitrate": 256000, "size": 1000},
                           "audio": {"codec": codec, "channels": 1, "sample_rate": SR},
                           "has_audio": True, "has_video": False},
            "audio": {"noise": {"level_average": -70.0, "snr_average": 40.0}}}


@pytest.fixture(scope="module")
def coll(tmp_path_factory):
    """A collection: talk.wav (60 s, transcribed), long.wav (30 min of transcript, transcribed),
    old.aiff (transcribed; browsers do not play AIFF), quiet.wav (not transcribed)."""
    root = tmp_path_factory.mktemp("tcoll")
    files = {
        "talk.wav": (tone(freq_hz=220, seconds=60.0, sample_rate=SR), "wav", "pcm_s16le", 60.0),
        "long.wav": (tone(freq_hz=330, seconds=2.0, sample_rate=SR), "wav", "pcm_s16le", 1800.0),
        "old.aiff": (tone(freq_hz=440, seconds=20.0, sample_rate=SR), "aiff", "pcm_s16be", 20.0),
        "quiet.wav": (tone(freq_hz=550, seconds=2.0, sample_rate=SR), "wav", "pcm_s16le", 2.0),
    }
    cat = Catalog.create(root)
    paths = {}
    for name, (audio, *_rest) in files.items():
        paths[name] = write_audio(root / "recordings" / name, audio, SR)
    cat.add_files([(str(p), "file", str(root)) for p in paths.values()])
    ids = {Path(p).name: i for i, p in cat.conn.execute("SELECT id, path FROM files")}
    for name, (_, kind, codec, dur) in files.items():
        fid, h = ids[name], f"h-{name}"
        cat.record(fid, size_bytes=1000, mtime_ns=1, content_hash=h, step="analyze", step_version="1",
                   params_hash="p", params={}, status="ok", error=None,
                   data=_analysis(kind, codec, dur), elapsed_s=0.01)
        if name != "quiet.wav":
            cat.record(fid, size_bytes=1000, mtime_ns=1, content_hash=h, step="transcribe",
                       step_version="1", params_hash="t", params={"model": "tiny.en"}, status="ok",
                       error=None, data=_transcript(dur), elapsed_s=0.01)
    out = tmp_path_factory.mktemp("tout") / "pages" / "report.html"
    info = write_report(FieldIndex.open(cat), out, workers=1)
    yield {"root": root, "cat": cat, "paths": paths, "ids": ids, "out": out, "info": info,
           "page": out.read_text(encoding="utf-8")}
    cat.close()


def _card(page: str, fid: int) -> str:
    return page.split(f'<article class="transcript" id="transcript-{fid}">', 1)[1].split("</article>", 1)[0]


def test_the_section_lists_the_transcribed_files_with_times(coll):
    page, ids, info = coll["page"], coll["ids"], coll["info"]
    assert info["transcripts"] == 3
    assert '<a href="#transcripts">Transcripts</a>' in page and "<h2>Transcripts</h2>" in page
    assert f'id="transcript-{ids["quiet.wav"]}"' not in page  # no transcript, no card
    assert "<script" not in page and not re.search(r'(src|href)="https?://', page)
    talk = _card(page, ids["talk.wav"])
    # one line per segment, each with its start as [m:ss] (floored), in order
    stamps = re.findall(r'class="t"[^>]*>\[(\d+:\d\d)\]<', talk)
    assert stamps == ["0:01", "0:11", "0:21", "0:31", "0:41", "0:51"]
    # the words are the text, searchable with the browser's find: plain words between tags
    plain = re.sub(r"<[^>]+>", "", talk.split('<div class="lines">', 1)[1])
    for sentence in SENTENCES:
        assert sentence in plain
    n_words = len(_transcript(60.0)["transcript"]["words"])
    assert f"language en · {n_words} words · 150 words/min · model tiny.en" in talk


def test_words_link_to_the_original_at_their_time_in_the_file_player(coll):
    page, ids, paths, out = coll["page"], coll["ids"], coll["paths"], coll["out"]
    talk = _card(page, ids["talk.wav"])
    frame = f'play-{ids["talk.wav"]}'
    assert re.search(rf'<iframe class="play" name="{frame}"[^>]*srcdoc="', talk)
    links = re.findall(r'<a (?:class="t" )?href="([^"#]+)#t=([0-9.]+)" target="([^"]+)">([^<]+)</a>', talk)
    assert links and {t for _, _, t, _ in links} == {frame}
    # the href is the original, relative to the page
    assert {(out.parent / u).resolve() for u, *_ in links} == {paths["talk.wav"].resolve()}
    words = [(float(s), w) for _, s, _, w in links if not w.startswith("[")]
    stored = _transcript(60.0)["transcript"]["words"]
    assert words == [(w[0], w[2]) for w in stored]  # every word at its own start


def test_a_file_the_browser_cannot_play_gets_times_as_text(coll):
    old = _card(coll["page"], coll["ids"]["old.aiff"])
    assert "<iframe" not in old and "#t=" not in old
    assert "browsers do not play this format" in old
    assert re.findall(r'<span class="t">\[(\d+:\d\d)\]</span>', old) == ["0:01", "0:11"]


def test_a_long_transcript_is_cut_and_says_how_much_is_left(coll):
    page, ids = coll["page"], coll["ids"]
    long = _card(page, ids["long.wav"])
    full = _transcript(1800.0)["transcript"]
    plain = re.sub(r"<[^>]+>", "", long.split('<div class="lines">', 1)[1].split("</div>", 1)[0])
    shown_words = re.sub(r"\[\d+:\d\d\]", "", plain).replace("…", "").split()
    assert 1500 <= len(" ".join(shown_words)) <= 2000  # the default 2000 characters, no more
    assert shown_words == full["text"].split()[:len(shown_words)]
    m = re.search(r"(\d+) more character\(s\) in (\d+) more line\(s\) not shown", long)
    assert m and int(m.group(1)) == len(full["text"]) - len(" ".join(shown_words))
    assert int(m.group(2)) == len(full["segments"]) - len(re.findall(r'class="t"', long)) + long.count("…")
    # the page stays light: the 30-minute transcript takes about as much room as a short one
    assert len(long) < 40_000


def test_limits_redaction_and_the_json_twin(coll, tmp_path):
    cat = coll["cat"]
    idx = FieldIndex.open(cat)
    out = tmp_path / "r.html"
    info = write_report(idx, out, workers=1, max_transcripts=1, transcript_chars=60)
    page = out.read_text(encoding="utf-8")
    assert info["transcripts"] == 3 and page.count('<article class="transcript"') == 1
    assert "2 more transcribed file(s) not shown" in page and "transcript.text?" in page
    # redacted: no links to files, so no players; the times stay, as text
    red = tmp_path / "red.html"
    write_report(idx, red, workers=1, redact_paths=True)
    text = red.read_text(encoding="utf-8")
    assert "<iframe" not in text and "#t=" not in text and "Good morning" in text
    assert not re.search(r'(src|href)="(?!data:|#)', text)
    # the command line: --max-transcripts
    from typer.testing import CliRunner

    from audiotrove.cli import app

    cli_out = tmp_path / "cli.html"
    r = CliRunner().invoke(app, ["-C", str(coll["root"]), "report", "-o", str(cli_out), "-j", "1",
                                 "--max-transcripts", "2"])
    assert r.exit_code == 0, r.output
    assert cli_out.read_text(encoding="utf-8").count('<article class="transcript"') == 2
    # --where narrows the section like every other
    write_report(idx, out, workers=1, where='path ~ "*old*"')
    assert out.read_text(encoding="utf-8").count('<article class="transcript"') == 1
    data = report_data(idx, max_transcripts=2, transcript_chars=45)
    t = data["transcripts"]
    assert t["count"] == 3 and len(t["files"]) == 2 and json.dumps(data)
    first = t["files"][0]
    assert Path(first["path"]).name == "long.wav"  # path order
    assert first["lines"][0]["text"] == SENTENCES[0] and first["lines"][0]["start"] == 1.25
    assert first["lines"][-1]["cut"] and first["shown_chars"] <= 45


def test_cut_lines_keeps_whole_words_and_assigns_words_to_their_segment():
    segments = [[0.0, 2.0, "one two three"], [5.0, 7.0, "four five six seven"]]
    words = [[0.1, 0.3, "one", 1], [0.5, 0.7, "two", 1], [1.0, 1.2, "three", 1],
             [5.0, 5.2, "four", 1], [5.5, 5.7, "five", 1], [6.0, 6.2, "six", 1], [6.5, 6.7, "seven", 1]]
    lines = cut_lines(segments, words, max_chars=100)
    assert [[w for _, w in ln.words] for ln in lines] == [["one", "two", "three"], ["four", "five", "six", "seven"]]
    assert not any(ln.cut for ln in lines)
    lines = cut_lines(segments, words, max_chars=24)  # 13 + 1 + "four five" (9)
    assert [ln.text for ln in lines] == ["one two three", "four five"] and lines[-1].cut
    assert [s for s, _ in lines[-1].words] == [5.0, 5.5]
    # no word times: the text is cut after the last whole word that fits
    lines = cut_lines(segments, [], max_chars=24)
    assert [ln.text for ln in lines] == ["one two three", "four five"] and lines[-1].words == []
    assert cut_lines([], [], max_chars=100) == []


def test_find_transcripts_reads_only_the_selection(coll):
    idx = FieldIndex.open(coll["cat"])
    shown, info = find_transcripts(idx, where=idx.parse('path ~ "*talk*"'))
    assert info["count"] == 1 and [Path(t.path).name for t in shown] == ["talk.wav"]
    assert not shown[0].cut and shown[0].shown_chars == shown[0].total_chars


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_clicking_a_word_plays_the_file_from_its_time_in_chromium(coll, tmp_path):
    page, ids = coll["page"], coll["ids"]
    talk = _card(page, ids["talk.wav"])
    word_time = float(re.findall(r'#t=([0-9.]+)" target="[^"]+">river<', talk)[0])
    browser = DevTools(CHROMIUM, tmp_path / "profile")
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["result"]["targetId"]
        s = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["result"]["sessionId"]
        for domain in ("Page", "Runtime"):
            browser.call(f"{domain}.enable", session=s)
        browser.call("Page.navigate", {"url": coll["out"].resolve().as_uri()}, session=s)
        browser.wait_event("Page.loadEventFired")
        click = (f"(() => {{ const a = [...document.querySelectorAll('#transcript-{ids['talk.wav']} a')]"
                 ".find(a => a.textContent === 'river'); a.click(); return a.target; })()")
        res = browser.call("Runtime.evaluate", {"expression": click, "returnByValue": True,
                                                "userGesture": True}, session=s)
        assert res["result"]["result"]["value"] == f"play-{ids['talk.wav']}"
        state = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the frame loads the recording, then plays it
            tree = browser.call("Page.getFrameTree", session=s)["result"]["frameTree"]
            frames = [c["frame"] for c in tree.get("childFrames", [])
                      if c["frame"].get("name") == f"play-{ids['talk.wav']}"]
            if frames and frames[0]["url"].startswith("file:"):
                ctx = browser.call("Page.createIsolatedWorld", {"frameId": frames[0]["id"]},
                                   session=s)["result"]["executionContextId"]
                got = browser.call("Runtime.evaluate", {
                    "expression": "(() => { const m = document.querySelector('video, audio'); "
                                  "return m && m.readyState > 0 ? [m.currentTime, m.duration] : null })()",
                    "contextId": ctx, "returnByValue": True}, session=s)["result"]["result"].get("value")
                if got:
                    state = (frames[0]["url"] + frames[0].get("urlFragment", ""), got)
                    break
            time.sleep(0.2)
    finally:
        browser.close()
    assert state is not None, "the player frame never loaded the recording"
    url, (current, duration) = state
    assert url.endswith(f"talk.wav#t={word_time:.2f}")
    assert duration == pytest.approx(60.0, abs=0.05)
    assert word_time - 0.05 <= current <= word_time + 5.0  # started at the word (and playing on)


def test_chinese_words_are_shown_without_spaces(tmp_path):
    # one word per character (Whisper on Mandarin): no spaces put between them, so the browser's
    # find locates "協會分析" in the page
    from audiotrove.report.html import PagePaths, _transcript_card
    from audiotrove.report.transcripts import Transcript

    said = "廣州市佛地產中間協會分析"
    words = [[0.3 * k, 0.3 * k + 0.25, c, 0.9] for k, c in enumerate(said)]
    lines = cut_lines([[0.0, 3.6, said]], words, max_chars=100)
    t = Transcript(7, str(tmp_path / "zh.wav"), {"media_info.container.kind": "wav",
                                                  "media_info.audio.codec": "pcm_s16le"},
                   lines, len(said), len(said), 0)
    card = _transcript_card(t, PagePaths(tmp_path, tmp_path))
    text = re.sub(r"<[^>]+>", "", card.split('<div class="lines">', 1)[1])
    assert said in text and card.count("#t=") == len(said) + 1
    assert cut_lines([[0.0, 3.6, said]], words, max_chars=4)[0].text == "廣州市佛"
