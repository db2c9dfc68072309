"""The unit schema, defined once: every column of a unit row with its kind, unit, description
and storage type. The extractor's rows (extract.py), the Parquet shards (store.py) and the unit
query language (select.py) all read it.

A unit row:
    unit      index of the unit in the file (0, 1, ...)
    start     s from the start of the file
    dur       s
    power     dB RMS (re full scale; mean square over all channels)
    hz        fundamental frequency in Hz, None when unpitched
    note      C, C#, D ... B (nearest equal-tempered note), None when unpitched
    octave    scientific octave (A4 = 440 Hz), None when unpitched
    clarity   0-1, harmonicity of the pitch
    centroid  Hz, spectral centroid of the unit's mean spectrum
    flatness  0-1, spectral flatness (1 = white noise)
    rolloff   Hz, 85 % of the magnitude lies below
    zcr       0-1, zero-crossing rate (fraction of sample pairs changing sign)
    mfcc      13 floats: mean MFCC over the unit's frames (dsp.features: 128 mel bands to Nyquist); the
              elements are fields of their own in queries, sorts and CSV: mfcc_1 .. mfcc_13
"""
from __future__ import annotations

import pyarrow as pa

from ..catalog.fields import Field, FieldSet

N_MFCC = 13

# (field, Parquet type, nullable) in column order.
_COLUMNS = (
    (Field("unit", "number", "count", "index of the unit in its file", integer=True), pa.int32(), False),
    (Field("start", "number", "s", "start of the unit in its file"), pa.float64(), False),
    (Field("dur", "number", "s", "duration of the unit"), pa.float64(), False),
    (Field("power", "number", "dB", "level, dB RMS re full scale"), pa.float32(), True),
    (Field("hz", "number", "Hz", "fundamental frequency (null when unpitched)"), pa.float32(), True),
    (Field("note", "text", None, "nearest note name C..B (sharps)", discrete=True), pa.string(), True),
    (Field("octave", "number", None, "octave, scientific (A4 = 440 Hz)", integer=True, discrete=True),
     pa.int16(), True),
    (Field("clarity", "number", None, "harmonicity of the pitch, 0-1"), pa.float32(), True),
    (Field("centroid", "number", "Hz", "spectral centroid"), pa.float32(), True),
    (Field("flatness", "number", None, "spectral flatness, 0-1 (1 = white noise)"), pa.float32(), True),
    (Field("rolloff", "number", "Hz", "frequency below which 85 % of the magnitude lies"), pa.float32(), True),
    (Field("zcr", "number", None, "zero-crossing rate, 0-1"), pa.float32(), True),
    (Field("mfcc", "list", None, "13 mean MFCCs", size=N_MFCC), pa.list_(pa.float32(), N_MFCC), True),
)

UNIT_FIELDS: tuple[Field, ...] = tuple(f for f, _, _ in _COLUMNS)
# columns every unit table has, in order (path and file_id are added when listing)
UNIT_COLUMNS: tuple[str, ...] = tuple(f.name for f in UNIT_FIELDS)
SCHEMA = pa.schema([pa.field(f.name, t, nullable=n) for f, t, n in _COLUMNS])

# The vocabulary of unit queries and sorts: the unit fields, the file they come from, mfcc_k.
UNIT_FIELDSET = FieldSet([
    Field("path", "text", None, "the file the unit comes from"),
    Field("file_id", "number", None, "the file's id in the catalog", integer=True),
    *UNIT_FIELDS,
    # the unit map (`audiotrove map --units`, maps/store.py): null until one is made
    Field("map.x", "number", None, "x on the unit map (t-SNE / UMAP / PCA units)"),
    Field("map.y", "number", None, "y on the unit map"),
    Field("map.order", "number", "rank", "rank in the similarity order (0 first)", integer=True),
    Field("map.cluster", "number", None, "k-means cluster of the unit map", integer=True, discrete=True),
    Field("grid.col", "number", None, "column of the unit's grid cell", integer=True),
    Field("grid.row", "number", None, "row of the unit's grid cell", integer=True),
    # labels other steps give units (units/labels.py): null until `tag` / `classify predict` ran
    Field("tag", "text", None, "the unit's top YAMNet (AudioSet) class, e.g. Speech (`tag`)", discrete=True),
    Field("tag_score", "number", None, "YAMNet's mean score (0-1) of that class over the unit"),
    Field("class.label", "text", None, "the label of a unit-level classifier (`classify predict`)",
          discrete=True),
    Field("class.confidence", "number", None, "that classifier's probability of the label (0-1)"),
], aliases={"duration": "dur", "pitch": "hz", "level": "power", "loudness": "power"})

__all__ = ["N_MFCC", "UNIT_FIELDS", "UNIT_COLUMNS", "SCHEMA", "UNIT_FIELDSET"]
