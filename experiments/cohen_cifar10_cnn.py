#!/usr/bin/env python
"""Cohen et al.'s headline experiment at scale: a CNN on CIFAR-10-5k trained by full-batch GD at three step sizes.

The network is their "cnn-relu" (``eoslab.architectures.convnet``: two 3x3 convolutions of 32 channels, each
with ReLU and 2x2 max pooling, and a linear head), the data the first 5,000 CIFAR-10 training images
(standardized per channel), the loss their square loss on one-hot targets. Each step size runs from the same
initialization through ``eoslab.run`` on the network wrapped by ``eoslab.problems.from_module``, the full
batch accumulated over chunks; the top Hessian eigenvalue is measured every ``--measure-every`` steps. What
to look for: the sharpness rises to ``2/η`` and hovers there, and the loss keeps falling over long times while
it rises on some steps.

Writes, in ``--out``:

* ``lr_<η>.npz`` per step size: the run's ``History`` (an ordinary NumPy archive; ``eoslab.History.load``);
* ``summary.json``: the configuration, the machine (device name, torch and eoslab versions), each run's wall
  time and its Edge of Stability summary (first step at ``2/η``, median ``S/(2/η)`` after it, loss increases);
* ``figure.png``: loss and sharpness against ``2/η``.

Each run keeps a checkpoint beside its results: an interrupted experiment continues where it stopped, and a
finished run is not recomputed. CIFAR-10 is read from ``--root`` (the ``cifar-10-batches-py`` folder that
``torchvision.datasets.CIFAR10`` creates); nothing is downloaded.

On a GPU (about 5,000 steps per step size; the default)::

    python experiments/cohen_cifar10_cnn.py --root ~/data --device cuda --out experiments/results/cohen_cifar10_cnn
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from pathlib import Path

import torch

import eoslab
from eoslab.analysis import edge_summary
from eoslab.architectures import convnet
from eoslab.data import cifar10_data
from eoslab.optim import GD
from eoslab.problems import from_module, square_loss


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="folder holding cifar-10-batches-py")
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--n", type=int, default=5000, help="training images (default 5,000: CIFAR-10-5k)")
    parser.add_argument("--lrs", type=float, nargs="+", default=[2 / 100, 2 / 200, 2 / 400],
                        help="step sizes (default 2/100, 2/200, 2/400)")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--measure-every", type=int, default=50)
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 32], help="channels of the convolutions")
    parser.add_argument("--activation", default="relu")
    parser.add_argument("--chunk-size", type=int, default=1000, help="images per forward pass")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def machine(device):
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor()
                                                                            or platform.machine())
    return {"device": str(device), "device_name": name, "torch": torch.__version__, "eoslab": eoslab.__version__,
            "python": platform.python_version(), "threads": torch.get_num_threads(),
            "tf32": bool(torch.backends.cuda.matmul.allow_tf32) if device.type == "cuda" else None}


def _number(x):
    """A float for JSON: ``None`` where it is not finite (JSON has no NaN)."""
    return float(x) if x is not None and x == x and abs(x) != float("inf") else None


def main(argv=None):
    args = parse(argv)
    if args.device.startswith("cuda"):  # curvature in true float32: TF32 products would change the Hessian
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    args.out.mkdir(parents=True, exist_ok=True)
    X, labels = cifar10_data(args.root, args.n)
    dtype = getattr(torch, args.dtype)
    images = X.reshape(-1, 3, 32, 32).to(dtype)
    targets = torch.nn.functional.one_hot(labels, 10).to(dtype)
    start = convnet(3, 32, args.widths, 10, activation=args.activation, seed=args.seed).to(dtype)
    runs, summary = {}, {"config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                         "machine": machine(args.device), "runs": []}
    for lr in args.lrs:
        model = copy.deepcopy(start).to(args.device)  # every step size from the same initialization
        problem = from_module(model, square_loss, (images, targets), chunk_size=args.chunk_size,
                              name=f"cnn-{args.activation} {args.widths} on CIFAR-10-{args.n}, seed {args.seed}")
        t0 = time.perf_counter()
        history = eoslab.run(problem, GD(lr), args.steps, measure_every=args.measure_every,
                             checkpoint=args.out / f"lr_{lr:g}.ckpt", seed=args.seed)
        seconds = time.perf_counter() - t0
        history.save(args.out / f"lr_{lr:g}.npz")
        edge = edge_summary(history)
        runs[f"η = {lr:g}"] = history
        summary["runs"].append({"lr": lr, "edge": 2 / lr, "seconds_this_call": seconds,
                                "diverged_at": history.diverged_at, "first_step_at_edge": edge.first_step,
                                "median_sharpness_over_edge": _number(edge.median_ratio),
                                "levelled_off": bool(edge.levelled_off), "loss_increases": edge.loss_increases,
                                "initial_loss": float(history.loss[0]), "final_loss": float(history.loss[-1])})
        (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    from eoslab.plotting import plot_history

    figure = plot_history(runs, title=f"CNN on CIFAR-10-{args.n}, full-batch GD ({summary['machine']['device_name']})")
    figure.savefig(args.out / "figure.png", dpi=150)
    return summary


if __name__ == "__main__":
    main()
