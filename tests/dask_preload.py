"""Loaded into the test's Dask workers (`dask worker --preload tests/dask_preload.py`).

Lets tests/test_dask.py stop a real step at a known moment, whatever the machine's speed: when
a sidecar file "<audio path>.hold-<step>" exists, the first attempt at that item writes
"<audio path>.started-<step>" holding the worker's pid, then waits until "<audio path>.go"
exists (the test kills the worker, interrupts the coordinator or stops the scheduler meanwhile).
A later attempt (the item re-run on another worker) finds ".started-<step>" there and runs at once.
"""
from __future__ import annotations

import os
import time

import audiotrove.runner.worker as worker

# Dask may load a preload file more than once: wrap the original, once.
_execute_item = getattr(worker, "_unheld_execute_item", worker.execute_item)
worker._unheld_execute_item = _execute_item


def execute_item(step_name, item):
    if os.path.exists(f"{item.path}.hold-{step_name}"):
        try:
            fd = os.open(f"{item.path}.started-{step_name}", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            fd = None  # not the first attempt
        if fd is not None:
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            while not os.path.exists(f"{item.path}.go"):
                time.sleep(0.01)
    return _execute_item(step_name, item)


worker.execute_item = execute_item
