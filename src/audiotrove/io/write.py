"""Write audio files atomically, block by block.

    with open_writer("out/a.enhanced.flac", sample_rate=44100, channels=2,
                     protect=["in/a.wav"]) as w:
        for block in blocks:
            w.write(block)
    # the file appears under its name only now, complete (temporary name + os.replace)

The file is written under a temporary name in the same folder and renamed when the
`with` block ends normally; on an exception the temporary file is removed and nothing is
left behind.

Temporary names: `.audiotrove-tmp-<pid>.<host>-<random>-<name>.part` (files) or a folder
`.audiotrove-tmp-<pid>.<host>-<random>/` (`temp_folder`, when a temporary file must keep its real
name and extension for a decoder or muxer); <host> is 6 hex digits of the machine's name, so that
on a folder shared by several machines (Dask workers) a run only sweeps its own machine's. Hidden, with no media or table extension, so no
reader or glob (`*.wav`, `*.parquet`) mistakes one for a result; `sweep_temps` removes those
whose process is gone (what a killed run leaves), at the start of the next run.
`publish` renames without ever replacing an existing file (the first free candidate name). A path in `protect` (the inputs) is never written to, whatever the output
name. Formats (soundfile / libsndfile): wav (PCM 24-bit by default, or float), flac (24-bit),
mp3 (MPEG Layer III; libsndfile's MPEG rates only: 8 to 48 kHz, 1 or 2 channels), ogg
(Vorbis). Vorbis is fed in small writes: libsndfile's Vorbis encoder is known to stall or
fail on very large single writes, and this keeps memory flat on long files too.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import ItemError

# format name -> (libsndfile major format, default subtype)
FORMATS = {
    "wav": ("WAV", "PCM_24"),
    "flac": ("FLAC", "PCM_24"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "ogg": ("OGG", "VORBIS"),
}
MP3_RATES_HZ = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
OGG_WRITE_FRAMES = 8192
# RF64 past this size: a plain RIFF/WAV header cannot describe more than 4 GiB.
WAV_RF64_BYTES = 2**32 - 2**20
TEMP_PREFIX = ".audiotrove-tmp-"
NAME_MAX_BYTES = 255  # the longest file name most file systems store (ext4, APFS, NTFS in UTF-16)
# What older versions left: `.<stem>.part-<pid>-<hex8>.<ext>` and `.<name>.tmp-<pid>`.
_TEMP = re.compile(r"^\.audiotrove-tmp-(\d+)(?:\.([0-9a-f]{6}))?-")
_LEGACY_TEMP = re.compile(r"^\..+\.(?:part|stage)-(\d+)-[0-9a-f]{8}(?:\.\w+)?$|^\..+\.tmp-(\d+)$|^\.tmp-(\d+)-")


class WriteError(ItemError):
    """The output cannot be written; the message says why, for the user."""


def format_for(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The format name for `path` (its extension) or the explicit `fmt`; WriteError if unknown."""
    name = (fmt or Path(path).suffix.lstrip(".")).lower()
    if name == "oga":
        name = "ogg"
    if name not in FORMATS:
        raise WriteError(f"cannot write {name or 'files without an extension'!r}: "
                         f"use one of {', '.join(FORMATS)}")
    return name


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when two paths name the same file (existing or not)."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


