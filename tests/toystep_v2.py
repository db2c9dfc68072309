"""The toy step with its version bumped to 2; it also requires `analyze` (see toystep.py)."""
from __future__ import annotations

import dataclasses

from toystep import STEP as STEP_V1

STEP = dataclasses.replace(STEP_V1, version="2", requires=("analyze",))
