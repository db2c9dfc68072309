"""The registry of steps. A step module defines STEP; it is listed here by name."""
from __future__ import annotations

import importlib

from .base import Item, Step

_STEP_MODULES = {
    "analyze": "audiotrove.steps.analyze",
    "enhance": "audiotrove.steps.enhance",
    "segment": "audiotrove.steps.segment",
    "transcribe": "audiotrove.steps.transcribe",
    "embed": "audiotrove.steps.embed",
}


def register(name: str, module: str) -> None:
    _STEP_MODULES[name] = module


def get_step(name: str) -> Step:
    if name not in _STEP_MODULES:
        raise KeyError(f"unknown step {name!r}; known: {', '.join(sorted(_STEP_MODULES))}")
    return importlib.import_module(_STEP_MODULES[name]).STEP


def step_names() -> list[str]:
    return sorted(_STEP_MODULES)


__all__ = ["Item", "Step", "get_step", "register", "step_names"]
