"""Write demo files that show typical problems, derived from the demo recordings (deterministic).

    python demo/make_problem_files.py demo/recordings demo/recordings/problems
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf


def main(src: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    speech, sr = sf.read(src / "sense_and_sensibility_01_austen_64kb-0870.wav", dtype="float32")
    t = np.arange(len(speech)) / sr

    # Clipped: driven 12 dB too hot into the converter's full scale.
    sf.write(out / "clipped_speech.wav", np.clip(speech * 4.0, -1.0, 1.0), sr, subtype="PCM_16")

    # Hummy: 50 Hz mains hum with harmonics under the voice.
    hum = sum(0.02 / k * np.sin(2 * np.pi * 50 * k * t) for k in (1, 2, 3, 5))
    sf.write(out / "hummy_speech.flac", (speech + hum).astype(np.float32), sr)

    # Archival-style: hiss, crackle (sparse clicks) and a 4 kHz band limit.
    from scipy.signal import butter, sosfiltfilt

    limited = sosfiltfilt(butter(8, 4000, fs=sr, output="sos"), speech)
    hiss = 0.01 * rng.standard_normal(len(speech))
    clicks = np.zeros(len(speech))
    where = rng.choice(len(speech), size=int(len(speech) / sr * 2), replace=False)
    clicks[where] = rng.choice([-0.5, 0.5], size=len(where))
    sf.write(out / "archival_hiss_crackle.wav", (limited + hiss + clicks).astype(np.float32), sr,
             subtype="PCM_16")

    # Silent: 20 s of near-silence (a dead channel: faint noise at about -75 dBFS).
    sf.write(out / "silent_tape.flac", (1e-4 * rng.standard_normal(20 * 16000)).astype(np.float32), 16000)

    # Broken: a WAV cut short in its header, and text saved with a .wav name.
    good = (src / "xmas.wav").read_bytes()
    (out / "broken_truncated.wav").write_bytes(good[:30])
    (out / "not_audio.wav").write_text("this is a text file, not audio\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
