r"""Following the top of the Hessian's spectrum along a trajectory: :class:`EigenTracker`.

A trajectory moves a little between two measurements, so the last Ritz
vectors are good starts for the next ones. The tracker keeps the top ``k``
Ritz vectors and ``guard`` more, and starts each solve from that block alone;
the guard vectors make the top ``k`` settle in a few products even when the
eigenvalues crowd (a block that spans a cluster resolves it as one). Every
``certify_every``-th solve, the first included, starts cold from random
vectors instead, which certifies the values (see :func:`top_eigenpairs`).

With ``above`` set, the tracker follows every eigenvalue at or above that
level (the central flows' "all above 1.5/η"): each solve also settles the
first pair past the tracked ones, adds it (and solves again) while it is at or
above the level, and drops tracked ones that have settled below it.
"""
from __future__ import annotations

import torch

from .._validation import check_int, check_real
from .eigen import Eigenpairs, _orthonormal_columns, _random_columns, block_lanczos
from .operators import HessianOperator, _check_operator

__all__ = ["EigenTracker"]


class EigenTracker:
    """Warm-started, periodically certified tracking of the top Hessian eigenpairs along a trajectory.

    Parameters
    ----------
    k : int
        Eigenpairs to track (the fewest, with ``above``), >= 1.
    above : float, optional
        Also track every eigenvalue at or above this level (the top one is always returned, even below it).
    guard : int
        Extra Ritz vectors carried from one solve to the next, >= 1.
    eig_tol : float
        Relative residual tolerance, in (0, 1).
    certify_every : int
        A cold, certified solve at the first update and every ``certify_every``-th, >= 1
        (1: every solve is certified).
    max_k : int
        The most eigenpairs ``above`` may add up to.
    seed : int
        Seeds the random columns.

    Examples
    --------
    >>> from eoslab.problems import quadratic
    >>> tracker = EigenTracker(k=2)
    >>> q = quadratic([5.0, 5.0, 1.0], dtype="float64")
    >>> [round(float(v), 6) for v in tracker.update(q, q.theta0).values]
    [5.0, 5.0]
    """

    def __init__(self, k=1, *, above=None, guard=1, eig_tol=1e-3, certify_every=10, max_k=32, seed=0):
        self.k = check_int("k", k, low=1)
        self.above = None if above is None else check_real("above", above)
        self.guard = check_int("guard", guard, low=1)
        self.eig_tol = check_real("eig_tol", eig_tol, low=0.0, high=1.0, low_open=True, high_open=True)
        self.certify_every = check_int("certify_every", certify_every, low=1)
        self.max_k = check_int("max_k", max_k, low=self.k)
        self.seed = check_int("seed", seed)
        self.basis = None  # the top k + guard Ritz vectors of the last solve
        self.calls = 0

    def update(self, loss, theta, *, operator=None):
        """The tracked eigenpairs at ``theta`` (an :class:`Eigenpairs`; ``certified`` on the cold solves)."""
        op = HessianOperator(loss, theta) if operator is None else _check_operator(operator, theta)
        size = theta.numel()
        like = torch.empty(0, dtype=theta.dtype, device=theta.device)
        generator = torch.Generator().manual_seed(self.seed + self.calls)
        cold = self.calls % self.certify_every == 0 or self.basis is None or self.basis.shape[0] != size
        self.calls += 1
        products = 0
        while True:
            k = min(self.k, size)
            width = min(k + self.guard, size)
            if cold:
                start = _random_columns(size, width, generator, like)
            else:
                start = self.basis.to(like)
                if start.shape[1] < width:
                    start = torch.cat([start, _random_columns(size, width - start.shape[1], generator, like)], 1)
            X = _orthonormal_columns(start, like.new_empty(size, 0), generator, like)
            # with a level, the first pair past the tracked ones must settle too: a settled Ritz value is the
            # eigenvalue of its rank, and one below the level says that none is missed
            need = k if self.above is None else min(k + 1, size)
            solve = block_lanczos(op, X, k=k, need=need, keep=width, tol=self.eig_tol,
                                  max_iter=min(size, max(300, 20 * width)), generator=generator)
            products += solve.products
            self.basis = solve.vectors
            if self.above is None or not self._grow(solve.values, size):
                break
            cold = False  # continue warm from this solve's vectors, now tracking more
        if self.above is not None:
            settled_below = (solve.values[: self.k] < self.above).nonzero()
            if len(settled_below):  # drop what has settled below the level, keeping at least one
                self.k = max(1, int(settled_below[0]))
        k = min(self.k, solve.vectors.shape[1])
        return Eigenpairs(solve.values[:k], solve.vectors[:, :k], solve.residuals[:k], products, solve.converged,
                          solve.converged and cold)

    def _grow(self, values, size):
        """Track one more when the settled pair past the tracked ones has reached ``above``; whether it did."""
        if self.k < min(self.max_k, size) and float(values[self.k]) >= self.above:
            self.k += 1
            return True
        return False

    def __repr__(self):
        level = "" if self.above is None else f", above={self.above:g}"
        return f"EigenTracker(k={self.k}{level}, guard={self.guard}, certify_every={self.certify_every})"
