#!/usr/bin/env python
"""What curvature costs on your own network: a Hessian-vector product against a gradient, and peak memory.

For Cohen et al.'s CNN and a small Vision Transformer (``eoslab.architectures``) on CIFAR-sized random data
(3x32x32 images, 10 classes, square loss), wrapped with ``eoslab.problems.from_module`` and evaluated in chunks:

* a gradient (``value_and_grad``);
* a Hessian operator's first product (its graph and one product: what a solve's first product costs);
* one more product on that operator (each further product);
* a third derivative ∇(uᵀHu) (the sharpness gradient);

each in milliseconds and as a multiple of the gradient, with the peak memory above the idle process (the
model and data built; CPU: the peak resident set, each quantity measured in a fresh process; GPU:
``torch.cuda.max_memory_allocated``). The products' peaks include building their operator.

Run from the repository root::

    python benchmarks/bench_modules.py                      # CPU
    python benchmarks/bench_modules.py --device cuda        # a GPU
    python benchmarks/bench_modules.py --out benchmarks/results/modules.json

A benchmark, not a test: it prints what it measures and never fails.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from eoslab.architectures import convnet, vision_transformer
from eoslab.curvature import HessianOperator
from eoslab.problems import from_module

QUANTITIES = ("gradient", "first product", "next product", "third derivative")


def mse(out, y):
    return 0.5 * ((out - y) ** 2).sum(1).mean()


def problem_for(model_name, n, chunk, device):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 3, 32, 32, generator=g)
    Y = torch.nn.functional.one_hot(torch.randint(10, (n,), generator=g), 10).float()
    model = {"cnn": lambda: convnet(3, 32, (32, 32), 10, activation="relu"),
             "vit": lambda: vision_transformer(3, 32, 4, 10, dim=64, depth=2, heads=4, mlp_dim=128)}[model_name]()
    return from_module(model.to(device), mse, (X.to(device), Y.to(device)), chunk_size=chunk)


def measure(model_name, quantity, n, chunk, device, repeats):
    """Milliseconds per evaluation and peak memory above the idle process, in MiB (run in its own process)."""
    problem = problem_for(model_name, n, chunk, device)
    theta = problem.theta0
    u = torch.randn(theta.numel(), generator=torch.Generator().manual_seed(1)).to(theta)
    u = u / u.norm()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    op = HessianOperator(problem, theta) if quantity in ("next product", "third derivative") else None
    work = {"gradient": lambda: problem.value_and_grad(theta),
            "first product": lambda: HessianOperator(problem, theta).matvec(u),
            "next product": lambda: op.matvec(u),
            "third derivative": lambda: op.third_derivative(u)}[quantity]
    work()
    sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        work()
    sync()
    ms = 1e3 * (time.perf_counter() - t0) / repeats
    peak = (torch.cuda.max_memory_allocated() - base if device == "cuda"
            else 1024 * (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base))
    return {"params": problem.num_params, "ms": ms, "peak_mib": peak / 2**20}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=256, help="examples")
    parser.add_argument("--chunk", type=int, default=64, help="examples per pass")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # internal: one measurement, printed as JSON
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(*args.one, args.n, args.chunk, args.device, args.repeats)))
        return
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
          f"threads, device {args.device}; {args.n} examples in chunks of {args.chunk}")
    print(f"{'model':<6}{'params':>9}{'quantity':>19}{'ms':>10}{'x gradient':>12}{'peak MiB':>10}")
    rows = []
    for model_name in ("cnn", "vit"):
        gradient_ms = None
        for quantity in QUANTITIES:
            out = subprocess.run([sys.executable, __file__, "--one", model_name, quantity, "--n", str(args.n),
                                  "--chunk", str(args.chunk), "--device", args.device,
                                  "--repeats", str(args.repeats)], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1]) | {"model": model_name, "quantity": quantity}
            gradient_ms = r["ms"] if quantity == "gradient" else gradient_ms
            r["x_gradient"] = r["ms"] / gradient_ms
            rows.append(r)
            print(f"{model_name:<6}{r['params']:>9}{quantity:>19}{r['ms']:>10.1f}{r['x_gradient']:>12.1f}"
                  f"{r['peak_mib']:>10.0f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"torch": torch.__version__, "device": args.device, "n": args.n,
                                        "chunk": args.chunk, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