class AudioWriter:
    """Block writer to a temporary file, renamed into place by `commit()`."""

    def __init__(self, path: str | os.PathLike, *, sample_rate: int, channels: int,
                 fmt: str | None = None, subtype: str | None = None,
                 protect: list | tuple = (), expected_frames: int | None = None):
        import soundfile as sf

        self.path = Path(path)
        self.fmt = format_for(self.path, fmt)
        for other in protect:
            if same_file(self.path, other):
                raise WriteError(f"refusing to write over an input file: {self.path}")
        major, default_subtype = FORMATS[self.fmt]
        self.subtype = subtype or default_subtype
        if self.fmt == "mp3":
            if sample_rate not in MP3_RATES_HZ:
                raise WriteError(f"mp3 cannot store {sample_rate} Hz audio (MPEG rates are 8 to 48 kHz): "
                                 "choose --format flac or wav")
            if channels > 2:
                raise WriteError(f"mp3 holds 1 or 2 channels, not {channels}: choose --format flac or wav")
        if self.fmt == "flac" and channels > 8:
            raise WriteError(f"flac holds at most 8 channels, not {channels}: choose --format wav")
        if self.fmt == "wav" and expected_frames is not None:
            bytes_per = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}.get(self.subtype, 4)
            if expected_frames * channels * bytes_per > WAV_RF64_BYTES:
                major = "RF64"
        self.sample_rate = sample_rate
        self.channels = channels
        self.frames = 0
        self.clipped_samples = 0
        self._pcm = self.subtype.startswith("PCM") or self.fmt in ("mp3", "ogg")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp_path = temp_path(self.path)
        try:
            self._file = sf.SoundFile(self.tmp_path, "w", samplerate=sample_rate, channels=channels,
                                      format=major, subtype=self.subtype)
        except Exception as exc:
            self._remove_tmp()
            raise WriteError(f"cannot write {self.fmt} ({self.subtype}, {sample_rate} Hz, {channels} ch): {exc}") from exc
        self._closed = False

    def write(self, block: np.ndarray) -> None:
        block = np.asarray(block, np.float32)
        if block.ndim == 1:
            block = block[:, None]
        if block.shape[1] != self.channels:
            raise ValueError(f"expected {self.channels} channels, got {block.shape[1]}")
        if self._pcm:
            over = np.abs(block) > 1.0
            if over.any():
                self.clipped_samples += int(over.sum())
                block = np.clip(block, -1.0, 1.0)
        step = OGG_WRITE_FRAMES if self.fmt == "ogg" else max(len(block), 1)
        for i in range(0, len(block), step):
            self._file.write(block[i:i + step])
        self.frames += len(block)

    def commit(self) -> Path:
        """Close and rename into place; returns the final path."""
        if self._closed:
            return self.path
        self._file.close()
        self._closed = True
        os.replace(self.tmp_path, self.path)
        return self.path

    def abort(self) -> None:
        """Close and remove the temporary file (the final name is untouched)."""
        if not self._closed:
            try:
                self._file.close()
            except Exception:
                pass
            self._closed = True
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        try:
            os.unlink(self.tmp_path)
        except (FileNotFoundError, AttributeError):
            pass

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


# --- temporary names, sweeping, publishing -------------------------------------------------------

def temp_path(final: str | os.PathLike) -> Path:
    """A temporary name for `final` in its folder: `.audiotrove-tmp-<pid>.<host>-<hex>-<name>.part`."""
    final = Path(final)
    return final.with_name(f"{_temp_owner_tag()}-{secrets.token_hex(4)}-"
                           f"{shorten_name(final.name, max_bytes=120)}.part")


@contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Write `final` through a temporary name (`temp_path`): the block writes the yielded path;
    it is renamed into place when the block ends without error, and removed otherwise."""
    final = Path(final)
    tmp = temp_path(final)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write a text file (UTF-8, \\n line ends) atomically; return its path."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
    return Path(path)


@contextmanager
def temp_folder(parent: str | os.PathLike) -> Iterator[Path]:
    """A fresh `.audiotrove-tmp-<pid>.<host>-<hex>/` folder in `parent` (same file system as the final
    names, so a rename is atomic); removed with whatever is left in it when the block ends."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    folder = parent / f"{_temp_owner_tag()}-{secrets.token_hex(4)}"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _host_tag() -> str:
    import hashlib
    import socket

    return hashlib.sha1(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:6]


def _temp_owner_tag() -> str:
    """`.audiotrove-tmp-<pid>.<host>`: the start of this process's temporary names."""
    return f"{TEMP_PREFIX}{os.getpid()}.{_host_tag()}"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def temp_owner(name: str) -> int | None:
    """The process id a temporary name carries, or None if `name` is not a temporary name."""
    m = _TEMP.match(name) or _LEGACY_TEMP.match(name)
    if not m:
        return None
    return int(next(g for g in m.groups() if g is not None))


