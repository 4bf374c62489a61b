"""Regenerate ``eoss_phase.json``: the plateau of batch sharpness against batch size (chapter 7's phase picture).

Run from the repository root::

    python chapters/data/make_eoss_phase.py            # about 6 minutes on a 2-core CPU
    python chapters/data/make_eoss_phase.py --device cuda

Every point is one :func:`eoslab.stochastic.eoss_run` on
:func:`eoslab.problems.digits_eoss` (12,000 steps, seed 0); the plateau is
the mean over the second half of the run (:func:`eoslab.stochastic.plateau_table`).

Each run keeps a checkpoint in ``--work`` (default ``chapters/data/eoss_phase_runs/``, not tracked) as it
goes: an interrupted script, run again, reads the finished runs back and continues the unfinished one
where it stopped.
"""
import argparse
import json
import pathlib
import time

from eoslab.optim import GD, HeavyBall
from eoslab.problems import digits_eoss
from eoslab.stochastic import eoss_run, plateau_table

STEPS = 12_000
BATCH_SIZES = (8, 16, 32, 128, None)  # None: full batch
SETTINGS = ((0.0, 0.2), (0.5, 0.2), (0.9, 0.02), (0.9, 0.2))  # (beta, lr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", default=str(pathlib.Path(__file__).with_name("eoss_phase.json")))
    parser.add_argument("--work", default=str(pathlib.Path(__file__).with_name("eoss_phase_runs")))
    args = parser.parse_args()
    problem = digits_eoss()
    runs, start = [], time.time()
    for beta, lr in SETTINGS:
        for batch in BATCH_SIZES:
            method = HeavyBall(lr, beta) if beta > 0 else GD(lr)
            checkpoint = pathlib.Path(args.work) / f"beta{beta:g}_lr{lr:g}_batch{batch or 'full'}.ckpt"
            r = eoss_run(problem, method, batch, steps=STEPS, device=args.device, checkpoint=checkpoint,
                         progress=False)
            print(f"{r!r}  ({time.time() - start:.0f} s)", flush=True)
            runs.append(r)
    rows = plateau_table(runs)
    for row, r in zip(rows, runs):
        row["trace"] = dict(step=r.step.tolist(), batch_sharpness=r.batch_sharpness.tolist(),
                            lambda_max=r.lambda_max.tolist(),
                            loss=r.history.full_loss.tolist())
    data = dict(problem=problem.name, steps=STEPS, seed=0, rows=rows)
    pathlib.Path(args.out).write_text(json.dumps(data, indent=1, allow_nan=True) + "\n")
    print(f"wrote {args.out} ({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
