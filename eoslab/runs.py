"""The training loop that records a trajectory: :func:`run` and its :class:`History`."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ._validation import check_int, check_positive, check_real, check_vector
from .curvature import top_eigenpairs
from .optim import Optimizer
from .problems import Problem

__all__ = ["History", "run"]


@dataclass
class History:
    """What a run recorded. Arrays are NumPy, ready to plot.

    Attributes
    ----------
    step : ndarray of int
        Steps ``0..T`` at which the loss was recorded (``T`` = last step reached).
    loss : ndarray
        Loss at ``theta_t`` (the mini-batch loss when ``batch_size`` is set).
    grad_norm : ndarray
        ``‖∇L(theta_t)‖`` of the same loss.
    eig_step : ndarray of int
        Steps at which the top Hessian eigenvalues were measured.
    eigenvalues : ndarray, shape (len(eig_step), num_eigs)
        Top eigenvalues of the full-batch Hessian, largest first.
    full_loss : ndarray
        Full-batch loss at ``eig_step`` (equal to ``loss`` there for full-batch runs).
    eig_products : ndarray of int
        Hessian-vector products each measurement used.
    diverged_at : int or None
        The step at which the loss became non-finite or exploded, else ``None``.
    theta : torch.Tensor
        The last finite iterate.
    snapshot_step, snapshots :
        Steps and parameter vectors saved every ``save_every`` steps.
    lr, threshold, label :
        The optimizer's step size, stability threshold (``2/η`` for GD) and name.
    """

    step: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    eig_step: np.ndarray
    eigenvalues: np.ndarray
    full_loss: np.ndarray
    eig_products: np.ndarray
    diverged_at: int | None
    theta: torch.Tensor
    lr: float
    threshold: float
    label: str
    problem_name: str = ""
    batch_size: int | None = None
    snapshot_step: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    snapshots: torch.Tensor | None = None

    @property
    def sharpness(self):
        """The top eigenvalue at each measurement (empty if none were taken)."""
        if self.eigenvalues.size == 0:
            return np.zeros(0)
        return self.eigenvalues[:, 0]

    @property
    def diverged(self):
        return self.diverged_at is not None

    def summary(self):
        """One line: final loss and sharpness, or where the run diverged."""
        if self.diverged:
            return f"{self.label}: diverged at step {self.diverged_at}"
        text = f"{self.label}: {int(self.step[-1])} steps, final loss {self.loss[-1]:.4g}"
        if self.sharpness.size:
            text += f", sharpness {self.sharpness[-1]:.4g} (threshold {self.threshold:.4g})"
        return text

    def __repr__(self):
        return f"<History {self.summary()}>"


class _BatchSampler:
    """Seeded mini-batch indices: reshuffled epochs (no replacement) or i.i.d. draws."""

    def __init__(self, num_examples, batch_size, replacement, seed, device):
        self.n, self.b, self.replacement = num_examples, batch_size, replacement
        self.gen = torch.Generator().manual_seed(seed)
        self.device = device
        self.queue = torch.zeros(0, dtype=torch.int64)

    def __call__(self):
        if self.replacement:
            idx = torch.randint(self.n, (self.b,), generator=self.gen)
        else:
            while self.queue.numel() < self.b:
                self.queue = torch.cat([self.queue, torch.randperm(self.n, generator=self.gen)])
            idx, self.queue = self.queue[: self.b], self.queue[self.b:]
        return idx.to(self.device)


def run(
    problem,
    optimizer,
    steps,
    *,
    measure_every=None,
    num_eigs=1,
    eig_tol=1e-3,
    batch_size=None,
    replacement=False,
    theta0=None,
    save_every=None,
    divergence_factor=1e6,
    device=None,
    dtype=None,
    seed=0,
    progress=True,
):
    """Run ``optimizer`` on ``problem`` for ``steps`` steps, recording a :class:`History`.

    The loss and gradient norm are recorded every step; the top ``num_eigs``
    Hessian eigenvalues of the full-batch loss every ``measure_every`` steps
    (and at the last step), each measurement warm-started from the previous
    eigenvectors. A run whose loss becomes non-finite or exceeds
    ``divergence_factor`` times its initial value stops there and reports
    ``diverged_at``.

    Parameters
    ----------
    problem : Problem
        What to minimize.
    optimizer : Optimizer
        The update rule, e.g. ``eoslab.optim.GD(lr=0.1)``.
    steps : int
        Number of updates, >= 0.
    measure_every : int, optional
        Steps between eigenvalue measurements; default ``max(1, steps // 100)``.
    num_eigs : int
        Top eigenvalues to track (0 to skip curvature).
    eig_tol : float
        Relative tolerance of each measurement (see :func:`eoslab.top_eigenpairs`).
    batch_size : int, optional
        Mini-batch size for stochastic steps; ``None`` for full-batch.
    replacement : bool
        Draw batches with replacement (default: reshuffled epochs).
    theta0 : torch.Tensor, optional
        Start here instead of ``problem.theta0``.
    save_every : int, optional
        Keep a copy of the parameters every ``save_every`` steps.
    divergence_factor : float
        Loss growth (relative to the initial loss) treated as divergence.
    device, dtype : optional
        Move the problem (e.g. ``device="cuda"``, ``dtype="float64"``) before running.
    seed : int
        Seeds the batch sampler and the eigensolver's random start.
    progress : bool
        Show a progress bar.

    Returns
    -------
    History

    Examples
    --------
    >>> from eoslab.problems import quadratic
    >>> from eoslab.optim import GD
    >>> h = run(quadratic([1.0]), GD(lr=2.5), steps=100, progress=False)
    >>> h.diverged_at is not None
    True
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be an eoslab Problem, got {type(problem).__name__}")
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be an eoslab Optimizer, got {type(optimizer).__name__}")
    steps = check_int("steps", steps, low=0)
    measure_every = max(1, steps // 100) if measure_every is None else check_int("measure_every", measure_every, low=1)
    num_eigs = check_int("num_eigs", num_eigs, low=0, high=problem.num_params)
    eig_tol = check_real("eig_tol", eig_tol, low=0.0, high=1.0, low_open=True, high_open=True)
    divergence_factor = check_positive("divergence_factor", divergence_factor)
    seed = check_int("seed", seed)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, low=1, high=problem.num_examples)
    if save_every is not None:
        save_every = check_int("save_every", save_every, low=1)

    problem = problem.to(device=device, dtype=dtype)
    theta = problem.theta0 if theta0 is None else check_vector("theta0", theta0, size=problem.num_params)
    theta = theta.detach().to(device=problem.device, dtype=problem.dtype).clone()
    sampler = None
    if batch_size is not None and batch_size < problem.num_examples:
        sampler = _BatchSampler(problem.num_examples, batch_size, replacement, seed, problem.device)

    losses, grad_norms = [], []
    eig_steps, eigs, full_losses, products = [], [], [], []
    snap_steps, snaps = [], []
    state = optimizer.init(theta)
    vectors = None
    diverged_at = None
    limit = None
    bar = tqdm(total=steps, disable=not progress, desc=optimizer.label, leave=False)
    for t in range(steps + 1):
        batch = sampler() if sampler is not None else None
        loss_fn = problem if batch is None else (lambda th, b=batch: problem.loss(th, b))
        loss, grad = problem.value_and_grad(theta, batch)
        loss_value = float(loss)
        if limit is None:
            limit = divergence_factor * max(abs(loss_value), 1e-30)
        if not math.isfinite(loss_value) or loss_value > limit or not bool(torch.isfinite(grad).all()):
            diverged_at = t
            break
        losses.append(loss_value)
        grad_norms.append(float(grad.norm()))
        if save_every is not None and t % save_every == 0:
            snap_steps.append(t)
            snaps.append(theta.detach().cpu().clone())
        if num_eigs and (t % measure_every == 0 or t == steps):
            result = top_eigenpairs(problem, theta, k=num_eigs, tol=eig_tol, init=vectors, seed=seed)
            vectors = result.vectors
            eig_steps.append(t)
            eigs.append(result.values.detach().cpu().numpy())
            products.append(result.num_products)
            full_losses.append(loss_value if batch is None else float(problem.loss(theta.detach())))
            bar.set_postfix(loss=f"{loss_value:.3g}", sharpness=f"{float(result.values[0]):.3g}", refresh=False)
        if t == steps:
            break
        theta, state = optimizer.update(theta, grad, state, loss=loss, loss_fn=loss_fn)
        theta = theta.detach()
        bar.update(1)
    bar.close()

    last = len(losses)
    return History(
        step=np.arange(last),
        loss=np.asarray(losses, dtype=float),
        grad_norm=np.asarray(grad_norms, dtype=float),
        eig_step=np.asarray(eig_steps, dtype=int),
        eigenvalues=np.asarray(eigs, dtype=float).reshape(len(eig_steps), num_eigs),
        full_loss=np.asarray(full_losses, dtype=float),
        eig_products=np.asarray(products, dtype=int),
        diverged_at=diverged_at,
        theta=theta if diverged_at is None else _last_finite(theta, snaps),
        lr=optimizer.lr,
        threshold=optimizer.threshold,
        label=optimizer.label,
        problem_name=problem.name,
        batch_size=batch_size,
        snapshot_step=np.asarray(snap_steps, dtype=int),
        snapshots=torch.stack(snaps) if snaps else None,
    )


def _last_finite(theta, snaps):
    if bool(torch.isfinite(theta).all()):
        return theta
    return snaps[-1] if snaps else theta
