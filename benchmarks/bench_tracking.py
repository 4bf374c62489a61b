#!/usr/bin/env python
"""Tracking the top of the Hessian's spectrum along a GD trajectory at the Edge of Stability, against its peers.

On ``eoslab.problems.digits_classification(n, widths=(200, 200))`` (55,210
parameters), GD runs to the Edge of Stability, then ``--measurements``
measurements are taken ``--every`` steps apart. At each, in one process and on
the same Hessian operator, for k = 1 and k = 3:

* ``EigenTracker`` (a carried block of k + 2 Ritz vectors, only the unsettled pairs expanded, a cold
  certified solve every 10th);
* ``top_eigenpairs`` warm-started from the last vectors (what ``run`` does between certified solves);
* ``scipy.sparse.linalg.eigsh`` (ARPACK) with the last top vector as ``v0``, with its default number of
  Lanczos vectors (``ncv = max(2k + 1, 20)``) and with the fewest it recommends (``ncv = 2k + 1``);
* ``torch.lobpcg`` with the last vectors as its block;
* power iteration from the last vector (as PyHessian does; k = 1 only), stopped when the
  eigenvalue changes by less than the tolerance;

each at a relative tolerance of 1e-3. Reported: Hessian-vector products per measurement (the mean over
all of them: every method starts cold at the first, and the tracker's certified solves count too), wall
time, the worst relative error against a float64 reference (cold, 1e-8), and the worst relative
residual. Then "every eigenvalue above 1.5/η" with the tracker, the overhead of ``eoslab.run``
against a bare PyTorch loop on the same loss, and the cost of a central-flow step (``CentralFlow``, one
and two eigenvalues, curvature per step and per substep) in GD steps, in float32 and float64.

Run from the repository root::

    python benchmarks/bench_tracking.py               # CPU, float32 (a few minutes on 2 cores)
    python benchmarks/bench_tracking.py --out benchmarks/results/tracking.json

A benchmark, not a test: it prints what it measures and never fails.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import scipy
import torch
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

import eoslab
from eoslab.curvature import EigenTracker, HessianOperator
from eoslab.flows import CentralFlow
from eoslab.optim import GD

TOL = 1e-3


class Counted:
    """A Hessian operator at one point that counts its products (block products count one per column)."""

    def __init__(self, problem, theta):
        self.op = HessianOperator(problem, theta)
        self.count = 0

    def block(self, X):
        self.count += X.shape[1]
        return torch.stack([self.op.matvec(X[:, j]) for j in range(X.shape[1])], dim=1)


def relative_residuals(problem, theta, values, vectors):
    op = HessianOperator(problem, theta)
    H = torch.stack([op.matvec(vectors[:, j]) for j in range(vectors.shape[1])], dim=1)
    return ((H - vectors * values).norm(dim=0) / values.abs()).double()


# --- the peers -----------------------------------------------------------------------------------------------
def eigsh_solve(problem, theta, k, prev, ncv=None):
    c = Counted(problem, theta)
    dtype = theta.dtype
    np_dtype = np.float32 if dtype == torch.float32 else np.float64

    def matvec(x):
        xt = torch.from_numpy(np.ascontiguousarray(np.asarray(x).reshape(-1))).to(dtype)
        return c.block(xt[:, None])[:, 0].numpy().astype(np_dtype)

    A = LinearOperator((theta.numel(),) * 2, matvec=matvec, dtype=np_dtype)
    kwargs = {} if prev is None else {"v0": prev[:, 0].numpy().astype(np_dtype)}
    try:
        vals, vecs = eigsh(A, k=k, which="LA", tol=TOL, ncv=ncv, **kwargs)
    except ArpackNoConvergence as exc:
        vals, vecs = exc.eigenvalues, exc.eigenvectors
    order = np.argsort(vals)[::-1]
    return torch.tensor(vals[order].copy(), dtype=dtype), torch.from_numpy(vecs[:, order].copy()).to(dtype), c.count


class _HessianTensor(torch.Tensor):
    """A stand-in for the dense Hessian that torch.lobpcg multiplies: its matmul is the counted product."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__) and isinstance(args[0], cls):
            return args[0]._counted.block(args[1].as_subclass(torch.Tensor))
        return super().__torch_function__(func, types, args, kwargs or {})


