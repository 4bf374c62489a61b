r"""The stability thresholds, written once: every other module calls these.

On a quadratic :math:`L = \tfrac12 a x^2` an update rule is a linear
recurrence, stable iff the roots of its characteristic polynomial lie inside
the unit circle (derived in :mod:`eoslab.stability` and Chapter 1):

===========  ==============================================
rule         stable iff
===========  ==============================================
GD           :math:`a < 2/\eta`
heavy ball   :math:`a < 2(1+\beta)/\eta`
Nesterov     :math:`a < (2+2\beta)/(\eta(1+2\beta))`
===========  ==============================================

With mini-batches and momentum, the batch sharpness of SGD settles between
two levels (Chapter 7): ``2(1-β)/η`` when a batch's sharp direction is never
revisited, and ``2(1+β)/η`` (the heavy ball's threshold) when it is felt at
every step.
"""
from __future__ import annotations

from ._validation import check_beta, check_positive

__all__ = ["gd_threshold", "heavy_ball_threshold", "nesterov_threshold", "sgd_momentum_levels"]


def gd_threshold(lr):
    """``2/lr``: GD diverges on curvature above it.

    Examples
    --------
    >>> gd_threshold(0.1)
    20.0
    """
    return 2.0 / check_positive("lr", lr)


def heavy_ball_threshold(lr, beta):
    """``2(1+beta)/lr``: the heavy ball's stability threshold (PyTorch's convention, ``SGD(momentum=beta)``)."""
    return 2.0 * (1.0 + check_beta("beta", beta)) / check_positive("lr", lr)


def nesterov_threshold(lr, beta):
    """``(2+2 beta)/(lr (1+2 beta))``: Nesterov momentum's stability threshold."""
    beta = check_beta("beta", beta)
    return (2.0 + 2.0 * beta) / (check_positive("lr", lr) * (1.0 + 2.0 * beta))


def sgd_momentum_levels(lr, beta=0.0):
    """``(2(1-beta)/lr, 2(1+beta)/lr)``: the small-batch and full-batch levels of SGD with heavy-ball momentum.

    Both are ``2/lr`` at ``beta = 0``.

    Examples
    --------
    >>> [round(x, 6) for x in sgd_momentum_levels(0.1, 0.9)]
    [2.0, 38.0]
    """
    lr = check_positive("lr", lr)
    beta = check_beta("beta", beta)
    return 2.0 * (1.0 - beta) / lr, 2.0 * (1.0 + beta) / lr