def _of_another_host(name: str) -> bool:
    m = _TEMP.match(name)
    return bool(m and m.group(2) and m.group(2) != _host_tag())


def sweep_temps(folder: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """Remove the temporary files and folders in `folder` whose process is gone; return them.

    A name whose process still runs (a concurrent run, or a reused process id) is kept, and so
    is one another machine wrote (its process cannot be checked from here)."""
    removed: list[Path] = []
    folder = Path(folder)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if _of_another_host(entry.name):  # its process id means nothing here: never swept
            continue
        pid = temp_owner(entry.name)
        is_dir = entry.is_dir(follow_symlinks=False)
        if pid is not None and not _pid_alive(pid):
            try:
                if is_dir:
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
        elif recursive and is_dir and pid is None:
            removed.extend(sweep_temps(entry.path, recursive=True))
    return removed


def shorten_name(stem: str, suffix: str = "", max_bytes: int = NAME_MAX_BYTES) -> str:
    """`stem + suffix`, the stem cut (whole characters) so that the name fits in `max_bytes` of
    UTF-8; a cut stem ends in `~` and 6 hex digits of the full stem's hash, so that two long
    names stay different."""
    import hashlib

    def size(text: str) -> int:
        return len(text.encode("utf-8", "surrogateescape"))

    if size(stem + suffix) <= max_bytes:
        return stem + suffix
    tag = "~" + hashlib.blake2b(stem.encode("utf-8", "surrogateescape"), digest_size=3).hexdigest()
    room = max(max_bytes - size(tag + suffix), 1)
    cut = stem.encode("utf-8", "surrogateescape")[:room].decode("utf-8", "ignore")
    return cut + tag + suffix


def publish(tmp: str | os.PathLike, candidates: Sequence[str | os.PathLike]) -> Path:
    """Move the finished file `tmp` to the first candidate name that does not exist yet, and
    return that name. Never replaces a file: the claim is a hard link, which fails when the
    name exists (atomic, also against a concurrent writer), then the temporary name goes.
    WriteError when every candidate is taken."""
    tmp = Path(tmp)
    for cand in candidates:
        cand = Path(cand)
        try:
            os.link(tmp, cand)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (1, 18, 38, 95):  # EPERM, EXDEV, ENOSYS, EOPNOTSUPP: no hard links
                raise WriteError(f"cannot write {cand}: {exc.strerror or exc}") from exc
            if os.path.lexists(cand):  # a file system without hard links: check, then rename
                continue
            os.rename(tmp, cand)
            return cand
        os.unlink(tmp)
        return cand
    raise WriteError(f"every output name is taken ({Path(candidates[0]).name} and "
                     f"{len(candidates) - 1} others): choose another output folder")


def open_writer(path: str | os.PathLike, *, sample_rate: int, channels: int, fmt: str | None = None,
                subtype: str | None = None, protect: list | tuple = (),
                expected_frames: int | None = None) -> AudioWriter:
    """An `AudioWriter` (use it in a `with` block: committed on success, removed on error)."""
    return AudioWriter(path, sample_rate=sample_rate, channels=channels, fmt=fmt, subtype=subtype,
                       protect=protect, expected_frames=expected_frames)


def write_audio(path: str | os.PathLike, audio: np.ndarray, *, sample_rate: int, fmt: str | None = None,
                subtype: str | None = None, protect: list | tuple = ()) -> Path:
    """Write a whole array atomically (frames[, channels])."""
    a = np.asarray(audio, np.float32)
    channels = 1 if a.ndim == 1 else a.shape[1]
    with open_writer(path, sample_rate=sample_rate, channels=channels, fmt=fmt, subtype=subtype,
                     protect=protect, expected_frames=len(a)) as w:
        for i in range(0, len(a), 65536):
            w.write(a[i:i + 65536])
    return Path(path)