def lobpcg_solve(problem, theta, k, prev):
    c = Counted(problem, theta)
    size = theta.numel()
    A = torch.empty(size, size, dtype=theta.dtype, device="meta").as_subclass(_HessianTensor)  # never allocated
    A._counted = c
    g = torch.Generator().manual_seed(0)
    width = max(2 * k, k + 1)  # lobpcg needs n >= 3 * width and a block wider than k for its own guard
    X = torch.randn(size, width, generator=g, dtype=theta.dtype)
    if prev is not None:
        X[:, : prev.shape[1]] = prev
    # torch.lobpcg's own entry point hands a tensor subclass to its __torch_function__ with dispatch switched off,
    # which would run the meta "matrix"; its engine, called directly, multiplies through _HessianTensor
    from torch._lobpcg import _lobpcg

    vals, vecs = _lobpcg(A, k=width, X=X, largest=True, tol=TOL, niter=200)
    return vals[:k].clone(), vecs[:, :k].clone(), c.count


def power_solve(problem, theta, prev, max_iter=100):
    c = Counted(problem, theta)
    g = torch.Generator().manual_seed(0)
    v = torch.randn(theta.numel(), generator=g, dtype=theta.dtype) if prev is None else prev[:, 0].clone()
    v = v / v.norm()
    value = None
    for _ in range(max_iter):
        hv = c.block(v[:, None])[:, 0]
        new = float(v @ hv)
        v = hv / hv.norm()
        if value is not None and abs(new - value) <= TOL * abs(new):
            value = new
            break
        value = new
    return torch.tensor([value], dtype=theta.dtype), v[:, None], c.count


# --- the study -----------------------------------------------------------------------------------------------
def trajectory(problem, lr, eos_steps, measurements, every):
    h = eoslab.run(problem, GD(lr), eos_steps + measurements * every, num_eigs=0, save_every=every,
                   progress=False)
    return [s for t, s in zip(h.snapshot_step, h.snapshots) if t > eos_steps][:measurements]


def reference(problem, points, k):
    p64 = problem.to(dtype="float64")
    return [eoslab.top_eigenpairs(p64, th.double(), k=k, eig_tol=1e-8).values for th in points]


def follow(name, solve, problem, points, refs, k):
    prev, products, seconds, errors, residuals = None, [], [], [], []
    for th, ref in zip(points, refs):
        t0 = time.perf_counter()
        values, vectors, count = solve(problem, th, k, prev)
        seconds.append(time.perf_counter() - t0)
        prev = vectors
        products.append(count)
        errors.append(float(((values.double() - ref[:k]).abs() / ref[:k].abs()).max()))
        residuals.append(float(relative_residuals(problem, th, values, vectors).max()))
    return {"method": name, "k": k, "products": products, "seconds": seconds, "worst_error": max(errors),
            "worst_residual": max(residuals), "mean_products": float(np.mean(products)),
            "mean_ms": 1e3 * float(np.mean(seconds))}


def warm_start_quality(problem, points, k, count=12):
    """How far from settled a warm start is: the top Ritz pair's relative residual at each point, from the last
    point's top vector, its top k + 2 (the tracker's carried block), and those of the last two points together.

    The vectors are accurate ones (a cold solve to 1e-5) and the products of the Rayleigh-Ritz step are free
    here: this is the residual any method starts from, before its first product, if it carries those vectors.
    """
    vectors = [eoslab.top_eigenpairs(problem, th, k=k + 2, eig_tol=1e-5, max_iter=1200).vectors
               for th in points[:count]]

    def residual(theta, V):
        V = torch.linalg.qr(V).Q
        op = HessianOperator(problem, theta)
        HV = torch.stack([op.matvec(V[:, j]) for j in range(V.shape[1])], dim=1)
        values, S = torch.linalg.eigh(0.5 * (V.T @ HV + HV.T @ V))
        y, Hy = V @ S[:, -1], HV @ S[:, -1]
        return float((Hy - values[-1] * y).norm() / values[-1])

    rows = {"last top vector": [], f"last top {k + 2}": [], f"last two points' top {k + 2}": []}
    for i in range(2, len(vectors)):
        for name, V in zip(rows, (vectors[i - 1][:, :1], vectors[i - 1], torch.cat(vectors[i - 2:i], dim=1))):
            rows[name].append(residual(points[i], V))
    return {name: (min(r), max(r)) for name, r in rows.items()}


