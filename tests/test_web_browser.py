"""`audiotrove serve` in a real browser: Playwright driving Debian's chromium (never a downloaded
browser) against the server started by the CLI (`serve --port 0`) on a generated collection.

Every page loads without a console error; a query filters the table; a bad query shows the
caret; a unit plays (the audio element's time advances); the file player seeks (a transcript
word, a timeline section); the map draws every point of its JSON. Screenshots of each page are
kept under pytest's temporary folder (the path is printed).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("chromium is not installed (make system-test-deps)", allow_module_level=True)

from conftest import cli_env  # noqa: E402
from test_web import WORDS, file_id, shared_collection  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    coll = shared_collection(tmp_path_factory)
    exe = shutil.which("audiotrove", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "audiotrove.cli"]
    proc = subprocess.Popen([*cmd, "-C", str(coll), "serve", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=cli_env())
    try:
        line = proc.stdout.readline()  # "serving ... at http://127.0.0.1:PORT/": it is listening
        m = re.search(r"at (http://127\.0\.0\.1:\d+)/", line)
        assert m, line + (proc.stdout.read() if proc.poll() is not None else "")
        yield coll, m.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("web-screenshots")
    print(f"screenshots in {folder}")
    return folder


@pytest.fixture
def page(browser):
    pg = browser.new_page(viewport={"width": 1280, "height": 900})
    pg.console_problems = []
    pg.on("console", lambda m: pg.console_problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    pg.on("pageerror", lambda e: pg.console_problems.append(f"page error: {e}"))
    yield pg
    pg.close()


def test_every_page_loads_without_console_errors(served, page, shots):
    coll, base = served
    fid = file_id(coll, "speech.wav")
    for name, address in [("overview", "/overview"), ("files", "/files"), ("file", f"/file/{fid}"),
                          ("units", "/units"), ("search", "/search?phrase=music"), ("map", "/map"),
                          ("similar", f"/similar?target={fid}&level=file&model=descriptors"),
                          ("files-sorted", "/files?sort=lufs:desc&fields=path,lufs,snr")]:
        response = page.goto(base + address)
        assert response.status == 200, address
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        assert page.console_problems == [], (address, page.console_problems)
    assert len(list(shots.glob("*.png"))) == 8


def test_a_query_filters_the_table(served, page):
    _, base = served
    page.goto(base + "/files")
    assert page.locator("#files tbody tr").count() == 4
    page.fill("#q", "duration > 2.5")
    page.press("#q", "Enter")
    page.wait_for_load_state("networkidle")
    paths = page.locator("#files tbody td.path").all_inner_texts()
    assert sorted(Path(p).name for p in paths) == ["speech.wav", "tone.wav"]
    assert page.inner_text("#count") == "2 files match"


def test_a_bad_query_shows_the_caret(served, page):
    _, base = served
    page.goto(base + "/files")
    page.fill("#q", "duration > 2.5 and snrr < 20")
    page.press("#q", "Enter")
    page.wait_for_load_state("networkidle")
    caret = page.inner_text("pre.caret")
    assert caret.splitlines() == ["duration > 2.5 and snrr < 20", " " * 19 + "^^^^"]
    page.click(".suggest a >> nth=0")  # a suggestion applies itself
    page.wait_for_load_state("networkidle")
    assert page.locator("pre.caret").count() == 0 and "snr_average" in page.input_value("#q")
    assert page.console_problems == []


def test_a_unit_plays(served, page):
    _, base = served
    page.goto(base + "/units?where=path+~+speech.wav")
    page.click("button.play >> nth=0")
    page.wait_for_function("() => window.audiotroveCut && window.audiotroveCut.currentTime > 0.03", timeout=10000)
    assert page.evaluate("window.audiotroveCut.src").endswith(".wav")
    page.check("#hoverplay")  # play on hover: resting on a row plays its unit
    third = page.get_attribute("#units tbody tr >> nth=2 >> button.play", "data-src")
    page.hover("#units tbody tr >> nth=2 >> td.path")
    page.wait_for_function("(src) => window.audiotroveCut.src.endsWith(src)", arg=third, timeout=10000)
    assert page.console_problems == []


def test_the_file_player_seeks(served, page):
    coll, base = served
    fid = file_id(coll, "speech.wav")
    ranges = []
    page.on("request", lambda r: ranges.append(r.headers.get("range")) if r.url.endswith(f"/file/{fid}/audio") else None)
    page.goto(base + f"/file/{fid}")
    page.wait_for_function("() => document.getElementById('player').readyState >= 1")
    word = page.locator("#transcript .w").nth(3)  # "music" at 1.3 s
    assert word.inner_text() == WORDS[3][2]
    word.click()
    page.wait_for_function("() => document.getElementById('player').currentTime >= 1.3", timeout=10000)
    page.wait_for_function("() => !document.getElementById('player').paused")
    page.evaluate("document.getElementById('player').pause()")
    page.click(".sec.other")  # the timeline: its section starts at 0
    page.wait_for_function("() => document.getElementById('player').currentTime < 1.0")
    assert any(r and r.startswith("bytes=") for r in ranges)  # the player asks for ranges
    box = page.locator(".sec.other").bounding_box()
    track = page.locator(".sec.other >> xpath=..").bounding_box()
    assert abs(box["width"] - track["width"]) < 2  # placed from its times: the whole 4 s
    assert page.console_problems == []


def test_the_map_draws_every_point(served, page):
    _, base = served
    data = page.request.get(base + "/map.json").json()
    page.goto(base + "/map")
    page.wait_for_function("() => window.audiotroveMap && window.audiotroveMap.map.drawn > 0", timeout=15000)
    assert page.evaluate("window.audiotroveMap.map.n") == len(data["columns"]["x"]) == data["shown"] == 4
    assert page.evaluate("window.audiotroveMap.map.drawn") == 4
    coloured = page.evaluate("""() => {
        const c = document.getElementById('map-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200) n++;
        return n;
    }""")
    assert coloured >= 4
    assert page.console_problems == []
