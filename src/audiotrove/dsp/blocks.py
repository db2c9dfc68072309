"""Helpers shared by streaming processors: checking blocks, keeping output sample-aligned."""
from __future__ import annotations

import numpy as np


def as_block(block, channels: int, dtype=None) -> np.ndarray:
    """One block of the meter protocol as a (frames, channels) array; a 1-D block is one channel."""
    x = np.asarray(block, dtype=dtype)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != channels:
        raise ValueError(f"expected blocks of shape (frames, {channels}), got {x.shape}")
    return x


class AlignedOutput:
    """Keeps a streaming processor's output aligned with its input, sample for sample.

    `took(n)` counts input frames; `trim(outs)` joins output chunks, drops the processor's
    latency from the start, and never lets the output run past the input's length.
    """

    def __init__(self, *, latency: int, channels: int):
        self.to_skip = int(latency)
        self.channels = channels
        self.seen = 0
        self.emitted = 0

    def took(self, frames: int) -> None:
        self.seen += frames

    def trim(self, outs: list[np.ndarray]) -> np.ndarray:
        if not outs:
            return np.zeros((0, self.channels), np.float32)
        y = np.concatenate(outs)
        if self.to_skip:
            cut = min(self.to_skip, len(y))
            y = y[cut:]
            self.to_skip -= cut
        y = y[: max(0, self.seen - self.emitted)]
        self.emitted += len(y)
        return y.astype(np.float32)
