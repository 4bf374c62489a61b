r"""SGD at its edge: batch sharpness measured along a run (:func:`eoss_run`), its plateau, and a table of runs."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .._validation import check_int, check_real, no_other_keywords
from ..history import History
from ..methods import Method
from ..optim import GD, HeavyBall
from ..problems import Problem
from ..runs import run
from ..trends import trend
from .batch_sharpness import batch_sharpness
from .levels import EossLevels, eoss_levels

__all__ = ["EossRun", "Plateau", "eoss_run", "plateau_table"]


@dataclass(frozen=True)
class Plateau:
    """Averages over the late part of an :class:`EossRun` (see :meth:`EossRun.plateau`).

    ``batch_sharpness`` is the mean; ``low`` and ``high`` its extremes over
    the window; ``lambda_max`` and ``momentum_batch_sharpness`` are means
    over the same measurements.

    ``trend`` is the change of the mean from the window's first half to its
    second, relative to the plateau; ``levelled_off`` says whether that change
    is within twice its standard error (the two halves' scatter) or 5 %,
    whichever is larger. A series still rising (or falling) through the
    window has not reached its level: run longer before reading it.
    """

    batch_sharpness: float
    low: float
    high: float
    lambda_max: float
    momentum_batch_sharpness: float
    num_measurements: int
    trend: float = float("nan")
    levelled_off: bool = True

    def __str__(self):
        text = (f"batch sharpness {self.batch_sharpness:.4g} (range {self.low:.4g}-{self.high:.4g}), "
                f"λ_max {self.lambda_max:.4g}, over {self.num_measurements} measurements")
        if not self.levelled_off:
            text += f"; not levelled off: the mean moved by {self.trend:+.0%} across the window"
        return text


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

    def save(self, path):
        """Write the run to ``path`` (an ``.npz``, see :meth:`History.save`); :meth:`load` reads it back exactly.

        Everything is in the history (the batch sharpness is in its
        ``measured``); the setting goes in its ``attributes``.
        """
        setting = {"record": "eoslab.EossRun", "lr": self.lr, "beta": self.beta, "batch_size": self.batch_size,
                   "full_batch": self.full_batch}
        return self.history.save(path, attributes=setting)

    @classmethod
    def load(cls, path):
        """Read a run written by :meth:`save`."""
        setting = History.load_attributes(path)
        if setting.get("record") != "eoslab.EossRun":
            raise ValueError(f"{path} holds a History, not an EossRun: read it with History.load")
        return _from_history(History.load(path), float(setting["lr"]), float(setting["beta"]),
                             int(setting["batch_size"]), bool(setting["full_batch"]))

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
        change, levelled = trend(bs)
        return Plateau(float(bs.mean()), float(bs.min()), float(bs.max()), float(self.lambda_max[window].mean()),
                       float(self.momentum_batch_sharpness[window].mean()), int(window.sum()), change, levelled)

    def __repr__(self):
        if self.diverged_at is not None:
            return f"<EossRun {self.label}: diverged at step {self.diverged_at}>"
        return (f"<EossRun {self.label}: {len(self.step)} measurements, "
                f"final batch sharpness {self.batch_sharpness[-1]:.4g}, λ_max {self.lambda_max[-1]:.4g}>")


def _as_optimizer(method, beta, where):
    """``GD`` or ``HeavyBall``; the old signature's bare ``lr`` (and ``beta=``) becomes one, with a warning."""
    if isinstance(method, Method):
        if beta is not None:
            raise TypeError(f"{where}: beta= is the old signature's; with a method, pass HeavyBall(lr, beta)")
        if type(method) not in (GD, HeavyBall):
            raise TypeError(f"method must be eoslab.optim.GD or eoslab.optim.HeavyBall (the rules batch sharpness and "
                            f"its momentum-aware variant are defined for), got {method.label}")
        return method
    if isinstance(method, (int, float)) and not isinstance(method, bool):
        warnings.warn(f"{where}: pass the optimizer (GD(lr) or HeavyBall(lr, beta)) instead of lr and beta=; the old "
                      "signature will be refused in the next release", DeprecationWarning, stacklevel=3)
        beta = 0.0 if beta is None else beta
        return HeavyBall(method, beta) if beta else GD(method)
    raise TypeError(f"method must be GD(lr) or HeavyBall(lr, beta), got {type(method).__name__}")


def eoss_run(problem, method, batch_size=None, *, steps=10_000, measure_every=None, rtol=0.03, max_batches=200,
             seed=0, checkpoint=None, device=None, dtype=None, progress=True, beta=None, **deprecated):
    """Train with SGD (``GD`` or ``HeavyBall``) and measure batch sharpness and λ_max along the way.

    One call of :func:`eoslab.run`, with ``batch_size`` and a batch-sharpness
    measure on its schedule: at every measurement the plain
    :func:`~eoslab.stochastic.batch_sharpness` (with batches of the training
    batch size) and, with momentum, its momentum-aware variant along the
    step heavy ball would take from the current buffer.

    Parameters
    ----------
    problem : Problem
    method : GD or HeavyBall
        The update rule, e.g. ``HeavyBall(0.02, 0.9)`` (PyTorch's convention). The old
        signature, a bare ``lr`` with ``beta=``, still works with a warning.
    batch_size : int, optional
        Batch size, in ``[1, problem.num_examples]``; ``None`` (or the number
        of examples) trains with full-batch GD or heavy ball.
    steps : int
        Training steps.
    measure_every : int, optional
        Steps between measurements (default ``steps // 10``; ``measurements=`` gave their number before).
    rtol, max_batches :
        The Monte Carlo stopping rule of :func:`~eoslab.stochastic.batch_sharpness`.
    seed : int
        Seeds the batch order, the eigensolver and the batch-sharpness draws.
    checkpoint : str or path, optional
        Keep the run's progress there and continue from it (see :func:`eoslab.run`).
    device, dtype : optional
        Where to run (``"cuda"`` for a GPU).
    progress : bool
        Show a progress bar.

    Returns
    -------
    EossRun
        A run that diverges stops there; its measurements cover the steps before.

    Examples
    --------
    >>> from eoslab.problems import digits_classification
    >>> p = digits_classification(n=50, widths=(8,), activation="relu", init_scale=0.2)
    >>> r = eoss_run(p, GD(0.2), 8, steps=40, measure_every=20, progress=False)
    >>> r.step.tolist(), r.levels.plain
    ([0, 20, 40], 10.0)
    """
    method = _as_optimizer(method, beta, "eoss_run")
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be an eoslab Problem, got {type(problem).__name__}")
    steps = check_int("steps", steps, low=1)
    measurements = deprecated.pop("measurements", None)
    if measurements is not None:
        warnings.warn("eoss_run: measurements= is replaced by measure_every= (steps between measurements)",
                      DeprecationWarning, stacklevel=2)
        measure_every = steps // check_int("measurements", measurements, low=1, high=steps)
    no_other_keywords(deprecated, "eoss_run")
    every = max(1, steps // 10) if measure_every is None else check_int("measure_every", measure_every, low=1)
    problem = problem.to(device=device, dtype=dtype)
    n = problem.num_examples
    batch_size = n if batch_size is None else check_int("batch_size", batch_size, low=1, high=n)
    momentum = getattr(method, "beta", 0.0)
    levels = eoss_levels(method.lr, momentum)

    def measure(view):
        plain = batch_sharpness(view.problem, view.theta, batch_size, rtol=rtol, max_batches=max_batches,
                                seed=seed * 7919 + view.index)
        aware = plain.value
        if momentum > 0:
            aware = batch_sharpness(view.problem, view.theta, batch_size, buffer=view.state, beta=momentum, rtol=rtol,
                                    max_batches=max_batches, seed=seed * 7919 + view.index).value
        return {"value": plain.value, "stderr": plain.stderr, "momentum": aware}

    history = run(problem, method, steps, batch_size=None if batch_size == n else batch_size, num_eigs=1,
                  measure_every=every, save_every=every, measures={"batch_sharpness": measure}, seed=seed,
                  checkpoint=checkpoint, progress=progress)
    return _from_history(history, float(method.lr), levels.beta, batch_size, batch_size == n)


def _from_history(history, lr, beta, batch_size, full_batch):
    """The :class:`EossRun` that :func:`eoss_run` records in ``history`` (its measurements are in it)."""
    m = history.measured
    k = len(history.measure_step)
    lambda_max = dict(zip(history.eig_step.tolist(), history.sharpness.tolist()))
    return EossRun(history, history.measure_step, m.get("batch_sharpness.value", np.zeros(k)),
                   m.get("batch_sharpness.stderr", np.zeros(k)), m.get("batch_sharpness.momentum", np.zeros(k)),
                   np.array([lambda_max.get(t, np.nan) for t in history.measure_step.tolist()], dtype=float),
                   lr, beta, batch_size, full_batch, eoss_levels(lr, beta))


def plateau_table(runs, start=0.5):
    """One row per run: the measured plateau against the predicted levels.

    Returns a list of dicts with keys ``label``, ``lr``, ``beta``,
    ``batch_size``, ``batch_sharpness``, ``lambda_max``,
    ``momentum_batch_sharpness``, ``small``, ``large``, ``ratio_small``,
    ``ratio_large`` (measured / predicted), ``levelled_off`` (see :class:`Plateau`), ``initial_loss``, ``final_loss``
    (full batch, at the first and last measurement), ``trained`` and
    ``diverged_at``. A diverged run has NaN measurements. ``trained`` is
    :attr:`EossRun.trained`: False for a run that did not halve its loss.
    """
    if not isinstance(runs, (list, tuple)) or not all(isinstance(r, EossRun) for r in runs):
        raise TypeError(f"runs must be a list of EossRun (from eoss_run), got {type(runs).__name__}")
    rows = []
    for r in runs:
        row = dict(label=r.label, lr=r.lr, beta=r.beta, batch_size=r.batch_size, full_batch=r.full_batch,
                   small=r.levels.small, large=r.levels.large, diverged_at=r.diverged_at,
                   initial_loss=float(r.history.full_loss[0]), final_loss=float(r.history.full_loss[-1]))
        row["trained"] = r.trained
        try:
            p = r.plateau(start)
            row.update(batch_sharpness=p.batch_sharpness, lambda_max=p.lambda_max,
                       momentum_batch_sharpness=p.momentum_batch_sharpness, levelled_off=p.levelled_off)
        except ValueError:
            row.update(batch_sharpness=np.nan, lambda_max=np.nan, momentum_batch_sharpness=np.nan,
                       levelled_off=False)
        row["ratio_small"] = row["batch_sharpness"] / row["small"]
        row["ratio_large"] = row["batch_sharpness"] / row["large"]
        rows.append(row)
    return rows
