"""Numbers read off histories: the Edge of Stability phase, distances between trajectories."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .history import History
from .trends import trend

__all__ = ["EdgeSummary", "distance_by_time", "edge_summary", "midpoints", "tracking_error"]


@dataclass
class EdgeSummary:
    """What :func:`edge_summary` reports about one run.

    Attributes
    ----------
    threshold : float
        The stability threshold (``2/η`` for GD).
    first_step : int or None
        First measured step with sharpness at or above the threshold.
    median_ratio : float
        Median of sharpness / threshold from ``first_step`` on (NaN if never reached).
    loss_increases : int
        Steps from ``first_step`` on at which the loss went up.
    initial_loss, final_loss : float
    trend : float
        Change of the mean of sharpness / threshold from the phase's first half to its second
        (see :func:`eoslab.trends.trend`; NaN with fewer than four measurements).
    levelled_off : bool
        Whether that change is within the scatter: ``False`` means the sharpness is still rising
        or falling, and the median describes a moving series.
    """

    threshold: float
    first_step: int | None
    median_ratio: float
    loss_increases: int
    initial_loss: float
    final_loss: float
    trend: float = float("nan")
    levelled_off: bool = True

    def __str__(self):
        if self.first_step is None:
            return f"never reached 2/lr = {self.threshold:.3g}"
        text = (f"reached {self.threshold:.3g} at step {self.first_step}; median S/(2/lr) after that "
                f"{self.median_ratio:.3f}; loss went up on {self.loss_increases} steps; "
                f"loss {self.initial_loss:.3g} -> {self.final_loss:.3g}")
        if not self.levelled_off:
            text += f"; not levelled off: S/(2/lr) moved by {self.trend:+.1%} across the phase"
        return text


def _check_history(name, value):
    if not isinstance(value, History):
        raise TypeError(f"{name} must be an eoslab History (what eoslab.run returns), got {type(value).__name__}")
    if value.loss.size == 0:
        raise ValueError(f"{name} recorded nothing (a run interrupted or diverged at step 0)")


def edge_summary(history, threshold=None):
    """Summarize the Edge of Stability phase of a run.

    The phase starts at the first measurement whose sharpness reaches
    ``threshold`` (default: the run's own, ``2/η`` for GD) and lasts to the end.
    """
    _check_history("history", history)
    threshold = history.threshold if threshold is None else float(threshold)
    reached = np.flatnonzero(history.sharpness >= threshold)
    if reached.size == 0:
        return EdgeSummary(threshold, None, float("nan"), 0, float(history.loss[0]), float(history.loss[-1]))
    first = int(history.eig_step[reached[0]])
    ratios = history.sharpness[reached[0]:] / threshold
    increases = int((np.diff(history.loss[first:]) > 0).sum())
    change, levelled = trend(ratios)
    return EdgeSummary(threshold, first, float(np.median(ratios)), increases, float(history.loss[0]),
                       float(history.loss[-1]), change, levelled)


def distance_by_time(a, b):
    """``‖θ_a − θ_b‖`` at the times both histories saved parameters.

    Times are compared in the units of the un-scaled flow, ``lr × step``,
    so a GD run with step size η and a flow in step units for another η
    line up by ``η·t``. Both histories need ``snapshots`` (``save_every``).

    Returns
    -------
    times, distances : ndarrays
        The common times ``lr × step`` and the distances there.
    """
    for name, h in (("a", a), ("b", b)):
        _check_history(name, h)
        if h.snapshots is None:
            raise ValueError(f"history {name} saved no parameters: run it with save_every=...")
    ta = a.lr * a.snapshot_step
    tb = b.lr * b.snapshot_step
    ib = np.searchsorted(tb, ta - 1e-9 * np.maximum(1.0, np.abs(ta)))
    ib = np.minimum(ib, len(tb) - 1)
    match = np.isclose(tb[ib], ta, rtol=1e-9, atol=1e-9)
    ia = np.flatnonzero(match)
    diff = a.snapshots[ia].double() - b.snapshots[ib[ia]].double()
    return ta[ia], diff.norm(dim=1).numpy()


def midpoints(history):
    r"""GD's iterates with the period-two oscillation averaged out: :math:`(\theta_{t-1} + 2\theta_t + \theta_{t+1})/4`.

    For steps ``1..T-1`` of a history saved at every step (``save_every=1``);
    returns a tensor of shape ``(T - 1, P)``. On a period-two orbit
    :math:`x \pm a u` the midpoint is exactly ``x``.
    """
    _check_history("history", history)
    if history.snapshots is None or len(history.snapshot_step) < 3 or np.any(np.diff(history.snapshot_step) != 1):
        raise ValueError("midpoints need parameters saved at every step: run with save_every=1 and at least 2 steps")
    s = history.snapshots.double()
    return (s[:-2] + 2 * s[1:-1] + s[2:]) / 4


def tracking_error(model, gd, horizons=None):
    r"""``‖θ_model(t) − midpoint_GD(t)‖`` at every step ``1..T-1`` (or at ``horizons``).

    Both histories need snapshots at every step from the same start (as
    :func:`eoslab.flows.compare` makes them).
    """
    _check_history("model", model)
    mid = midpoints(gd)
    n = min(len(mid), len(model.snapshots) - 2)
    error = (model.snapshots[1 : n + 1].double() - mid[:n]).norm(dim=1).numpy()
    if horizons is None:
        return error
    return np.array([error[h - 1] if 0 < h <= n else np.nan for h in horizons])
