"""Parallel loops: loky's workers stay from one stage to the next, whatever memory a task keeps."""
from __future__ import annotations

import os
import time

import numpy as np

from recola_pipeline.parallel import parallel_map

_KEPT: list = []


def pid_after_light_task(_) -> int:
    time.sleep(0.2)  # long enough that both workers take tasks
    return os.getpid()


def pid_after_keeping_memory(_) -> int:
    """What importing torch and loading a network do to a worker: memory kept for its next task."""
    _KEPT.append(np.ones(400 * 2**20 // 8))  # 400 MB, written, so resident
    time.sleep(1.2)  # past loky's one-second interval between memory checks
    return os.getpid()


def test_a_worker_that_keeps_memory_is_not_replaced_between_stages():
    """loky's default replaces a worker that grew 300 MB since its first task: audio features first and
    faces (torch) next started every worker twice, each importing torch and loading the network again."""
    light = parallel_map(pid_after_light_task, range(4), jobs=2, progress=False)
    heavy = parallel_map(pid_after_keeping_memory, range(2), jobs=2, progress=False)
    after = parallel_map(pid_after_light_task, range(4), jobs=2, progress=False)
    assert len(set(light)) == 2 and set(heavy) | set(after) == set(light)
