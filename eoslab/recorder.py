"""The bookkeeping of :func:`eoslab.run`: what it records at each step, and what stop conditions see."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ._validation import check_finite_vector, check_int, check_real, check_vector
from .curvature import EigenTracker
from .history import History
from .problems import Problem

__all__ = ["Recorder", "StepView", "CERTIFY_EVERY", "RADIUS"]

#: A run's eigen-solves start cold, and so are certified (see :func:`eoslab.top_eigenpairs`), at the first
#: measurement and every ``CERTIFY_EVERY``-th after it; between them an :class:`~eoslab.curvature.EigenTracker`
#: carries the last Ritz vectors (and two guard vectors) from one measurement to the next, with a random probe.
CERTIFY_EVERY = 10

#: A run has exploded when its loss has grown ``divergence_factor``-fold *and* its point has left the ball of
#: radius ``RADIUS * max(‖θ₀‖, 1)`` (or a flow's oscillation has outgrown that ball): growth of the loss alone
#: is no sign when the run starts near a minimum, where it can grow a million-fold and settle.
RADIUS = 10.0


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
        The last measured sharpness (NaN before the first); for a method that computes its own
        (:meth:`~eoslab.methods.Method.sharpness`, a central flow), that value at this step, unless the
        run measured here.
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


class Recorder:
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
            divergence_factor = check_real("divergence_factor", divergence_factor, low=1.0, low_open=True)
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
        self.vectors, self.sharpness, self.diverged_at, self.stopped_at = None, math.nan, None, None
        self.limit = self.radius = None
        self.theta = None
        self.interrupted = False
        self.threshold = method.threshold
        self.num_measurements, self.measured_now = 0, False
        self.tracker = EigenTracker(k=max(self.num_eigs, 1), eig_tol=self.eig_tol, certify_every=CERTIFY_EVERY,
                                    seed=self.seed)
        self.progress = bool(progress)
        self.bar = tqdm(total=self.steps, disable=not progress, desc=method.label, leave=False)

    def start(self, theta0=None):
        """The starting point: ``theta0`` if given, else the problem's, on its device and dtype."""
        p = self.problem
        theta = p.theta0 if theta0 is None else check_vector("theta0", theta0, size=p.num_params)
        theta = theta.detach().to(device=p.device, dtype=p.dtype).clone()
        return check_finite_vector("theta0" if theta0 is not None else "problem.theta0", theta)

    def _diverged(self, theta, state, loss_value, grad_norm):
        """Whether the run has diverged at this point (see ``divergence_factor`` in :func:`run`)."""
        # The gradient's norm is finite iff every entry is (or it overflows, which is divergence too); the point's
        # float64 norm of float32 or float64 entries overflows only past 1e154, and is nan if an entry is.
        norm = float(torch.linalg.vector_norm(theta.detach(), dtype=torch.float64))
        if not (math.isfinite(loss_value) and math.isfinite(grad_norm) and math.isfinite(norm)):
            return True
        if self.limit is None:
            self.limit = self.divergence_factor * max(abs(loss_value), 1e-30)
            self.radius = RADIUS * max(norm, 1.0)
        if self.divergence_factor == math.inf:
            return False
        displacement = float(self.method.displacement(state))
        if not math.isfinite(displacement) or displacement > self.radius:
            return True
        return abs(loss_value) > self.limit and norm > self.radius

    def view(self, t, theta, state):
        """The :class:`StepView` of step ``t``, just recorded."""
        return StepView(t, theta, state, self.losses[-1], self.measured_now,
                        self.num_measurements - self.measured_now, self.sharpness, self.threshold, self.problem)

    def record(self, t, theta, state, loss, grad, *, full_batch=True, operator=None):
        """Record step ``t``; return ``False`` if the run has diverged there.

        ``operator``, a :class:`~eoslab.curvature.HessianOperator` of the full loss at ``theta``, saves a
        measurement its own forward pass.
        """
        loss_value = float(loss)
        grad_norm = float(torch.linalg.vector_norm(grad))
        if t == 0 and not (math.isfinite(loss_value) and math.isfinite(grad_norm)):
            raise ValueError(
                f"the loss or its gradient is not finite at the start (loss {loss_value:g}, gradient norm "
                f"{grad_norm:g}): nothing to run. Check theta0 and the problem"
                + (f"; in {self.problem.dtype} numbers overflow past 3e38, so try dtype='float64'"
                   if self.problem.dtype == torch.float32 else ""))
        if self._diverged(theta, state, loss_value, grad_norm):
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
            # a cold (certified) solve at the first measurement and every CERTIFY_EVERY-th; warm ones between
            result = self.tracker.update(self.problem, theta, operator=operator)
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
        own = self.method.sharpness(state)  # a central flow's own top eigenvalue here, fresh at every step
        if own is not None and not (measured and self.num_eigs):
            self.sharpness = float(own)
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
            interrupted=self.interrupted,
        )

    #: What a checkpoint keeps of the recorder (everything recorded, and the warm start of the eigen-solves).
    _STATE = ("losses", "grad_norms", "eig_steps", "eigs", "full_losses", "products", "measure_steps", "measured",
              "snap_steps", "snaps", "buffers", "step_sizes", "extras", "vectors", "sharpness", "limit", "radius",
              "theta", "num_measurements", "tracker")

    def state_dict(self):
        """What a checkpoint needs to continue recording exactly where this recorder is."""
        return {name: getattr(self, name) for name in self._STATE}

    def load_state_dict(self, state):
        for name in self._STATE:
            setattr(self, name, state[name])
