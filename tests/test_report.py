"""The HTML report: content checks in Python, and a render check in headless Chromium (Debian's
`chromium` package: `apt-get install -y chromium`; skipped when it is absent).

Chromium is driven through the DevTools protocol over a pipe (--remote-debugging-pipe: JSON
messages separated by NUL bytes on file descriptors 3 and 4), so no websocket library and no
network port are needed. The page must load with every image decoded, one player per problem
file whose source loads (original or embedded preview), and no console error.
"""
from __future__ import annotations

import base64
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from audiotrove.catalog.db import Catalog
from audiotrove.catalog.index import FieldIndex
from audiotrove.report.html import write_report
from audiotrove.report.media import browser_playable, overview

from insight_synth import build_collection

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("coll")
    files = build_collection(root)
    out = tmp_path_factory.mktemp("out") / "reports" / "report.html"
    with Catalog.open(root) as cat:
        info = write_report(FieldIndex.open(cat), out, workers=1, title="Test report")
    return files, out, info


def test_report_content(report):
    files, out, info = report
    page = out.read_text()
    assert info["files"] == 12
    # failed, clipped, silent, noisy (noisy.wav + silent.wav's SNR), off-spec (flac + aiff)
    assert info["problems"] == 6
    for name in ("broken.wav", "clipped.wav", "silent.wav", "noisy.wav", "offspec.flac", "legacy.aiff"):
        assert name in page
    assert "talk00.wav" not in page  # clean files are not problems
    assert "2 clipped section(s)" in page
    assert "SNR 6.5 dB" in page and "50 Hz hum" in page
    assert "sample_rate 44100 Hz (the norm is 16000 Hz" in page
    assert "not a readable audio/video file" in page
    # self-contained: no external resources
    assert not re.search(r'(src|href)="https?://', page)
    assert "<script" not in page
    # one player per problem file but the failed one (it does not decode); the AIFF (not
    # playable in browsers) gets an embedded MP3
    assert page.count("<audio ") == 5
    failed_row = re.search(r'<table class="failed">.*?</table>', page, re.S).group(0)
    assert "broken.wav" in failed_row and "<audio" not in failed_row
    assert 'src="data:audio/mpeg;base64,' in page
    # originals are linked by paths relative to the report
    rel = os.path.relpath(files["clipped.wav"], out.parent)
    assert f'src="{rel}"' in page


def test_report_where_and_spec(tmp_path):
    files = build_collection(tmp_path / "c")
    out = tmp_path / "r.html"
    with Catalog.open(files["root"]) as cat:
        info = write_report(FieldIndex.open(cat), out, where="path ~ talk", workers=1,
                            spec="audio.loudness.measured < -22")
    page = out.read_text()
    assert info["files"] == 6
    # talk02..05 (-22..-19 LUFS) do not match the spec: off-spec
    assert info["problems"] == 4
    assert "does not match the spec" in page and "talk05.wav" in page and "talk00.wav" not in page


def test_report_embed_audio_and_max_problems(report, tmp_path):
    files, _, _ = report
    out = tmp_path / "portable.html"
    with Catalog.open(files["root"]) as cat:
        write_report(FieldIndex.open(cat), out, workers=1, embed_audio=True, max_problems=2)
    page = out.read_text()
    cards = page.split('<article class="problem"')[1:]
    assert len(cards) == 2
    assert all('<audio controls preload="none" src="data:audio/mpeg;base64,' in c for c in cards)
    assert "3 more problem file(s)" in page  # the other decodable problems, listed without pictures
    mp3 = base64.b64decode(cards[0].split("data:audio/mpeg;base64,")[1].split('"')[0])
    assert mp3[:3] == b"ID3" or mp3[0] == 0xFF  # an MP3 stream


def test_thumbnail_overview_streams_and_is_bounded(tmp_path):
    import numpy as np
    import soundfile as sf

    sr = 8000
    x = np.zeros(sr * 20, dtype=np.float32)
    x[sr * 5: sr * 6] = 0.9 * np.sin(2 * np.pi * 1000 * np.arange(sr) / sr)
    p = tmp_path / "burst.wav"
    sf.write(p, x, sr)
    ov = overview(str(p), duration_s=20.0, columns=200)
    env = ov["env_max"]
    assert len(env) == 200
    # the burst sits in columns 50..60 of 200 (5..6 s of 20 s)
    loud = np.flatnonzero(env > 0.5)
    assert loud.min() >= 49 and loud.max() <= 60
    spec = ov["spec_db"]
    k1000 = int(round(1000 / (sr / 2) * (spec.shape[1] - 1)))
    assert spec[55].argmax() in (k1000 - 1, k1000, k1000 + 1)
    # max_seconds bounds the decoded span and says so
    ov = overview(str(p), duration_s=20.0, columns=100, max_seconds=4.0)
    assert ov["truncated"] and abs(ov["seconds"] - 4.0) < 1e-3 and env.size


