"""The top of the Hessian's spectrum: certified block Lanczos, warm-started, and the sharpness's gradient."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from .._validation import check_int, check_real, check_vector, no_other_keywords, renamed
from .operators import HessianOperator, _check_loss, _check_operator

__all__ = ["BlockSolve", "Eigenpairs", "block_lanczos", "sharpness", "sharpness_gradient", "top_eigenpairs"]


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
        Whether every required residual met the tolerance.
    certified : bool
        Whether, in addition, the values are certified to be the top ``k``
        (a cold start, or a warm start with ``certify=True``).
    """

    values: torch.Tensor
    vectors: torch.Tensor
    residuals: torch.Tensor
    num_products: int
    converged: bool
    certified: bool = False

    def __iter__(self):
        return iter((self.values, self.vectors))


def _random_columns(size, count, generator, like):
    """``count`` seeded Gaussian columns, drawn in float64 on the CPU (the same on every device), moved to ``like``."""
    return torch.randn(size, count, generator=generator, dtype=torch.float64).to(like)


def _orthonormal_columns(X, Q, generator, like):
    """The columns of ``X`` made orthonormal and orthogonal to ``Q``'s (Gram-Schmidt, twice).

    The whole block is first projected off ``Q`` (twice), then each column off
    the ones accepted before it; where that cancels most of the column, once
    more off both (each subtraction leaves rounding of the size of what it
    subtracted, which a small remainder would carry). A column that (nearly) vanishes,
    because it lay in the span of ``Q`` and the columns before it, is replaced
    by a fresh random one, so that the block keeps exploring directions the
    basis has not seen; once the space is exhausted the block shrinks instead.
    """
    size = X.shape[0]
    floor = 100 * torch.finfo(like.dtype).eps  # below this fraction of its norm, a column is rounding noise

    def off_basis(W):
        for _ in range(2):
            W = W - Q @ (Q.T @ W)
        return W

    norms = X.norm(dim=0).tolist()
    X = off_basis(X) if Q.shape[1] else X
    accepted = []
    for j in range(X.shape[1]):
        for attempt in range(2):
            if attempt == 0:
                w, norm0 = X[:, j], norms[j]
            else:
                w = _random_columns(size, 1, generator, like)
                norm0 = float(w.norm())
                w = (off_basis(w) if Q.shape[1] else w)[:, 0]
            if not (norm0 > 0 and math.isfinite(norm0)):
                continue
            if accepted:
                block = torch.stack(accepted, dim=1)
                before = float(w.norm())
                w = w - block @ (block.T @ w)
                if float(w.norm()) < 0.5 * before:  # "twice is enough": once more, off everything
                    w = w - Q @ (Q.T @ w) if Q.shape[1] else w
                    w = w - block @ (block.T @ w)
            norm = float(w.norm())
            if norm > floor * norm0:
                accepted.append(w / norm)
                break
        if Q.shape[1] + len(accepted) == size:
            break
    return torch.stack(accepted, dim=1) if accepted else X[:, :0]


class _Columns:
    """A matrix that grows by blocks of columns. It is kept transposed, one contiguous row per column, in a
    buffer that doubles, so that appending copies little and the products with it read contiguous memory."""

    def __init__(self, like_block, limit):
        self.rows = like_block.new_empty(0, like_block.shape[0])
        self.count = 0
        self.limit = limit  # the most columns it can be asked to hold: never allocate beyond it

    def append(self, block):
        needed = self.count + block.shape[1]
        if needed > self.rows.shape[0]:
            capacity = max(needed, min(max(2 * self.rows.shape[0], 8), self.limit))
            grown = self.rows.new_empty(capacity, self.rows.shape[1])
            grown[: self.count] = self.rows[: self.count]
            self.rows = grown
        self.rows[self.count:needed] = block.T
        self.count = needed

    @property
    def matrix(self):
        return self.rows[: self.count].T


def _start_block(size, k, init, generator, like):
    """The first block: the warm-start columns, topped up with random ones to ``k``, always with one random column.

    The random column makes the block see every eigenvector: a warm start made
    only of (approximate) eigenvectors sees nothing else, and a lower one would
    be returned as the top.
    """
    empty = torch.empty(size, 0, dtype=like.dtype, device=like.device)
    warm = empty if init is None else _orthonormal_columns(init.reshape(size, -1).to(like), empty, generator, like)
    warm = warm[:, : size - 1]
    fresh = _random_columns(size, min(max(k - warm.shape[1], 1), size - warm.shape[1]), generator, like)
    return _orthonormal_columns(torch.cat([warm, fresh], dim=1), empty, generator, like)


@dataclass
class BlockSolve:
    """What :func:`block_lanczos` returns: all Ritz values, the top ``keep`` Ritz vectors, the residuals checked."""

    values: torch.Tensor  # every Ritz value, largest first, on theta's device and dtype
    vectors: torch.Tensor  # (P, keep): the top ``keep`` Ritz vectors, unit columns
    residuals: torch.Tensor  # (need,): true residual norms of the top ``need`` pairs
    worst: float  # the largest relative residual among them
    products: int
    converged: bool


