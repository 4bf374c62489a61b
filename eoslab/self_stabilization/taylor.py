r"""The local quantities of the self-stabilization analysis at a point: :class:`TaylorCenter`."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .._validation import check_real, check_vector, no_other_keywords, renamed
from ..curvature import HessianOperator, top_eigenpairs

__all__ = ["TaylorCenter", "taylor_center"]


@dataclass
class TaylorCenter:
    r"""The local quantities of the self-stabilization analysis at a reference point.

    Attributes
    ----------
    theta : torch.Tensor
        The reference point.
    loss : float
    grad : torch.Tensor
        :math:`\nabla L`.
    sharpness : float
        :math:`S = \lambda_{\max}(\nabla^2 L)`.
    u : torch.Tensor
        Its unit eigenvector.
    grad_sharpness : torch.Tensor
        :math:`\nabla S = \nabla^3 L[u, u]`.
    eig_products : int
        Hessian-vector products the eigen-solve used.

    Derived (properties): ``grad_sharpness_perp`` :math:`\nabla S_\perp = \nabla S - u(u\cdot\nabla S)`,
    ``alpha`` :math:`= -\nabla L\cdot\nabla S_\perp` (the rate of progressive
    sharpening), ``beta`` :math:`= \|\nabla S_\perp\|^2` (the strength of
    self-stabilization), ``delta`` :math:`= \sqrt{2\alpha/\beta}` (the
    equilibrium oscillation size; 0 when ``alpha <= 0``).
    """

    theta: torch.Tensor
    loss: float
    grad: torch.Tensor
    sharpness: float
    u: torch.Tensor
    grad_sharpness: torch.Tensor
    eig_products: int = 0

    @property
    def grad_sharpness_perp(self):
        return self.grad_sharpness - self.u * (self.u @ self.grad_sharpness)

    @property
    def alpha(self):
        return float(-(self.grad @ self.grad_sharpness_perp))

    @property
    def beta(self):
        return float(self.grad_sharpness_perp @ self.grad_sharpness_perp)

    @property
    def delta(self):
        beta = self.beta
        return (2.0 * max(self.alpha, 0.0) / beta) ** 0.5 if beta > 0 else 0.0

    def __repr__(self):
        return (f"<TaylorCenter loss={self.loss:.4g} S={self.sharpness:.4g} alpha={self.alpha:.3g} "
                f"beta={self.beta:.3g} delta={self.delta:.3g}>")


def taylor_center(loss, theta, u=None, *, eig_tol=1e-6, seed=0, **deprecated):
    r"""Everything the self-stabilization analysis needs at ``theta``: :class:`TaylorCenter`.

    Computes the loss, gradient, sharpness and its eigenvector (Lanczos,
    warm-started from ``u`` if given, relative residual ``eig_tol``), and
    :math:`\nabla S = \nabla^3 L[u, u]`. The eigenvector's sign is chosen
    to agree with ``u`` (``u·u_new >= 0``) so that displacements measured
    along it keep their sign from one step to the next.

    Examples
    --------
    >>> from eoslab.problems import function_problem
    >>> f = function_problem(lambda th: 0.5 * (1 + th[1] ** 2) * th[0] ** 2 + th[1], torch.tensor([0.0, 1.0]),
    ...                      dtype="float64")
    >>> c = taylor_center(f, f.theta0)
    >>> round(c.sharpness, 6), [round(float(g), 6) + 0.0 for g in c.grad_sharpness]
    (2.0, [0.0, 2.0])
    """
    eig_tol = renamed(deprecated, "tol", "eig_tol", "taylor_center", value=eig_tol, default=True)
    no_other_keywords(deprecated, "taylor_center")
    check_vector("theta", theta)
    eig_tol = check_real("eig_tol", eig_tol, low=0.0, high=1.0, low_open=True, high_open=True)
    op = HessianOperator(loss, theta)
    eig = top_eigenpairs(loss, theta, k=1, eig_tol=eig_tol, init=u, seed=seed, operator=op)
    v = eig.vectors[:, 0]
    if u is not None and float(v @ u.to(v)) < 0:
        v = -v
    return TaylorCenter(theta=theta.detach(), loss=float(op.value), grad=op.gradient, sharpness=float(eig.values[0]),
                        u=v, grad_sharpness=op.third_derivative(v), eig_products=eig.num_products)
