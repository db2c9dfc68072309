"""models.once_per_process: one model per process, however many threads ask for it."""
from __future__ import annotations

import threading
import time

import pytest

from audiotrove.models import ModelError, once_per_process


def test_threads_share_one_load_and_a_failed_load_is_tried_again():
    made, fail = [], [True]

    @once_per_process
    def load():
        """A loader."""
        if fail[0]:
            fail[0] = False
            raise ModelError("not installed")
        made.append(object())
        time.sleep(0.05)  # a slow load: the other threads wait on the lock, not load again
        return made[-1]

    with pytest.raises(ModelError):
        load()
    got = []
    threads = [threading.Thread(target=lambda: got.append(load())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and all(g is made[0] for g in got) and len(got) == 8
    assert load.__doc__ == "A loader."