def test_thumbnail_overview_does_not_depend_on_block_size(tmp_path):
    import numpy as np
    import soundfile as sf

    from insight_synth import speech_like

    p = tmp_path / "talk.wav"
    sf.write(p, np.stack([speech_like(16000, 7.3, seed=3), speech_like(16000, 7.3, seed=4)], axis=1), 16000)
    a = overview(str(p), duration_s=7.3, columns=300, block_frames=65536)
    b = overview(str(p), duration_s=7.3, columns=300, block_frames=1000)
    for key in ("env_min", "env_max", "spec_db"):
        assert np.allclose(a[key], b[key], atol=1e-5), key
    assert a["env_max"].max() > 0.1


def test_browser_playable_table():
    assert browser_playable("wav", "pcm_s16le") and browser_playable("ogg", "vorbis")
    assert not browser_playable("aiff", "pcm_s16be") and not browser_playable("wav", "gsm_ms")
    assert not browser_playable(None, None)


# ------------------------------------------------------------------------------------ Chromium


class DevTools:
    """A minimal Chrome DevTools Protocol client over --remote-debugging-pipe."""

    def __init__(self, exe: str, profile: Path):
        cmd = (f'exec "{exe}" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage '
               f'--disable-background-networking --no-first-run --mute-audio '
               f'--autoplay-policy=no-user-gesture-required --remote-debugging-pipe '
               f'--user-data-dir="{profile}" about:blank 3<&0 4>&1 1>/dev/null 0</dev/null')
        self.proc = subprocess.Popen(["/bin/sh", "-c", cmd], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.next_id = 0
        self.messages: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while True:
            chunk = self.proc.stdout.read1(65536) if hasattr(self.proc.stdout, "read1") else \
                self.proc.stdout.read(1)
            if not chunk:
                self.messages.put(None)
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                self.messages.put(json.loads(raw))

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.proc.stdin.write(json.dumps(msg).encode() + b"\0")
        self.proc.stdin.flush()
        return self._wait(lambda m: m.get("id") == self.next_id, timeout)

    def wait_event(self, method: str, timeout: float = 30.0) -> dict:
        for e in self.events:
            if e.get("method") == method:
                return e
        return self._wait(lambda m: m.get("method") == method, timeout)

    def _wait(self, match, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium")
            m = self.messages.get(timeout=left)
            if m is None:
                raise RuntimeError("Chromium exited")
            if "method" in m:
                self.events.append(m)
            if match(m):
                if "error" in m:
                    raise RuntimeError(m["error"])
                return m

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


_CHECK_MEDIA = """
(async () => {
  const wait = (a) => new Promise((resolve) => {
    const done = (ok) => resolve({src: a.getAttribute('src').slice(0, 60), ok,
                                  duration: a.duration, code: a.error ? a.error.code : 0});
    a.addEventListener('loadedmetadata', () => done(true), {once: true});
    a.addEventListener('error', () => done(false), {once: true});
    setTimeout(() => done(false), 15000);
    a.preload = 'metadata';
    a.load();
  });
  const audios = Array.from(document.querySelectorAll('article.problem:not(:has(.tag.failed)) audio'));
  const results = [];
  for (const a of audios) results.push(await wait(a));
  return {
    images: Array.from(document.images).map(i => ({ok: i.complete && i.naturalWidth > 0,
                                                     w: i.naturalWidth, alt: i.alt})),
    players: document.querySelectorAll('audio').length,
    problems: document.querySelectorAll('article.problem').length,
    media: results,
  };
})()
"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_report_renders_in_chromium(report, tmp_path):
    _, out, info = report
    value, errors, png = _evaluate_in_chromium(out, _CHECK_MEDIA, tmp_path / "profile", screenshot=True)
    assert len(png) > 10_000  # something was drawn
    images = value["images"]
    # the content-share bar, >= 8 histograms, and one thumbnail per decodable problem file
    assert len(images) >= 1 + 8 + 5, images
    assert all(i["ok"] for i in images), [i for i in images if not i["ok"]]
    # a card per decodable problem file, each with a player; the failed file in the table, without
    assert value["problems"] == info["problems"] - 1 and value["players"] == info["problems"] - 1
    media = value["media"]
    assert len(media) == info["problems"] - 1  # all but the failed file
    assert all(m["ok"] and m["duration"] > 0 for m in media), media
    assert not errors, errors


# ------------------------------------------------------------------------------- restored files


@pytest.fixture(scope="module")
def restored(tmp_path_factory):
    """The synthetic collection with two files restored by the real `enhance` step (CLI): a WAV
    (played from the file) and an AIFF (browsers do not play it: embedded preview)."""
    from typer.testing import CliRunner

    from audiotrove.cli import app

    root = tmp_path_factory.mktemp("rcoll")
    files = build_collection(root)
    out_dir = root / "restored"
    r = CliRunner().invoke(app, ["-C", str(root), "enhance", "-o", str(out_dir), "--where",
                                 'path ~ "*noisy*" or path ~ "*legacy*"', "--denoise", "50", "-j", "1"])
    assert r.exit_code == 0, r.output
    outputs = {"noisy.wav": out_dir / "noisy.enhanced.wav", "legacy.aiff": out_dir / "legacy.enhanced.wav"}
    assert all(p.is_file() for p in outputs.values())
    report_path = tmp_path_factory.mktemp("rout") / "reports" / "restored.html"
    with Catalog.open(root) as cat:
        info = write_report(FieldIndex.open(cat), report_path, workers=1)
    return files, outputs, report_path, info


def _restored_rows(page: str) -> dict[str, str]:
    section = page.split('<section id="restored">', 1)[1].split("</section>", 1)[0]
    rows = section.split('<tr id="restored-')[1:]
    return {re.search(r'<div class="name"><a [^>]*>([^<]+)</a>', row).group(1): row for row in rows}


def _sources(row: str) -> dict[str, str]:
    """{'original' | 'restored': <audio> src} of one row."""
    return dict(re.findall(r'<div class="player (original|restored)">.*?<audio [^>]*src="([^"]+)"', row))


def test_report_restored_section(restored):
    files, outputs, out, info = restored
    page = out.read_text()
    assert info["restored"] == 2
    assert '<a href="#restored">Restored files</a>' in page and "<h2>Restored files</h2>" in page
    rows = _restored_rows(page)
    assert sorted(rows) == ["legacy.aiff", "noisy.wav"]
    with Catalog.open(files["root"]) as cat:
        idx = FieldIndex.open(cat)
        names = ["enhance.before.snr_db", "enhance.after.snr_db", "enhance.change.snr_db",
                 "enhance.before.noise_floor_dbfs", "enhance.after.noise_floor_dbfs"]
        stored = {Path(r[0]).name: r[1:] for r in idx.rows("enhance.output?", columns=["path", *names])}
    b_snr, a_snr, c_snr, b_floor, a_floor = stored["noisy.wav"]
    assert c_snr > 3  # the denoiser helped: the row shows it as an improvement
    noisy = rows["noisy.wav"]
    assert (f'<td class="r">{b_snr:.1f}</td><td>→</td><td class="r">{a_snr:.1f}</td>' in noisy
            and f'<td class="r good">({c_snr:+.1f} dB)</td>' in noisy)
    assert f'<td class="r">{b_floor:.1f}</td><td>→</td><td class="r">{a_floor:.1f}</td>' in noisy
    # the synthetic analysis says 80 % speech: denoise method auto takes the speech network
    assert "denoise deepfilter 50" in noisy and "restored/noisy.enhanced.wav" in noisy
    # two players each: the WAVs by paths relative to the report, the AIFF original embedded
    assert _sources(noisy) == {"original": os.path.relpath(files["noisy.wav"], out.parent),
                               "restored": os.path.relpath(outputs["noisy.wav"], out.parent)}
    legacy = _sources(rows["legacy.aiff"])
    assert legacy["original"].startswith("data:audio/mpeg;base64,")
    assert legacy["restored"] == os.path.relpath(outputs["legacy.aiff"], out.parent)
    assert page.count("<audio ") == 5 + 4  # the problem players (not the failed file's) and the restored ones
    assert not re.search(r'(src|href)="https?://', page) and "<script" not in page


def test_report_restored_missing_output_embed_and_where(restored, tmp_path):
    files, outputs, _, _ = restored
    gone = outputs["legacy.aiff"]
    moved = gone.with_name("moved-away.wav")
    gone.rename(moved)
    try:
        with Catalog.open(files["root"]) as cat:
            write_report(FieldIndex.open(cat), tmp_path / "missing.html", workers=1)
            portable = write_report(FieldIndex.open(cat), tmp_path / "portable.html", workers=1, embed_audio=True,
                                    max_restored=1)
            none = write_report(FieldIndex.open(cat), tmp_path / "talk.html", where="path ~ talk", workers=1)
    finally:
        moved.rename(gone)
    rows = _restored_rows((tmp_path / "missing.html").read_text())
    # the missing output: said so, no player and no link to it; the original still plays
    assert "The restored file no longer exists" in rows["legacy.aiff"]
    assert list(_sources(rows["legacy.aiff"])) == ["original"]
    assert f'href="{os.path.relpath(gone, tmp_path)}"' not in rows["legacy.aiff"]
    assert "no longer exists" not in rows["noisy.wav"] and len(_sources(rows["noisy.wav"])) == 2
    # --embed-audio: both players embed MP3 previews; max_restored caps the rows
    page = (tmp_path / "portable.html").read_text()
    rows = _restored_rows(page)
    assert portable["restored"] == 2 and list(rows) == ["legacy.aiff"] and "1 more restored file(s)" in page
    with Catalog.open(files["root"]) as cat:
        write_report(FieldIndex.open(cat), tmp_path / "portable.html", workers=1, embed_audio=True)
    src = _sources(_restored_rows((tmp_path / "portable.html").read_text())["noisy.wav"])
    assert all(s.startswith("data:audio/mpeg;base64,") for s in src.values()) and len(src) == 2
    mp3 = base64.b64decode(src["restored"].split(",", 1)[1])
    assert mp3[:3] == b"ID3" or mp3[0] == 0xFF
    # no restored file among the selected ones: no section, no link to it
    page = (tmp_path / "talk.html").read_text()
    assert none["restored"] == 0 and 'id="restored"' not in page and "Restored files" not in page


_CHECK_RESTORED = """
(async () => {
  const wait = (a) => new Promise((resolve) => {
    const done = (ok) => resolve({kind: a.closest('.player').classList.contains('restored') ? 'restored'
                                        : 'original', row: a.closest('tr').id, ok, duration: a.duration,
                                  code: a.error ? a.error.code : 0});
    a.addEventListener('loadedmetadata', () => done(true), {once: true});
    a.addEventListener('error', () => done(false), {once: true});
    setTimeout(() => done(false), 15000);
    a.preload = 'metadata';
    a.load();
  });
  const results = [];
  for (const a of document.querySelectorAll('#restored audio')) results.push(await wait(a));
  return results;
})()
"""


def _evaluate_in_chromium(page: Path, expression: str, profile: Path, *, screenshot: bool = False):
    """(the expression's value in the loaded page, console/log errors[, PNG bytes of the page])."""
    browser = DevTools(CHROMIUM, profile)
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["result"]["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["result"]["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable", session=session)
        browser.call("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        browser.wait_event("Page.loadEventFired")
        res = browser.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, session=session, timeout=60)
        value = res["result"]["result"]["value"]
        png = None
        if screenshot:
            shot = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)
            png = base64.b64decode(shot["result"]["data"])
    finally:
        browser.close()
    errors = [e for e in browser.events
              if (e["method"] == "Runtime.exceptionThrown")
              or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
              or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    return (value, errors, png) if screenshot else (value, errors)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_report_restored_audio_loads_in_chromium(restored, tmp_path):
    import soundfile as sf

    _, outputs, out, _ = restored
    media, errors = _evaluate_in_chromium(out, _CHECK_RESTORED, tmp_path / "profile")
    assert not errors, errors
    assert sorted(m["kind"] for m in media) == ["original", "original", "restored", "restored"], media
    assert all(m["ok"] for m in media), media
    # the restored players load the outputs themselves: their durations are the files' own
    expected = sorted(sf.info(str(p)).duration for p in outputs.values())
    got = sorted(m["duration"] for m in media if m["kind"] == "restored")
    assert got == pytest.approx(expected, abs=0.01), media


# ------------------------------------------------------------------------------- paths (issue 20, item 10)


def test_report_paths_are_relative_to_the_collection_or_redacted(restored, tmp_path):
    files, outputs, page_path, _ = restored
    root = str(files["root"])
    page = page_path.read_text()
    assert root not in page  # shown relative to the collection; links relative to the page
    assert os.path.relpath(files["noisy.wav"], root) in page
    assert os.path.relpath(outputs["noisy.wav"], root) in page
    from typer.testing import CliRunner

    from audiotrove.cli import app

    out = tmp_path / "shared" / "redacted.html"
    r = CliRunner().invoke(app, ["-C", root, "report", "-o", str(out), "--redact-paths", "-j", "1"])
    assert r.exit_code == 0, r.output
    redacted = out.read_text()
    assert root not in redacted and str(tmp_path) not in redacted
    assert "noisy.wav" in redacted and "noisy.enhanced.wav" in redacted
    for p in (files["noisy.wav"], outputs["noisy.wav"], files["clipped.wav"]):
        assert f"{Path(p).parent.name}/{Path(p).name}" not in redacted  # no folder names either
    assert not re.search(r'(src|href)="(?!data:|#)', redacted)  # no link to any file
    assert redacted.count('src="data:audio/mpeg;base64,') == redacted.count("<audio ")
