"""Quadratics: the exactly solvable problems of Chapter 1, with their Hessian in closed form."""
from __future__ import annotations

import torch

from .._validation import check_finite_vector, no_other_keywords, renamed, resolve_device, resolve_dtype
from .base import Problem

__all__ = ["Quadratic", "quadratic"]


class Quadratic(Problem):
    r"""The quadratic :math:`L(\theta) = \tfrac12 \theta^\top A \theta` with ``A`` symmetric.

    Built by :func:`quadratic`. The gradient ``A theta`` and the Hessian ``A``
    are exact; ``eigenvalues`` (descending) and ``eigenvectors`` (columns) are kept.
    """

    name = "quadratic"

    def __init__(self, A, theta0, eigenvalues, eigenvectors):
        self.A = A
        self.theta0 = theta0
        self.eigenvalues = eigenvalues
        self.eigenvectors = eigenvectors

    def _loss(self, theta, batch_indices):
        return 0.5 * theta @ (self.A @ theta)

    def value_and_grad(self, theta, batch_indices=None):
        self._check_batch(batch_indices)
        theta = theta.detach()
        grad = self.A @ theta
        return 0.5 * theta @ grad, grad

    def hessian(self, theta):
        """``A``, the Hessian everywhere."""
        return self.A

    @property
    def sharpness(self):
        """``λ_max(A)``, the sharpness everywhere."""
        return float(self.eigenvalues[0])


def quadratic(eigenvalues, theta0=None, eigenvectors=None, *, device=None, dtype=None, **deprecated):
    r"""The quadratic :math:`L(x) = \tfrac12 x^\top A x`, :math:`A = Q\,\mathrm{diag}(\lambda)\,Q^\top`.

    Parameters
    ----------
    eigenvalues : sequence of float
        The eigenvalues of ``A`` (any order, any sign).
    theta0 : sequence of float, optional
        The starting point; by default the all-ones vector (``x0`` before).
    eigenvectors : array-like of shape (d, d), optional
        An orthogonal matrix ``Q`` whose columns are the eigenvectors; by
        default the identity (``A`` diagonal).
    device, dtype :
        Where the problem lives (default CPU, float32).

    Returns
    -------
    Quadratic
        Its ``eigenvalues`` are stored largest first and its ``eigenvectors`` in the same order
        (the columns of ``Q`` reordered with them; ``A`` is the same).

    Examples
    --------
    >>> q = quadratic([2.0, 0.5], theta0=[1.0, 1.0], dtype="float64")
    >>> float(q.loss(q.theta0))
    1.25
    """
    theta0 = renamed(deprecated, "x0", "theta0", "quadratic", value=theta0)
    no_other_keywords(deprecated, "quadratic")
    device, dtype = resolve_device(device), resolve_dtype(dtype, like=theta0)
    lam = torch.as_tensor(eigenvalues, dtype=torch.float64).reshape(-1)
    if lam.numel() == 0 or not torch.isfinite(lam).all():
        raise ValueError(f"eigenvalues must be a non-empty sequence of finite numbers, got {eigenvalues!r}")
    d = lam.numel()
    if eigenvectors is None:
        Q = torch.eye(d, dtype=torch.float64)
    else:
        Q = torch.as_tensor(eigenvectors, dtype=torch.float64)
        if Q.shape != (d, d):
            raise ValueError(f"eigenvectors must have shape ({d}, {d}) to match eigenvalues, got {tuple(Q.shape)}")
        if not torch.allclose(Q.T @ Q, torch.eye(d, dtype=torch.float64), atol=1e-8):
            raise ValueError("eigenvectors must be an orthogonal matrix (Q^T Q = I)")
    x0 = torch.ones(d, dtype=torch.float64) if theta0 is None else torch.as_tensor(theta0, dtype=torch.float64)
    check_finite_vector("theta0", x0, size=d)
    order = torch.argsort(lam, descending=True)
    lam, Q = lam[order], Q[:, order]
    A = (Q * lam) @ Q.T
    A = 0.5 * (A + A.T)
    to = dict(device=device, dtype=dtype)
    return Quadratic(A.to(**to), x0.to(**to), lam.to(**to), Q.to(**to))
