r"""Following the top of the Hessian's spectrum along a trajectory: :class:`EigenTracker`.

A trajectory moves a little between two measurements, so the last Ritz
vectors are good starts for the next ones. The tracker keeps the top Ritz
vectors it tracks and ``guard`` more, and starts each warm solve from that
block and one random column. Only the pairs that have not settled are expanded
(their residuals join the space, :func:`block_lanczos` with ``lock=True``), so a
pair that the warm start already resolves costs one product; the guard vectors
resolve a crowd of eigenvalues just below the tracked ones, which would
otherwise keep mixing into them. The random column is a probe taken three
products deep, as in a warm :func:`top_eigenpairs`: it catches an eigenvalue
that has risen clear above the carried ones (not one close above them), so a
warm solve is not certified. Every ``certify_every``-th solve, the first
included, starts cold from random vectors instead and takes the whole block
Krylov space, which certifies the values (see :func:`top_eigenpairs`).

With ``above`` set, the tracker follows every eigenvalue at or above that
level (the central flows' "all above 1.5/η"): the solve also settles the first
pair below the level, so the set tracked grows and shrinks as eigenvalues cross
it, within the same solve. Its cold solves start from as many random columns as
it tracked last (at least ``k``) plus ``guard``, so that an eigenvalue repeated
that often is seen as often as it occurs; the pairs beyond ``k`` settle to
``eig_tol`` times the top eigenvalue.

A problem of at most :data:`DENSE_MAX` parameters (the book's toys) is
diagonalized whole instead: ``P`` products give the Hessian, and ``eigh`` its
exact eigenpairs, every solve certified.
"""
from __future__ import annotations

import torch

from .._validation import check_int, check_real
from .eigen import Eigenpairs, _orthonormal_columns, _random_columns, block_lanczos
from .operators import HessianOperator, _check_operator

__all__ = ["EigenTracker", "DENSE_MAX"]

#: Up to this many parameters the tracker forms the whole Hessian (``P`` products) and diagonalizes it: exact and
#: certified at every solve, for about the products a Krylov solve takes at this size (its warm start alone takes
#: six) and less of its bookkeeping.
DENSE_MAX = 8


class EigenTracker:
    """Warm-started, periodically certified tracking of the top Hessian eigenpairs along a trajectory.

    Parameters
    ----------
    k : int
        Eigenpairs to track (the fewest returned, with ``above``), >= 1.
    above : float, optional
        Also track every eigenvalue at or above this level, up to ``max_k`` of them.
    guard : int
        Extra Ritz vectors carried from one solve to the next, >= 0.
    eig_tol : float
        Relative residual tolerance, in (0, 1).
    certify_every : int
        A cold, certified solve at the first update and every ``certify_every``-th, >= 1
        (1: every solve is certified).
    max_k : int
        The most eigenpairs ``above`` may track, >= k.
    seed : int
        Seeds the random columns.

    Attributes
    ----------
    basis : torch.Tensor or None
        The Ritz vectors carried to the next solve, shape ``(P, tracked + guard)``.
    calls : int
        Solves so far.
    tracked : int
        Pairs returned by the last solve.

    Examples
    --------
    >>> from eoslab.problems import quadratic
    >>> tracker = EigenTracker(k=2)
    >>> q = quadratic([5.0, 5.0, 1.0], dtype="float64")
    >>> [round(float(v), 6) for v in tracker.update(q, q.theta0).values]
    [5.0, 5.0]
    """

    def __init__(self, k=1, *, above=None, guard=2, eig_tol=1e-3, certify_every=10, max_k=32, seed=0):
        self.k = check_int("k", k, low=1)
        self.above = None if above is None else check_real("above", above)
        self.guard = check_int("guard", guard, low=0)
        self.eig_tol = check_real("eig_tol", eig_tol, low=0.0, high=1.0, low_open=True, high_open=True)
        self.certify_every = check_int("certify_every", certify_every, low=1)
        self.max_k = check_int("max_k", max_k, low=self.k)
        self.seed = check_int("seed", seed)
        self.basis = None
        self.calls = 0
        self.tracked = self.k

    def _tracked(self, ritz, size):
        """How many pairs to return, given the Ritz values (largest first)."""
        count = self.k if self.above is None else max(self.k, int((ritz[: self.max_k] >= self.above).sum()))
        return min(count, size, ritz.numel())

    def _need(self, size):
        """The pairs that must settle, as a function of the Ritz values: with a level, one more than those above it."""
        if self.above is None:
            return min(self.k, size)
        return lambda ritz: min(self._tracked(ritz, size) + 1, self.max_k, size)

    def update(self, loss, theta, *, operator=None):
        """The tracked eigenpairs at ``theta`` (an :class:`Eigenpairs`; ``certified`` on the cold solves)."""
        op = HessianOperator(loss, theta) if operator is None else _check_operator(operator, theta)
        size = theta.numel()
        if size <= DENSE_MAX:
            return self._dense(op, theta)
        like = torch.empty(0, dtype=theta.dtype, device=theta.device)
        generator = torch.Generator().manual_seed(self.seed + self.calls)
        cold = self.calls % self.certify_every == 0 or self.basis is None or self.basis.shape[0] != size
        self.calls += 1
        k = min(self.k, size)
        if cold:  # a block sees up to as many copies of a repeated eigenvalue as it has columns
            start = _random_columns(size, k if self.above is None else self.tracked + self.guard, generator, like)
        else:  # the carried block, topped up to k, and a random probe
            start = self.basis.to(like)
            start = torch.cat([start, _random_columns(size, max(k - start.shape[1], 0) + 1, generator, like)], 1)
        X = _orthonormal_columns(start[:, :size], like.new_empty(size, 0), generator, like)
        width = self.max_k if self.above is not None else k
        solve = block_lanczos(op, X, k=k, need=self._need(size), keep=min(width + self.guard, size),
                              tol=self.eig_tol, max_iter=min(size, max(300, 20 * (width + self.guard))),
                              generator=generator, lock=not cold, probe=0 if cold else 2)
        tracked = self.tracked = self._tracked(solve.values, size)
        self.basis = solve.vectors[:, : min(tracked + self.guard, size)]
        return Eigenpairs(solve.values[:tracked], solve.vectors[:, :tracked], solve.residuals[:tracked],
                          solve.products, solve.converged, solve.converged and cold)

    def _dense(self, op, theta):
        """A tiny problem's exact eigenpairs: the whole Hessian from ``P`` products, then ``eigh`` (certified)."""
        size = theta.numel()
        self.calls += 1
        H = torch.stack([op.matvec(e) for e in torch.eye(size, dtype=theta.dtype, device=theta.device)], 1)
        if not bool(torch.isfinite(H).all()):
            raise ValueError("the Hessian at theta is not finite (a Hessian-vector product gave inf or nan): "
                             "there are no eigenvalues to track; is the loss twice differentiable there?")
        values, vectors = torch.linalg.eigh(0.5 * (H + H.T).double())  # float64 costs nothing at this size
        values, vectors = values.flip(0).to(theta.dtype), vectors.flip(1).to(theta.dtype)
        tracked = self.tracked = self._tracked(values, size)
        self.basis = vectors[:, : min(tracked + self.guard, size)]
        residuals = (H @ vectors[:, :tracked] - vectors[:, :tracked] * values[:tracked]).norm(dim=0)
        return Eigenpairs(values[:tracked], vectors[:, :tracked], residuals, size, True, True)

    def __repr__(self):
        level = "" if self.above is None else f", above={self.above:g}"
        return f"EigenTracker(k={self.k}{level}, guard={self.guard}, certify_every={self.certify_every})"
