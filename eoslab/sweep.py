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
executor runs anywhere). The engines are optional (``pip install
eoslab[sweep]``) and imported only by the caller who builds them.

**Nothing lost.** With ``store``, each finished configuration is written at
once, atomically, as a small JSON file named by its parameters (by the worker
where it can reach the store, and by the driver when the result arrives). A
sweep started again reads the store and runs only what is missing; a
configuration that raised is recorded with its error and the others go on,
and ``retry_failed=True`` runs just those again. A worker that dies costs only
the configurations it was running. An interrupt (Ctrl-C) returns the table of
what finished.

**Reproducible.** A configuration's seed is derived from its parameters
(:func:`config_seed`), so a cell gives the same numbers whichever worker runs
it, in whatever order. The table records the package version, the device and
the time of each cell.
"""
from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

__all__ = ["config_seed", "grid", "sweep"]

#: Columns that describe how a cell ran rather than what it measured.
RUN_COLUMNS = ("status", "error", "seconds", "device", "worker", "eoslab")


def grid(**values):
    """The product of value lists, as a list of configurations (the last name varies fastest).

    >>> grid(lr=[0.1, 0.2], beta=[0.0, 0.9])
    [{'lr': 0.1, 'beta': 0.0}, {'lr': 0.1, 'beta': 0.9}, {'lr': 0.2, 'beta': 0.0}, {'lr': 0.2, 'beta': 0.9}]
    """
    if not values:
        raise ValueError("grid needs at least one parameter, e.g. grid(lr=[0.1, 0.2])")
    for name, options in values.items():
        if isinstance(options, (str, bytes)) or not hasattr(options, "__iter__"):
            raise ValueError(f"grid: {name} must be a list of values, got {options!r}")
        if len(list(options)) == 0:
            raise ValueError(f"grid: {name} has no values")
    names = list(values)
    return [dict(zip(names, combo)) for combo in itertools.product(*(list(v) for v in values.values()))]


def _canonical(config):
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)


def config_seed(config):
    """A seed in ``[0, 2**31)`` that depends only on the configuration's parameters (not on order or worker).

    >>> config_seed({"lr": 0.1, "beta": 0.9}) == config_seed({"beta": 0.9, "lr": 0.1})
    True
    """
    return int(hashlib.sha256(_canonical(config).encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def _key(config):
    return hashlib.sha1(_canonical(config).encode()).hexdigest()[:16]


def _write(folder, record):
    """Write one cell's record atomically: to a temporary file, then renamed into place."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_key(record['config'])}.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=1, allow_nan=True))
    os.replace(tmp, path)


def _read(folder):
    """``{key: record}`` of the cells stored in ``folder`` (a half-written file never appears: see :func:`_write`)."""
    folder = Path(folder)
    out = {}
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        record = json.loads(path.read_text())
        out[_key(record["config"])] = record
    return out


def _version():
    """The package's version (read at run time: this module is imported while the package is)."""
    return sys.modules[__name__.rpartition(".")[0]].__version__


def _accepts(fn, name):
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def _run_cell(experiment, config, seed, device, folder):
    """Run one configuration and return its record (written to ``folder`` first when it is reachable here)."""
    kwargs = dict(config)
    if "seed" not in config and _accepts(experiment, "seed"):
        kwargs["seed"] = seed
    if device is not None and _accepts(experiment, "device"):
        kwargs["device"] = device
    record = {"config": config, "seed": kwargs.get("seed", seed), "device": str(device or "default"),
              "worker": f"{platform.node()}:{os.getpid()}", "eoslab": _version()}
    start = time.perf_counter()
    try:
        result = experiment(**kwargs)
        if not isinstance(result, dict):
            raise TypeError(f"the experiment must return a dict of measured quantities, got {type(result).__name__}")
        json.dumps(result, allow_nan=True)  # the store keeps JSON: numbers, strings, lists of them
        record.update(status="ok", result=result, error=None)
    except Exception:  # noqa: BLE001 - a cell that raises is recorded, and the sweep goes on
        record.update(status="failed", result={}, error=traceback.format_exc(limit=8))
    record["seconds"] = time.perf_counter() - start
    if folder is not None:
        try:
            _write(folder, record)
        except OSError:  # a worker that cannot reach the store: the driver writes the record
            pass
    return record


def _lost(config, error, device):
    """The record of a configuration whose worker died before it could report."""
    return {"config": config, "seed": config.get("seed", config_seed(config)), "status": "failed", "result": {},
            "error": f"the worker running this cell was lost: {type(error).__name__}: {error}", "seconds": None,
            "device": str(device or "default"), "worker": None, "eoslab": None}


def _submit(engine, fn, args, resources):
    if type(engine).__module__.split(".")[0] == "distributed":  # a Dask client: every call is a new task
        return engine.submit(fn, *args, pure=False, resources=resources)
    return engine.submit(fn, *args)


