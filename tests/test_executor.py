"""runner/executor.py: the one interface every parallel job goes through (issue 9 item 3):
outcomes as they finish, in the caller's process; an exception, a dying worker or a task past its
time limit is an outcome of that task only, the others go on."""
from __future__ import annotations

import os
import time

from audiotrove.runner.executor import LocalPoolExecutor, TaskOutcome, TimeLimit


def task(x: int) -> int:
    """x*x; 3 raises, 4 kills its worker, 5 never ends, 6 reports decoding progress."""
    if x == 3:
        raise ValueError("three is bad")
    if x == 4:
        os._exit(3)
    if x == 5:
        while True:
            time.sleep(0.05)
    if x == 6:
        from audiotrove.io import decode

        decode._progress_hook(2.0)
        time.sleep(0.6)  # past the reporting interval
        decode._progress_hook(3.0)
        time.sleep(0.6)
        decode._progress_hook(1.0)
    return x * x


def test_every_kind_of_outcome_and_the_batch_goes_on():
    got: dict[int, TaskOutcome] = {}
    seen = []
    ex = LocalPoolExecutor(2, TimeLimit(fixed_s=2.0), on_progress=lambda item, s: seen.append((item, s)))
    ex.run(task, range(10), lambda o: got.__setitem__(o.item, o))
    assert sorted(got) == list(range(10))
    for x in (0, 1, 2, 6, 7, 8, 9):
        assert got[x].error is None and got[x].value == x * x and got[x].kind == "ok"
    assert got[3].kind == "raised" and got[3].error.startswith("ValueError: three is bad (at test_executor.py:")
    assert got[4].kind == "crashed" and "exit status 3" in got[4].error
    assert got[5].kind == "timed_out" and got[5].error.startswith("timed out after 2 s")
    assert got[6].decoded_s >= 2.0 and seen and all(item == 6 for item, _ in seen)


def test_no_items_and_one_worker():
    got = []
    LocalPoolExecutor(1).run(task, [], got.append)
    assert got == []
    LocalPoolExecutor(1).run(task, iter([7, 8]), got.append)
    assert [(o.item, o.value) for o in got] == [(7, 49), (8, 64)]  # one worker: in order
