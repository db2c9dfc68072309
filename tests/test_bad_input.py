"""A corpus of bad input, generated in tmp: every bad file ends `status: error` with a clear
message, the rest of the batch is ok, originals are never written to, a re-run does nothing
and --retry-failed retries exactly the failures."""
from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import numpy as np
from conftest import (
    db_rows,
    jsonl,
    noise,
    run_cli,
    speech_like,
    tone,
    tree_state,
    write_audio,
)

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _wav_header(*, sample_rate: int, channels: int, frames: int = 8000) -> bytes:
    """A PCM WAV built by hand, so that its header can say absurd things."""
    bits = 16
    block_align = (channels * bits // 8) & 0xFFFF
    fmt = struct.pack("<HHIIHH", 1, channels, sample_rate,
                      (sample_rate * block_align) & 0xFFFFFFFF, block_align, bits)
    data = (np.sin(np.arange(frames) * 0.05) * 8000).astype("<i2").tobytes()
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _cut(src: Path, dst: Path) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])


def _corpus(root: Path) -> tuple[dict[str, str | None], Path]:
    """Write the corpus; return {relative path: expected error fragment (None = ok)}."""
    expected: dict[str, str | None] = {}
    good = {
        "good/tone.wav": tone(seconds=2.0, sample_rate=22050),
        "good/noise.flac": noise(seconds=2.0, sample_rate=22050, seed=9),
        "good/speech.mp3": speech_like(seconds=2.0, sample_rate=22050, seed=8),
        "names/with spaces and été ☃.wav": tone(seconds=1.0, sample_rate=8000, freq_hz=330),
        "names/x.wav/inside a folder named x.wav.ogg": speech_like(seconds=1.0, seed=7),
    }
    for rel, audio in good.items():
        write_audio(root / rel, audio, 22050 if rel.startswith("good") else
                    (8000 if rel.endswith(".wav") else 16000))
        expected[rel] = None
    bad = root / "bad"
    bad.mkdir()
    (bad / "empty.wav").write_bytes(b"")
    expected["bad/empty.wav"] = "empty file (0 bytes)"
    for ext, message in (("wav", "truncated: decoded"), ("flac", "decoding failed"),
                         ("mp3", "truncated: decoded")):
        _cut(root / "good" / {"wav": "tone.wav", "flac": "noise.flac", "mp3": "speech.mp3"}[ext],
             bad / f"truncated.{ext}")
        expected[f"bad/truncated.{ext}"] = message
    (bad / "text.wav").write_text("Session notes, tape 7: hiss on side B.\n" * 10)
    expected["bad/text.wav"] = "not a readable audio/video file"
    (bad / "html.mp3").write_text("<html><body>404 Not Found</body></html>\n")
    expected["bad/html.mp3"] = "not a readable audio/video file"
    shutil.copy(root / "good" / "noise.flac", bad / "flac_named.mp3")  # wrong extensions read fine
    expected["bad/flac_named.mp3"] = None
    shutil.copy(root / "good" / "tone.wav", bad / "wav_named.m4a")
    expected["bad/wav_named.m4a"] = None
    (bad / "rate_3ghz.wav").write_bytes(_wav_header(sample_rate=3_000_000_000, channels=1))
    expected["bad/rate_3ghz.wav"] = "not a readable audio/video file"
    (bad / "rate_1mhz.wav").write_bytes(_wav_header(sample_rate=1_000_000, channels=1))
    expected["bad/rate_1mhz.wav"] = "implausible sample rate in header: 1000000 Hz"
    (bad / "zero_channels.wav").write_bytes(_wav_header(sample_rate=16000, channels=0))
    expected["bad/zero_channels.wav"] = "implausible channel count in header: 0"
    (bad / "broken link.wav").symlink_to(root / "gone" / "nowhere.wav")
    expected["bad/broken link.wav"] = "broken symbolic link"
    (bad / "loop_a.flac").symlink_to(bad / "loop_b.flac")
    (bad / "loop_b.flac").symlink_to(bad / "loop_a.flac")
    expected["bad/loop_a.flac"] = "broken symbolic link (or a link loop)"
    expected["bad/loop_b.flac"] = "broken symbolic link (or a link loop)"
    (bad / "self_loop.mp3").symlink_to(bad / "self_loop.mp3")
    expected["bad/self_loop.mp3"] = "broken symbolic link (or a link loop)"
    if not IS_ROOT:  # root reads any file: permissions cannot make it fail
        write_audio(bad / "locked.wav", tone(seconds=0.5, sample_rate=8000), 8000)
        os.chmod(bad / "locked.wav", 0)
        expected["bad/locked.wav"] = "permission denied"
    write_audio(bad / "became_a_folder.wav", tone(seconds=0.5, sample_rate=8000), 8000)
    expected["bad/became_a_folder.wav"] = "is a directory"  # replaced after `add`, see below
    latin1 = root / "skipped"
    latin1.mkdir()
    with open(os.fsencode(latin1) + b"/caf\xe9.wav", "wb") as f:  # a name that is not UTF-8
        f.write((root / "good" / "tone.wav").read_bytes())
    return expected, latin1


