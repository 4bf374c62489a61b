r"""The Edge of Stochastic Stability: batch sharpness along an SGD run, its plateau, and momentum's two levels.

Mini-batch steps feel the curvature of their own batch along their own
direction. :func:`~eoslab.curvature.batch_sharpness` measures it at one
point; :func:`eoss_run` trains with SGD (with or without heavy-ball
momentum) and measures it, with the full-batch :math:`\lambda_{\max}`, along
the way; :meth:`EossRun.plateau` reads off the level it settles at, and
:func:`eoss_levels` gives the levels that linear stability suggests:

==========================  =========================
regime                      batch sharpness settles at
==========================  =========================
SGD (``beta = 0``)          :math:`2/\eta`
momentum, small batches     :math:`2(1-\beta)/\eta`
momentum, large batches     :math:`2(1+\beta)/\eta`
==========================  =========================

The two momentum levels are the limits of one exact threshold in a model
where every batch has its own sharp direction, orthogonal to the others',
which comes back every ``period`` steps: :func:`revisit_level` gives it in
closed form, and :func:`rank_one_batches` builds the model as a problem
that :func:`eoslab.run` trains like any other.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ._validation import check_beta, check_int, check_positive, check_real, resolve_device, resolve_dtype
from .curvature import batch_sharpness
from .optim import GD, HeavyBall
from .problems import Problem
from .runs import History, run

__all__ = ["EossLevels", "eoss_levels", "revisit_level", "RankOneBatches", "rank_one_batches", "Plateau", "EossRun",
           "eoss_run", "plateau_table"]


@dataclass(frozen=True)
class EossLevels:
    """The batch-sharpness levels linear stability predicts for SGD with momentum ``beta`` at step size ``lr``.

    Attributes
    ----------
    small : float
        ``2(1-beta)/lr``: a batch's gradient stays in the buffer and moves
        the parameters by ``lr/(1-beta)`` times itself in all; the exact
        threshold when a batch's sharp direction is never revisited
        (:func:`revisit_level` with ``period`` to infinity).
    large : float
        ``2(1+beta)/lr``: the heavy ball's threshold on a fixed quadratic,
        where the same sharp direction is felt at every step
        (:func:`revisit_level` with ``period = 1``).
    plain : float
        ``2/lr``, the level of plain SGD (both of the above at ``beta = 0``).
    """

    lr: float
    beta: float
    small: float
    large: float
    plain: float


def eoss_levels(lr, beta=0.0):
    """The predicted plateaus of batch sharpness: see :class:`EossLevels`.

    Examples
    --------
    >>> levels = eoss_levels(0.1, 0.9)
    >>> round(levels.small, 6), round(levels.large, 6), round(levels.plain, 6)
    (2.0, 38.0, 20.0)
    """
    lr = check_positive("lr", lr)
    beta = check_beta("beta", beta)
    return EossLevels(lr, beta, 2 * (1 - beta) / lr, 2 * (1 + beta) / lr, 2 / lr)


def revisit_level(lr, beta, period):
    r"""Heavy ball's stability threshold on a direction that is pushed once every ``period`` steps.

    The model: a batch loss :math:`\tfrac12 a (u^\top\theta)^2` whose
    direction :math:`u` no other batch touches, drawn once every ``period``
    steps. Between draws the buffer only decays, so over one period the
    pair (position along :math:`u`, buffer along :math:`u`) is multiplied by
    a 2-by-2 matrix with determinant :math:`\beta^k` and trace
    :math:`1 + \beta^k - \eta a (1-\beta^k)/(1-\beta)` (``k = period``).
    Its eigenvalues stay inside the unit circle exactly for

    .. math:: 0 < a < \frac{2(1-\beta)}{\eta}\,\frac{1+\beta^k}{1-\beta^k},

    which is ``2(1+beta)/lr`` at ``period = 1`` (heavy ball on a fixed
    quadratic) and falls to ``2(1-beta)/lr`` as the period grows past the
    buffer's memory, about ``1/(1-beta)`` steps. With ``beta = 0`` it is
    ``2/lr`` for every period.

    Examples
    --------
    >>> round(revisit_level(0.1, 0.9, 1), 6), round(revisit_level(0.1, 0.9, 10_000), 6)
    (38.0, 2.0)
    >>> round(revisit_level(0.1, 0.0, 7), 6)
    20.0
    """
    lr = check_positive("lr", lr)
    beta = check_beta("beta", beta)
    period = check_int("period", period, low=1)
    q = beta ** period
    return 2 * (1 - beta) / lr * (1 + q) / (1 - q)


class RankOneBatches(Problem):
    r"""Examples with orthogonal rank-one Hessians: example ``i`` has the loss :math:`\tfrac12 a\,\theta_i^2`.

    Built by :func:`rank_one_batches`. The loss of a batch is the mean over
    its examples, so a batch of ``b`` examples has Hessian
    :math:`(a/b)\sum_{i\in B} e_i e_i^\top` and batch sharpness ``a/b``;
    the full loss has :math:`\lambda_{\max} = a/n`. Gradients are exact.
    """

    name = "orthogonal rank-one batches"

    def __init__(self, curvature, theta0):
        self.curvature = curvature
        self.theta0 = theta0
        self.num_examples = theta0.numel()

    def _loss(self, theta, batch_indices):
        part = theta if batch_indices is None else theta[batch_indices]
        return 0.5 * self.curvature * (part ** 2).mean()

    def value_and_grad(self, theta, batch_indices=None):
        idx = self._check_batch(batch_indices)
        theta = theta.detach()
        if idx is None:
            return 0.5 * self.curvature * (theta ** 2).mean(), self.curvature * theta / self.num_examples
        grad = torch.zeros_like(theta)
        grad.index_add_(0, idx, self.curvature * theta[idx] / idx.numel())
        return 0.5 * self.curvature * (theta[idx] ** 2).mean(), grad


def rank_one_batches(num_directions, curvature, *, device=None, dtype="float64"):
    """The orthogonal rank-one model of :func:`revisit_level` as a problem with ``num_directions`` examples.

    Trained with ``batch_size=1`` (:func:`eoslab.run`), each step pushes one
    coordinate with curvature ``curvature`` (its batch sharpness), and a
    coordinate comes back once per reshuffled epoch: on average every
    ``num_directions`` steps, at random gaps. With one direction the run is
    heavy ball on a fixed quadratic. Starts at the all-ones vector, in
    float64 (the dynamics are linear, so a run's fate is decided well above
    rounding).

    Examples
    --------
    >>> p = rank_one_batches(4, 3.0)
    >>> loss, grad = p.value_and_grad(p.theta0, [2])
    >>> float(loss), grad.tolist()
    (1.5, [0.0, 0.0, 3.0, 0.0])
    """
    n = check_int("num_directions", num_directions, low=1)
    curvature = check_positive("curvature", curvature)
    theta0 = torch.ones(n, dtype=resolve_dtype(dtype), device=resolve_device(device))
    return RankOneBatches(curvature, theta0)


@dataclass(frozen=True)
class Plateau:
    """Averages over the late part of an :class:`EossRun` (see :meth:`EossRun.plateau`).

    ``batch_sharpness`` is the mean; ``low`` and ``high`` its extremes over
    the window; ``lambda_max`` and ``momentum_batch_sharpness`` are means
    over the same measurements.
    """

    batch_sharpness: float
    low: float
    high: float
    lambda_max: float
    momentum_batch_sharpness: float
    num_measurements: int


@dataclass
class EossRun:
    """An SGD run with its batch sharpness measured along the way (from :func:`eoss_run`).

    Attributes
    ----------
    history : History
        The run itself (losses, full-batch eigenvalues, parameter snapshots).
    step : ndarray of int
        Steps at which batch sharpness was measured.
    batch_sharpness, stderr : ndarray
        :math:`\\mathbb{E}_B[g_B^\\top H_B g_B/\\|g_B\\|^2]` and its Monte Carlo standard error.
    momentum_batch_sharpness : ndarray
        The momentum-aware variant along the heavy-ball step (equal to
        ``batch_sharpness`` when ``beta = 0``).
    lambda_max : ndarray
        Top eigenvalue of the full-batch Hessian at the same steps.
    lr, beta, batch_size :
        The setting (``batch_size`` is the number of examples for full batch).
    levels : EossLevels
    """

    history: History
    step: np.ndarray
    batch_sharpness: np.ndarray
    stderr: np.ndarray
    momentum_batch_sharpness: np.ndarray
    lambda_max: np.ndarray
    lr: float
    beta: float
    batch_size: int
    full_batch: bool
    levels: EossLevels

    @property
    def diverged_at(self):
        return self.history.diverged_at

    @property
    def trained(self):
        """Whether the run halved its full-batch loss without diverging.

        A ReLU network can collapse to a constant output (for one-hot squared
        loss, about 0.45) and sit there with the flat curvature of a dead
        network; the "plateau" of such a run says nothing about the edge.
        """
        loss = self.history.full_loss
        return self.diverged_at is None and bool(loss[-1] < 0.5 * loss[0])

    @property
    def predicted_level(self):
        """The batch-sharpness level linear stability predicts for this run's setting.

        ``2/η`` for plain SGD, ``2(1-β)/η`` for momentum with a batch smaller
        than the data set, ``2(1+β)/η`` for momentum with the full batch.
        """
        if self.beta == 0:
            return self.levels.plain
        return self.levels.large if self.full_batch else self.levels.small

    @property
    def label(self):
        batch = "full batch" if self.full_batch else f"batch {self.batch_size}"
        return f"η={self.lr:g}, β={self.beta:g}, {batch}"

    def plateau(self, start=0.5):
        """Averages over the measurements from ``start`` (a fraction of the run) on.

        Raises ``ValueError`` if the window holds no measurement (for
        instance when the run diverged before it).
        """
        start = check_real("start", start, low=0.0, high=1.0, high_open=True)
        window = self.step >= start * int(self.history.step[-1])
        if self.diverged_at is not None or not window.any():
            where = f"diverged at step {self.diverged_at}" if self.diverged_at is not None else "has no measurement"
            raise ValueError(f"no plateau: the run ({self.label}) {where} in the window from {start:g} of its length")
        bs = self.batch_sharpness[window]
        return Plateau(float(bs.mean()), float(bs.min()), float(bs.max()), float(self.lambda_max[window].mean()),
                       float(self.momentum_batch_sharpness[window].mean()), int(window.sum()))

    def __repr__(self):
        if self.diverged_at is not None:
            return f"<EossRun {self.label}: diverged at step {self.diverged_at}>"
        return (f"<EossRun {self.label}: {len(self.step)} measurements, "
                f"final batch sharpness {self.batch_sharpness[-1]:.4g}, λ_max {self.lambda_max[-1]:.4g}>")


def eoss_run(problem, lr, batch_size=None, *, beta=0.0, steps=10_000, measurements=10, rtol=0.03, max_batches=200,
             seed=0, device=None, dtype=None, progress=True):
    """Train with SGD (heavy-ball momentum ``beta``) and measure batch sharpness and λ_max along the way.

    Parameters
    ----------
    problem : Problem
    lr : float
        Step size, > 0.
    batch_size : int, optional
        Batch size, in ``[1, problem.num_examples]``; ``None`` (or the number
        of examples) trains with full-batch GD or heavy ball.
    beta : float
        Momentum, in [0, 1) (PyTorch's convention, :class:`~eoslab.optim.HeavyBall`).
    steps : int
        Training steps.
    measurements : int
        Number of measurement points after the start (every ``steps // measurements`` steps).
    rtol, max_batches :
        The Monte Carlo stopping rule of :func:`~eoslab.curvature.batch_sharpness`.
        Batch sharpness is measured with batches of the training batch size.
    seed : int
        Seeds the batch order, the eigensolver and the batch-sharpness draws.
    device, dtype : optional
        Where to run (``"cuda"`` for a GPU).
    progress : bool
        Show progress bars.

    Returns
    -------
    EossRun
        A run that diverges stops there; its measurements cover the steps before.

    Examples
    --------
    >>> from eoslab.problems import digits_classification
    >>> p = digits_classification(n=50, widths=(8,), activation="relu", init_scale=0.2)
    >>> r = eoss_run(p, 0.2, 8, steps=40, measurements=2, progress=False)
    >>> r.step.tolist(), r.levels.plain
    ([0, 20, 40], 10.0)
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be an eoslab Problem, got {type(problem).__name__}")
    problem = problem.to(device=device, dtype=dtype)
    n = problem.num_examples
    levels = eoss_levels(lr, beta)
    if batch_size is None:
        batch_size = n
    batch_size = check_int("batch_size", batch_size, low=1, high=n)
    steps = check_int("steps", steps, low=1)
    measurements = check_int("measurements", measurements, low=1, high=steps)
    every = steps // measurements
    optimizer = GD(lr) if levels.beta == 0 else HeavyBall(lr, levels.beta)
    history = run(problem, optimizer, steps, batch_size=None if batch_size == n else batch_size, num_eigs=1,
                  measure_every=every, save_every=every, seed=seed, progress=progress)
    eig_at = dict(zip(history.eig_step.tolist(), history.sharpness.tolist()))
    rows = []
    snaps = list(zip(history.snapshot_step.tolist(), history.snapshots if history.snapshots is not None else []))
    for k, (t, theta) in enumerate(tqdm(snaps, disable=not progress, desc="batch sharpness", leave=False)):
        theta = theta.to(device=problem.device, dtype=problem.dtype)
        plain = batch_sharpness(problem, theta, batch_size, rtol=rtol, max_batches=max_batches, seed=seed * 7919 + k)
        if levels.beta > 0:
            buffer = history.state_snapshots[k]
            aware = batch_sharpness(problem, theta, batch_size, buffer=buffer, beta=levels.beta, rtol=rtol,
                                    max_batches=max_batches, seed=seed * 7919 + k).value
        else:
            aware = plain.value
        rows.append((t, plain.value, plain.stderr, aware, eig_at.get(t, np.nan)))
    table = np.array(rows, dtype=float).reshape(-1, 5)
    return EossRun(history, table[:, 0].astype(int), table[:, 1], table[:, 2], table[:, 3], table[:, 4],
                   float(lr), levels.beta, batch_size, batch_size == n, levels)


def plateau_table(runs, start=0.5):
    """One row per run: the measured plateau against the predicted levels.

    Returns a list of dicts with keys ``label``, ``lr``, ``beta``,
    ``batch_size``, ``batch_sharpness``, ``lambda_max``,
    ``momentum_batch_sharpness``, ``small``, ``large``, ``ratio_small``,
    ``ratio_large`` (measured / predicted), ``initial_loss``, ``final_loss``
    (full batch, at the first and last measurement), ``trained`` and
    ``diverged_at``. A diverged run has NaN measurements. ``trained`` is
    :attr:`EossRun.trained`: False for a run that did not halve its loss.
    """
    rows = []
    for r in runs:
        row = dict(label=r.label, lr=r.lr, beta=r.beta, batch_size=r.batch_size, full_batch=r.full_batch,
                   small=r.levels.small, large=r.levels.large, diverged_at=r.diverged_at,
                   initial_loss=float(r.history.full_loss[0]), final_loss=float(r.history.full_loss[-1]))
        row["trained"] = r.trained
        try:
            p = r.plateau(start)
            row.update(batch_sharpness=p.batch_sharpness, lambda_max=p.lambda_max,
                       momentum_batch_sharpness=p.momentum_batch_sharpness)
        except ValueError:
            row.update(batch_sharpness=np.nan, lambda_max=np.nan, momentum_batch_sharpness=np.nan)
        row["ratio_small"] = row["batch_sharpness"] / row["small"]
        row["ratio_large"] = row["batch_sharpness"] / row["large"]
        rows.append(row)
    return rows