def run_overhead(problem, lr, steps):
    theta = problem.theta0.clone()
    t0 = time.perf_counter()
    for _ in range(steps):
        _, grad = problem.value_and_grad(theta)
        theta = theta - lr * grad
    bare = time.perf_counter() - t0
    t0 = time.perf_counter()
    eoslab.run(problem, GD(lr), steps, num_eigs=0, progress=False)
    return {"bare_loop_s": bare, "run_s": time.perf_counter() - t0}


class CountingTracker(EigenTracker):
    """An :class:`EigenTracker` that keeps the products of each solve."""

    products = []

    def update(self, loss, theta, *, operator=None):
        result = super().update(loss, theta, operator=operator)
        CountingTracker.products.append(result.num_products)
        return result


class CountedCentralFlow(CentralFlow):
    def init(self, theta, problem=None):
        state = super().init(theta, problem)
        state.tracker.__class__ = CountingTracker
        return state


def unit_costs(problem, theta, repeats=20):
    """Milliseconds of a gradient, of a Hessian operator's graph, of one product and of one third derivative."""
    def ms(fn):
        fn()
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        return 1e3 * (time.perf_counter() - t0) / repeats

    op = HessianOperator(problem, theta)
    u = torch.randn(theta.numel(), generator=torch.Generator().manual_seed(0)).to(theta)
    u = u / u.norm()
    return {"gradient": ms(lambda: problem.value_and_grad(theta)), "graph": ms(lambda: HessianOperator(problem, theta)),
            "product": ms(lambda: op.matvec(u)), "third derivative": ms(lambda: op.third_derivative(u))}


