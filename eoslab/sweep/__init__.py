r"""Sweeps: one experiment over a grid of configurations, on any engine, into one table, losing nothing.

Every claim about the Edge of Stability is a statement about a grid: the edge
at :math:`2/\eta` for every step size, momentum's two levels across batch
sizes, divergence boundaries in the :math:`(\eta, \beta)` plane. :func:`sweep`
runs ``experiment(**config)`` for every configuration and collects one tidy
table (a pandas ``DataFrame``, one row per configuration: its parameters, then
what the experiment returned).

**Engines.** ``engine="serial"`` (the default) runs in this process;
``"processes"`` in a pool of local processes. Anything with a ``submit``
method works too: a ``concurrent.futures`` executor, a Dask
``distributed.Client`` (a ``LocalCluster`` on one machine; a cluster through
``dask-jobqueue``) or a ``submitit`` executor (SLURM job arrays; its local
executor runs anywhere). ``sweep`` needs pandas for its table, and the
engines are optional: ``pip install eoslab[sweep]`` installs all three.

**Nothing lost.** With ``store``, each finished configuration is written at
once, atomically, as a small JSON file named by its parameters (by the worker
where it can reach the store, and by the driver when the result arrives). A
sweep started again reads the store and runs only what is missing; a
configuration that raised is recorded with its error (status ``failed``) and
the others go on, and ``retry_failed=True`` runs just those again. A cell
whose worker died is recorded as ``lost`` and always runs again; with the
local processes engine a dead worker costs only the cell that killed it (the
cells running beside it start again). An interrupt (Ctrl-C) stops the local
workers and returns the table of what finished; on a cluster, cells already
running finish and are stored. The store is a cache keyed by the experiment's
name and each configuration: after changing what an experiment computes,
start a new store (or delete the old one).

**Reproducible.** A configuration's seed is derived from its parameters
(:func:`config_seed`), so a cell gives the same numbers whichever worker runs
it, in whatever order. The table records the package version, the device and
the time of each cell.
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path

from . import cells
from . import store as cellstore
from .cells import RUN_COLUMNS
from .store import config_seed

__all__ = ["RUN_COLUMNS", "config_seed", "grid", "sweep"]


def grid(**values):
    """The product of value lists, as a list of configurations (the last name varies fastest).

    >>> grid(lr=[0.1, 0.2], beta=[0.0, 0.9])
    [{'lr': 0.1, 'beta': 0.0}, {'lr': 0.1, 'beta': 0.9}, {'lr': 0.2, 'beta': 0.0}, {'lr': 0.2, 'beta': 0.9}]
    """
    if not values:
        raise ValueError("grid needs at least one parameter, e.g. grid(lr=[0.1, 0.2])")
    for name, options in values.items():
        if isinstance(options, (str, bytes, dict)) or not hasattr(options, "__iter__"):
            raise ValueError(f"grid: {name} must be a list of values, got {options!r}")
        if len(list(options)) == 0:
            raise ValueError(f"grid: {name} has no values")
    names = list(values)
    return [dict(zip(names, combo)) for combo in itertools.product(*(list(v) for v in values.values()))]


def _table(pd, configs, records, interrupted):
    rows = []
    for config in configs:
        record = records.get(cellstore.key(config))
        row = dict(config)
        if record is None:
            row.update(status="pending")
        else:
            row.update(record.get("result") or {})
            row.update({k: record.get(k) for k in RUN_COLUMNS})
        rows.append({**row, **{k: row.get(k) for k in RUN_COLUMNS}})  # the run columns last, in one order
    table = pd.DataFrame(rows)
    for column in table.columns:  # None beside numbers stays None (pandas would turn the column into floats)
        values = [row.get(column) for row in rows]
        if any(v is None for v in values) and all(isinstance(v, (int, float)) for v in values if v is not None):
            table[column] = pd.Series(values, dtype=object)
    table.attrs.update(eoslab=cells.version(), interrupted=interrupted)
    return table


def sweep(experiment, configs, *, store=None, engine="serial", workers=None, retry_failed=False, device=None,
          resources=None, progress=True):
    """Run ``experiment(**config)`` for every configuration; return one row per configuration.

    Parameters
    ----------
    experiment : callable
        ``experiment(**config) -> dict`` of measured quantities (numbers, strings, None, or lists of them;
        numpy and torch scalars are converted). Its keys may not repeat a parameter's name with another value,
        nor the run columns (:data:`RUN_COLUMNS`). If it takes ``seed`` and the configuration has none, it
        receives :func:`config_seed` of the configuration; if it takes ``device`` and the configuration has
        none, it receives ``device``. For ``"processes"`` and remote engines it must be importable by the
        workers: a function defined with ``def`` in a module (checked before any work for ``"processes"``).
    configs : list of dict
        The configurations: :func:`grid` for a product of value lists, or any explicit list. Values are made
        plain first (numpy scalars become numbers), so that a stored cell is found again on resume.
    store : str or path, optional
        A folder that keeps each finished configuration as it finishes; a sweep started again with the same
        store and experiment runs only what is missing. On a cluster, a folder every worker can reach.
    engine : "serial", "processes", or an executor
        Where the cells run: this process, a pool of ``workers`` spawned local processes, or any object with a
        ``submit`` method (``concurrent.futures`` executors, a Dask ``distributed.Client``, a ``submitit``
        executor, whose cells are submitted as one job array).
    workers : int, optional
        Processes for ``"processes"`` (default: the number of CPUs).
    retry_failed : bool
        Run again the configurations the store records as ``failed`` (``lost`` ones always run again).
    device : str, optional
        Passed to an experiment that takes ``device`` (e.g. ``"cuda"``; each worker then uses that device),
        and recorded.
    resources : dict, optional
        Dask resource annotations per cell, e.g. ``{"GPU": 1}`` to run one cell per GPU at a time. Only for a
        Dask client, whose workers must be started with those resources (else the cells wait forever).
    progress : bool
        A progress bar that advances as cells complete.

    Returns
    -------
    pandas.DataFrame
        One row per configuration, in the order given: its parameters, what the experiment returned, then
        ``seed`` (the one it was given, or None), ``status`` (``"ok"``, ``"failed"``, ``"lost"`` or, after an
        interrupt, ``"pending"``), ``error``, ``seconds``, ``device``, ``worker``, ``eoslab`` (the package
        version) and ``experiment``. ``table.attrs["interrupted"]`` says whether the sweep was cut short.

    Examples
    --------
    >>> def square(x, seed):
    ...     return {"y": x * x}
    >>> sweep(square, grid(x=[1, 2, 3]), progress=False)[["x", "y", "status"]]
       x  y status
    0  1  1     ok
    1  2  4     ok
    2  3  9     ok
    """
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("sweep collects its table with pandas: pip install eoslab[sweep]") from None
    if not callable(experiment):
        raise TypeError(f"experiment must be callable, got {type(experiment).__name__}")
    configs = list(configs) if isinstance(configs, (list, tuple)) else configs
    if not isinstance(configs, list) or not configs or not all(isinstance(c, dict) for c in configs):
        raise ValueError("configs must be a non-empty list of dicts (e.g. grid(lr=[0.1, 0.2]))")
    configs = [dict(cellstore.plain(c, f"configs[{i}]")) for i, c in enumerate(configs)]
    keys = [cellstore.key(c) for c in configs]
    if len(set(keys)) != len(keys):
        raise ValueError("configs holds the same configuration twice; add a parameter that tells them apart "
                         "(e.g. replicate=[0, 1, 2])")
    if not (engine in ("serial", "processes") or hasattr(engine, "submit")):
        raise ValueError(f"engine must be 'serial', 'processes' or an executor with a submit method, got {engine!r}")
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if engine == "processes":
        cells.check_picklable(experiment)
    folder = None if store is None else Path(store).expanduser().resolve()
    records = {} if folder is None else _stored(folder, experiment)
    todo = [c for c, k in zip(configs, keys) if k not in records or records[k]["status"] == "lost"
            or (retry_failed and records[k]["status"] == "failed")]
    seeds = {k: c.get("seed", config_seed(c)) for c, k in zip(configs, keys)}
    from tqdm.auto import tqdm

    bar = tqdm(total=len(configs), initial=len(configs) - len(todo), desc="sweep", disable=not progress)
    interrupted = False

    def finish(record):
        records[cellstore.key(record["config"])] = record
        if folder is not None:
            cellstore.write(folder, record)
        bar.update(1)

    where = None if folder is None else str(folder)
    try:
        if engine == "serial":
            for config in todo:
                finish(cells.run_cell(experiment, config, seeds[cellstore.key(config)], device, where))
        elif engine == "processes":
            cells.run_in_processes(experiment, todo, seeds, device, where, workers or os.cpu_count(), finish)
        elif todo:
            args = [(experiment, c, seeds[cellstore.key(c)], device, where) for c in todo]
            if hasattr(engine, "batch"):  # submitit: one job array for the whole sweep
                with engine.batch():
                    futures = [engine.submit(cells.run_cell, *a) for a in args]
            else:
                futures = [cells.submit(engine, cells.run_cell, a, resources) for a in args]
            _collect(futures, todo, folder, device, experiment, finish)
    except KeyboardInterrupt:  # what finished is kept (and stored); the rest stays pending
        interrupted = True
    finally:
        bar.close()
    return _table(pd, configs, records, interrupted)


def _stored(folder, experiment):
    """The store's records, after checking that they come from this experiment."""
    records = cellstore.read(folder)
    name = cells.experiment_name(experiment)
    other = sorted({r.get("experiment") for r in records.values() if r.get("experiment") not in (name, None)})
    if other:
        raise ValueError(f"the store {folder} holds results of {other}, not of {name}: give this sweep a store of "
                         "its own (a store is a cache of one experiment's cells)")
    return records


def _collect(futures, todo, folder, device, experiment, finish):
    """Wait for an engine's futures, finishing each cell as its future completes."""
    import time

    pending = dict(zip(range(len(futures)), futures))
    while pending:
        done = [i for i, f in pending.items() if f.done()]
        for i in done:
            future = pending.pop(i)
            try:
                finish(future.result())
            except Exception as error:  # noqa: BLE001 - the worker itself was lost
                stored = cellstore.read_one(folder, todo[i]) if folder is not None else None
                finish(stored if stored is not None and stored["status"] == "ok"
                       else cells.lost(todo[i], error, device, experiment))
        if pending and not done:
            time.sleep(0.05)
