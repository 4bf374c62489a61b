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
    step_size : ndarray
        The step size of each update (``step_size[t]`` took ``theta_t`` to
        ``theta_{t+1}``): constant for GD, adaptive for :class:`~eoslab.optim.DAL`.
        Empty for flows.
    state_snapshots : torch.Tensor or None
        The optimizer's state at each snapshot step, when it is a tensor
        (the momentum buffer of :class:`~eoslab.optim.HeavyBall`): the
        ``buffer`` of a momentum-aware :func:`~eoslab.curvature.batch_sharpness`.
    extras : dict of str -> ndarray
        Per-step quantities particular to a method, such as the Edge Flow's
        oscillation magnitude (see :meth:`eoslab.flows.Flow.observe`).
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
    step_size: np.ndarray = field(default_factory=lambda: np.zeros(0))
    state_snapshots: torch.Tensor | None = None
    extras: dict = field(default_factory=dict)

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
            text += f", sharpness {self.sharpness[-1]:.4g}"
            if math.isfinite(self.threshold):
                text += f" (threshold {self.threshold:.4g})"
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
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be an eoslab Optimizer, got {type(optimizer).__name__}")
    recorder = Recorder(problem, optimizer, steps, measure_every=measure_every, num_eigs=num_eigs, eig_tol=eig_tol,
                        save_every=save_every, divergence_factor=divergence_factor, seed=seed,
                        device=device, dtype=dtype, progress=progress)
    problem, steps = recorder.problem, recorder.steps
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, low=1, high=problem.num_examples)
    theta = recorder.start(theta0)
    sampler = None
    if batch_size is not None and batch_size < problem.num_examples:
        sampler = _BatchSampler(problem.num_examples, batch_size, replacement, recorder.seed, problem.device)

    state = optimizer.init(theta)
    for t in range(steps + 1):
        batch = sampler() if sampler is not None else None
        loss_fn = problem if batch is None else (lambda th, b=batch: problem.loss(th, b))
        loss, grad = problem.value_and_grad(theta, batch)
        if not recorder.record(t, theta, loss, grad, full_batch=batch is None, state=state) or t == steps:
            break
        theta, state = optimizer.update(theta, grad, state, loss=loss, loss_fn=loss_fn)
        theta = theta.detach()
        recorder.step_sizes.append(float(optimizer.step_size(state)))
    return recorder.history(batch_size=batch_size)


