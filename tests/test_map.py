"""`map`: layouts, grid, clusters and stored fields, on generated tones, noise and espeak-ng speech."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import speak
from audiotrove.cli import app
from audiotrove.maps.grid import assign_grid, neighbourhood_preservation

SR = 16000
KINDS = ("tone", "noise", "speech")
SENTENCES = ("The archive keeps every interview about freedom.",
             "Seven old records were found in the attic last winter.",
             "Please describe the weather on the morning you left.",
             "Radio stations played music until midnight.")


def tone_file(k: int) -> np.ndarray:
    t = np.arange(int(2.0 * SR)) / SR
    f = (220, 330, 440, 550)[k]
    x = sum(np.sin(2 * np.pi * f * h * t) / h for h in range(1, 6))
    return (0.2 * x).astype(np.float32)


def noise_file(k: int) -> np.ndarray:
    rng = np.random.default_rng(k)
    return (0.2 * rng.standard_normal(int(2.0 * SR))).astype(np.float32)


def speech_file(k: int) -> np.ndarray:
    audio, _ = speak.say(SENTENCES[k])
    return audio.astype(np.float32)


def invoke(root, *args):
    r = CliRunner().invoke(app, ["-C", str(root), *map(str, args)])
    assert r.exit_code == 0, r.output
    return r


@pytest.fixture(scope="module")
def coll(tmp_path_factory):
    if not speak.available():
        pytest.skip("espeak-ng is not installed (make system-test-deps)")
    root = tmp_path_factory.mktemp("map")
    folder = root / "audio"
    folder.mkdir()
    for kind, make in zip(KINDS, (tone_file, noise_file, speech_file)):
        for k in range(4):
            sf.write(folder / f"{kind}{k}.wav", make(k), SR)
    invoke(root, "init", root)
    invoke(root, "add", folder)
    invoke(root, "embed", "--model", "descriptors", "--files", "-j", "1")
    return root


def kind_of(path: str) -> str:
    return next(k for k in KINDS if path.rsplit("/", 1)[-1].startswith(k))


def test_three_sound_types_make_three_clusters_and_contiguous_order(coll):
    import audiotrove

    out = invoke(coll, "map", "--model", "descriptors", "--method", "tsne", "--format", "json").stdout
    info = json.loads(out)
    assert info["count"] == 12 and len(info["clusters"]) == 3
    with audiotrove.open(coll) as c:
        df = c.frame(fields="map.x,map.y,map.order,map.cluster,grid.col,grid.row")
    df["kind"] = df["path"].map(kind_of)
    # one cluster per kind, each kind in one cluster
    assert df.groupby("kind")["map.cluster"].nunique().eq(1).all()
    assert df.groupby("map.cluster")["kind"].nunique().eq(1).all()
    # map.order is a ranking 0..11 in which each kind is one contiguous run
    assert sorted(df["map.order"]) == list(range(12))
    runs = df.sort_values("map.order")["kind"].tolist()
    changes = sum(a != b for a, b in zip(runs, runs[1:]))
    assert changes == 2, runs
    # the grid: every item its own cell of the auto 4x3 grid
    cells = set(zip(df["grid.col"], df["grid.row"]))
    assert len(cells) == 12 and all(0 <= c < 4 and 0 <= r < 3 for c, r in cells)
    # the query language sees the fields; cluster 0 opens the order
    first = invoke(coll, "ls", "map.cluster = 0", "--format", "jsonl").stdout.splitlines()
    assert len(first) == 4
    assert {kind_of(json.loads(line)["path"]) for line in first} == {runs[0]}


def test_same_seed_same_map_and_named_maps_coexist(coll):
    import audiotrove

    invoke(coll, "map", "--model", "descriptors", "--method", "pca")
    a = json.loads(invoke(coll, "map", "--model", "descriptors", "--name", "alt", "--seed", "3",
                          "--format", "json").stdout)
    with audiotrove.open(coll) as c:
        one = c.frame(fields="map.alt.x,map.alt.y,map.alt.order,grid.alt.col,map.order").set_index("path")
    invoke(coll, "map", "--model", "descriptors", "--name", "alt", "--seed", "3")
    with audiotrove.open(coll) as c:
        two = c.frame(fields="map.alt.x,map.alt.y,map.alt.order,grid.alt.col,map.order").set_index("path")
    assert np.allclose(one["map.alt.x"], two["map.alt.x"]) and np.allclose(one["map.alt.y"], two["map.alt.y"])
    assert (one["map.alt.order"] == two["map.alt.order"]).all()
    assert (one["grid.alt.col"] == two["grid.alt.col"]).all()
    assert one["map.order"].notna().all()  # the default map is still there
    assert a["name"] == "alt" and a["seed"] == 3
    with audiotrove.open(coll) as c:
        table, info = c.map("alt")
    assert info == {**a, "times_s": info["times_s"]} and len(table) == 12
    assert dict(zip(table["path"], table["map.x"])) == pytest.approx(one["map.alt.x"].to_dict(), abs=1e-5)


def test_png_and_pca_one_dimensional(coll, tmp_path):
    out = tmp_path / "map.png"
    r = invoke(coll, "map", "--model", "descriptors", "--method", "pca", "--name", "flat", "--dims", "1",
               "--png", out, "--color", "duration")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert "cluster" in r.stdout
    redraw = tmp_path / "again.png"
    invoke(coll, "map", "--name", "flat", "--redraw", "--png", redraw)
    assert redraw.stat().st_size > 10_000


def test_bad_options_are_usage_errors(coll):
    r = CliRunner().invoke(app, ["-C", str(coll), "map", "--model", "descriptors", "--grid", "2x2"])
    assert r.exit_code == 2 and "do not fit" in r.output
    r = CliRunner().invoke(app, ["-C", str(coll), "map", "--model", "descriptors", "--method", "mds"])
    assert r.exit_code == 2 and "--method" in r.output
    r = CliRunner().invoke(app, ["-C", str(coll), "map", "--model", "descriptors", "--windows", "1"])
    assert r.exit_code == 2 and "embed" in r.output


# --- the grid ---------------------------------------------------------------------------------------

def test_grid_is_a_permutation_and_keeps_neighbours():
    rng = np.random.default_rng(1)
    xy = rng.random((900, 2))
    for exact_cells in (10**6, 64):  # exact, and blockwise with 8x8 blocks
        col, row = assign_grid(xy, cols=32, rows=30, exact_cells=exact_cells, block_cells=64)
        assert len(set(zip(col.tolist(), row.tolist()))) == 900
        assert col.min() >= 0 and col.max() < 32 and row.min() >= 0 and row.max() < 30
        # a point at the left of the map lands in the left columns
        assert np.corrcoef(xy[:, 0], col)[0, 1] > 0.95 and np.corrcoef(xy[:, 1], row)[0, 1] > 0.95
        kept = neighbourhood_preservation(xy, col, row)
        shuffled = rng.permutation(900)
        assert kept > 0.5 > 10 * neighbourhood_preservation(xy, col[shuffled], row[shuffled])
    with pytest.raises(ValueError):
        assign_grid(xy, cols=10, rows=10)


def test_unit_map_is_queryable_and_renders_in_similarity_order(coll, tmp_path):
    invoke(coll, "segment", "-j", "1")
    invoke(coll, "embed", "--model", "descriptors", "--units", "-j", "1")
    info = json.loads(invoke(coll, "map", "--units", "all", "--model", "descriptors", "--method", "pca",
                             "--format", "json").stdout)
    n = info["count"]
    assert n >= 12 and len(info["clusters"]) >= 2 and "power" in info["clusters"][0]["medians"]
    units = json.loads(invoke(coll, "units", "--sort", "map.order", "--format", "json").stdout)
    assert [u["map.order"] for u in units] == list(range(n))
    assert len({(u["grid.col"], u["grid.row"]) for u in units}) == n
    first = json.loads(invoke(coll, "units", "map.cluster = 0", "--format", "json").stdout)
    assert len(first) == info["clusters"][0]["size"] and {u["map.cluster"] for u in first} == {0}
    # each cluster is one run of the order
    clusters = [u["map.cluster"] for u in units]
    assert sum(a != b for a, b in zip(clusters, clusters[1:])) == len(info["clusters"]) - 1
    out = tmp_path / "ordered.wav"
    invoke(coll, "render", "--sort", "map.order", "--limit", "5", "-o", out)
    audio, sr = sf.read(out)
    assert abs(len(audio) / sr - sum(u["dur"] for u in units[:5])) < 0.05


def test_fitting_on_a_sample_places_the_rest_inside_their_clusters():
    from audiotrove.maps.layout import fit_layout, place

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 20)) * 3
    x = np.concatenate([c + rng.standard_normal((100, 20)) for c in centres])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    kind = np.repeat([0, 1, 2], 100)
    xy, fitted = fit_layout(x, method="tsne", dims=2, seed=0, sample=90)
    assert len(fitted) == 90 and len(set(kind[fitted])) == 3
    # every placed point is nearer its own kind's fitted centre than any other's
    centre = np.array([xy[fitted][kind[fitted] == k].mean(axis=0) for k in range(3)])
    rest = np.setdiff1d(np.arange(300), fitted)
    nearest = np.argmin(((xy[rest, None, :] - centre[None]) ** 2).sum(axis=2), axis=1)
    assert (nearest == kind[rest]).mean() > 0.97
    # a row placed against itself lands on its own coordinates
    assert np.allclose(place(x[:5], xy[:5], x[:1], k=1), xy[:1], atol=1e-6)


def test_update_places_new_files_on_the_existing_map(coll, tmp_path):
    import audiotrove

    invoke(coll, "map", "--model", "descriptors", "--name", "grow", "--method", "pca", "--grid", "4x4")
    with audiotrove.open(coll) as c:
        before, _ = c.map("grow")
    folder = coll / "audio"
    sf.write(folder / "tone9.wav", tone_file(1) * 0.8, SR)
    sf.write(folder / "noise9.wav", noise_file(9), SR)
    invoke(coll, "add", folder)
    invoke(coll, "embed", "--model", "descriptors", "--files", "-j", "1")
    r = invoke(coll, "map", "--model", "descriptors", "--name", "grow", "--update", "--format", "json")
    info = json.loads(r.stdout)
    assert info["placed"] == 2 and info["count"] == 14 and "advice" in info and info["advice"]
    with audiotrove.open(coll) as c:
        after, _ = c.map("grow")
        ordered = c.frame(fields="map.grow.order,map.grow.cluster,grid.grow.col,grid.grow.row")
    old = after[after["path"].isin(before["path"])].set_index("path")
    same = before.set_index("path").loc[old.index]
    assert np.allclose(old["map.x"], same["map.x"]) and (old["map.cluster"] == same["map.cluster"]).all()
    assert sorted(after["map.order"]) == list(range(14))
    assert len(set(zip(after["grid.col"], after["grid.row"]))) == 14
    for path, cl in zip(after["path"], after["map.cluster"]):
        if path.endswith("9.wav"):  # the new files joined their kind's cluster
            mates = after[after["path"].map(kind_of) == kind_of(path)]
            assert (mates["map.cluster"] == cl).all()
    runs = ordered.sort_values("map.grow.order")["path"].map(kind_of).tolist()
    assert sum(a != b for a, b in zip(runs, runs[1:])) == 2, runs
