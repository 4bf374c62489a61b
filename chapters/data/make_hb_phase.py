"""Regenerate ``hb_phase.json``: full-batch heavy ball in the (η, β) plane on the Chebyshev network, three seeds.

Run from the repository root::

    python chapters/data/make_hb_phase.py                              # serial: about 70 s on one core
    python chapters/data/make_hb_phase.py --engine processes --workers 2   # about 40 s, the same file

Every cell is one :func:`eoslab.run` of :class:`eoslab.optim.HeavyBall` (``GD`` for β = 0) for 4,000 steps on
:func:`eoslab.problems.chebyshev_regression` initialized with the cell's seed, the sharpness measured every 50
steps. Recorded: the threshold ``2(1+β)/η``, the Edge of Stability summary (:func:`eoslab.analysis.edge_summary`:
the first step at the threshold and the median of sharpness / threshold after it), the median sharpness over the
second half of the run, and where the run diverged. The grid runs through :func:`eoslab.sweep.sweep`, which keeps
each finished cell in ``--work`` (not tracked), so an interrupted script continues where it stopped.
"""
import argparse
import json
import pathlib
import time

import numpy as np

import eoslab
from eoslab.analysis import edge_summary
from eoslab.optim import GD, HeavyBall
from eoslab.problems import chebyshev_regression
from eoslab.sweep import grid, sweep

STEPS = 4000
CONFIGS = grid(beta=[0.0, 0.3, 0.6, 0.9], lr=[0.2, 0.3, 0.4, 0.5, 0.7, 1.0], seed=[0, 1, 2])


def hb_cell(lr, beta, seed):
    """One cell: heavy ball at (lr, beta) from the seed's initialization; its edge, plateau and divergence."""
    problem = chebyshev_regression(seed=seed)
    method = HeavyBall(lr, beta) if beta > 0 else GD(lr)
    h = eoslab.run(problem, method, STEPS, measure_every=50, progress=False)
    edge = edge_summary(h)
    late = h.sharpness[h.eig_step >= STEPS // 2]
    return {"threshold": method.threshold, "initial_sharpness": float(h.sharpness[0]),
            "first_step_at_edge": edge.first_step, "median_ratio_at_edge": edge.median_ratio,
            "late_sharpness": float(np.median(late)) if len(late) else float("nan"),
            "diverged_at": h.diverged_at, "final_loss": float(h.loss[-1])}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="serial", choices=("serial", "processes"))
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--retry-failed", action="store_true", help="run again the cells stored as failed")
    parser.add_argument("--out", default=str(pathlib.Path(__file__).with_name("hb_phase.json")))
    parser.add_argument("--work", default=str(pathlib.Path(__file__).with_name("hb_phase_runs")))
    args = parser.parse_args()
    start = time.time()
    table = sweep(hb_cell, CONFIGS, store=pathlib.Path(args.work) / "cells", engine=args.engine,
                  workers=args.workers, retry_failed=args.retry_failed)
    failed = table[table.status != "ok"]
    if len(failed):
        raise SystemExit(f"{len(failed)} cells did not finish (run again with --retry-failed once fixed):\n"
                         f"{failed[['beta', 'lr', 'seed', 'status', 'error']]}")
    columns = ["beta", "lr", "seed", "threshold", "initial_sharpness", "first_step_at_edge",
               "median_ratio_at_edge", "late_sharpness", "diverged_at", "final_loss"]
    data = dict(problem=chebyshev_regression().name, steps=STEPS, eoslab=eoslab.__version__,
                rows=[{k: row[k] for k in columns} for row in table.to_dict("records")])
    pathlib.Path(args.out).write_text(json.dumps(data, indent=1, allow_nan=True) + "\n")
    print(f"wrote {args.out} ({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