def block_lanczos(op, X, *, k, need, keep, tol, min_steps=1, max_iter=None, generator=None, lock=False, probe=0):
    r"""Block Lanczos with full reorthogonalization and Rayleigh-Ritz from the orthonormal block ``X``.

    Stops when the top ``need`` Ritz pairs have true residuals
    :math:`\|H y_i - \vartheta_i y_i\| \le \mathrm{tol}\,|\vartheta_i|` (the first ``k``) or
    :math:`\le \mathrm{tol}\,|\vartheta_1|` (the others), after at least ``min_steps`` block steps,
    or after ``max_iter`` products. ``need`` may be a function of the Ritz values (largest first)
    returning that count. The engine of :func:`top_eigenpairs` and of
    :class:`~eoslab.curvature.EigenTracker`, which choose the block and what must settle.

    With ``lock=True`` each new block holds only the residuals :math:`H y_i - \vartheta_i y_i` of the
    required pairs that have not settled (block Davidson without a preconditioner, with locking), so
    a pair that has settled costs no more products: this pays from a good warm start. Without it the
    next block is the whole ``H X`` (block Krylov), which explores the spectrum evenly: the right
    choice from random vectors. ``probe > 0`` (with ``lock``) makes the last column of ``X`` a probe,
    normally a random one: its Krylov sequence joins the next ``probe`` blocks (one product each), and
    the solve takes at least ``probe + 1`` block steps, so that an eigenvalue standing clear above
    the other columns' ones surfaces among the Ritz values.
    """
    like = torch.empty(0, dtype=X.dtype, device=X.device)
    size = X.shape[0]
    max_iter = size if max_iter is None else max_iter
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    limit = min(size, max_iter + X.shape[1])  # a solve stops once its products reach max_iter
    Qs, HQs = _Columns(X, limit), _Columns(X, limit)
    Q = X[:, :0]
    T = torch.empty(0, 0, dtype=torch.float64)
    products = steps = 0
    probe_column = X.shape[1] - 1 if lock and probe else None  # where the probe's latest direction sits in X
    min_steps = max(min_steps, probe + 1) if probe_column is not None else min_steps
    while True:
        W = torch.stack([op.matvec(X[:, j]) for j in range(X.shape[1])], dim=1)
        products += X.shape[1]
        steps += 1
        # grow the projected matrix T = Qᵀ H Q by the new block (W = H X)
        cross = (Q.T @ W).double().cpu()
        corner = (X.T @ W).double().cpu()
        T = torch.cat([torch.cat([T, cross], 1), torch.cat([cross.T, 0.5 * (corner + corner.T)], 1)], 0)
        Qs.append(X)
        HQs.append(W)
        Q, HQ = Qs.matrix, HQs.matrix
        ritz, S = torch.linalg.eigh(T)
        ritz, S = ritz.flip(0), S.flip(1)  # largest first
        required = need(ritz) if callable(need) else need
        top = min(required, ritz.numel())
        S_top = S[:, :top].to(like)
        Y, HY = Q @ S_top, HQ @ S_top
        R = HY - Y * ritz[:top].to(like)
        residuals = R.norm(dim=0)
        floor = 1e-12 + 1e-8 * float(ritz.abs().max())
        scale = torch.clamp(ritz[:top].abs(), min=floor)
        scale[k:] = max(float(ritz[0].abs()), floor)
        relative = residuals.double().cpu() / scale
        converged = Q.shape[1] == size or (top == required and steps >= min_steps and bool((relative <= tol).all()))
        if converged or products >= max_iter:
            break
        unsettled = (relative > tol).nonzero().flatten()
        probing = probe_column is not None and steps <= probe
        expand = [R[:, unsettled]] + ([W[:, probe_column, None]] if probing else [])
        expand = torch.cat(expand, 1) if lock and top == required else W[:, :0]
        if expand.shape[1]:  # the unsettled pairs only, and the probe's next direction
            X = _orthonormal_columns(expand, Q, generator, like)
            probe_column = X.shape[1] - 1 if probing and X.shape[1] == expand.shape[1] else None
        else:
            X = _orthonormal_columns(W, Q, generator, like)  # the next block of the Krylov space
            probe_column = probe_column if probe_column is not None and X.shape[1] == W.shape[1] else None
        if X.shape[1] == 0:  # the space is exhausted (reached only through rounding; Q.shape[1] == size above)
            converged = True
            break

    keep = min(keep, ritz.numel())
    vectors = Y[:, :keep] if keep <= Y.shape[1] else Q @ S[:, :keep].to(like)
    vectors = vectors / vectors.norm(dim=0, keepdim=True)
    return BlockSolve(ritz.to(like), vectors, residuals, float(relative.max()), products, converged)


