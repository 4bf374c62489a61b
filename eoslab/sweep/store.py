"""The sweep's store: one small JSON file per finished configuration, written atomically, read back on resume.

A configuration is named by the hash of its canonical JSON (keys sorted), so a
resumed sweep finds it whatever the order of the grid. Values are made plain
first (numpy and torch scalars become Python numbers, tuples and arrays lists),
so that ``np.int64(0)`` and ``0`` name the same cell and a stored value reads
back as it was given.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
import warnings
from pathlib import Path

__all__ = []

#: How a stored cell ended: ``ok`` (its result is kept), ``failed`` (the experiment raised: kept, run again only
#: with ``retry_failed``) or ``lost`` (the worker died or the engine dropped it: always run again).
STATUSES = ("ok", "failed", "lost")


def plain(value, where="value"):
    """``value`` as JSON-ready Python data (numpy/torch scalars to numbers, tuples and arrays to lists);
    ``TypeError`` naming ``where`` for anything else."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalars and arrays, torch tensors
        return plain(value.tolist(), where)
    if hasattr(value, "item") and callable(value.item):
        return plain(value.item(), where)
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {str(k): plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise TypeError(f"{where} is a {type(value).__name__}, which the store cannot keep as JSON: use numbers, "
                    "strings, None, or lists and dicts of them")


def canonical(config):
    return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=True)


def key(config):
    return hashlib.sha1(canonical(config).encode()).hexdigest()[:16]


def config_seed(config):
    """A seed in ``[0, 2**31)`` that depends only on the configuration's parameters (not on order or worker).

    >>> config_seed({"lr": 0.1, "beta": 0.9}) == config_seed({"beta": 0.9, "lr": 0.1})
    True
    """
    config = plain(config, "config")
    return int(hashlib.sha256(canonical(config).encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def write(folder, record):
    """Write one cell's record atomically (a uniquely named temporary file, flushed, then renamed into place).
    A stored ``ok`` record is never replaced by a worse one (a late duplicate that failed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key(record['config'])}.json"
    if record["status"] != "ok":
        old = read_one(folder, record["config"])
        if old is not None and old["status"] == "ok":
            return
    tmp = folder / f".{path.stem}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "w") as handle:
        handle.write(json.dumps(record, indent=1, allow_nan=True))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _load(path):
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or "config" not in record or record.get("status") not in STATUSES:
            raise ValueError("not a sweep record")
        return record
    except (OSError, ValueError) as error:
        warnings.warn(f"the sweep store's file {path.name} is not a readable record ({error}); it is ignored, and "
                      "its configuration, if any, runs again", RuntimeWarning, stacklevel=3)
        return None


def read(folder):
    """``{key: record}`` of the readable cells stored in ``folder`` (an unreadable file is skipped, with a
    warning)."""
    folder = Path(folder)
    out = {}
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        record = _load(path)
        if record is not None:
            out[key(record["config"])] = record
    return out


def read_one(folder, config):
    path = Path(folder) / f"{key(config)}.json"
    return _load(path) if path.exists() else None

