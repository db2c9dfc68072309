"""`features` on headerless PCM added with --raw: read as its stated format, like `analyze`."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audiotrove.catalog.db import Catalog
from conftest import run_cli, tone


@pytest.mark.parametrize("workers", ["1", "2"])  # in this process, and in worker processes
def test_features_read_headerless_pcm_as_its_stated_format(tmp_path, workers):
    root = tmp_path / "c"
    Catalog.create(root).close()
    rates = {"low.raw": (8000, 440.0), "high.raw": (16000, 1000.0)}
    for name, (sr, freq) in rates.items():
        x = tone(freq_hz=freq, seconds=1.5, sample_rate=sr, amplitude=0.25)[:, 0]
        (x * 32767).astype("<i2").tofile(tmp_path / name)
        r = run_cli("-C", root, "add", "--raw", f"{sr}:1:s16le", tmp_path / name)
        assert r.returncode == 0, r.stderr
    out = tmp_path / "f.parquet"
    r = run_cli("-C", root, "features", "--set", "rms,centroid", "-j", workers, "-o", out)
    assert r.returncode == 0, r.stderr
    df = pd.read_parquet(out)
    for name, (sr, freq) in rates.items():
        rows = df[df["path"].str.endswith(name)]
        assert len(rows) == 15  # 1.5 s in 0.1 s rows: the stated rate, not a guess
        inner = rows.iloc[1:-1]
        assert np.allclose(inner["rms"], -15.05, atol=0.3)  # 0.25 amplitude sine
        assert np.allclose(inner["centroid"], freq, rtol=0.05)