def test_bad_input_corpus(tmp_path):
    corpus = tmp_path / "corpus"
    expected, latin1_dir = _corpus(corpus)
    n_bad = sum(v is not None for v in expected.values())
    n_good = len(expected) - n_bad

    coll = tmp_path / "coll"
    assert run_cli("init", coll).returncode == 0
    r = run_cli("-C", coll, "add", corpus)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"added {len(expected)}, already present 0, skipped 1"
    assert "file name is not valid UTF-8" in r.stderr and "caf\\xe9.wav" in r.stderr
    became = corpus / "bad" / "became_a_folder.wav"
    became.unlink()
    became.mkdir()
    originals = tree_state(corpus)

    r = run_cli("-C", coll, "analyze", "--workers", "2")
    assert r.returncode == 1, r.stderr
    assert f"analyze: {n_good} ok, {n_bad} failed, 0 already up to date" in r.stderr
    assert f"{n_bad} item(s) failed" in r.stderr
    assert "Traceback" not in r.stderr

    records = {os.path.relpath(rec["path"], corpus): rec
               for rec in jsonl(run_cli("-C", coll, "ls", "--format", "jsonl").stdout)}
    assert set(records) == set(expected)
    for rel, fragment in expected.items():
        rec = records[rel]
        if fragment is None:
            assert rec["status"] == "ok", (rel, rec["error"])
            assert rec["media_info"]["container"]["duration"] > 0.9
        else:
            assert rec["status"] == "error", (rel, rec)
            assert fragment in rec["error"], (rel, rec["error"])
            assert "Error:" not in rec["error"] and "Traceback" not in rec["error"], rec["error"]
    assert records["bad/flac_named.mp3"]["media_info"]["audio"]["codec"] == "flac"
    assert records["bad/wav_named.m4a"]["media_info"]["container"]["kind"] == "wav"

    assert tree_state(corpus) == originals  # nothing was written to, renamed or touched
    rows = db_rows(coll, "SELECT id, created_at FROM results ORDER BY id")

    r = run_cli("-C", coll, "analyze", "--workers", "2")  # a re-run is a no-op
    assert f"analyze: 0 ok, 0 failed, {len(expected)} already up to date" in r.stderr
    assert db_rows(coll, "SELECT id, created_at FROM results ORDER BY id") == rows

    r = run_cli("-C", coll, "analyze", "--workers", "2", "--retry-failed")
    assert r.returncode == 1
    assert f"analyze: 0 ok, {n_bad} failed, {n_good} already up to date" in r.stderr
    retried = db_rows(coll, "SELECT id, created_at FROM results ORDER BY id")
    assert len(retried) == len(rows)  # failures replaced, never duplicated
    ok_rows = "SELECT id, created_at FROM results WHERE status = 'ok' ORDER BY id"
    assert set(db_rows(coll, ok_rows)) == set(rows) & set(retried)  # only failures re-ran
    assert len(db_rows(coll, ok_rows)) == n_good - 2  # two good files are copies of others

    r = run_cli("-C", coll, "status")
    assert r.returncode == 1
    for rel, fragment in expected.items():
        if fragment is not None:
            assert f"{corpus / rel} [analyze]: " in r.stdout

    # A broken file replaced by a good one is picked up by a plain re-run (its bytes changed).
    write_audio(corpus / "bad" / "text.wav", tone(seconds=1.0, sample_rate=8000, freq_hz=500), 8000)
    r = run_cli("-C", coll, "analyze")
    assert f"analyze: 1 ok, 0 failed, {len(expected) - 1} already up to date" in r.stderr
    assert tree_state(latin1_dir)  # the skipped file is still there, untouched
