"""The one loop: :func:`run` drives any :class:`~eoslab.methods.Method` and records a :class:`~eoslab.history.History`.

Everything that advances :math:`\\theta` step by step goes through
:func:`run`: GD and its variants, mini-batch SGD, the flows, and the
chapters' own processes. It records the loss every step, the top Hessian
eigenvalues and any ``measures`` on one schedule, parameter snapshots,
stops cleanly on divergence, and accepts a ``stop`` condition and a
``callback``, so "run until the sharpness reaches ``2/η``" is a call of
:func:`run` with ``stop=until_sharpness_reaches()``. :func:`compare` runs
several methods from one start.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ._validation import check_int, check_positive, check_real, check_vector, no_other_keywords, renamed
from .batches import BatchSampler
from .curvature import top_eigenpairs
from .history import History
from .methods import Method, StepInfo
from .problems import Problem

__all__ = ["History", "StepView", "compare", "run", "until_sharpness_reaches"]


@dataclass
class StepView:
    """What ``stop``, ``callback`` and ``measures`` see at step ``t`` of :func:`run`.

    Attributes
    ----------
    t : int
    theta : torch.Tensor
        The current point.
    state :
        The method's state (a momentum buffer, a flow state...).
    loss : float
        The recorded loss at ``theta``.
    measured : bool
        Whether this step is on the measurement schedule.
    index : int
        How many measurements came before this one (``0`` for the first).
    sharpness : float
        The last measured sharpness (NaN before the first).
    threshold : float
        The method's threshold (``2/η`` for GD).
    problem : Problem
        The problem as the run sees it (on the run's device and dtype).
    """

    t: int
    theta: torch.Tensor
    state: object
    loss: float
    measured: bool
    index: int
    sharpness: float
    threshold: float
    problem: Problem


def until_sharpness_reaches(level=None):
    """A ``stop`` condition for :func:`run`: the first measured sharpness at or above ``level``.

    ``level`` defaults to the method's threshold (``2/η`` for GD). The run
    then ends at that measurement, with ``history.stopped_at`` set.

    Examples
    --------
    >>> from eoslab.problems import quadratic
    >>> from eoslab.optim import GD
    >>> h = run(quadratic([1.0, 3.0]), GD(0.5), 10, measure_every=1, stop=until_sharpness_reaches(2.5),
    ...         progress=False)
    >>> h.stopped_at
    0
    """
    if level is not None:
        level = check_real("level", level)

    def stop(view):
        return view.measured and view.sharpness >= (view.threshold if level is None else level)

    return stop


def _with_integrator(method, old, where):
    """The deprecated ``alpha=``/``max_substep=`` of the old ``solve``: set on a copy of the flow."""
    scale = renamed(old, "alpha", "substep_scale", where)
    max_substep = old.pop("max_substep", None)
    if scale is None and max_substep is None:
        return method
    if not hasattr(method, "substep_scale"):
        return method  # an optimizer: the integrator settings are the flows' only
    method = copy.copy(method)
    if scale is not None:
        method.substep_scale = check_real("substep_scale", scale, low=0.0, high=2.5, low_open=True)
    if max_substep is not None:
        method.max_substep = check_real("max_substep", max_substep, low=0.0, high=1.0, low_open=True)
    return method


def run(problem, method, steps, *, theta0=None, measure_every=None, num_eigs=1, eig_tol=1e-3, measures=None,
        batch_size=None, replacement=False, save_every=None, stop=None, callback=None, divergence_factor=1e6,
        device=None, dtype=None, seed=0, progress=True, **deprecated):
    """Run ``method`` on ``problem`` for ``steps`` steps, recording a :class:`~eoslab.history.History`.

    Every step records the loss and gradient norm at the current point;
    on the measurement schedule (every ``measure_every`` steps and the last)
    the top ``num_eigs`` Hessian eigenvalues of the full-batch loss
    (warm-started from the previous eigenvectors) and every ``measures``
    entry. A run whose loss or point becomes non-finite, or whose loss
    exceeds ``divergence_factor`` times its initial value, stops there and
    reports ``diverged_at``; ``stop`` ends it early (``stopped_at``).

    Parameters
    ----------
    problem : Problem
        What to minimize.
    method : Method
        An update rule (``eoslab.optim.GD(lr=0.1)``), a flow
        (``eoslab.flows.GradientFlow(0.1)``) or any other
        :class:`~eoslab.methods.Method`.
    steps : int
        Number of steps (for a flow: the final time, in GD steps), >= 0.
    theta0 : torch.Tensor, optional
        Start here instead of ``problem.theta0``.
    measure_every : int, optional
        Steps between measurements; default ``max(1, steps // 100)``.
    num_eigs : int
        Top eigenvalues to track (0 to skip curvature).
    eig_tol : float
        Relative residual tolerance of each eigen-solve (see :func:`eoslab.top_eigenpairs`).
    measures : dict of str -> callable, optional
        ``{name: f}``; ``f(view)`` gets the :class:`StepView` at each measurement and returns a float
        or a dict of floats (recorded as ``name.key``), in ``History.measured``.
    batch_size : int, optional
        Mini-batch size for stochastic steps; ``None`` for full-batch.
    replacement : bool
        Draw batches with replacement (default: reshuffled epochs).
    save_every : int, optional
        Keep a copy of the parameters (and the method's buffer) every ``save_every`` steps.
    stop : callable, optional
        ``stop(view) -> bool``, asked at every step after recording; e.g. :func:`until_sharpness_reaches`.
    callback : callable, optional
        ``callback(view)``, called at every step after recording.
    divergence_factor : float
        Loss growth (relative to the initial loss) treated as divergence; ``math.inf`` counts only
        non-finite numbers.
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
    if not isinstance(method, Method):
        raise TypeError(f"method must be an eoslab Method (an optimizer or a flow), got {type(method).__name__}")
    method = _with_integrator(method, deprecated, "run")
    no_other_keywords(deprecated, "run")
    recorder = _Recorder(problem, method, steps, measure_every=measure_every, num_eigs=num_eigs, eig_tol=eig_tol,
                         measures=measures, save_every=save_every, divergence_factor=divergence_factor, seed=seed,
                         device=device, dtype=dtype, progress=progress)
    problem, steps = recorder.problem, recorder.steps
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, low=1, high=problem.num_examples)
    for name, fn in (("stop", stop), ("callback", callback)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    sampler = None
    if batch_size is not None and batch_size < problem.num_examples:
        sampler = BatchSampler(problem.num_examples, batch_size, replacement, recorder.seed, problem.device)

    theta, state = method.start(problem, recorder.start(theta0))
    try:
        for t in range(steps + 1):
            batch = sampler() if sampler is not None else None
            loss, grad = problem.value_and_grad(theta, batch)
            if not recorder.record(t, theta, state, loss, grad, full_batch=batch is None):  # diverged
                break
            if callback is not None or stop is not None:
                view = recorder.view(t, theta, state)
                if callback is not None:
                    callback(view)
                if stop is not None and t < steps and stop(view):
                    recorder.stopped_at = t
                    break
            if t == steps:
                break
            loss_fn = problem if batch is None else (lambda th, b=batch: problem.loss(th, b))
            theta, state = method.step(problem, theta, state, StepInfo(t, loss, grad, loss_fn, recorder.sharpness))
            theta = theta.detach()
            size = method.step_size(state)
            if size is not None:
                recorder.step_sizes.append(float(size))
    finally:
        recorder.bar.close()
    return recorder.history(batch_size=batch_size)


class _Recorder:
    """The bookkeeping of :func:`run`: validation, the problem's move, records, measurements, divergence."""

    def __init__(self, problem, method, steps, *, measure_every, num_eigs, eig_tol, measures, save_every,
                 divergence_factor, seed, device, dtype, progress):
        if not isinstance(problem, Problem):
            raise TypeError(f"problem must be an eoslab Problem, got {type(problem).__name__}")
        self.steps = check_int("steps", steps, low=0)
        self.measure_every = (max(1, self.steps // 100) if measure_every is None
                              else check_int("measure_every", measure_every, low=1))
        self.num_eigs = check_int("num_eigs", num_eigs, low=0, high=problem.num_params)
        self.eig_tol = check_real("eig_tol", eig_tol, low=0.0, high=1.0, low_open=True, high_open=True)
        if divergence_factor != math.inf:  # inf: only non-finite numbers count as divergence
            divergence_factor = check_positive("divergence_factor", divergence_factor)
        self.divergence_factor = divergence_factor
        self.seed = check_int("seed", seed)
        self.save_every = None if save_every is None else check_int("save_every", save_every, low=1)
        self.measures = dict(measures or {})
        for name, fn in self.measures.items():
            if not callable(fn):
                raise TypeError(f"measures[{name!r}] must be callable, got {type(fn).__name__}")
        self.problem = problem.to(device=device, dtype=dtype)
        self.method = method
        self.losses, self.grad_norms = [], []
        self.eig_steps, self.eigs, self.full_losses, self.products = [], [], [], []
        self.measure_steps, self.measured = [], {}
        self.snap_steps, self.snaps, self.buffers = [], [], []
        self.step_sizes, self.extras = [], {}
        self.vectors, self.sharpness, self.diverged_at, self.stopped_at, self.limit = None, math.nan, None, None, None
        self.theta = None
        self.threshold = method.threshold
        self.num_measurements, self.measured_now = 0, False
        self.progress = bool(progress)
        self.bar = tqdm(total=self.steps, disable=not progress, desc=method.label, leave=False)

    def start(self, theta0=None):
        """The starting point: ``theta0`` if given, else the problem's, on its device and dtype."""
        p = self.problem
        theta = p.theta0 if theta0 is None else check_vector("theta0", theta0, size=p.num_params)
        return theta.detach().to(device=p.device, dtype=p.dtype).clone()

    def _diverged(self, theta, loss_value, grad_norm):
        if self.limit is None:
            self.limit = self.divergence_factor * max(abs(loss_value), 1e-30)
        # The gradient's norm is finite iff every entry is (or it overflows, which is divergence too); the point's
        # float64 sum of float32 or float64 entries overflows only past 1e300, and inf - inf is nan.
        finite = math.isfinite(grad_norm) and math.isfinite(float(theta.sum(dtype=torch.float64)))
        return not math.isfinite(loss_value) or loss_value > self.limit or not finite

    def view(self, t, theta, state):
        """The :class:`StepView` of step ``t``, just recorded."""
        return StepView(t, theta, state, self.losses[-1], self.measured_now,
                        self.num_measurements - self.measured_now, self.sharpness, self.threshold, self.problem)

    def record(self, t, theta, state, loss, grad, *, full_batch=True):
        """Record step ``t``; return ``False`` if the run has diverged there."""
        loss_value = float(loss)
        grad_norm = float(torch.linalg.vector_norm(grad))
        if self._diverged(theta, loss_value, grad_norm):
            self.diverged_at = t
            return False
        self.theta = theta
        self.losses.append(loss_value)
        self.grad_norms.append(grad_norm)
        if self.save_every is not None and t % self.save_every == 0:
            self.snap_steps.append(t)
            self.snaps.append(theta.detach().cpu().clone())
            buffer = self.method.buffer(state)
            if buffer is not None:  # e.g. a momentum buffer, for momentum-aware curvature
                self.buffers.append(buffer.detach().cpu().clone())
        measured = self.measured_now = t % self.measure_every == 0 or t == self.steps
        self.num_measurements += measured
        if measured and (self.num_eigs or self.method.needs_sharpness):
            result = top_eigenpairs(self.problem, theta, k=max(self.num_eigs, 1), eig_tol=self.eig_tol,
                                    init=self.vectors, seed=self.seed)
            self.vectors = result.vectors
            self.sharpness = float(result.values[0])
            if self.num_eigs:
                self.eig_steps.append(t)
                self.eigs.append(result.values.detach().cpu().numpy())
                self.products.append(result.num_products)
                self.full_losses.append(loss_value if full_batch else float(self.problem.loss(theta.detach())))
            self.bar.set_postfix(loss=f"{loss_value:.3g}", sharpness=f"{self.sharpness:.3g}", refresh=False)
        for key, value in self.method.observe(self.problem, theta, state).items():
            value = value.detach().cpu().numpy().copy() if isinstance(value, torch.Tensor) else float(value)
            self.extras.setdefault(key, []).append(value)
        if measured and self.measures:
            view = self.view(t, theta, state)
            self.measure_steps.append(t)
            for name, fn in self.measures.items():
                value = fn(view)
                items = value.items() if isinstance(value, dict) else [(None, value)]
                for key, v in items:
                    self.measured.setdefault(name if key is None else f"{name}.{key}", []).append(float(v))
        if self.progress and t < self.steps:
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
            threshold=self.threshold,
            label=self.method.label,
            problem_name=self.problem.name,
            batch_size=batch_size,
            snapshot_step=np.asarray(self.snap_steps, dtype=int),
            snapshots=torch.stack(self.snaps) if self.snaps else None,
            state_snapshots=torch.stack(self.buffers) if self.buffers else None,
            step_size=np.asarray(self.step_sizes, dtype=float),
            extras={key: np.asarray(values) for key, values in self.extras.items()},
            measure_step=np.asarray(self.measure_steps, dtype=int),
            measured={key: np.asarray(values, dtype=float) for key, values in self.measured.items()},
            eigenvectors=self.vectors if self.num_eigs else None,
            stopped_at=self.stopped_at,
        )


def compare(problem, methods, steps, *, save_every=1, **kwargs):
    r"""Run several methods (optimizers, flows, any :class:`~eoslab.methods.Method`) from the same start.

    Parameters
    ----------
    problem : Problem
    methods : dict or list
        ``{label: method}``, or a list that uses each method's ``label``.
        Two methods with the same label are an error (one would hide the other).
    steps : int
    save_every : int
        Parameter snapshots for distances and paths (default every step).
    **kwargs :
        Passed to :func:`run` (``theta0``, ``measure_every``, ``num_eigs``,
        ``device``, ``dtype``, ``progress``, ...).

    Returns
    -------
    dict
        label -> :class:`~eoslab.history.History`, in the order given, ready for
        :func:`~eoslab.plotting.plot_history`.

    Examples
    --------
    >>> from eoslab.optim import GD
    >>> from eoslab.flows import PrincipalFlow
    >>> from eoslab.problems import quadratic
    >>> q = quadratic([1.5], dtype="float64")
    >>> runs = compare(q, [GD(1.0), PrincipalFlow(1.0, substep_scale=0.05)], steps=3, progress=False)
    >>> [round(float(h.snapshots[3, 0]), 6) for h in runs.values()]
    [-0.125, -0.125]
    """
    if isinstance(methods, dict):
        items = list(methods.items())
    else:
        items = [(getattr(m, "label", repr(m)), m) for m in methods]
        seen = set()
        for label, _ in items:
            if label in seen:
                raise ValueError(f"methods: two methods have the label {label!r}; pass a dict to name them apart")
            seen.add(label)
    for label, method in items:
        if not isinstance(method, Method):
            raise TypeError(f"methods[{label!r}] must be an eoslab Method, got {type(method).__name__}")
    kwargs.setdefault("progress", False)
    return {label: run(problem, method, steps, save_every=save_every, **kwargs) for label, method in items}
