r"""The two-variable model of self-stabilization and its four stages (Chapter 3)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validation import check_int, check_positive, check_real

__all__ = ["STAGE_NAMES", "TwoVariableTrajectory", "stages", "two_variable_model"]

STAGE_NAMES = {
    1: "progressive sharpening",
    2: "blow-up",
    3: "self-stabilization",
    4: "return to stability",
}


def stages(x, y, alpha, beta):
    r"""The stage (1-4) of each point of a two-variable trajectory.

    Read off the two signs that drive the map: ``y`` (is the sharpness
    above :math:`2/\eta`, so that :math:`|x|` grows?) and
    :math:`\tfrac12\beta x^2 - \alpha` (does the oscillation push the
    sharpness down faster than progressive sharpening pushes it up?).

    ==========  ==========================  =========  ============================
    stage       name                        ``y``      :math:`\tfrac12\beta x^2`
    ==========  ==========================  =========  ============================
    1           progressive sharpening      < 0        < α
    2           blow-up                     >= 0       < α
    3           self-stabilization          >= 0       >= α
    4           return to stability         < 0        >= α
    ==========  ==========================  =========  ============================
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    strong = 0.5 * beta * x**2 >= alpha
    above = y >= 0
    return np.where(above, np.where(strong, 3, 2), np.where(strong, 4, 1))


@dataclass
class TwoVariableTrajectory:
    """A run of :func:`two_variable_model`.

    Attributes
    ----------
    x, y : ndarray
        The oscillation along ``u`` and the sharpness excess ``S - 2/η``, steps ``0..T``.
    stage : ndarray of int
        :func:`stages` of each step.
    lr, alpha, beta : float
    diverged_at : int or None
        First step at which ``x`` or ``y`` overflowed.
    """

    x: np.ndarray
    y: np.ndarray
    stage: np.ndarray
    lr: float
    alpha: float
    beta: float
    diverged_at: int | None = None

    @property
    def delta(self):
        r"""The equilibrium oscillation size :math:`\delta = \sqrt{2\alpha/\beta}`."""
        return math.sqrt(2 * self.alpha / self.beta)

    @property
    def step(self):
        return np.arange(len(self.x))

    @property
    def stage_names(self):
        """``{stage: name}`` for the stages (:data:`STAGE_NAMES`), for figures and tables."""
        return STAGE_NAMES

    @property
    def label(self):
        return f"two-variable model (lr={self.lr:g}, alpha={self.alpha:g}, beta={self.beta:g})"

    def stage_starts(self):
        """``(step, stage)`` for each step at which the stage changes (and step 0)."""
        change = np.flatnonzero(np.diff(self.stage)) + 1
        starts = np.concatenate([[0], change])
        return [(int(t), int(self.stage[t])) for t in starts]

    def cycles(self):
        """Steps at which ``y`` crosses 0 upwards: each begins a blow-up, so consecutive ones bound a cycle."""
        return np.flatnonzero((self.y[:-1] < 0) & (self.y[1:] >= 0)) + 1

    def mean_x2(self, start=None, stop=None):
        r"""The average of :math:`x_t^2` over ``start <= t < stop`` (default: the last complete cycle)."""
        if start is None and stop is None:
            ups = self.cycles()
            if len(ups) < 2:
                raise ValueError("the trajectory has no complete cycle: run it longer or pass start/stop")
            start, stop = ups[-2], ups[-1]
        return float(np.mean(self.x[start:stop] ** 2))


def two_variable_model(lr, alpha, beta, steps, *, x0=0.01, y0=-1.0):
    r"""Iterate the two-variable model of self-stabilization.

    .. math::
        x_{t+1} = -(1 + \eta y_t)\,x_t, \qquad
        y_{t+1} = y_t + \eta\left(\alpha - \tfrac12\beta x_t^2\right),

    where :math:`x` is the displacement along the top eigenvector and
    :math:`y = S - 2/\eta` the sharpness above the threshold. The first
    equation is GD on the quadratic along :math:`u` (its multiplier is
    :math:`1 - \eta S`); the second says the sharpness grows at the
    progressive-sharpening rate :math:`\eta\alpha` and falls by
    :math:`\tfrac12\eta\beta x^2` because of the oscillation.

    Parameters
    ----------
    lr : float
        Step size η > 0.
    alpha : float
        Progressive-sharpening rate, > 0.
    beta : float
        Self-stabilization strength :math:`\|\nabla S_\perp\|^2`, > 0.
    steps : int
        Number of steps.
    x0, y0 : float
        Start: a small oscillation, below the threshold by default.

    Returns
    -------
    TwoVariableTrajectory

    Examples
    --------
    >>> traj = two_variable_model(lr=0.01, alpha=1.0, beta=1.0, steps=3000)
    >>> [name for _, name in traj.stage_starts()[:4]]
    [1, 2, 3, 4]
    >>> round(traj.mean_x2() / traj.delta**2, 2)
    1.0
    """
    lr = check_positive("lr", lr)
    alpha = check_positive("alpha", alpha)
    beta = check_positive("beta", beta)
    steps = check_int("steps", steps, low=1)
    x0 = check_real("x0", x0)
    y0 = check_real("y0", y0)
    xs = np.empty(steps + 1)
    ys = np.empty(steps + 1)
    x, y = x0, y0
    diverged_at = None
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps + 1):
            if not (math.isfinite(x) and math.isfinite(y)) or abs(x) > 1e150:
                diverged_at = t
                break
            xs[t], ys[t] = x, y
            x, y = -(1.0 + lr * y) * x, y + lr * (alpha - 0.5 * beta * x * x)
    n = steps + 1 if diverged_at is None else diverged_at
    xs, ys = xs[:n], ys[:n]
    return TwoVariableTrajectory(xs, ys, stages(xs, ys, alpha, beta), lr, alpha, beta, diverged_at)
