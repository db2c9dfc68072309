"""A tiny but real step for the runner tests (registered with audiotrove.steps.register).

It decodes the file and reports its sample peak in dBFS plus a `gain_db` parameter. Test
switches (parameters, so they are part of the result key like any parameter):
  fail_if_marker   fail while a sidecar file "<path>.fail" exists (a transient failure)
  crash_if_name    the worker process dies (os._exit) on files whose name contains this text
  hold_if_name     on files whose name contains this text: create "<path>.started", then wait
                   until "<path>.go" exists (forever if it never does): a run the test can
                   interrupt, kill or time out at a known moment, whatever the machine's speed
tests/toystep_v2.py is the same step with a bumped version that also requires `analyze`.
"""
from __future__ import annotations

import os
import time

import numpy as np

from audiotrove.io.decode import read_all
from audiotrove.steps import Item, Step

DEFAULTS = {"gain_db": 0.0, "fail_if_marker": False, "crash_if_name": "", "hold_if_name": ""}


def run(item: Item) -> dict:
    name = os.path.basename(item.path)
    if item.params["crash_if_name"] and item.params["crash_if_name"] in name:
        os._exit(70)  # what a segfaulting decoder looks like to the pool
    if item.params["hold_if_name"] and item.params["hold_if_name"] in name:
        open(item.path + ".started", "w").close()
        while not os.path.exists(item.path + ".go"):
            time.sleep(0.01)
    if item.params["fail_if_marker"] and os.path.exists(item.path + ".fail"):
        raise RuntimeError("toy step: marker file present")
    audio, _ = read_all(item.path)
    peak = float(np.max(np.abs(audio)))
    toy = {"peak_dbfs": 20 * np.log10(max(peak, 1e-12)) + item.params["gain_db"],
           "frames": len(audio), "worker_pid": os.getpid()}
    if "analyze" in item.inputs:
        toy["analyze_duration_s"] = item.inputs["analyze"]["media_info"]["container"]["duration"]
    return {"toy": toy}


STEP = Step(name="toy", version="1", run=run, defaults=DEFAULTS, summary="peak level (test step)")
