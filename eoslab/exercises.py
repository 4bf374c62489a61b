r"""Self-checks for the exercises: right or wrong, with a hint, without printing the answer.

Each ``check_*`` function takes a student's answer (a number, or a run they
made) and returns a :class:`Check`, which displays as one line:

>>> check_threshold(20.0, lr=0.1)
Right: GD on a quadratic is stable below that curvature.
>>> check_threshold(10.0, lr=0.1)
Not yet. Hint: one step multiplies the error along an eigenvector by 1 - η·a. For which a does that factor reach -1?

The expected values are computed here from closed forms or from the run
itself, so no answer appears in a notebook that calls these functions.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass

import numpy as np

from ._validation import check_beta, check_choice, check_positive, check_real
from .analysis import edge_summary
from .history import History
from .thresholds import gd_threshold, heavy_ball_threshold, nesterov_threshold

__all__ = [
    "Check",
    "check_threshold",
    "check_largest_step",
    "check_two_variable_average",
    "check_edge",
    "check_plateau",
]


@dataclass(frozen=True)
class Check:
    """The verdict on one answer: ``correct`` and a message (a hint when wrong)."""

    correct: bool
    message: str

    def __bool__(self):
        return self.correct

    def __repr__(self):
        return ("Right: " if self.correct else "Not yet. Hint: ") + self.message

    def _repr_html_(self):
        color = "#1a7f37" if self.correct else "#b00"
        return f"<span style='color:{color};font-weight:bold'>{html.escape(repr(self))}</span>"


def _close(value, expected, rtol):
    value = check_real("value", value)  # a NaN or a string is an error that names the argument, not a "wrong"
    return abs(value - expected) <= rtol * abs(expected)


_THRESHOLD_HINTS = {
    "gd": "one step multiplies the error along an eigenvector by 1 - η·a. For which a does that factor reach -1?",
    "heavy_ball": "write the characteristic polynomial z² - (1 + β - η·a)z + β and ask when z = -1 is a root.",
    "nesterov": "write the characteristic polynomial z² - (1 + β)(1 - η·a)z + β(1 - η·a) and put z = -1 into it.",
}


def check_threshold(value, lr, *, method="gd", beta=0.0, rtol=1e-3):
    """Is ``value`` the largest curvature that ``method`` tolerates on a quadratic at step size ``lr``?

    Parameters
    ----------
    value : float
        The student's threshold.
    lr : float
        Step size, > 0.
    method : {"gd", "heavy_ball", "nesterov"}
    beta : float
        Momentum, in [0, 1) (ignored for GD).
    rtol : float
        Relative tolerance.
    """
    lr = check_positive("lr", lr)
    method = check_choice("method", method, tuple(_THRESHOLD_HINTS))
    beta = check_beta("beta", beta)
    expected = {"gd": gd_threshold(lr), "heavy_ball": heavy_ball_threshold(lr, beta),
                "nesterov": nesterov_threshold(lr, beta)}[method]
    if _close(value, expected, rtol):
        name = {"gd": "GD", "heavy_ball": "heavy ball", "nesterov": "Nesterov"}[method]
        return Check(True, f"{name} on a quadratic is stable below that curvature.")
    return Check(False, _THRESHOLD_HINTS[method])


def check_largest_step(value, sharpness, *, rtol=1e-3):
    """Is ``value`` the largest step size at which GD converges on a quadratic of this ``sharpness``?"""
    sharpness = check_positive("sharpness", sharpness)
    if _close(value, 2 / sharpness, rtol):
        return Check(True, "above it the sharpest direction oscillates with growing amplitude.")
    return Check(False, "the sharpest direction decides; invert the condition |1 - η·S| < 1 for η.")


def check_two_variable_average(value, alpha, beta, *, rtol=0.05):
    """Is ``value`` the cycle-average of x² in the self-stabilization model with these ``alpha`` and ``beta``?"""
    alpha = check_positive("alpha", alpha)
    beta = check_positive("beta", beta)
    if _close(value, 2 * alpha / beta, rtol):
        return Check(True, "over a cycle, sharpening (α) and stabilization (β·x²/2) balance.")
    return Check(False, "average the y-update over a whole cycle: y returns to where it started, so the mean "
                        "of its increments is zero. Solve for the mean of x².")


#: A run whose loss ends (median of its last quarter) this many times above its start is blowing up.
EXPLOSION = 100.0


def _loss_growth(history):
    """The median loss of the last quarter of a run over its initial loss (inf if that is 0)."""
    loss = np.asarray(history.loss, dtype=float)
    if loss.size == 0:
        return 1.0
    tail = float(np.median(loss[-max(1, loss.size // 4):]))
    start = abs(float(loss[0]))
    return tail / start if start > 0 else (math.inf if tail > 0 else 1.0)


def check_edge(history, *, tolerance=0.1):
    """Did this GD run reach the Edge of Stability and stay there?

    Right when the sharpness reaches ``2/η`` and its median afterwards is
    within ``tolerance`` of it. A run that diverged, or whose loss ends more
    than ``EXPLOSION`` (100) times above its start, is refused. The hint
    says what is missing.
    """
    if not isinstance(history, History):
        raise TypeError(f"history must be an eoslab History (from eoslab.run), got {type(history).__name__}")
    tolerance = check_real("tolerance", tolerance, low=0.0, high=1.0, low_open=True)
    if history.diverged:
        return Check(False, f"the run diverged at step {history.diverged_at}: lower η, or start flatter.")
    growth = _loss_growth(history)
    if growth > EXPLOSION:
        return Check(False, f"the loss grew {growth:.3g}-fold from its start: this run is blowing up, not at an "
                            "edge. Lower η.")
    if history.sharpness.size == 0:
        return Check(False, "the run measured no sharpness: pass num_eigs=1 to eoslab.run.")
    summary = edge_summary(history)
    if summary.first_step is None:
        return Check(False, "the sharpness never reached 2/η: run longer, or take a larger η.")
    if abs(summary.median_ratio - 1) > tolerance:
        return Check(False, "the sharpness reached 2/η but did not stay near it; look at how it moves afterwards.")
    return Check(True, f"the sharpness reached 2/η at step {summary.first_step} and stayed near it.")


def check_plateau(run, *, tolerance=0.15):
    """Does this :class:`~eoslab.stochastic.EossRun` train and settle at the batch-sharpness level its setting predicts?

    The prediction is ``2/η`` for plain SGD, ``2(1-β)/η`` for momentum with
    a batch smaller than the data set, and ``2(1+β)/η`` for momentum with
    the full batch. A run that diverged or is blowing up (see :func:`check_edge`),
    did not train, or whose batch sharpness is still rising or falling over
    the plateau's window (:attr:`Plateau.levelled_off`) is refused. The hint
    does not give the level.
    """
    if not all(hasattr(run, a) for a in ("plateau", "predicted_level", "trained", "diverged_at")):
        raise TypeError(f"run must be an EossRun (from eoslab.stochastic.eoss_run), got {type(run).__name__}")
    tolerance = check_real("tolerance", tolerance, low=0.0, high=1.0, low_open=True)
    if run.diverged_at is not None:
        return Check(False, f"the run diverged at step {run.diverged_at}: a smaller η, or a larger batch.")
    growth = _loss_growth(run.history)
    if growth > EXPLOSION:
        return Check(False, f"the loss grew {growth:.3g}-fold from its start: this run is blowing up. "
                            "A smaller η, or a larger batch.")
    if not run.trained:
        return Check(False, "the network did not train (its loss did not halve), so its batch sharpness says "
                            "nothing about an edge. Try a smaller η, or less momentum.")
    plateau = run.plateau()
    if not plateau.levelled_off:
        return Check(False, f"the batch sharpness is still moving (its mean changed by {plateau.trend:+.0%} across "
                            "the window), so it has no plateau yet: run longer.")
    ratio = plateau.batch_sharpness / run.predicted_level
    if not np.isfinite(ratio) or abs(ratio - 1) > tolerance:
        where = "below" if ratio < 1 else "above"
        return Check(False, f"the plateau is {where} the predicted level. Is the run long enough to reach its "
                            "edge, the task hard enough, and the batch small (or large) enough for its regime?")
    return Check(True, "batch sharpness settles at the level that linear stability predicts for this setting.")
