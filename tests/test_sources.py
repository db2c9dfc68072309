"""catalog/sources.py: folders, files, list files and URLs become catalog entries."""
from __future__ import annotations

import os
from pathlib import Path

from conftest import tone, write_audio

from audiotrove.catalog.sources import expand_sources, is_media_name, is_url


def _tree(root: Path) -> dict[str, Path]:
    """A folder of media and non-media files, nested, with a hidden folder."""
    audio = tone(seconds=0.1, sample_rate=8000)
    files = {
        "a.wav": root / "a.wav",
        "sub/b.flac": root / "sub" / "b.flac",
        "sub/deeper/c.mp3": root / "sub" / "deeper" / "c.mp3",
        "sub/UPPER.WAV": root / "sub" / "UPPER.WAV",
        "with space é.ogg": root / "with space é.ogg",
    }
    for path in files.values():
        write_audio(path, audio, 8000)
    (root / "notes.txt").write_text("not a list of media, just notes\n")
    (root / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    (root / "sub" / "readme.md").write_text("x")
    (root / ".hidden").mkdir()
    write_audio(root / ".hidden" / "secret.wav", audio, 8000)
    return files


def test_folder_is_walked_recursively_for_media_only(tmp_path):
    files = _tree(tmp_path / "lib")
    found = expand_sources([str(tmp_path / "lib")])
    paths = sorted(p for p, _, _ in found.entries)
    assert paths == sorted(str(p) for p in files.values())
    assert all(kind == "file" and source == str(tmp_path / "lib") for _, kind, source in found.entries)
    # other files are counted as skipped, with why (hidden ones are not looked at)
    assert sorted((Path(p).name, why.split(";")[0]) for p, why in found.skipped) == [
        ("cover.jpg", "not an audio or video file name (extension .jpg)"),
        ("notes.txt", "not an audio or video file name (extension .txt)"),
        ("readme.md", "not an audio or video file name (extension .md)")]


def test_relative_arguments_are_made_absolute(tmp_path):
    _tree(tmp_path / "lib")
    found = expand_sources(["lib/sub/b.flac", "lib/sub"], base=tmp_path)
    paths = [p for p, _, _ in found.entries]
    assert paths[0] == str(tmp_path / "lib" / "sub" / "b.flac")
    assert all(os.path.isabs(p) for p in paths)
    assert len(paths) == 4  # the file, then b.flac, deeper/c.mp3 and UPPER.WAV from the folder


def test_list_files_comments_blank_lines_relative_paths_urls_and_nesting(tmp_path):
    files = _tree(tmp_path / "lib")
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "inner.lst").write_text("# nested list, paths relative to this file\n../lib/a.wav\n")
    (lists / "batch.txt").write_text(
        "# my batch\n"
        "\n"
        "   ../lib/sub/b.flac   \n"
        f"{files['sub/deeper/c.mp3']}\n"
        "https://example.org/archive/tape%2001.mp3\n"
        "   # an indented comment\n"
        "@inner.lst\n"
        "../lib/missing.wav\n"
    )
    found = expand_sources([str(lists / "batch.txt")])
    assert found.entries == [
        (str(files["sub/b.flac"]), "file", "   ../lib/sub/b.flac   ".strip()),
        (str(files["sub/deeper/c.mp3"]), "file", str(files["sub/deeper/c.mp3"])),
        ("https://example.org/archive/tape%2001.mp3", "url", "https://example.org/archive/tape%2001.mp3"),
        (str(files["a.wav"]), "file", "../lib/a.wav"),
    ]
    assert found.skipped == [(str(tmp_path / "lib" / "missing.wav"), "not found")]
    # @list works for any name, relative to the current folder
    again = expand_sources(["@lists/inner.lst"], base=tmp_path)
    assert again.entries == [(str(files["a.wav"]), "file", "../lib/a.wav")]


def test_list_files_that_include_each_other_stop(tmp_path):
    (tmp_path / "a.txt").write_text("b.txt\n")
    (tmp_path / "b.txt").write_text("a.txt\n")
    found = expand_sources([str(tmp_path / "a.txt")])
    assert found.entries == []
    assert found.skipped and "nested too deeply" in found.skipped[0][1]


def test_urls_are_stored_as_given():
    found = expand_sources(["http://radio.example/stream.ogg", "S3://bucket/key.wav"])
    assert [(p, k) for p, k, _ in found.entries] == [("http://radio.example/stream.ogg", "url"),
                                                     ("S3://bucket/key.wav", "url")]
    assert is_url("https://x") and not is_url("/https/x.wav")


def test_links_loops_and_odd_names(tmp_path):
    root = tmp_path / "lib"
    _tree(root)
    (root / "broken.wav").symlink_to(root / "nowhere.wav")  # registered: analysis says why
    (root / "loop.wav").symlink_to(root / "loop.wav")
    (root / "sub" / "back_up").symlink_to(root)  # a folder link loop
    (root / "folder.wav").mkdir()  # a folder named like a file is walked as a folder
    write_audio(root / "folder.wav" / "inside.flac", tone(seconds=0.1, sample_rate=8000), 8000)
    latin1 = os.fsencode(root) + b"/caf\xe9.wav"  # not valid UTF-8: cannot go in the catalog
    with open(latin1, "wb") as f:
        f.write((root / "a.wav").read_bytes())
    found = expand_sources([str(root)])
    paths = {Path(p).name for p, _, _ in found.entries}
    assert {"broken.wav", "loop.wav", "inside.flac", "a.wav"} <= paths
    assert "folder.wav" not in paths
    assert sum(1 for p, _, _ in found.entries if p.endswith("/a.wav")) == 1  # loop not followed twice
    reasons = dict(found.skipped)
    assert any(r == "folder link loop" for r in reasons.values())
    assert reasons[str(root) + "/caf\\xe9.wav"].startswith("file name is not valid UTF-8")
    for path, _, _ in found.entries:
        path.encode("utf-8")  # everything kept can be stored


def test_explicit_file_with_unusual_extension_is_kept_and_missing_is_skipped(tmp_path):
    odd = tmp_path / "take1.bak"
    odd.write_bytes(b"RIFF")
    found = expand_sources([str(odd), str(tmp_path / "nope.wav")])
    assert found.entries == [(str(odd), "file", str(odd))]
    assert found.skipped == [(str(tmp_path / "nope.wav"), "not found")]


def test_media_names():
    for name in ("a.wav", "B.FLAC", "c.m4a", "clip.MP4", "x.opus", "y.webm", "z.aiff", "w.wma"):
        assert is_media_name(name), name
    for name in ("a.txt", "b.jpg", "wav", "c.wav.part"):
        assert not is_media_name(name), name
