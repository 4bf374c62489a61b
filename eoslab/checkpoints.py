"""Checkpoints of a run in progress: written atomically, read back only by the run that made them.

A checkpoint holds everything :func:`eoslab.run` needs to continue exactly:
the step counter, the point, the method's state (momentum buffers, a flow's
state), the batch sampler's generator and queue, and all that was recorded
(with the eigen-solver's warm start). It is a ``torch.save`` file: load only
checkpoints you made. The finished record itself is saved in an open format
by :meth:`eoslab.history.History.save`.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = ["load_checkpoint", "save_checkpoint"]

VERSION = 5  # 2: the recorder keeps its ball for divergence; 3: its eigen-tracker (Ritz vectors and schedule);
# 4: tiny problems solved whole, and the central flow's substeps set by its own eigenvalue (other numbers);
# 5: the signature holds a fingerprint of the start point


def save_checkpoint(path, payload):
    """Write ``payload`` to ``path`` atomically (a partial file never replaces a good one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"version": VERSION, **payload}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, signature, device):
    """The payload at ``path``, or ``None`` if there is none; ``ValueError`` if another kind of run wrote it.

    ``signature`` is the dict of the run's settings; every entry must match
    the one stored, so that a checkpoint never continues a different run.
    """
    path = Path(path)
    if not path.exists():
        return None
    payload = torch.load(path, map_location=device, weights_only=False)
    if payload.get("version") != VERSION:
        raise ValueError(f"checkpoint {path} has version {payload.get('version')!r}, expected {VERSION}: another "
                         "eoslab wrote it, and this one cannot continue it exactly; delete it to start over")
    stored = payload["signature"]
    differ = [f"{key}: {stored.get(key)!r} in the checkpoint, {value!r} now" for key, value in signature.items()
              if stored.get(key) != value]
    if differ:
        raise ValueError(f"checkpoint {path} was written by another run ({'; '.join(differ)}); "
                         "remove it or pass another checkpoint path")
    return payload
