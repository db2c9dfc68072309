"""Known speech for the transcription tests and bench: espeak-ng (libespeak-ng through ctypes)
says a sentence and reports when each word starts (its WORD events), so word times are known.

    audio, words = say("The archive keeps every interview about freedom.")
    # audio: float32 mono at 16 kHz; words: [(word, start_s), ...]

`available()` is False when libespeak-ng is not installed (`apt-get install espeak-ng`);
tests then skip.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import threading

import numpy as np

SAMPLE_RATE_HZ = 16000
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_EVENT_LIST_TERMINATED, _EVENT_WORD = 0, 1
_POS_CHARACTER = 1


class _Event(ctypes.Structure):  # espeak_EVENT (speak_lib.h)
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))
_lock = threading.Lock()
_state: dict = {}


def _lib():
    if "lib" not in _state:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            _state["lib"] = None
            return None
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            _state["lib"] = None
            return None
        _state.update(lib=lib, rate=rate, chunks=[], words=[])

        def callback(wav, count, events):
            if count > 0 and wav:
                _state["chunks"].append(np.ctypeslib.as_array(wav, (count,)).copy())
            i = 0
            while events[i].type != _EVENT_LIST_TERMINATED:
                if events[i].type == _EVENT_WORD:
                    _state["words"].append((events[i].text_position, events[i].length,
                                            events[i].sample))
                i += 1
            return 0

        _state["callback"] = _CALLBACK(callback)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(_state["callback"])
    return _state["lib"]


def available() -> bool:
    return _lib() is not None


def say(text: str, *, voice: str = "en-us", words_per_minute: int = 160) -> tuple[np.ndarray, list]:
    """(audio float32 mono 16 kHz, [(word, start_s), ...]) for `text` spoken by espeak-ng."""
    import soxr

    with _lock:
        lib = _lib()
        if lib is None:
            raise RuntimeError("libespeak-ng is not installed (apt-get install espeak-ng)")
        lib.espeak_SetVoiceByName(voice.encode())
        lib.espeak_SetParameter(1, int(words_per_minute), 0)  # espeakRATE, absolute
        _state["chunks"].clear()
        _state["words"].clear()
        raw = text.encode("utf-8")
        lib.espeak_Synth(raw, len(raw) + 1, 0, _POS_CHARACTER, 0, 0, None, None)
        lib.espeak_Synchronize()
        rate = _state["rate"]
        audio = np.concatenate(_state["chunks"]).astype(np.float32) / 32768.0
        words = [(raw[pos - 1:pos - 1 + length].decode("utf-8", "replace"), sample / rate)
                 for pos, length, sample in _state["words"]]
    return soxr.resample(audio, rate, SAMPLE_RATE_HZ).astype(np.float32), words


def music(*, seconds: float, sample_rate: int = SAMPLE_RATE_HZ, amplitude: float = 0.2) -> np.ndarray:
    """A plucked arpeggio (harmonic notes, 4 a second, decaying): what analyze calls music."""
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
