"""Experiments for tests/test_sweep.py, in a module of their own so that worker processes can import them."""
import os
import uuid
from pathlib import Path

import torch

import eoslab
from eoslab.optim import GD, HeavyBall
from eoslab.problems import quadratic


def _note_call(config):
    """Leave one file per call in $EOSLAB_SWEEP_CALLS (every worker sees it), so a test can count the calls;
    act on the flags a test leaves there: raise for a configuration, interrupt, or kill the worker once."""
    folder = os.environ.get("EOSLAB_SWEEP_CALLS")
    if not folder:
        return
    folder = Path(folder)
    (folder / f"call-{uuid.uuid4().hex}").write_text(repr(config))
    tag = f"lr{config['lr']:g}-beta{config['beta']:g}-seed{config['seed']}"
    if (folder / f"raise-{tag}").exists():
        raise RuntimeError(f"asked to fail at {tag}")
    if (folder / f"interrupt-{tag}").exists():
        (folder / f"interrupt-{tag}").unlink()
        raise KeyboardInterrupt
    if (folder / f"kill-{tag}").exists():
        (folder / f"kill-{tag}").unlink()
        os._exit(1)  # the worker process dies without a word
    if (folder / f"kill-always-{tag}").exists():
        os._exit(1)  # a cell that kills every worker that runs it


def heavy_ball_on_a_quadratic(lr, beta, seed, steps=60):
    """Heavy ball (or GD) on a 5-dimensional quadratic from a seeded start: whether it diverges, and where."""
    _note_call({"lr": lr, "beta": beta, "seed": seed})
    g = torch.Generator().manual_seed(seed)
    start = torch.randn(5, generator=g, dtype=torch.float64)
    problem = quadratic([10.0, 5.0, 2.0, 1.0, 0.5], theta0=start, dtype="float64")
    method = HeavyBall(lr, beta) if beta > 0 else GD(lr)
    h = eoslab.run(problem, method, steps, num_eigs=0, progress=False)
    return {"final_loss": float(h.loss[-1]), "diverged": bool(h.diverged),
            "threshold": float(method.threshold), "start_norm": float(start.norm())}


def numpy_everywhere(x, replicate, seed):
    """Returns numpy scalars (as experiments often do); counts its calls like the others."""
    import numpy as np

    _note_call({"lr": x, "beta": 0, "seed": replicate})
    return {"y": np.float32(x) * 2, "n": np.int64(replicate), "ok": np.bool_(True), "seed_seen": seed}


def wants_device(x, device="cpu"):
    return {"got": str(device)}


def clashing(x):
    return {"status": "converged", "x": x + 1}
