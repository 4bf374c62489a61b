"""Regenerate ``eoss_phase.json``: the plateau of batch sharpness against batch size (chapter 7's phase picture).

Run from the repository root::

    python chapters/data/make_eoss_phase.py                          # serial: about 7 minutes on one core
    python chapters/data/make_eoss_phase.py --engine processes --workers 2   # about 4 minutes, the same file
    python chapters/data/make_eoss_phase.py --device cuda

Every point is one :func:`eoslab.stochastic.eoss_run` on
:func:`eoslab.problems.digits_eoss` (12,000 steps, seed 0); the plateau is
the mean over the second half of the run (:func:`eoslab.stochastic.plateau_table`).
The grid runs through :func:`eoslab.sweep.sweep`, which keeps each finished
point in ``--work`` (default ``chapters/data/eoss_phase_runs/``, not tracked):
an interrupted script, run again, reads the finished points back, and each run
keeps a checkpoint there too, so the unfinished ones continue where they
stopped. On a cluster, pass a Dask client or a submitit executor as the
engine (see :func:`eoslab.sweep.sweep`).
"""
import argparse
import functools
import json
import pathlib
import time

from eoslab.optim import GD, HeavyBall
from eoslab.problems import digits_eoss
from eoslab.stochastic import eoss_run, plateau_table
from eoslab.sweep import sweep

STEPS = 12_000
BATCH_SIZES = (8, 16, 32, 128, None)  # None: full batch
SETTINGS = ((0.0, 0.2), (0.5, 0.2), (0.9, 0.02), (0.9, 0.2))  # (beta, lr)
# the fields of a row of plateau_table, and the traces
ROW_KEYS = ("label", "lr", "beta", "batch_size", "full_batch", "small", "large", "diverged_at", "initial_loss",
            "final_loss", "trained", "batch_sharpness", "lambda_max", "momentum_batch_sharpness", "levelled_off",
            "ratio_small", "ratio_large", "trace")
CONFIGS = [dict(beta=beta, lr=lr, batch_size=batch, seed=0) for beta, lr in SETTINGS for batch in BATCH_SIZES]


def phase_point(beta, lr, batch_size, seed, work, device=None):
    """One point of the grid: its row of :func:`plateau_table`, with the traces the chapter draws."""
    problem = digits_eoss()
    method = HeavyBall(lr, beta) if beta > 0 else GD(lr)
    checkpoint = pathlib.Path(work) / f"beta{beta:g}_lr{lr:g}_batch{batch_size or 'full'}.ckpt"
    r = eoss_run(problem, method, batch_size, steps=STEPS, device=device, checkpoint=checkpoint, seed=seed,
                 progress=False)
    row = plateau_table([r])[0]
    row["batch"] = row.pop("batch_size")  # the batch used (the number of examples for the full batch)
    row["trace"] = dict(step=r.step.tolist(), batch_sharpness=r.batch_sharpness.tolist(),
                        lambda_max=r.lambda_max.tolist(), loss=r.history.full_loss.tolist())
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--engine", default="serial", choices=("serial", "processes"))
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--retry-failed", action="store_true", help="run again the points stored as failed")
    parser.add_argument("--out", default=str(pathlib.Path(__file__).with_name("eoss_phase.json")))
    parser.add_argument("--work", default=str(pathlib.Path(__file__).with_name("eoss_phase_runs")))
    args = parser.parse_args()
    start = time.time()
    experiment = functools.partial(phase_point, work=args.work)
    table = sweep(experiment, CONFIGS, store=pathlib.Path(args.work) / "cells", engine=args.engine,
                  workers=args.workers, device=args.device, retry_failed=args.retry_failed)
    failed = table[table.status != "ok"]
    if len(failed):
        raise SystemExit(f"{len(failed)} points did not finish (run again with --retry-failed once fixed):\n"
                         f"{failed[['beta', 'lr', 'batch_size', 'status', 'error']]}")
    rows = [{k: row["batch" if k == "batch_size" else k] for k in ROW_KEYS} for row in table.to_dict("records")]
    data = dict(problem=digits_eoss().name, steps=STEPS, seed=0, rows=rows)
    pathlib.Path(args.out).write_text(json.dumps(data, indent=1, allow_nan=True) + "\n")
    print(f"wrote {args.out} ({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
