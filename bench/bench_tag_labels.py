"""Tags against what the files are (issue 15): ../shared/data speech, music, instruments, drums,
field and noise recordings, tagged with the defaults; a file passes when an expected class is
among its 5 most present classes.

    python bench/bench_tag_labels.py [--data ../shared/data] > table.md
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from audiotrove.steps.tag import tag_file  # noqa: E402

MUSIC = {"music", "musical_instrument"}
# (folder glob, expected classes: any of them in the top 5 passes)
EXPECTED = [
    ("speech/*.wav", {"speech"}), ("speech/*.flac", {"speech"}),
    ("music/456440__*.ogg", {"bird", "bird_vocalization_bird_call_bird_song", "chirp_tweet"}),
    ("music/[A-Zs]*.ogg", MUSIC), ("music/sms_[a-r]*.wav", MUSIC),
    ("music/sms_singing-female.wav", MUSIC | {"singing", "female_singing"}),
    ("instruments/*.wav", MUSIC), ("instruments/drums/*.mp3", {"drum", "drum_kit", "bass_drum", "snare_drum",
                                                               "percussion", "cymbal", "hi_hat"}),
    ("field/LluviasDeMayo.flac", {"rain", "rain_on_surface", "raindrop"}),
    ("field/glacier-bay-humpback.ogg", {"whale_vocalization", "animal", "wild_animals"}),
    ("noise/sms_rain.wav", {"rain", "rain_on_surface", "raindrop"}),
    ("noise/sms_ocean.wav", {"ocean", "waves_surf", "wind", "water"}),
    ("noise/doing_the_dishes.wav", {"dishes_pots_and_pans", "cutlery_silverware", "kitchen",
                                    "chopping_food", "clatter"}),
    ("noise/rir_clap.wav", {"clapping", "hands", "slap_smack", "clap"}),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    data = Path(ap.parse_args().data)
    if not data.is_dir():
        sys.exit(f"no data at {data}")
    print("| file | expected (any) | top tags | pass |\n|---|---|---|---|")
    n = ok = 0
    for pattern, expected in EXPECTED:
        for f in sorted(data.glob(pattern)):
            tags = tag_file(str(f), {})["tags"]
            top = [t.rsplit(" ", 1)[0] for t in tags["top"].split(", ") if t]
            hit = bool(expected & set(top))
            n += 1
            ok += hit
            print(f"| {f.relative_to(data)} | {', '.join(sorted(expected))} | {tags['top']} | {'yes' if hit else '**no**'} |")
    print(f"\n{ok} of {n} files pass.")


if __name__ == "__main__":
    main()
