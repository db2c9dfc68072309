"""The `embed` step: one vector per unit, per window or per file of each collection file, stored
as a Parquet shard (the parameters, the result and how a file is embedded: vectors/embed.py).

    units          for `unit`: the segmentation's config key; the shard of each file is looked
                   up in <collection>/.audiotrove/vectors/unit-shards.json, which the caller
                   writes before the run (file id -> unit shard name)
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import ItemError
from ..units.store import UNITS_DIRNAME
from ..vectors.embed import DEFAULTS, VERSION, embed_file
from ..vectors.store import shards_dir_of_workdir
from .base import Item, Step

UNIT_MAP_NAME = "unit-shards.json"


def read_unit_map(workdir: str | os.PathLike) -> dict[str, str]:
    path = Path(workdir) / "vectors" / UNIT_MAP_NAME
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _run(item: Item) -> dict:
    if not item.workdir:
        raise ValueError("embed runs in a collection: its vectors are stored there")
    units_path = None
    if item.params.get("level") == "unit":
        name = read_unit_map(item.workdir).get(str(item.file_id))
        if name:
            units_path = os.path.join(item.workdir, UNITS_DIRNAME, name)
            if not os.path.exists(units_path):
                raise ItemError(f"its unit shard {name} is missing: run `audiotrove segment` again")
    return embed_file(item.path, item.params, shards_dir=shards_dir_of_workdir(item.workdir),
                      units_path=units_path)


STEP = Step(
    name="embed",
    version=VERSION,
    run=_run,
    defaults=DEFAULTS,
    summary="one vector per unit, window or file (YAMNet, descriptors or your ONNX model); Parquet shards",
)
