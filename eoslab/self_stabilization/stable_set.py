r"""The stable set, the constrained trajectory and the predicted dynamics (Damian, Nichani and Lee, 2023).

:math:`\mathcal M = \{S(\theta)\le 2/\eta,\ u\cdot\nabla L(\theta) = 0\}`;
the constrained trajectory :math:`\theta^\dagger` is projected GD on it, and
the predicted dynamics follow the displacement :math:`v = \theta - \theta^\dagger`.
Both are :class:`~eoslab.methods.Method` objects (:class:`ConstrainedTrajectory`,
:class:`PredictedDynamics`), so :func:`eoslab.run` and :func:`eoslab.compare`
drive them beside GD.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .._validation import check_int, check_positive, check_real, check_vector
from ..curvature import HessianOperator
from ..methods import Method
from .taylor import TaylorCenter, taylor_center

__all__ = ["ConstrainedTrajectory", "PredictedDynamics", "PredictedState", "constrained_step",
           "predicted_step", "project_to_stable_set"]


def project_to_stable_set(loss, theta, lr, u=None, *, iterations=3, eig_tol=1e-8, center=None):
    r"""Project ``theta`` onto :math:`\mathcal M = \{S \le 2/\eta,\ u\cdot\nabla L = 0\}`.

    A few linearized steps, each solving both constraints to first order:

    .. math::
        \theta \leftarrow \theta + a\,u - b\,\frac{\nabla S_\perp}{\|\nabla S_\perp\|^2},
        \qquad a = -\frac{u\cdot\nabla L}{S},
        \qquad b = \max\!\left(0,\ S + a\,(u\cdot\nabla S) - \tfrac{2}{\eta}\right).

    The step ``a u`` is a Newton step along ``u`` that zeroes the gradient
    component there; the step along :math:`\nabla S_\perp` (orthogonal to
    ``u``) then brings the sharpness, as it will be after the Newton step,
    down to :math:`2/\eta`. The term :math:`a\,(u\cdot\nabla S)` is our
    addition to the authors' rule: without it a point off the valley floor
    is pushed past the boundary of :math:`\mathcal M` into its interior.

    Parameters
    ----------
    loss : callable
    theta : torch.Tensor
    lr : float
    u : torch.Tensor, optional
        Warm start for the top eigenvector.
    iterations : int
        Linearized steps (each costs one :func:`~eoslab.curvature.taylor_center`).
    eig_tol : float
        Eigen-solver residual tolerance.
    center : TaylorCenter, optional
        A center already computed at ``theta``.

    Returns
    -------
    TaylorCenter
        At the projected point.
    """
    lr = check_positive("lr", lr)
    iterations = check_int("iterations", iterations, low=0)
    c = taylor_center(loss, theta, u, eig_tol=eig_tol) if center is None else center
    for _ in range(iterations):
        g_perp = c.grad_sharpness_perp
        a = -float(c.u @ c.grad) / c.sharpness
        step = a * c.u
        excess = c.sharpness + a * float(c.u @ c.grad_sharpness) - 2.0 / lr
        norm2 = float(g_perp @ g_perp)
        if excess > 0 and norm2 > 0:
            step = step - excess / norm2 * g_perp
        c = taylor_center(loss, c.theta + step, c.u, eig_tol=eig_tol)
    return c


def _check_center(center):
    if not isinstance(center, TaylorCenter):
        raise TypeError(f"center must be a TaylorCenter (from taylor_center), got {type(center).__name__}")


def constrained_step(loss, center, lr, *, iterations=3, eig_tol=1e-8):
    r"""One step of the constrained trajectory (projected GD):
    :math:`\theta^\dagger_{t+1} = \mathrm{proj}_{\mathcal M}(\theta^\dagger_t - \eta\nabla L(\theta^\dagger_t))`.

    ``center`` is the :class:`~eoslab.curvature.TaylorCenter` at
    :math:`\theta^\dagger_t`; returns the one at :math:`\theta^\dagger_{t+1}`.
    """
    _check_center(center)
    lr = check_positive("lr", lr)
    moved = center.theta - lr * center.grad
    return project_to_stable_set(loss, moved, lr, center.u, iterations=iterations, eig_tol=eig_tol)


def predicted_step(loss, v, center, lr, *, operator=None):
    r"""One step of the predicted dynamics of the displacement :math:`v = \theta - \theta^\dagger`.

    .. math::
        v_{t+1} = v_t - \eta\left[H(\theta^\dagger_t)\,v_t + x_t y_t\,u_t
        + \tfrac12\left(x_t^2 - \delta_t^2\right)\nabla S_{\perp,t}\right],
        \qquad x_t = u_t\cdot v_t,\ y_t = \nabla S_{\perp,t}\cdot v_t,

    where :math:`u_t`, :math:`\nabla S_{\perp,t}` and
    :math:`\delta_t = \sqrt{2\alpha_t/\beta_t}` are taken at
    :math:`\theta^\dagger_t` (``center``). It is the gradient of the cubic
    Taylor model of the loss around :math:`\theta^\dagger_t` along ``v``,
    minus the gradient step the constrained trajectory itself takes.
    """
    _check_center(center)
    check_vector("v", v, size=center.theta.numel())
    lr = check_positive("lr", lr)
    op = HessianOperator(loss, center.theta) if operator is None else operator.require_at(center.theta)
    g_perp = center.grad_sharpness_perp
    x = v @ center.u
    y = v @ g_perp
    force = op.matvec(v) + x * y * center.u + 0.5 * (x * x - center.delta**2) * g_perp
    return v - lr * force


class ConstrainedTrajectory(Method):
    r"""The constrained trajectory :math:`\theta^\dagger` as a method: projected GD on :math:`\mathcal M`.

    Starts from the projection of the start point; each step is
    :func:`constrained_step`. Its state is the :class:`TaylorCenter` at
    :math:`\theta^\dagger_t`; ``History.extras`` holds ``alpha``, ``beta``,
    ``delta`` and ``sharpness`` there.

    Parameters
    ----------
    lr : float
    iterations : int
        Linearized projection steps per step.
    eig_tol : float
        Eigen-solver residual tolerance (every solve is warm-started).
    """

    def __init__(self, lr, *, iterations=3, eig_tol=1e-8):
        super().__init__(lr)
        self.iterations = check_int("iterations", iterations, low=0)
        self.eig_tol = check_real("eig_tol", eig_tol, low=0.0, high=1.0, low_open=True, high_open=True)

    def start(self, problem, theta):
        center = project_to_stable_set(problem, theta, self.lr, iterations=self.iterations, eig_tol=self.eig_tol)
        return center.theta, center

    def step(self, problem, theta, state, info):
        center = constrained_step(problem, state, self.lr, iterations=self.iterations, eig_tol=self.eig_tol)
        return center.theta, center

    def observe(self, problem, theta, state):
        return {"sharpness": state.sharpness, "alpha": state.alpha, "beta": state.beta, "delta": state.delta}

    @property
    def label(self):
        return f"constrained trajectory (lr={self.lr:g})"


@dataclass
class PredictedState:
    """The state of :class:`PredictedDynamics`: the constrained trajectory's center and the displacement ``v``."""

    center: TaylorCenter
    v: torch.Tensor


