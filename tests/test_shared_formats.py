"""Real files from ../shared/data: every broken file in formats/corrupt ends `status: error`
with a useful message; every readable file in formats/ and video/ ends `ok`, with the sample
rate, channels and duration that SOURCES.md lists (measured there with ffprobe)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import SHARED_DATA, run_step_quiet

from audiotrove.catalog.db import Catalog
from audiotrove.catalog.records import file_record

# ffprobe's figure is not the decoded length for these (checked against two decoders):
DURATION_EXCEPTIONS = {
    # MPEG-2.5 VBR with a LAME tag: ffprobe counts the 4 whole frames (0.21 s / 0.29 s);
    # FFmpeg's and mpg123's decoders both trim encoder delay and padding to 0.10 s.
    "formats/mpeg25_11025hz_vbr.mp3": 0.10,
    "formats/mpeg25_8khz_vbr.mp3": 0.10,
    # ASF header: 6 ms; FFmpeg's WMA Lossless decoder yields 14 x 2048 frames of silence.
    "formats/lossless.wma": 28672 / 44100,
}

# A few files whose message must say what is wrong in words a user knows.
EXPECTED_MESSAGES = {
    "empty_file.wav": "empty file",
    "pocketsphinx_awful.wav": "implausible sample rate",
    "vbr_xing_header_2channel_truncated.mp3": "truncated",
    "pocketsphinx_null.wav": "no audio samples",
    "test2_no_audio.wma": "no audio samples",
    "variable-block_truncated.flac": "decoding failed",
}


def _sources_table() -> dict[str, tuple[float, int, int]]:
    """relative path -> (duration s, sample rate Hz, channels) from SOURCES.md."""
    text = (SHARED_DATA / "SOURCES.md").read_text(encoding="utf-8")
    out = {}
    for match in re.finditer(r"^\| `([^`]+)` \|[^|]*\| ([\d.]+) s; (\d+) Hz; (\d+) ch;", text, re.MULTILINE):
        out[match[1]] = (float(match[2]), int(match[3]), int(match[4]))
    return out


@pytest.fixture(scope="module")
def analysed(tmp_path_factory) -> dict[str, dict]:
    if not (SHARED_DATA / "formats" / "corrupt").is_dir():
        pytest.skip(f"shared test data not found: {SHARED_DATA}")
    files = [p for folder in ("formats", "formats/corrupt", "video")
             for p in sorted((SHARED_DATA / folder).iterdir()) if p.is_file()]
    with Catalog.create(tmp_path_factory.mktemp("shared") / "coll") as cat:
        cat.add_files([(str(p), "file", str(p.parent)) for p in files])
        summary = run_step_quiet(cat, "analyze")
        assert summary.ok + summary.failed == len(files)
        return {str(Path(f.path).relative_to(SHARED_DATA)): file_record(f, res)
                for f, res in cat.iter_current()}


def test_every_corrupt_file_is_an_error_with_a_useful_message(analysed):
    corrupt = {rel: rec for rel, rec in analysed.items() if rel.startswith("formats/corrupt/")}
    assert len(corrupt) >= 20
    for rel, rec in corrupt.items():
        assert rec["status"] == "error", (rel, rec)
        message = rec["error"]
        assert message and len(message) >= 12, (rel, message)
        # words for a user, not a Python exception
        assert not re.search(r"\b[A-Z]\w*(Error|Exception)\b|Traceback|NoneType", message), (rel, message)
        name = Path(rel).name
        if name in EXPECTED_MESSAGES:
            assert EXPECTED_MESSAGES[name] in message, (rel, message)


def test_every_readable_file_is_ok_with_the_listed_facts(analysed):
    table = _sources_table()
    readable = {rel: rec for rel, rec in analysed.items() if not rel.startswith("formats/corrupt/")}
    assert len(readable) >= 30
    compared = 0
    for rel, rec in readable.items():
        assert rec["status"] == "ok", (rel, rec["error"])
        mi = rec["media_info"]
        assert mi["has_audio"] is True
        if rel not in table:
            continue
        compared += 1
        duration_s, sample_rate, channels = table[rel]
        assert mi["audio"]["sample_rate"] == sample_rate, rel
        assert mi["audio"]["channels"] == channels, rel
        measured = mi["container"]["duration"]
        expected = DURATION_EXCEPTIONS.get(rel, duration_s)
        assert abs(measured - expected) <= max(0.05, 0.02 * expected), (rel, measured, expected)
    assert compared >= 30
    assert readable["video/big_buck_bunny_small.mp4"]["media_info"]["has_video"] is True
    assert readable["formats/wav_with_image.wav"]["media_info"]["has_video"] is False  # a picture
    assert readable["formats/pydub_wrong_extension.aac"]["media_info"]["container"]["kind"] == "mp4"