def top_eigenpairs(loss, theta, k=1, *, eig_tol=1e-3, init=None, certify=False, max_iter=None, seed=0, operator=None,
                   **deprecated):
    r"""The ``k`` largest eigenvalues of the Hessian of ``loss`` at ``theta``, with eigenvectors (certified when cold).

    Block Lanczos with full reorthogonalization and Rayleigh-Ritz on
    Hessian-vector products, written in torch so that the Krylov vectors stay
    on ``theta``'s device. The first block holds the warm-start vectors (if
    any) and random columns: ``k`` of them for a cold start, at least one for
    a warm start. The iteration stops when the required Ritz pairs
    :math:`(\vartheta_i, y_i)` have a small *true* residual (computed from the
    stored products, not estimated from the recurrence),

    .. math:: \|H y_i - \vartheta_i y_i\| \le \mathrm{tol}\cdot|\vartheta_i|,

    so each returned value lies within a relative ``eig_tol`` of an
    eigenvalue of ``H``. Whether they are the *top* ``k``:

    * **Cold start (certified).** ``k`` random columns see up to ``k``
      copies of a repeated eigenvalue (a single vector sees one), so an
      eigenvalue repeated at the top is returned as often as it occurs, and
      the random Krylov space climbs to the top of the spectrum before the
      residuals settle. This is the guarantee every Krylov method gives:
      with probability one over the random columns.
    * **Warm start.** The warm vectors make the top Ritz pairs settle in a
      few products when they are close to the top eigenvectors. The random
      column they travel with catches a new eigenvalue rising above them,
      but only as far as the residuals of the top ``k`` let it: a warm start
      made of *lower* eigenvectors could be returned, settled, before the
      random column has climbed. The random column is taken at least three
      block steps deep, which catches an eigenvalue standing clear above the
      warm ones, not one close above them. So a warm solve is not certified
      (``certified=False``) unless ``certify=True``, which also requires the
      Ritz pairs of the random columns to settle (residual at most
      ``tol * |theta_1|``): as safe as a cold start, and dearer than one.

    ``converged`` says whether the required residuals met the tolerance
    (else a ``RuntimeWarning`` says by how much); ``certified`` whether, in
    addition, the values are certified to be the top ``k``.

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
        Warm start: previous eigenvectors, shape ``(P,)`` or ``(P, j)``. They
        join the block next to one random column (more, to reach ``k``).
    certify : bool
        With ``init``, also settle the random columns' Ritz pairs, so that the
        answer is certified (a cold start always is).
    max_iter : int, optional
        Most Hessian-vector products allowed (default ``min(P, max(300, 20k))``).
    seed : int
        Seeds the random columns.
    operator : HessianOperator, optional
        Reuse an operator already built at ``theta`` (checked).

    Returns
    -------
    Eigenpairs
        Unpacks as ``values, vectors`` (descending; vectors as columns).

    Examples
    --------
    >>> from eoslab.problems import quadratic
    >>> q = quadratic([5.0, 5.0, 1.0], dtype="float64")
    >>> values, vectors = top_eigenpairs(q, q.theta0, k=2)   # the repeated top eigenvalue, twice
    >>> [round(float(v), 6) for v in values]
    [5.0, 5.0]
    """
    check_vector("theta", theta)
    size = theta.numel()
    k = check_int("k", k, low=1, high=size)
    eig_tol = renamed(deprecated, "tol", "eig_tol", "top_eigenpairs", value=eig_tol, default=True)
    no_other_keywords(deprecated, "top_eigenpairs")
    tol = check_real("eig_tol", eig_tol, low=0.0, high=1.0, low_open=True, high_open=True)
    seed = check_int("seed", seed)
    max_iter = min(size, max(300, 20 * k)) if max_iter is None else check_int("max_iter", max_iter, low=k)
    if init is not None:
        if not isinstance(init, torch.Tensor) or init.ndim not in (1, 2) or init.shape[0] != size:
            raise ValueError(f"init must be a tensor of shape ({size},) or ({size}, j), "
                             f"got {getattr(init, 'shape', type(init).__name__)}")
    op = HessianOperator(loss, theta) if operator is None else _check_operator(operator, theta)
    like = torch.empty(0, dtype=theta.dtype, device=theta.device)
    generator = torch.Generator().manual_seed(seed)

    if not isinstance(certify, bool):
        raise TypeError(f"certify must be True or False, got {certify!r}")
    X = _start_block(size, k, init, generator, like)
    # Ritz pairs that must settle: the top k; for a certified warm solve, one per column of the first block
    need = X.shape[1] if init is not None and certify else min(k, X.shape[1])
    certified = init is None or certify
    # an uncertified warm solve still takes the random column three products deep: enough to catch an
    # eigenvalue standing clear above the warm ones, though not one close above them
    min_steps = 3 if init is not None and not certify else 1
    solve = block_lanczos(op, X, k=k, need=need, keep=k, tol=tol, min_steps=min_steps, max_iter=max_iter,
                          generator=generator)
    if not solve.converged:
        warnings.warn(
            f"top_eigenpairs stopped after {solve.products} products without reaching eig_tol={tol:g} "
            f"(largest relative residual {solve.worst:.2e}); raise max_iter",
            RuntimeWarning,
            stacklevel=2,
        )
    top = solve.vectors.shape[1]
    return Eigenpairs(solve.values[:top], solve.vectors, solve.residuals[:top], solve.products, solve.converged,
                      solve.converged and certified)


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
