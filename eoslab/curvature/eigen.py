"""The top of the Hessian's spectrum: warm-started, residual-certified Lanczos, and the sharpness's gradient."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from .._validation import check_int, check_real, check_vector, no_other_keywords, renamed
from .operators import HessianOperator, _check_loss, _check_operator

__all__ = ["Eigenpairs", "sharpness", "sharpness_gradient", "top_eigenpairs"]


@dataclass
class Eigenpairs:
    """Result of :func:`top_eigenpairs`; unpacks as ``values, vectors``.

    Attributes
    ----------
    values : torch.Tensor, shape (k,)
        Eigenvalues, largest first.
    vectors : torch.Tensor, shape (P, k)
        Unit eigenvectors as columns.
    residuals : torch.Tensor, shape (k,)
        Ritz residual norms ``‖H v - λ v‖``.
    num_products : int
        Hessian-vector products used.
    converged : bool
        Whether every residual met the tolerance.
    """

    values: torch.Tensor
    vectors: torch.Tensor
    residuals: torch.Tensor
    num_products: int
    converged: bool

    def __iter__(self):
        return iter((self.values, self.vectors))


def _start_vector(size, init, generator, like):
    """The Lanczos start: a mix of the warm-start vectors, else a seeded random vector."""
    if init is not None:
        V = init.reshape(size, -1).to(like)
        # distinct weights keep every warm-start direction present in the mix
        weights = 1.0 / torch.arange(1, V.shape[1] + 1, dtype=like.dtype, device=like.device)
        v = V @ weights
        if torch.isfinite(v).all() and v.norm() > 0:
            return v / v.norm()
    v = torch.randn(size, generator=generator, dtype=torch.float64).to(like)
    return v / v.norm()


def _orthogonalize(w, Q):
    """Remove from ``w`` its components along the rows of ``Q`` (twice, for stability)."""
    for _ in range(2):
        w = w - Q.T @ (Q @ w)
    return w


def top_eigenpairs(loss, theta, k=1, *, eig_tol=1e-3, init=None, max_iter=None, seed=0, operator=None, **deprecated):
    r"""The ``k`` largest eigenvalues of the Hessian of ``loss`` at ``theta``, with eigenvectors.

    Lanczos iteration with full reorthogonalization on Hessian-vector
    products, written in torch so that the Krylov vectors stay on ``theta``'s
    device. It stops when every wanted Ritz pair has a small residual
    (read off the recurrence at no extra cost),

    .. math:: \|H v_i - \theta_i v_i\| \le \mathrm{tol}\cdot|\theta_i|,

    which guarantees that each returned value lies within a relative ``eig_tol``
    of an eigenvalue of ``H``. Stopping on the residual, rather than on the
    change of the estimate or on gap-based refinements that trust
    unconverged Ritz values, keeps the answer accurate when the top
    eigenvalues crowd together, as they do at the Edge of Stability.

    Parameters
    ----------
    loss : callable
        ``loss(theta)`` returning a scalar tensor (a problem works).
    theta : torch.Tensor
        Flat parameter vector.
    k : int
        Number of eigenpairs, ``1 <= k <= theta.numel()``.
    eig_tol : float
        Relative residual tolerance, in (0, 1) (``tol`` before; the old name still works, with a warning).
    init : torch.Tensor, optional
        Warm start: previous eigenvectors, shape ``(P,)`` or ``(P, j)``,
        mixed into one start vector. Like every Krylov method, the iteration
        only sees directions present in its start vector: a start (nearly)
        orthogonal to the top eigenvector can return a lower eigenvalue.
    max_iter : int, optional
        Most products allowed (default ``min(P, max(300, 20k))``).
    seed : int
        Seeds the random start vector when there is no ``init``.
    operator : HessianOperator, optional
        Reuse an operator already built at ``theta``.

    Returns
    -------
    Eigenpairs
        Unpacks as ``values, vectors`` (descending; vectors as columns).

    Examples
    --------
    >>> from eoslab.problems import quadratic
    >>> q = quadratic([5.0, 4.0, 1.0], dtype="float64")
    >>> values, vectors = top_eigenpairs(q, q.theta0, k=2)
    >>> [round(float(v), 6) for v in values]
    [5.0, 4.0]
    """
    check_vector("theta", theta)
    size = theta.numel()
    k = check_int("k", k, low=1, high=size)
    eig_tol = renamed(deprecated, "tol", "eig_tol", "top_eigenpairs", value=eig_tol, default=True)
    no_other_keywords(deprecated, "top_eigenpairs")
    tol = check_real("eig_tol", eig_tol, low=0.0, high=1.0, low_open=True, high_open=True)
    seed = check_int("seed", seed)
    max_iter = min(size, max(300, 20 * k)) if max_iter is None else check_int("max_iter", max_iter, low=k)
    max_iter = min(max_iter, size)
    if init is not None:
        if not isinstance(init, torch.Tensor) or init.shape[0] != size or init.ndim > 2:
            raise ValueError(f"init must be a tensor of shape ({size},) or ({size}, j), "
                             f"got {getattr(init, 'shape', type(init).__name__)}")
    op = HessianOperator(loss, theta) if operator is None else _check_operator(operator, theta)
    like = torch.empty(0, dtype=theta.dtype, device=theta.device)
    generator = torch.Generator().manual_seed(seed)

    basis = torch.empty(min(max_iter, 32) + 1, size, dtype=theta.dtype, device=theta.device)
    alphas, betas = [], []  # the tridiagonal T, kept as Python floats (float64)
    q = _start_vector(size, init, generator, like)
    start_products = op.num_products
    converged = False
    m = 0
    while True:
        if m == basis.shape[0]:
            basis = torch.cat([basis, torch.empty_like(basis)])[: max_iter + 1]
        basis[m] = q
        w = op.matvec(q)
        alpha = float(q @ w)
        alphas.append(alpha)
        m += 1
        w = _orthogonalize(w, basis[:m])
        beta = float(w.norm())
        T = torch.diag(torch.tensor(alphas, dtype=torch.float64))
        if m > 1:
            off = torch.tensor(betas, dtype=torch.float64)
            T += torch.diag(off, 1) + torch.diag(off, -1)
        ritz, S = torch.linalg.eigh(T)
        ritz, S = ritz.flip(0), S.flip(1)  # largest first
        top = min(k, m)
        residuals = beta * S[-1, :top].abs()
        scale = torch.clamp(ritz[:top].abs(), min=1e-12 + 1e-8 * float(ritz.abs().max()))
        done = m >= k and bool((residuals <= tol * scale).all())
        if done:
            converged = True
            break
        if m >= max_iter:
            break
        if beta <= 1e-10 * max(1.0, float(ritz.abs().max())):
            # invariant subspace found: continue from a fresh random direction
            w = _orthogonalize(torch.randn(size, generator=generator, dtype=torch.float64).to(like), basis[:m])
            beta_new = float(w.norm())
            betas.append(0.0)
            q = w / beta_new
            continue
        betas.append(beta)
        q = w / beta

    top = min(k, m)
    S_top = S[:, :top].to(dtype=theta.dtype, device=theta.device)
    vectors = basis[:m].T @ S_top
    vectors = vectors / vectors.norm(dim=0, keepdim=True)
    values = ritz[:top].to(dtype=theta.dtype, device=theta.device)
    if not converged:
        warnings.warn(
            f"top_eigenpairs stopped after {m} products without reaching eig_tol={tol:g} "
            f"(largest relative residual {float((residuals / scale).max()):.2e}); raise max_iter",
            RuntimeWarning,
            stacklevel=2,
        )
    return Eigenpairs(values, vectors, residuals.to(theta.device), op.num_products - start_products, converged)


def sharpness(loss, theta, *, eig_tol=1e-3, init=None, seed=0, **deprecated):
    r"""The sharpness :math:`S(\theta) = \lambda_{\max}(\nabla^2 L(\theta))`, as a float.

    A thin wrapper on :func:`top_eigenpairs` with ``k=1``.
    """
    eig_tol = renamed(deprecated, "tol", "eig_tol", "sharpness", value=eig_tol, default=True)
    no_other_keywords(deprecated, "sharpness")
    return float(top_eigenpairs(loss, theta, k=1, eig_tol=eig_tol, init=init, seed=seed).values[0])


def sharpness_gradient(loss, theta, u=None, *, eig_tol=1e-8, **deprecated):
    r"""The gradient of the sharpness, :math:`\nabla S(\theta) = \nabla^3 L(\theta)[u, u]`.

    For a simple top eigenvalue :math:`S = u^\top H u` with unit
    eigenvector ``u``, and the Hellmann-Feynman identity says that moving
    ``u`` does not change :math:`S` to first order, so
    :math:`\nabla S = \nabla_\theta (u^\top H(\theta) u)` with ``u`` held
    fixed. The identity fails when the top eigenvalue is repeated.

    Parameters
    ----------
    loss : callable
    theta : torch.Tensor
    u : torch.Tensor, optional
        The top unit eigenvector at ``theta``; computed (to ``eig_tol``) if omitted.
    eig_tol : float
        Eigen-solver tolerance when ``u`` is computed.

    Examples
    --------
    >>> from eoslab.problems import function_problem
    >>> f = function_problem(lambda th: 0.5 * (1 + th[1] ** 2) * th[0] ** 2, torch.tensor([0.0, 1.0]),
    ...                      dtype="float64")
    >>> [round(float(g), 6) + 0.0 for g in sharpness_gradient(f, f.theta0)]   # S = 1 + y², ∇S = (0, 2y)
    [0.0, 2.0]
    """
    eig_tol = renamed(deprecated, "tol", "eig_tol", "sharpness_gradient", value=eig_tol, default=True)
    no_other_keywords(deprecated, "sharpness_gradient")
    _check_loss(loss)
    check_vector("theta", theta)
    op = HessianOperator(loss, theta)  # one gradient graph for the eigenvector and the third derivative
    if u is None:
        u = top_eigenpairs(loss, theta, k=1, eig_tol=eig_tol, operator=op).vectors[:, 0]
    else:
        check_vector("u", u, size=theta.numel())
    return op.third_derivative(u)
