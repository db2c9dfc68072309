"""Known speech for the transcription tests and bench: espeak-ng (libespeak-ng through ctypes)
says a sentence and reports when each word starts (its WORD events), so word times are known.

    audio, words = say("The archive keeps every interview about freedom.")
    # audio: float32 mono at 16 kHz; words: [(word, start_s), ...]

Every sentence is synthesized in a fresh process (this file run as a script), so the same call
gives the same samples whatever was said before: the library keeps state between syntheses (in
one process a sentence came out 7 samples shorter, and up to 0.94 of full scale different,
after other sentences had been said, and Whisper then heard other words: the transcription
tests depended on the order they ran in), and espeak_Terminate followed by a new
espeak_Initialize hangs. The child loads the library, registers the callback that collects the
samples and the WORD events, synthesizes once and writes a JSON header line (sample rate, word
events) and the 16-bit samples to its stdout; it imports only the standard library (0.1-0.3 s
a sentence on the shared 2-core machine).

`available()` is False when libespeak-ng is not installed (`apt-get install espeak-ng`);
tests then skip.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import subprocess
import sys

SAMPLE_RATE_HZ = 16000
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_EVENT_LIST_TERMINATED, _EVENT_WORD = 0, 1
_POS_CHARACTER = 1
_ESPEAK_RATE = 1
_TIMEOUT_S = 60.0
_available: list[bool] = []


class _Event(ctypes.Structure):  # espeak_EVENT (speak_lib.h)
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


def _synthesize(text: str, voice: str, words_per_minute: int) -> tuple[int, bytes, list]:
    """In the child: (library sample rate, int16 samples as bytes, [(text_position, length,
    sample), ...] of the WORD events). RuntimeError when the library is missing."""
    name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise RuntimeError(f"libespeak-ng is not installed (apt-get install espeak-ng): {exc}")
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_DONT_EXIT)
    if rate <= 0:
        raise RuntimeError("libespeak-ng did not initialize (espeak-ng-data missing?)")
    chunks: list[bytes] = []
    words: list = []

    def collect(wav, count, events):
        if count > 0 and wav:
            chunks.append(ctypes.string_at(wav, 2 * count))
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_WORD:
                words.append((events[i].text_position, events[i].length, events[i].sample))
            i += 1
        return 0

    callback = _CALLBACK(collect)  # a reference held while C holds the pointer
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise RuntimeError(f"espeak-ng has no voice {voice!r}")
    lib.espeak_SetParameter(_ESPEAK_RATE, int(words_per_minute), 0)  # absolute
    raw = text.encode("utf-8")
    lib.espeak_Synth(raw, len(raw) + 1, 0, _POS_CHARACTER, 0, 0, None, None)
    lib.espeak_Synchronize()
    return rate, b"".join(chunks), words


def _child() -> None:
    """`python speak.py`: one request (JSON on stdin) -> header line + samples on stdout."""
    request = json.loads(sys.stdin.read())
    try:
        rate, samples, words = _synthesize(request["text"], request["voice"],
                                           request["words_per_minute"])
    except RuntimeError as exc:
        sys.stdout.buffer.write(json.dumps({"error": str(exc)}).encode() + b"\n")
        return
    header = {"rate": rate, "words": words, "bytes": len(samples)}
    sys.stdout.buffer.write(json.dumps(header).encode() + b"\n" + samples)


def _run_child(text: str, voice: str, words_per_minute: int) -> tuple[dict, bytes]:
    request = json.dumps({"text": text, "voice": voice, "words_per_minute": words_per_minute})
    done = subprocess.run([sys.executable, "-S", "-E", __file__], input=request.encode(),
                          capture_output=True, timeout=_TIMEOUT_S)
    header_line, _, samples = done.stdout.partition(b"\n")
    if done.returncode != 0 or not header_line:
        raise RuntimeError(f"espeak-ng child failed ({done.returncode}): "
                           f"{done.stderr.decode(errors='replace')[-500:]}")
    header = json.loads(header_line)
    if "error" in header:
        raise RuntimeError(header["error"])
    if len(samples) != header["bytes"]:
        raise RuntimeError(f"espeak-ng child sent {len(samples)} bytes of {header['bytes']}")
    return header, samples


def available() -> bool:
    if not _available:
        try:
            _run_child("a", "en-us", 160)
            _available.append(True)
        except (RuntimeError, OSError, subprocess.SubprocessError):
            _available.append(False)
    return _available[0]


def say(text: str, *, voice: str = "en-us", words_per_minute: int = 160) -> tuple[np.ndarray, list]:
    """(audio float32 mono 16 kHz, [(word, start_s), ...]) for `text` spoken by espeak-ng."""
    import numpy as np
    import soxr

    header, samples = _run_child(text, voice, words_per_minute)
    rate = header["rate"]
    audio = np.frombuffer(samples, dtype="<i2").astype(np.float32) / 32768.0
    raw = text.encode("utf-8")
    words = [(raw[pos - 1:pos - 1 + length].decode("utf-8", "replace"), sample / rate)
             for pos, length, sample in header["words"]]
    return soxr.resample(audio, rate, SAMPLE_RATE_HZ).astype(np.float32), words


def music(*, seconds: float, sample_rate: int = SAMPLE_RATE_HZ, amplitude: float = 0.2) -> np.ndarray:
    """A plucked arpeggio (harmonic notes, 4 a second, decaying): what analyze calls music."""
    import numpy as np

    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    y = np.zeros(n)
    notes = (220.0, 277.2, 329.6, 440.0, 392.0, 329.6, 293.7, 246.9)
    beat = 0.25
    for k in range(int(np.ceil(seconds / beat))):
        s, e = int(k * beat * sample_rate), min(n, int((k + 1) * beat * sample_rate))
        tt = t[s:e] - t[s]
        env = np.exp(-3 * tt)
        f = notes[k % len(notes)]
        for h in range(1, 6):
            y[s:e] += env * np.sin(2 * np.pi * f * h * tt) / h
        y[s:e] += 0.5 * env * np.sin(np.pi * f * tt)
    return (amplitude * y / np.abs(y).max()).astype(np.float32)


if __name__ == "__main__":
    _child()
