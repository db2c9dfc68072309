"""Benchmark: transcription accuracy (WER), word-time accuracy and speed, per Whisper model.

    python bench/bench_transcribe.py [--minutes 10] [--models tiny.en,base] [--quick]

1. Word error rate on the speech files of ../shared/data whose transcripts SOURCES.md gives
   (LibriSpeech, LJ Speech, LibriVox, CMU ARCTIC, xmas, pocketsphinx cards), per file and
   overall (errors summed over all reference words), after the analyze step, through the
   transcribe step's own path (speech sections + context). Normalisation, for both texts:
   lower case; hyphens to spaces; punctuation dropped (apostrophes inside words kept);
   mr/mrs/dr to mister/missus/doctor; numbers 0-999 and ordinals to words.
2. Word times against espeak-ng's own timing: sentences said by espeak-ng (libespeak-ng's WORD
   events give each word's start sample) with pauses between; the transcript's words are
   aligned to the text (difflib on normalised words); share of the aligned words whose start
   is within 0.5 s of espeak-ng's, and the median error.
3. Speed, one CPU thread (CTranslate2 cpu_threads=1, BLAS/OpenMP at 1), CPU time of the
   process, as x real time = seconds of audio per CPU second: on a ~10-minute speech file (the
   transcribed clips above, looped, short pauses between) and on a ~10-minute mixed file (30 s
   of speech, then 60 s of music, repeated), each transcribed through the speech sections
   (what `transcribe` does) and whole (every second handed to Whisper). The analyze step's
   own time is shown apart (it runs anyway, and once for every step).
4. Character error rate on the Mandarin AISHELL-1 clip (CER, the usual measure for Chinese,
   which is written without spaces between words), multilingual models only, language given
   (zh) and detected, greedy and beam 5: character edit distance / reference characters,
   punctuation, symbols and spaces dropped (after NFKC). Whisper often writes Mandarin in
   Traditional characters while AISHELL's transcripts are Simplified, so CER is given as
   written and after converting the transcript to Simplified (OpenCC's t2s, `pip install
   opencc`, which `make bench` installs): the second separates recognition errors from the
   choice of script, and is how Whisper is usually scored on AISHELL.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse
import difflib
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))
DATA = ROOT.parent / "shared" / "data"

from audiotrove.io.decode import read_all  # noqa: E402
from audiotrove.steps import Item, get_step  # noqa: E402
from audiotrove.models.whisper import is_english_only  # noqa: E402
from audiotrove.steps.transcribe import transcribe_file  # noqa: E402

# (file under data/, transcript as SOURCES.md gives it)
REFERENCES = [
    ("speech/2412-153948-0000.flac", "IF THE READER WILL EXCUSE ME I WILL SAY NOTHING OF MY ANTECEDENTS NOR OF THE CIRCUMSTANCES WHICH LED ME TO LEAVE MY NATIVE COUNTRY THE NARRATIVE WOULD BE TEDIOUS TO HIM AND PAINFUL TO MYSELF"),
    ("speech/librispeech-1995-1837-0001.wav", "IT WAS THE FIRST GREAT SORROW OF HIS LIFE IT WAS NOT SO MUCH THE LOSS OF THE COTTON ITSELF BUT THE FANTASY THE HOPES THE DREAMS BUILT AROUND IT"),
    ("speech/LJ050-0131.wav", "unless a system is established for the frequent formal review of activities thereunder. in this regard"),
    ("speech/sense_and_sensibility_01_austen_64kb-0870.wav", "and mister john dashwood had then leisure to consider how much there might be prudently in his power to do for them"),
    ("speech/sense_and_sensibility_01_austen_64kb-0880.wav", "he was not an ill disposed young man"),
    ("speech/cmu_arctic_us_aew_a0001.wav", "Author of the danger trail, Philip Steels, etc."),
    ("speech/cmu_arctic_us_aew_a0002.wav", "Not at this particular case, Tom, apologized Whittemore."),
    ("speech/cmu_arctic_us_aew_a0003.wav", "For the twentieth time that evening the two men shook hands."),
    ("speech/cmu_arctic_us_axb_a0004.wav", "Lord, but I'm glad to see you again, Phil."),
    ("speech/cmu_arctic_us_axb_a0005.wav", "Will we ever forget it."),
    ("speech/xmas.wav", "Wishing you a Merry Christmas, and a Happy New Year"),
    ("speech/pocketsphinx_cards_001.wav", "ten of clubs"),
    ("speech/pocketsphinx_cards_005.wav", "eight of spades four of clubs seven of hearts"),
    ("speech/librispeech_tc100/103-1240-0000.flac", "CHAPTER ONE MISSUS RACHEL LYNDE IS SURPRISED MISSUS RACHEL LYNDE LIVED JUST WHERE THE AVONLEA MAIN ROAD DIPPED DOWN INTO A LITTLE HOLLOW FRINGED WITH ALDERS AND LADIES EARDROPS AND TRAVERSED BY A BROOK"),
    ("speech/librispeech_tc100/19-198-0000.flac", "NORTHANGER ABBEY"),
]

ESPEAK_SENTENCES = [
    "The archive keeps every interview about freedom.",
    "Please remember the river crossing at midnight.",
    "My grandmother worked in the cotton mill for eleven years.",
    "We walked to the station and waited for the northern train.",
    "Nobody in the village could read the letter from the capital.",
    "The harvest was poor that autumn, and the winter came early.",
    "She sang the old songs while the children fell asleep.",
    "After the flood, the families rebuilt the school together.",
    "The doctor arrived on horseback with a bag of medicine.",
    "Every Sunday we listened to the radio in the kitchen.",
    "The factory closed its doors when the war began.",
    "His brother sailed across the ocean to find work.",
    "They planted apple trees along the road to the church.",
    "The teacher wrote our names on the blackboard in chalk.",
    "In the evening the men played cards under the lamp.",
    "We never spoke about those years until much later.",
]
# (file under data/, transcript as SOURCES.md gives it): Mandarin, scored per character
CER_REFERENCES = [("speech/aishell-BAC009S0724W0121.wav", "广州市房地产中介协会分析")]
MUSIC = ["music/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg",
         "music/sorohanro_-_solo-trumpet-06.ogg", "music/sms_orchestra.wav", "music/sms_cello-phrase.wav"]

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen " \
        "fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORD = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
        "nine": "ninth", "twelve": "twelfth"}
_ABBREV = {"mr": "mister", "mrs": "missus", "dr": "doctor"}


def _number(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + _number(n % 100))


def _ordinal(n: int) -> str:
    words = _number(n).split()
    last = words[-1]
    words[-1] = _ORD.get(last) or (last[:-1] + "ieth" if last.endswith("y") else last + "th")
    return " ".join(words)


def normalize(text: str) -> list[str]:
    text = text.lower().replace("-", " ")
    out: list[str] = []
    for token in re.findall(r"[a-z0-9']+", text):
        token = token.strip("'")
        m = re.fullmatch(r"(\d+)(st|nd|rd|th)?", token)
        if m and int(m.group(1)) < 1000:
            out += (_ordinal if m.group(2) else _number)(int(m.group(1))).split()
        elif token:
            out.append(_ABBREV.get(token, token))
    return out


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def characters(text: str) -> list[str]:
    """The characters CER counts: NFKC, punctuation, symbols, spaces and controls dropped."""
    import unicodedata

    text = unicodedata.normalize("NFKC", text)
    return [c for c in text if unicodedata.category(c)[0] not in "PZSC"]


def to_simplified(text: str) -> str | None:
    """Traditional -> Simplified characters (OpenCC t2s); None when opencc is not installed."""
    try:
        import opencc
    except ImportError:
        return None
    return opencc.OpenCC("t2s").convert(text)


def analyze(path: str) -> tuple[dict, float]:
    started = time.process_time()
    data = get_step("analyze").run(Item(0, path, get_step("analyze").params(), {}, ""))
    return data, time.process_time() - started


def transcribe(path: str, model: str, analysis: dict | None) -> tuple[dict, float]:
    """model 'NAME[:LANG][@BEAM]': language detected unless given, beam 1 unless given."""
    spec, _, beam = model.partition("@")
    name, _, language = spec.partition(":")
    started = time.process_time()
    out = transcribe_file(path, {"model": name, "language": language or "auto", "beam": int(beam or 1)},
                          analysis, cpu_threads=1)
    return out["transcript"], time.process_time() - started


def bench_wer(models: list[str]) -> None:
    print("## Word error rate (speech files with transcripts)\n")
    print("| file | words | " + " | ".join(f"{m} WER" for m in models) + " |")
    print("|---|---:|" + "---:|" * len(models))
    totals = {m: [0, 0] for m in models}
    for rel, ref_text in REFERENCES:
        path = DATA / rel
        if not path.exists():
            continue
        analysis, _ = analyze(str(path))
        ref = normalize(ref_text)
        cells = []
        for m in models:
            t, _ = transcribe(str(path), m, analysis)
            errors = edit_distance(ref, normalize(t["text"]))
            totals[m][0] += errors
            totals[m][1] += len(ref)
            cells.append(f"{100 * errors / len(ref):.1f} %")
        print(f"| {rel} | {len(ref)} | " + " | ".join(cells) + " |")
    print("| **all** | " + str(next(iter(totals.values()))[1]) + " | "
          + " | ".join(f"**{100 * e / max(1, n):.1f} %**" for e, n in totals.values()) + " |\n")


def bench_cer(names: list[str]) -> None:
    """CER of the multilingual models on the Mandarin clip(s), as written and in Simplified."""
    variants = [v for m in names if not is_english_only(m)
                for v in (f"{m}:zh", f"{m}:zh@5", m, f"{m}@5")]
    if not variants:
        return
    print("## Character error rate (Mandarin, AISHELL-1)\n")
    print("| file | chars | model | language | transcript | CER as written | CER in Simplified |")
    print("|---|---:|---|---|---|---:|---:|")
    for rel, ref_text in CER_REFERENCES:
        path = DATA / rel
        if not path.exists():
            continue
        analysis, _ = analyze(str(path))
        ref = characters(ref_text)
        for m in variants:
            t, _ = transcribe(str(path), m, analysis)
            simple = to_simplified(t["text"])
            cer = 100 * edit_distance(ref, characters(t["text"])) / len(ref)
            cer_s = "(opencc not installed)" if simple is None else \
                f"{100 * edit_distance(ref, characters(simple)) / len(ref):.1f} %"
            lang = f"{t['language']} (given)" if ":" in m else \
                f"{t['language']} (detected, p = {t.get('language_probability') or 0:.2f})"
            print(f"| {rel} | {len(ref)} | {m} | {lang} | {t['text']} | {cer:.1f} % | {cer_s} |", flush=True)
    print()


def bench_word_times(models: list[str], tmp: Path) -> None:
    import speak

    if not speak.available():
        print("espeak-ng not installed: word-time check skipped\n")
        return
    sr = speak.SAMPLE_RATE_HZ
    parts, truth, pos = [np.zeros(sr // 2, np.float32)], [], sr // 2
    for k, sentence in enumerate(ESPEAK_SENTENCES):  # all different: the alignment cannot slip
        audio, words = speak.say(sentence, words_per_minute=150 + 10 * (k % 4))
        truth += [(normalize(w)[0], pos / sr + s) for w, s in words if normalize(w)]
        parts.append(audio)
        pos += len(audio)
        pause = np.zeros(int(sr * (0.4 + 0.3 * (k % 3))), np.float32)
        parts.append(pause)
        pos += len(pause)
    path = tmp / "espeak.wav"
    sf.write(path, np.concatenate(parts), sr, subtype="PCM_16")
    analysis, _ = analyze(str(path))
    print(f"## Word start times vs espeak-ng ({len(truth)} words, {pos / sr:.0f} s)\n")
    print("| model | words aligned | start within 0.5 s | median error | 90th pct error |")
    print("|---|---:|---:|---:|---:|")
    for m in models:
        t, _ = transcribe(str(path), m, analysis)
        hyp = [(tok, w[0]) for w in t["words"] for tok in normalize(w[2])[:1]]
        sm = difflib.SequenceMatcher(a=[w for w, _ in truth], b=[w for w, _ in hyp], autojunk=False)
        errors = [abs(truth[a + k][1] - hyp[b + k][1])
                  for a, b, size in sm.get_matching_blocks() for k in range(size)]
        near = sum(e <= 0.5 for e in errors)
        print(f"| {m} | {len(errors)}/{len(truth)} | {100 * near / max(1, len(errors)):.1f} % | "
              f"{statistics.median(errors):.2f} s | {np.percentile(errors, 90):.2f} s |")
    print()


def _build(tmp: Path, minutes: float, *, mixed: bool) -> tuple[Path, list, str]:
    sr = 16000
    speech, texts = [], []
    for rel, text in REFERENCES:
        if (DATA / rel).exists():
            x, rate = read_all(DATA / rel)
            speech.append(_to16k(x, rate))
            texts.append(text)
    music = []
    for rel in MUSIC:
        if (DATA / rel).exists():
            x, rate = read_all(DATA / rel)
            music.append(_to16k(x, rate))
    rng = np.random.default_rng(0)
    out, total, k, m = [], 0, 0, 0
    music_spans: list[tuple[float, float]] = []
    said: list[str] = []  # the reference texts of the clips, in order
    target = int(minutes * 60 * sr)
    while total < target:
        block = 0
        while block < (30 * sr if mixed else target):
            clip = speech[k % len(speech)]
            pause = np.zeros(int(rng.uniform(0.3, 0.8) * sr), np.float32)
            out += [clip, pause]
            said.append(texts[k % len(texts)])
            block += len(clip) + len(pause)
            k += 1
            if total + block >= target:
                break
        total += block
        if mixed and total < target:
            music_spans.append((total / sr, min(target, total + 60 * sr) / sr))
            need = 60 * sr
            while need > 0:
                clip = music[m % len(music)][:need]
                out.append(0.5 * clip)
                need -= len(clip)
                total += len(clip)
                m += 1
    path = tmp / ("mixed.wav" if mixed else "speech.wav")
    sf.write(path, np.concatenate(out)[:target], sr, subtype="PCM_16")
    return path, music_spans, " ".join(said)


def _inside(words: list, spans: list) -> int:
    """Words whose start lies inside a music block, 1 s from its edges (hallucinations)."""
    return sum(any(s + 1.0 <= w[0] <= e - 1.0 for s, e in spans) for w in words)


def _to16k(x: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    mono = x.mean(axis=1) if x.ndim == 2 else x
    return soxr.resample(mono.astype(np.float32), rate, 16000).astype(np.float32)


def bench_speed(models: list[str], tmp: Path, minutes: float) -> None:
    print(f"## Speed, one CPU thread ({minutes:g}-minute files; x real time = audio s per CPU s)\n")
    print("| file | analyze | model | what is decoded | audio decoded | CPU s | x real time | WER | words | words inside music |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for mixed in (False, True):
        path, music_spans, reference = _build(tmp, minutes, mixed=mixed)
        ref = normalize(reference)
        duration = sf.info(path).duration
        analysis, analyze_s = analyze(str(path))
        speech = analysis["audio"]["speech"]["percentage"]
        name = f"{'mixed speech/music' if mixed else 'speech'} ({speech:.0f} % speech)"
        for m in (m for m in models if ":" not in m):
            for how, an in (("speech sections", analysis), ("whole file", None)):
                if how == "whole file" and not mixed:
                    continue
                t, cpu = transcribe(str(path), m, an)
                print(f"| {name} | {duration / analyze_s:.0f}x | {m} | {how} | "
                      f"{t['decoded_duration']:.0f} s | {cpu:.1f} | {duration / cpu:.1f}x | "
                      f"{100 * edit_distance(ref, normalize(t['text'])) / len(ref):.1f} % | "
                      f"{t['word_count']} | {_inside(t['words'], music_spans) if mixed else '-'} |", flush=True)
    print()


def _peak_rss_child(path: str, analysis_json: str) -> None:
    """(In a fresh process) transcribe with tiny.en, print peak RSS (MB), decoded s, CPU s."""
    import json
    import resource

    analysis = json.loads(Path(analysis_json).read_text())
    t, cpu = transcribe(path, "tiny.en", analysis)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, t["decoded_duration"], cpu)


def bench_memory(tmp: Path, minutes_list: tuple[float, ...] = (10.0, 30.0)) -> None:
    """Peak memory of transcribing continuous speech, in a fresh process per length: it must
    not grow with the file (windows of at most WINDOW_S are held, never the whole file)."""
    import json
    import subprocess

    print("## Memory (tiny.en, continuous speech, transcribe alone in a fresh process per file)\n")
    print("| file | whole file at 16 kHz float32 | audio decoded | peak RSS of the process | CPU s |")
    print("|---|---:|---:|---:|---:|")
    for minutes in minutes_list:
        path, _, _ = _build(tmp, minutes, mixed=False)
        analysis, _ = analyze(str(path))
        saved = tmp / "analysis.json"
        saved.write_text(json.dumps(analysis))
        out = subprocess.run([sys.executable, __file__, "--rss-child", str(path), str(saved)],
                             capture_output=True, text=True, check=True).stdout.split()
        rss_mb, decoded, cpu = map(float, out[-3:])
        print(f"| {minutes:g} min speech | {minutes * 60 * 16000 * 4 / 2**20:.0f} MB | {decoded:.0f} s | "
              f"{rss_mb:.0f} MB | {cpu:.1f} |", flush=True)
        path.unlink()
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--models", default="tiny.en,base")
    ap.add_argument("--quick", action="store_true", help="2-minute speed files, no memory check")
    ap.add_argument("--only", default="wer,cer,times,speed,memory", help="parts to run (comma list)")
    ap.add_argument("--rss-child", nargs=2, metavar=("AUDIO", "ANALYSIS_JSON"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        _peak_rss_child(*args.rss_child)
        return
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    # multilingual models run twice: language detected (auto, the default) and given (en)
    models = [v for m in models for v in ([m] if is_english_only(m) else [m, f"{m}:en"])]
    # and every one with beam search (5) too, for the accuracy tables
    variants = [v for m in models for v in (m, f"{m}@5")]
    if not DATA.exists():
        print(f"{DATA} not found: nothing to measure")
        return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        parts = set(args.only.split(","))
        if "wer" in parts:
            bench_wer(variants)
        if "cer" in parts:
            bench_cer([m for m in models if ":" not in m])
        if "times" in parts:
            bench_word_times([m for m in models if ":" not in m], tmp)
        if "speed" in parts:
            bench_speed(models, tmp, 2.0 if args.quick else args.minutes)
        if "memory" in parts and not args.quick:
            bench_memory(tmp)


if __name__ == "__main__":
    main()