def central_flow_cost(problem, lr, theta, steps):
    """Seconds per step of the central flow against GD's, from ``theta`` (at the edge), in float32 and float64,
    with the products its eigen-solves take per step and the price of each piece in gradients."""
    costs = unit_costs(problem, theta)
    print("one gradient " + f"{costs['gradient']:.2f} ms; in gradients: " + ", ".join(
        f"{name} {value / costs['gradient']:.1f}" for name, value in costs.items() if name != "gradient"))
    print(f"{'dtype':<8}{'eig_tol':>8}{'k':>5}{'mode':>9}{'GD ms/step':>12}{'flow ms/step':>14}{'GD steps':>12}"
          f"{'products':>10}")
    rows = []
    for dtype, tol in (("float32", 1e-3), ("float64", 1e-4)):
        p, th = problem.to(dtype=dtype), theta.to(getattr(torch, dtype))
        t0 = time.perf_counter()
        eoslab.run(p, GD(lr), 5 * steps, theta0=th, num_eigs=0, progress=False)
        gd = (time.perf_counter() - t0) / (5 * steps)
        for k, curvature in ((1, "step"), (1, "substep"), (2, "step")):
            flow = CountedCentralFlow(lr, num_eigs=k, eig_tol=tol, curvature=curvature)
            CountingTracker.products = []
            t0 = time.perf_counter()
            eoslab.run(p, flow, steps, theta0=th, num_eigs=0, progress=False)
            seconds = (time.perf_counter() - t0) / steps
            products = sum(CountingTracker.products) / steps
            rows.append({"dtype": dtype, "eig_tol": tol, "num_eigs": k, "curvature": curvature,
                         "gd_step_ms": 1e3 * gd, "flow_step_ms": 1e3 * seconds, "gd_steps_per_step": seconds / gd,
                         "products_per_step": products})
            print(f"{dtype:<8}{tol:>8g}{k:>5}{curvature:>9}{1e3 * gd:>12.1f}{1e3 * seconds:>14.0f}{seconds / gd:>12.0f}"
                  f"{products:>10.1f}")
    return {"unit_costs_ms": costs, "rows": rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=0.2)
    parser.add_argument("--eos-steps", type=int, default=1000)
    parser.add_argument("--measurements", type=int, default=30)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--flow-steps", type=int, default=20, help="central-flow steps timed (0 to skip)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    problem = eoslab.problems.digits_classification(n=args.n, widths=(200, 200))
    print(f"torch {torch.__version__}, scipy {scipy.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads; P = {problem.num_params}, lr = {args.lr} (2/lr = {2 / args.lr:g})")
    points = trajectory(problem, args.lr, args.eos_steps, args.measurements, args.every)
    results = []
    for k in (1, 3):
        refs = reference(problem, points, k)
        print(f"\nk = {k}: reference top eigenvalues at the first and last point: "
              f"{refs[0].numpy().round(3)} ... {refs[-1].numpy().round(3)}")
        tracker = EigenTracker(k=k, eig_tol=TOL)
        methods = {
            "EigenTracker": lambda p, th, k, prev, t=tracker: (lambda r: (r.values, r.vectors, r.num_products))(
                t.update(p, th)),
            "top_eigenpairs warm": lambda p, th, k, prev: (lambda r: (r.values, r.vectors, r.num_products))(
                eoslab.top_eigenpairs(p, th, k=k, init=prev, eig_tol=TOL)),
            "eigsh warm v0": eigsh_solve,
            "eigsh warm v0, ncv=2k+1": lambda p, th, k, prev: eigsh_solve(p, th, k, prev, ncv=2 * k + 1),
            "torch.lobpcg warm": lobpcg_solve,
        }
        if k == 1:
            methods["power iteration warm"] = lambda p, th, k, prev: power_solve(p, th, prev)
        print(f"{'method':<24}{'products/meas':>14}{'ms/meas':>10}{'worst rel err':>15}{'worst rel res':>15}")
        for name, solve in methods.items():
            try:
                r = follow(name, solve, problem, points, refs, k)
            except Exception as exc:  # noqa: BLE001 - a peer that fails is reported, not fatal
                print(f"{name:<24}failed: {type(exc).__name__}: {exc}")
                continue
            results.append(r)
            print(f"{name:<24}{r['mean_products']:>14.1f}{r['mean_ms']:>10.0f}{r['worst_error']:>15.1e}"
                  f"{r['worst_residual']:>15.1e}")
            if name == "EigenTracker":  # its two kinds of solve: cold (certified) every 10th, warm between
                cold = r["products"][:: tracker.certify_every]
                warm = [n for i, n in enumerate(r["products"]) if i % tracker.certify_every]
                print(f"{'':<4}cold solves {np.mean(cold):.1f} products, warm solves {np.mean(warm):.1f}")
    print(f"\nwarm starts {args.every} steps apart: the top pair's relative residual before any product "
          f"(min-max over {min(args.measurements, 12) - 2} points; the tolerance is {TOL:g})")
    quality = warm_start_quality(problem, points, 1)
    for name, (low, high) in quality.items():
        print(f"{name:<28}{low:.1e} - {high:.1e}  ({low / TOL:.0f} to {high / TOL:.0f} x the tolerance)")
    above = 1.5 / args.lr
    tracker = EigenTracker(k=1, above=above, eig_tol=TOL)
    counts, products = [], []
    for th in points:
        r = tracker.update(problem, th)
        counts.append(int((r.values >= above).sum()))
        products.append(r.num_products)
    print(f"\nevery eigenvalue above 1.5/lr = {above:g}: tracked {min(counts)}-{max(counts)}, "
          f"{np.mean(products):.1f} products per measurement ({np.mean(products) / np.mean(counts):.1f} "
          "per eigenvalue)")
    overhead = run_overhead(problem, args.lr, 200)
    print(f"\n200 GD steps: bare PyTorch loop {overhead['bare_loop_s']:.2f} s, eoslab.run {overhead['run_s']:.2f} s")
    flow = []
    if args.flow_steps > 0:
        print(f"\ncentral flow from the first point, {args.flow_steps} steps (GD: {5 * args.flow_steps}):")
        flow = central_flow_cost(problem, args.lr, points[0], args.flow_steps)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"methods": results, "warm_start_residuals": quality,
                                        "above": {"counts": counts, "products": products},
                                        "overhead": overhead, "central_flow": flow}, indent=1))


if __name__ == "__main__":
    main()
