"""Running the cells of a sweep: one configuration in a worker, and the engines that run many.

A cell's record holds its configuration, the seed it ran with, what the
experiment returned (``result``), its status (see
:data:`~eoslab.sweep.store.STATUSES`), the error if any, the seconds it took,
the device it was given, the worker that ran it and the package version.
"""
from __future__ import annotations

import inspect
import os
import pickle
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import store

__all__ = []

#: Columns that describe how a cell ran rather than what it measured; a result may not use these names.
RUN_COLUMNS = ("seed", "status", "error", "seconds", "device", "worker", "eoslab", "experiment")


def version():
    """The package's version (read at run time: this module is imported while the package is)."""
    return sys.modules[__name__.split(".")[0]].__version__


def experiment_name(experiment):
    """``module.qualname`` of the experiment (of the function inside a ``functools.partial``)."""
    fn = getattr(experiment, "func", experiment)
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def accepts(fn, name):
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def run_cell(experiment, config, seed, device, folder, markers=None):
    """Run one configuration and return its record (also stored in ``folder`` when the worker can reach it).

    A configuration already stored as ``ok`` is returned as it is, without running (a duplicate of a cell
    that finished elsewhere). ``markers``, a local folder, receives a file while the cell runs (the processes
    engine uses it to tell which cells a dead worker was running).
    """
    if folder is not None:
        done = store.read_one(folder, config)
        if done is not None and done["status"] == "ok":
            return done
    marker = None
    if markers is not None:
        marker = Path(markers) / store.key(config)
        marker.touch()
    kwargs = dict(config)
    if "seed" not in config and accepts(experiment, "seed"):
        kwargs["seed"] = seed
    if device is not None and "device" not in config and accepts(experiment, "device"):
        kwargs["device"] = device
    record = {"config": config, "seed": kwargs.get("seed"), "device": str(kwargs.get("device", "default")),
              "worker": f"{platform.node()}:{os.getpid()}", "eoslab": version(),
              "experiment": experiment_name(experiment)}
    start = time.perf_counter()
    try:
        result = experiment(**kwargs)
        if not isinstance(result, dict):
            raise TypeError(f"the experiment must return a dict of measured quantities, got {type(result).__name__}")
        result = store.plain(result, "the experiment's result")
        clash = sorted(k for k in result if k in RUN_COLUMNS or (k in config and result[k] != config[k]))
        if clash:
            raise ValueError(f"the experiment returned {clash}, names the table gives to the configuration's "
                             f"parameters or to how the cell ran ({', '.join(RUN_COLUMNS)}): rename them")
        record.update(status="ok", result={k: v for k, v in result.items() if k not in config}, error=None)
    except Exception:  # noqa: BLE001 - a cell that raises is recorded, and the sweep goes on
        record.update(status="failed", result={}, error=traceback.format_exc(limit=8))
    record["seconds"] = time.perf_counter() - start
    if folder is not None:
        try:
            store.write(folder, record)
        except OSError:  # a worker that cannot reach the store: the driver writes the record
            pass
    if marker is not None:
        marker.unlink(missing_ok=True)
    return record


def lost(config, error, device, experiment):
    """The record of a configuration whose worker died, or that the engine dropped, before it could report."""
    return {"config": config, "seed": config.get("seed"), "status": "lost", "result": {},
            "error": f"the worker running this cell was lost: {type(error).__name__}: {error}", "seconds": None,
            "device": str(device or "default"), "worker": None, "eoslab": None,
            "experiment": experiment_name(experiment)}


def check_picklable(experiment):
    """Refuse, before any work, an experiment that worker processes could not import."""
    try:
        pickle.dumps(experiment)
    except Exception as error:  # noqa: BLE001 - whatever pickle raises, the cause is the same
        raise ValueError(f"the experiment cannot be sent to worker processes ({type(error).__name__}: {error}): "
                         "define it with def at the top level of a module (not a lambda or a nested function), "
                         "or use engine='serial'") from error
    fn = getattr(experiment, "func", experiment)
    main = sys.modules.get("__main__")
    if getattr(fn, "__module__", None) == "__main__" and not getattr(main, "__file__", None):
        raise ValueError("the experiment is defined in an interactive session or a notebook, which worker "
                         "processes cannot import: put it in a module (a .py file next to the notebook) and import "
                         "it, or use engine='serial'")


def submit(engine, fn, args, resources):
    if type(engine).__module__.split(".")[0] == "distributed":  # a Dask client: every call is a new task
        return engine.submit(fn, *args, pure=False, resources=resources)
    return engine.submit(fn, *args)


def run_in_processes(experiment, todo, seeds, device, folder, workers, finish):
    """Run ``todo`` in a pool of spawned local processes, calling ``finish(record)`` as each cell ends.

    A worker that dies breaks the whole pool (``BrokenProcessPool``): the cells that had not started are
    submitted again to a fresh pool, and the ones that were running are run again one at a time, each in a
    pool of its own, so that only a cell that kills its worker by itself is recorded as lost.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")
    markers = tempfile.mkdtemp(prefix="eoslab-sweep-")
    queue, suspects = list(todo), []
    pool = None
    try:
        while queue or suspects:
            if suspects:  # isolate each cell that was running when a worker died
                batch, size = [suspects.pop(0)], 1
            else:
                batch, queue, size = queue, [], workers
            pool = ProcessPoolExecutor(max_workers=size, mp_context=context)
            futures = {pool.submit(run_cell, experiment, c, seeds[store.key(c)], device, folder, markers): c
                       for c in batch}
            broken = False
            pending = dict(futures)
            while pending:
                done = [f for f in pending if f.done()]
                for f in done:
                    config = pending.pop(f)
                    try:
                        finish(f.result())
                    except BrokenProcessPool as error:
                        if size == 1:  # alone in its pool: this cell killed its worker
                            finish(lost(config, error, device, experiment))
                        else:
                            broken = True
                            started = (Path(markers) / store.key(config)).exists()
                            (suspects if started else queue).append(config)
                if pending and not done:
                    time.sleep(0.05)
            pool.shutdown(wait=True)
            pool = None
            if broken:
                for marker in Path(markers).iterdir():
                    marker.unlink()
    finally:
        if pool is not None:  # an interrupt: stop the workers, so that nothing runs on behind the driver's back
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
        for marker in Path(markers).iterdir():
            marker.unlink()
        os.rmdir(markers)
