r"""The levels batch sharpness settles at, from linear stability: plain SGD, momentum's two levels, and the
exactly solvable model between them (orthogonal rank-one batches revisited every ``period`` steps)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .._validation import check_beta, check_int, check_positive, resolve_device, resolve_dtype
from ..problems import Problem
from ..thresholds import gd_threshold, sgd_momentum_levels

__all__ = ["EossLevels", "RankOneBatches", "eoss_levels", "rank_one_batches", "revisit_level"]


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
    return EossLevels(lr, beta, *sgd_momentum_levels(lr, beta), gd_threshold(lr))


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