class PredictedDynamics(ConstrainedTrajectory):
    r"""The predicted dynamics :math:`\theta^\dagger_t + v_t` as a method (see :func:`predicted_step`).

    Carries the constrained trajectory with it: from a start ``theta`` it
    projects, :math:`\theta^\dagger_0 = \mathrm{proj}_{\mathcal M}(\theta)`, and
    sets :math:`v_0 = \theta - \theta^\dagger_0`. ``History.extras`` holds
    what the constrained trajectory records (``dagger_loss``,
    ``dagger_sharpness``, ``alpha``, ``beta``, ``delta``), the oscillation
    ``x`` :math:`= u^\dagger\cdot v`, the distance ``dist`` :math:`= \|v\|`, and
    the vectors ``dagger_theta`` and ``dagger_u`` (one row per step), from
    which a GD run's own oscillation and distance are read.
    """

    def start(self, problem, theta):
        center = project_to_stable_set(problem, theta, self.lr, iterations=self.iterations, eig_tol=self.eig_tol)
        v = theta - center.theta
        return center.theta + v, PredictedState(center, v)

    def step(self, problem, theta, state, info):
        v = predicted_step(problem, state.v, state.center, self.lr)
        center = constrained_step(problem, state.center, self.lr, iterations=self.iterations, eig_tol=self.eig_tol)
        return center.theta + v, PredictedState(center, v)

    def observe(self, problem, theta, state):
        c, v = state.center, state.v
        return {"x": float(c.u @ v), "dist": float(v.norm()), "dagger_loss": c.loss, "dagger_sharpness": c.sharpness,
                "alpha": c.alpha, "beta": c.beta, "delta": c.delta, "dagger_theta": c.theta, "dagger_u": c.u}

    @property
    def label(self):
        return f"predicted dynamics (lr={self.lr:g})"