class Recorder:
    """The bookkeeping shared by every loop that records a trajectory.

    Validates the recording arguments, moves the problem, and at each
    integer time records the loss and gradient norm, saves snapshots,
    measures the top eigenvalues (warm-started) on schedule and detects
    divergence; :meth:`history` then builds the :class:`History`. Used by
    :func:`run` and :func:`eoslab.flows.solve`.

    ``always_measure`` makes the recorder measure the sharpness on schedule
    even with ``num_eigs=0`` (flows use it to adapt their step), without
    recording it.
    """

    def __init__(self, problem, method, steps, *, measure_every, num_eigs, eig_tol, save_every, divergence_factor,
                 seed, device, dtype, progress, always_measure=False):
        if not isinstance(problem, Problem):
            raise TypeError(f"problem must be an eoslab Problem, got {type(problem).__name__}")
        self.steps = check_int("steps", steps, low=0)
        self.measure_every = (max(1, self.steps // 100) if measure_every is None
                              else check_int("measure_every", measure_every, low=1))
        self.num_eigs = check_int("num_eigs", num_eigs, low=0, high=problem.num_params)
        self.eig_tol = check_real("eig_tol", eig_tol, low=0.0, high=1.0, low_open=True, high_open=True)
        self.divergence_factor = check_positive("divergence_factor", divergence_factor)
        self.seed = check_int("seed", seed)
        self.save_every = None if save_every is None else check_int("save_every", save_every, low=1)
        self.always_measure = always_measure
        self.problem = problem.to(device=device, dtype=dtype)
        self.method = method
        self.losses, self.grad_norms = [], []
        self.eig_steps, self.eigs, self.full_losses, self.products = [], [], [], []
        self.snap_steps, self.snaps = [], []
        self.step_sizes = []
        self.state_snaps = []
        self.vectors, self.sharpness, self.diverged_at, self.limit = None, None, None, None
        self.theta = None
        self.bar = tqdm(total=self.steps, disable=not progress, desc=method.label, leave=False)

    def start(self, theta0=None):
        """The starting point: ``theta0`` if given, else the problem's, on its device and dtype."""
        p = self.problem
        theta = p.theta0 if theta0 is None else check_vector("theta0", theta0, size=p.num_params)
        return theta.detach().to(device=p.device, dtype=p.dtype).clone()

    def record(self, t, theta, loss, grad, *, full_batch=True, state=None):
        """Record time ``t``; return ``False`` (and stop the bar) if the run has diverged."""
        loss_value = float(loss)
        if self.limit is None:
            self.limit = self.divergence_factor * max(abs(loss_value), 1e-30)
        # Finite iff every entry of both is: a float64 sum of float32 or float64 entries overflows only past 1e300,
        # and inf - inf is nan. One reduction and one read, where isfinite(...).all() costs two of each.
        finite = math.isfinite(float(grad.sum(dtype=torch.float64) + theta.sum(dtype=torch.float64)))
        if not math.isfinite(loss_value) or loss_value > self.limit or not finite:
            self.diverged_at = t
            self.bar.close()
            return False
        self.theta = theta
        self.losses.append(loss_value)
        self.grad_norms.append(float(grad.norm()))
        if self.save_every is not None and t % self.save_every == 0:
            self.snap_steps.append(t)
            self.snaps.append(theta.detach().cpu().clone())
            if isinstance(state, torch.Tensor):  # e.g. a momentum buffer, for momentum-aware curvature
                self.state_snaps.append(state.detach().cpu().clone())
        if (self.num_eigs or self.always_measure) and (t % self.measure_every == 0 or t == self.steps):
            result = top_eigenpairs(self.problem, theta, k=max(self.num_eigs, 1), tol=self.eig_tol,
                                    init=self.vectors, seed=self.seed)
            self.vectors = result.vectors
            self.sharpness = float(result.values[0])
            if self.num_eigs:
                self.eig_steps.append(t)
                self.eigs.append(result.values.detach().cpu().numpy())
                self.products.append(result.num_products)
                self.full_losses.append(loss_value if full_batch else float(self.problem.loss(theta.detach())))
            self.bar.set_postfix(loss=f"{loss_value:.3g}", sharpness=f"{self.sharpness:.3g}", refresh=False)
        if t == self.steps:
            self.bar.close()
        else:
            self.bar.update(1)
        return True

    def history(self, batch_size=None):
        """The :class:`History` of what was recorded."""
        return History(
            step=np.arange(len(self.losses)),
            loss=np.asarray(self.losses, dtype=float),
            grad_norm=np.asarray(self.grad_norms, dtype=float),
            eig_step=np.asarray(self.eig_steps, dtype=int),
            eigenvalues=np.asarray(self.eigs, dtype=float).reshape(len(self.eig_steps), self.num_eigs),
            full_loss=np.asarray(self.full_losses, dtype=float),
            eig_products=np.asarray(self.products, dtype=int),
            diverged_at=self.diverged_at,
            theta=self.theta if self.theta is not None else self.problem.theta0,
            lr=self.method.lr,
            threshold=self.method.threshold,
            label=self.method.label,
            problem_name=self.problem.name,
            batch_size=batch_size,
            snapshot_step=np.asarray(self.snap_steps, dtype=int),
            snapshots=torch.stack(self.snaps) if self.snaps else None,
            state_snapshots=torch.stack(self.state_snaps) if self.state_snaps else None,
            step_size=np.asarray(self.step_sizes, dtype=float),
        )
