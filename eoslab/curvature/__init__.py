r"""Curvature of a loss at a point: Hessian-vector products and top eigenpairs.

Operators only: what a chapter builds from them lives with the chapter
(the self-stabilization constants in :mod:`eoslab.self_stabilization`,
batch sharpness in :mod:`eoslab.stochastic`).

Everything here acts on a loss function ``loss(theta) -> scalar`` of a flat
parameter vector (a :class:`~eoslab.problems.Problem` is such a function) and
stays on ``theta``'s device: vectors never leave it, only the scalars of the
Lanczos recurrence do.

The sharpness is :math:`S(\theta) = \lambda_{\max}(\nabla^2 L(\theta))`, the
largest (algebraic) eigenvalue of the Hessian.

One file each: :mod:`~eoslab.curvature.operators` (the Hessian as an
operator, dense Hessians, third derivatives), :mod:`~eoslab.curvature.eigen`
(the top eigenpairs, certified block Lanczos, the sharpness and its gradient)
and :mod:`~eoslab.curvature.tracking` (following the top of the spectrum along
a trajectory: :class:`EigenTracker`).
"""
from .eigen import Eigenpairs, sharpness, sharpness_gradient, top_eigenpairs
from .operators import HessianOperator, hessian, hvp, third_derivative
from .tracking import EigenTracker

__all__ = [
    "HessianOperator", "hvp", "hessian", "top_eigenpairs", "sharpness", "Eigenpairs",
    "third_derivative", "sharpness_gradient", "EigenTracker",
]
