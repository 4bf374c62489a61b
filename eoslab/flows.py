r"""Continuous-time models of gradient descent, integrated beside it.

Flows are written in *step units*: a flow for step size :math:`\eta` has
time measured in gradient steps, so gradient flow is
:math:`\mathrm{d}\theta/\mathrm{d}t = -\eta\nabla L(\theta)` and step ``n`` of
GD is compared with the flow at time ``t = n``.

A flow is a small object with a ``velocity(problem, theta)`` and the same
``lr``, ``threshold`` and ``label`` as an optimizer; :func:`solve` integrates
it with classical fourth-order Runge-Kutta and returns the same
:class:`~eoslab.runs.History` as :func:`~eoslab.run`, so a flow and an
optimizer can be drawn by one :func:`~eoslab.plotting.plot_history` call.
"""
from __future__ import annotations

import math

from ._validation import check_positive, check_real
from .runs import Recorder

__all__ = ["Flow", "GradientFlow", "solve", "rk4_step"]


class Flow:
    """A vector field ``dθ/dt = velocity(problem, θ)`` in step units for step size ``lr``."""

    def __init__(self, lr):
        self.lr = check_positive("lr", lr)

    def velocity(self, problem, theta):
        raise NotImplementedError

    @property
    def threshold(self):
        """``2/lr``: the GD stability threshold the flow is compared with."""
        return 2.0 / self.lr

    @property
    def label(self):
        return f"{type(self).__name__}(lr={self.lr:g})"

    def __repr__(self):
        return self.label


class GradientFlow(Flow):
    r"""Gradient flow :math:`\mathrm{d}\theta/\mathrm{d}t = -\eta\,\nabla L(\theta)`.

    The small-step limit of gradient descent: GD with step ``lr`` follows it
    closely while the sharpness stays below ``2/lr``.
    """

    def velocity(self, problem, theta):
        return -self.lr * problem.value_and_grad(theta)[1]

    @property
    def label(self):
        return f"gradient flow (lr={self.lr:g})"


def rk4_step(velocity, theta, h):
    """One classical Runge-Kutta step of size ``h`` for ``dθ/dt = velocity(θ)``."""
    k1 = velocity(theta)
    k2 = velocity(theta + 0.5 * h * k1)
    k3 = velocity(theta + 0.5 * h * k2)
    k4 = velocity(theta + h * k3)
    return theta + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)


def solve(
    problem,
    flow,
    steps,
    *,
    alpha=0.5,
    max_substep=1.0,
    measure_every=None,
    num_eigs=1,
    eig_tol=1e-3,
    theta0=None,
    save_every=None,
    divergence_factor=1e6,
    device=None,
    dtype=None,
    seed=0,
    progress=True,
):
    r"""Integrate ``flow`` from ``problem.theta0`` up to time ``steps`` (in GD steps).

    Runge-Kutta 4 with a curvature-adapted step: between measurements the
    substep is :math:`h = \min(\alpha / (\eta S), h_{\max})`, where ``S`` is
    the sharpness at the last measurement (taken at least every
    ``measure_every`` steps, warm-started). The stiffest direction of
    gradient flow decays at rate :math:`\eta S`, so ``alpha`` sets the
    accuracy (RK4 is stable up to :math:`h\eta S \approx 2.8`).

    The loss is recorded at every integer time, so the history lines up
    step by step with a GD run of the same ``lr``.

    Parameters
    ----------
    problem : Problem
    flow : Flow
        E.g. ``GradientFlow(lr=0.1)``.
    steps : int
        Final time, in GD steps.
    alpha : float
        Substep times curvature, in (0, 2.5].
    max_substep : float
        Largest substep, in GD steps.
    measure_every, num_eigs, eig_tol, theta0, save_every, divergence_factor, device, dtype, seed, progress :
        As in :func:`eoslab.run`. The sharpness is measured for step-size
        control even when ``num_eigs=0``; it is recorded only if ``num_eigs > 0``.

    Returns
    -------
    History
        ``step`` holds the integer times.
    """
    if not isinstance(flow, Flow):
        raise TypeError(f"flow must be an eoslab Flow, got {type(flow).__name__}")
    alpha = check_real("alpha", alpha, low=0.0, high=2.5, low_open=True)
    max_substep = check_real("max_substep", max_substep, low=0.0, high=1.0, low_open=True)
    recorder = Recorder(problem, flow, steps, measure_every=measure_every, num_eigs=num_eigs, eig_tol=eig_tol,
                        save_every=save_every, divergence_factor=divergence_factor, seed=seed,
                        device=device, dtype=dtype, progress=progress, always_measure=True)
    problem = recorder.problem
    theta = recorder.start(theta0)
    velocity = lambda th: flow.velocity(problem, th)  # noqa: E731
    substep = max_substep
    for t in range(recorder.steps + 1):
        loss, grad = problem.value_and_grad(theta)
        if not recorder.record(t, theta, loss, grad) or t == recorder.steps:
            break
        if recorder.sharpness is not None and t % recorder.measure_every == 0:
            top = recorder.sharpness
            substep = min(alpha / (flow.lr * top), max_substep) if top > 0 else max_substep
        n_sub = max(1, math.ceil(1.0 / substep - 1e-9))
        for _ in range(n_sub):  # equal substeps that land exactly on the next integer time
            theta = rk4_step(velocity, theta, 1.0 / n_sub)
    return recorder.history()
