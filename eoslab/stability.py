r"""Linear stability of update rules on quadratics: closed forms and experiments.

On :math:`L = \tfrac12 a x^2` every rule in :mod:`eoslab.optim` is a linear
recurrence. It is stable iff every root of its characteristic polynomial
lies inside the unit circle:

===========  =================================================  ==============================
rule         characteristic polynomial                           stable iff
===========  =================================================  ==============================
GD           :math:`z - (1 - \eta a)`                            :math:`0 < a < 2/\eta`
heavy ball   :math:`z^2 - (1+\beta-\eta a) z + \beta`           :math:`0 < a < 2(1+\beta)/\eta`
Nesterov     :math:`z^2 - (1+\beta)(1-\eta a) z + \beta(1-\eta a)`  :math:`0 < a < (2+2\beta)/(\eta(1+2\beta))`
===========  =================================================  ==============================

:mod:`eoslab.thresholds` holds the closed forms (re-exported here);
:func:`critical_curvature` finds the same thresholds by experiment: it runs
the optimizer itself on 1-D quadratics and bisects on the curvature.
"""
from __future__ import annotations

import math

import numpy as np

from ._validation import check_int, check_positive, check_real
from .optim import GD, HeavyBall, Nesterov, Optimizer
from .problems import quadratic
from .runs import run
from .thresholds import gd_threshold, heavy_ball_threshold, nesterov_threshold

__all__ = [
    "gd_threshold",
    "heavy_ball_threshold",
    "nesterov_threshold",
    "characteristic_roots",
    "spectral_radius",
    "grows",
    "critical_curvature",
]


def characteristic_roots(optimizer, curvature):
    """Roots of the rule's characteristic polynomial on ``½ a x²`` with ``a = curvature``.

    Parameters
    ----------
    optimizer : GD, HeavyBall or Nesterov
    curvature : float or array-like

    Returns
    -------
    ndarray of complex, shape (..., 1) for GD and (..., 2) for momentum
    """
    if type(optimizer) not in (GD, HeavyBall, Nesterov):
        raise TypeError(f"optimizer must be GD, HeavyBall or Nesterov, got {type(optimizer).__name__}")
    a = np.asarray(curvature, dtype=float)
    lr = optimizer.lr
    if type(optimizer) is GD:
        return (1 - lr * a)[..., None].astype(complex)
    if isinstance(optimizer, Nesterov):
        b, c = -(1 + optimizer.beta) * (1 - lr * a), optimizer.beta * (1 - lr * a)
    elif isinstance(optimizer, HeavyBall):
        b, c = -(1 + optimizer.beta - lr * a), optimizer.beta * np.ones_like(a)
    else:
        raise TypeError(f"optimizer must be GD, HeavyBall or Nesterov, got {type(optimizer).__name__}")
    disc = np.sqrt((b * b - 4 * c).astype(complex))
    return np.stack([(-b + disc) / 2, (-b - disc) / 2], axis=-1)


def spectral_radius(optimizer, curvature):
    """Largest root modulus: the factor by which the slowest mode shrinks (``< 1``) or grows per step."""
    return np.abs(characteristic_roots(optimizer, curvature)).max(axis=-1)


def grows(optimizer, curvature, *, steps=2000, x0=1.0):
    """Run ``optimizer`` on ``½ a x²`` and report whether the iterates grow.

    One call of :func:`eoslab.run` on the one-dimensional quadratic (in
    float64, from ``x0``, with a fresh state); the amplitude over the last
    two steps is compared with the amplitude two steps around the middle of
    the run, after the transients have passed. A run that leaves the finite
    numbers grows.
    """
    curvature = check_real("curvature", curvature)
    steps = check_int("steps", steps, low=8)
    marks = (steps // 2, steps // 2 + 1, steps - 1, steps)
    amplitude = {}

    def keep(view):
        if view.t in marks:
            amplitude[view.t] = float(view.theta.abs())

    history = run(quadratic([curvature], theta0=[float(x0)], dtype="float64"), optimizer, steps, num_eigs=0,
                  divergence_factor=math.inf, callback=keep, progress=False)
    if history.diverged_at is not None:
        return True
    return amplitude[steps - 1] + amplitude[steps] > amplitude[steps // 2] + amplitude[steps // 2 + 1]


def critical_curvature(optimizer, *, low=0.0, high=None, steps=2000, rtol=1e-4):
    """The curvature at which ``optimizer`` turns unstable, found by bisection.

    Between ``low`` (stable) and ``high`` (unstable; by default doubled from
    ``1/lr`` until the rule grows), halve the bracket until it is narrower
    than ``rtol`` times its midpoint, deciding each midpoint with
    :func:`grows`. No formula is used: this is the experiment that the
    closed-form thresholds predict.

    Examples
    --------
    >>> round(critical_curvature(GD(lr=0.1)), 2)
    20.0
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be an eoslab Optimizer, got {type(optimizer).__name__}")
    low = check_real("low", low, low=0.0)
    rtol = check_positive("rtol", rtol)
    if high is None:
        high = 1.0 / optimizer.lr
        while not grows(optimizer, high, steps=steps):
            high *= 2
            if high > 1e12 / optimizer.lr:
                raise RuntimeError("no unstable curvature found below 1e12/lr")
    else:
        high = check_real("high", high, low=low, low_open=True)
        if not grows(optimizer, high, steps=steps):
            raise ValueError(f"high={high:g} must be an unstable curvature for {optimizer.label}")
    if grows(optimizer, low, steps=steps):
        raise ValueError(f"low={low:g} must be a stable curvature for {optimizer.label}")
    while high - low > rtol * 0.5 * (high + low):
        mid = 0.5 * (low + high)
        if grows(optimizer, mid, steps=steps):
            high = mid
        else:
            low = mid
    return 0.5 * (low + high)
