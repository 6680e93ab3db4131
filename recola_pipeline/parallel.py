"""Parallel loops over recordings and grid points, through joblib on a chosen backend.

``run.backend`` selects joblib's backend: ``loky`` (processes on this machine, the default),
``threading``, or ``dask``: ``run.scheduler = "local:N"`` starts a dask.distributed LocalCluster of
N single-threaded worker processes on the loopback interface, ``"tcp://host:8786"`` connects to
a running scheduler. Workers read inputs and write artifacts by path, so on a cluster the data
root and the artifact root must be on storage every worker sees. Results do not depend on the
backend or the number of workers: every task is a pure function of its inputs and runs with one
BLAS thread, so its floating-point operations happen in the same order everywhere.
"""
from __future__ import annotations

import atexit
import functools
import warnings

import joblib
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from . import interrupts
from .registry import require

BACKENDS = ("loky", "threading", "dask")


@functools.cache
def dask_client(scheduler: str):
    """The dask.distributed client for ``scheduler`` (created once per process, closed at exit)."""
    distributed = require("distributed", what="run.backend = 'dask'", extra="dask")
    Client, LocalCluster = distributed.Client, distributed.LocalCluster
    if scheduler.startswith("local:"):
        workers = int(scheduler.split(":", 1)[1])
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address="127.0.0.1:0")  # loopback only, any free port
        client = Client(cluster)
        atexit.register(cluster.close)
    else:
        client = Client(scheduler)
    atexit.register(client.close)
    return client


#: how much a loky worker's memory may grow after its first task before loky replaces it (loky's
#: default is 300 MB): a task that imports torch and loads a network keeps both for the next task, by
#: design, and a worker replaced for it pays the imports and the loading again for every stage
LOKY_WORKER_GROWTH_BYTES = 16 * 2**30


def _keep_loky_workers() -> None:
    """Let this loky worker grow by :data:`LOKY_WORKER_GROWTH_BYTES` (loky reads the limit at each check)."""
    from joblib.externals.loky import process_executor
    process_executor._MAX_MEMORY_LEAK_SIZE = max(process_executor._MAX_MEMORY_LEAK_SIZE, LOKY_WORKER_GROWTH_BYTES)


def _indexed(i, function, item):
    # one BLAS thread per task: the same floating-point sums whatever the backend and worker count;
    # a Ctrl-C that reaches a worker process stops its task from finishing any file (see interrupts)
    _keep_loky_workers()
    with interrupts.guard(), threadpool_limits(limits=1):
        return i, function(item)


def parallel_map(function, items, *, jobs: int = -1, backend: str = "loky", scheduler: str = "",
                 desc: str = "", progress: bool = True):
    """Apply ``function`` to ``items`` in parallel, showing a progress bar; results in input order.

    Parameters
    ----------
    function : callable
        Picklable function of one item.
    items : sequence
    jobs : int
        joblib ``n_jobs`` for ``loky`` and ``threading`` (-1: all cores); a dask cluster uses
        all its workers.
    backend : {'loky', 'threading', 'dask'}
    scheduler : str
        For ``dask``: ``local:N`` or a scheduler address.
    desc : str
        Progress-bar label.
    progress : bool
    """
    items = list(items)
    results = [None] * len(items)
    for i, result in parallel_imap(function, items, jobs=jobs, backend=backend, scheduler=scheduler, desc=desc,
                                   progress=progress):
        results[i] = result
    return results


def parallel_imap(function, items, *, jobs: int = -1, backend: str = "loky", scheduler: str = "",
                  desc: str = "", progress: bool = True):
    """:func:`parallel_map` as a generator of ``(index, result)`` in the order tasks finish, so a
    caller can write each result and drop it (memory independent of the number of items).

    Yields
    ------
    tuple of (int, object)
    """
    items = list(items)
    if not items:
        return
    backend_params = {"client": dask_client(scheduler or "local:2")} if backend == "dask" else {}
    n_jobs = 1 if len(items) == 1 and backend != "dask" else jobs
    tasks = (joblib.delayed(_indexed)(i, function, item) for i, item in enumerate(items))
    with joblib.parallel_config(backend=backend, **backend_params), warnings.catch_warnings():
        # a worker that grew past LOKY_WORKER_GROWTH_BYTES is replaced between two tasks, with a warning of a
        # leak: nothing is lost, the message misleads
        warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given to the executor")
        runner = joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        yield from tqdm(runner(tasks), total=len(items), desc=desc, disable=not progress, leave=True)