def _table(configs, records, interrupted):
    import pandas as pd

    rows = []
    for config in configs:
        record = records.get(_key(config))
        row = dict(config)
        if record is None:
            row.update(status="pending")
        else:
            row["seed"] = record["seed"]
            row.update(record.get("result") or {})
            row.update({k: record.get(k) for k in RUN_COLUMNS if k != "status"}, status=record["status"])
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in table.columns:  # None beside integers stays None (pandas would turn the integers into floats)
        values = [row.get(column) for row in rows]
        if any(v is None for v in values) and all(isinstance(v, int) for v in values if v is not None):
            table[column] = pd.Series(values, dtype=object)
    table.attrs.update(eoslab=_version(), interrupted=interrupted)
    return table


def sweep(experiment, configs, *, store=None, engine="serial", workers=None, retry_failed=False, device=None,
          resources=None, progress=True):
    """Run ``experiment(**config)`` for every configuration; return one row per configuration.

    Parameters
    ----------
    experiment : callable
        ``experiment(**config) -> dict`` of measured quantities (numbers, strings or lists of them). If it
        takes ``seed`` and the configuration has none, it receives :func:`config_seed` of the configuration;
        if it takes ``device``, it receives ``device``. For ``"processes"`` and remote engines it must be
        importable by the workers (a function defined in a module, not in a notebook cell or a lambda).
    configs : list of dict
        The configurations: :func:`grid` for a product of value lists, or any explicit list.
    store : str or path, optional
        A folder that keeps each finished configuration as it finishes; a sweep started again with the same
        store runs only what is missing.
    engine : "serial", "processes", or an executor
        Where the cells run: this process, a pool of ``workers`` local processes, or any object with a
        ``submit`` method (``concurrent.futures`` executors, a Dask ``distributed.Client``, a ``submitit``
        executor, whose cells are submitted as one job array).
    workers : int, optional
        Processes for ``"processes"`` (default: the number of CPUs).
    retry_failed : bool
        Run again the configurations the store records as failed.
    device : str, optional
        Passed to an experiment that takes ``device`` (e.g. ``"cuda"``), and recorded.
    resources : dict, optional
        Dask resource annotations per cell (e.g. ``{"GPU": 1}`` for one GPU per running cell).
    progress : bool
        A progress bar that advances as cells complete.

    Returns
    -------
    pandas.DataFrame
        One row per configuration, in the order given: its parameters, ``seed``, what the experiment
        returned, then ``status`` (``"ok"``, ``"failed"`` or, after an interrupt, ``"pending"``), ``error``,
        ``seconds``, ``device``, ``worker`` and ``eoslab`` (the package version).
        ``table.attrs["interrupted"]`` says whether the sweep was cut short.

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
    if not callable(experiment):
        raise TypeError(f"experiment must be callable, got {type(experiment).__name__}")
    configs = list(configs)
    if not configs or not all(isinstance(c, dict) for c in configs):
        raise ValueError("configs must be a non-empty list of dicts (e.g. grid(lr=[0.1, 0.2]))")
    keys = [_key(c) for c in configs]
    if len(set(keys)) != len(keys):
        raise ValueError("configs holds the same configuration twice; add a parameter that tells them apart "
                         "(e.g. replicate=[0, 1, 2])")
    if not (engine in ("serial", "processes") or hasattr(engine, "submit")):
        raise ValueError(f"engine must be 'serial', 'processes' or an executor with a submit method, got {engine!r}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    folder = None if store is None else Path(store).expanduser()
    records = _read(folder) if folder is not None else {}
    todo = [c for c, k in zip(configs, keys)
            if k not in records or (retry_failed and records[k]["status"] == "failed")]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(configs), initial=len(configs) - len(todo), desc="sweep", disable=not progress)
    own_pool = None
    interrupted = False

    def finish(record):
        records[_key(record["config"])] = record
        if folder is not None:
            _write(folder, record)
        bar.update(1)

    try:
        if engine == "serial":
            for config in todo:
                finish(_run_cell(experiment, config, config_seed(config), device, folder))
        elif todo:
            if engine == "processes":
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                own_pool = engine = ProcessPoolExecutor(max_workers=workers or os.cpu_count(),
                                                        mp_context=multiprocessing.get_context("spawn"))
            args = [(experiment, c, config_seed(c), device, None if folder is None else str(folder)) for c in todo]
            if hasattr(engine, "batch"):  # submitit: one job array for the whole sweep
                with engine.batch():
                    futures = [engine.submit(_run_cell, *a) for a in args]
            else:
                futures = [_submit(engine, _run_cell, a, resources) for a in args]
            pending = dict(zip(range(len(futures)), futures))
            while pending:
                done = [i for i, f in pending.items() if f.done()]
                for i in done:
                    future = pending.pop(i)
                    try:
                        finish(future.result())
                    except Exception as error:  # noqa: BLE001 - the worker itself was lost
                        stored = _read(folder).get(_key(todo[i])) if folder is not None else None
                        if stored is not None and stored["status"] == "ok":  # it finished, then its worker died
                            finish(stored)
                            continue
                        finish(_lost(todo[i], error, device))
                if pending and not done:
                    time.sleep(0.05)
    except KeyboardInterrupt:  # what finished is kept (and stored); the rest stays pending
        interrupted = True
    finally:
        if own_pool is not None:
            own_pool.shutdown(wait=not interrupted, cancel_futures=True)
        bar.close()
    return _table(configs, records, interrupted)
