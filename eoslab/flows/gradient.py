r"""Gradient flow and the implicit-gradient-regularization (IGR) flow."""
from __future__ import annotations

from ..curvature import HessianOperator
from .base import Flow, check_problem

__all__ = ["GradientFlow", "IGRFlow", "gradient_flow", "igr_flow"]


def gradient_flow(problem, theta, lr):
    r"""Gradient flow in step units: :math:`-\eta\,\nabla L(\theta)`."""
    check_problem(problem, theta)
    return -lr * problem.value_and_grad(theta)[1]


def igr_flow(problem, theta, lr):
    r"""The implicit-gradient-regularization flow in step units,
    :math:`-\eta\left(\nabla L + \tfrac{\eta}{2} H\nabla L\right)`.

    Gradient flow on the modified loss :math:`L + \tfrac{\eta}{4}\|\nabla L\|^2`
    (Barrett and Dherin): the first correction of backward error analysis,
    which follows GD to :math:`O(\eta^3)` per step while :math:`\eta\lambda < 1`
    for every Hessian eigenvalue.
    """
    check_problem(problem, theta)
    op = HessianOperator(problem, theta)
    g = op.gradient
    return -lr * (g + 0.5 * lr * op.matvec(g))


class GradientFlow(Flow):
    r"""Gradient flow :math:`\mathrm{d}\theta/\mathrm{d}t = -\eta\,\nabla L(\theta)` (see :func:`gradient_flow`).

    The small-step limit of gradient descent: GD with step ``lr`` follows it
    closely while the sharpness stays below ``2/lr``.
    """

    def velocity(self, problem, theta):
        return gradient_flow(problem, theta, self.lr)

    @property
    def label(self):
        return f"gradient flow (lr={self.lr:g})"


class IGRFlow(Flow):
    r"""The implicit-gradient-regularization flow (see :func:`igr_flow`)."""

    def velocity(self, problem, theta):
        return igr_flow(problem, theta, self.lr)

    def rate(self, problem, theta, sharpness):
        h = self.lr * max(sharpness, 0.0)
        return h * (1.0 + 0.5 * h)

    @property
    def label(self):
        return f"IGR flow (lr={self.lr:g})"
