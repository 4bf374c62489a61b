r"""The central flow (Cohen, Damian, Talwalkar, Kolter, Lee 2025): GD's time-averaged path at the edge."""
from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import combinations

import numpy as np
import torch

from .._validation import check_choice, check_int, check_positive, check_real
from ..curvature import EigenTracker, HessianOperator
from .base import Flow, check_problem

__all__ = ["CentralFlow", "CentralState", "central_flow", "edge_covariance"]


def _complementarity(M, q):
    """Solve the small linear complementarity problem s >= 0, w = q + M s >= 0, s.w = 0 (M symmetric PSD).

    By enumerating the active sets (k <= 8 eigenvalues: at most 256 tiny solves),
    preferring the smallest active set that works; ``None`` if none does.
    """
    k = len(q)
    for size in range(k + 1):
        for active in map(list, combinations(range(k), size)):
            s = np.zeros(k)
            if active:
                idx = np.array(active)
                s[idx] = np.linalg.lstsq(M[np.ix_(idx, idx)], -q[idx], rcond=None)[0]
            w = q + M @ s
            scale = 1e-9 * (1.0 + np.abs(q).max())
            if (s >= -scale).all() and (w >= -scale).all():
                return np.clip(s, 0.0, None)
    return None  # no solution: edge_covariance says why


def edge_covariance(problem, theta, lr, eigenvalues, eigenvectors, *, tau=1.0, operator=None):
    r"""The central flow's :math:`\sigma_i^2 \ge 0` along the tracked eigenvectors.

    With :math:`G = [\nabla\lambda_1, \dots, \nabla\lambda_k]` (each
    :math:`\nabla\lambda_i = \nabla^3 L[u_i, u_i]`) and :math:`g = \nabla L`, the
    flow :math:`\dot\theta = -\eta(g + \tfrac12 G\sigma^2)` changes the eigenvalues
    at the rates :math:`\dot\lambda = -\eta(G^\top g + \tfrac12 G^\top G\,\sigma^2)`.
    :math:`\sigma^2` solves the complementarity problem

    .. math::
        \sigma^2 \ge 0, \quad w = G^\top g + \frac{2/\eta - \lambda}{\eta\tau}
        + \tfrac12 G^\top G\,\sigma^2 \ge 0, \quad \sigma^2\cdot w = 0,

    that is :math:`\dot\lambda_i \le (2/\eta - \lambda_i)/\tau`: no eigenvalue
    rises past :math:`2/\eta`, and one that has drifted above it (by the
    discretization) is pulled back with time constant ``tau`` steps. As
    :math:`\tau \to 0` this is the central flow's condition
    :math:`\dot\lambda_i \le 0` at :math:`\lambda_i = 2/\eta` (the barrier form is
    our discretization). This restricts the authors' semidefinite
    complementarity problem, over all :math:`\Sigma \succeq 0` on the top
    eigenspace, to :math:`\Sigma = \sum_i \sigma_i^2 u_iu_i^\top`, diagonal in
    the tracked eigenvectors (no off-diagonal entries, and only the diagonal
    entries of the projected Hessian are held below :math:`2/\eta`). The
    restricted problem is a linear complementarity problem, solved here
    exactly; it approximates theirs, and coincides with it when a single
    eigenvalue is at the edge.

    ``operator``, a :class:`~eoslab.curvature.HessianOperator` built at
    ``theta`` (for instance the one the eigenpairs came from), lends its
    gradient graph to the third derivatives.

    Returns
    -------
    sigma2 : torch.Tensor, shape (k,)
    G : torch.Tensor, shape (P, k)
    g : torch.Tensor
        The gradient at ``theta``.
    """
    check_problem(problem, theta)
    if not isinstance(eigenvectors, torch.Tensor) or eigenvectors.ndim != 2 or eigenvectors.shape[0] != theta.numel():
        raise ValueError(f"eigenvectors must be a tensor of shape ({theta.numel()}, k), "
                         f"got {getattr(eigenvectors, 'shape', type(eigenvectors).__name__)}")
    if not isinstance(eigenvalues, torch.Tensor) or eigenvalues.shape != (eigenvectors.shape[1],):
        raise ValueError(f"eigenvalues must be a tensor of shape ({eigenvectors.shape[1]},), "
                         f"got {getattr(eigenvalues, 'shape', type(eigenvalues).__name__)}")
    k = eigenvectors.shape[1]
    op = HessianOperator(problem, theta) if operator is None else operator.require_at(theta)
    G = torch.stack([op.third_derivative(eigenvectors[:, i]) for i in range(k)], dim=1)
    g = op.gradient
    return _edge_sigma2(lr, tau, eigenvalues, G, g), G, g


def _edge_sigma2(lr, tau, eigenvalues, G, g):
    """The σ² of :func:`edge_covariance` from the eigenvalues, their gradients (columns of ``G``) and ∇L."""
    q = (G.T @ g + (2.0 / lr - eigenvalues) / (lr * tau)).detach().cpu().double().numpy()
    M = (0.5 * G.T @ G).detach().cpu().double().numpy()
    solution = _complementarity(M, q)
    if solution is None:
        above = [f"λ_{i + 1} = {float(v):.4g}" for i, v in enumerate(eigenvalues) if float(v) > 2.0 / lr]
        raise ValueError(
            f"the central flow is not defined here: {', '.join(above) or 'a tracked eigenvalue'} is above "
            f"2/η = {2.0 / lr:.4g}, and no σ² ≥ 0 brings it down, because the loss's curvature there does not "
            "depend on θ along any direction that lowers it (∇λ = ∇³L[u, u] is zero or points the wrong way; "
            "on a quadratic it is always zero). The central flow describes gradient descent at or below the "
            "edge: start it where the sharpness is at most 2/η, for instance from a GD run stopped by "
            "until_sharpness_reaches, or lower lr.")
    return torch.as_tensor(solution, dtype=g.dtype, device=g.device)


def central_flow(problem, theta, lr, eigenvalues, eigenvectors, *, tau=1.0, operator=None):
    r"""The central flow in step units, :math:`-\eta\left(\nabla L + \tfrac12\sum_i\sigma_i^2\nabla\lambda_i\right)`.

    ``eigenvalues`` and ``eigenvectors`` (columns) are the tracked top
    eigenpairs at ``theta``; :math:`\sigma^2` comes from :func:`edge_covariance`.
    With one eigenvalue at :math:`2/\eta` this is
    :math:`-\eta[\nabla L + \tfrac12\sigma^2\nabla S]` with
    :math:`\sigma^2 = 2\langle -\nabla L, \nabla S\rangle / \|\nabla S\|^2`:
    gradient flow projected onto :math:`\{S \le 2/\eta\}`.
    """
    sigma2, G, g = edge_covariance(problem, theta, lr, eigenvalues, eigenvectors, tau=tau, operator=operator)
    return _central_velocity(lr, g, G, sigma2)


def _central_velocity(lr, g, G, sigma2):
    """The central flow's field from the gradient, the ∇λ_i (columns of G) and the σ_i²."""
    return -lr * (g + 0.5 * (G @ sigma2))


@dataclass
class CentralState:
    """The central flow's state: the eigen-tracker (its Ritz vectors are the next solve's warm start) and the
    field :meth:`CentralFlow.observe` computed at the current point, which the step's first evaluation there
    reuses."""

    tracker: EigenTracker | None = None
    point: torch.Tensor | None = None
    velocity: torch.Tensor | None = None
    values: torch.Tensor | None = None  # the eigenvalues at ``point``
    G: torch.Tensor | None = None  # their gradients there (columns)


class CentralFlow(Flow):
    r"""The central flow (see :func:`central_flow`), integrated by explicit Euler.

    Tracks the top ``num_eigs`` eigenpairs with an
    :class:`~eoslab.curvature.EigenTracker` wherever it computes the curvature
    (every evaluation of the field, or once per step with ``curvature="step"``;
    a cold, certified solve at every ``certify_every``-th). Records, in ``History.extras``, ``sigma2`` (the total
    :math:`\sum_i\sigma_i^2`) and ``predicted_loss``, the central flow's
    prediction of GD's time-averaged loss,
    :math:`L(\theta) + \tfrac12\sum_i \sigma_i^2\lambda_i`.

    Parameters
    ----------
    lr : float
    num_eigs : int
        Eigenvalues allowed at the edge at once.
    tau : float
        Time constant (in steps) of the pull back to :math:`2/\eta`.
    eig_tol : float
        Eigen-solver residual tolerance.
    certify_every : int
        A cold, certified eigen-solve at the first evaluation and every ``certify_every``-th.
    curvature : {"substep", "step"}
        Where the eigenpairs and their gradients are computed. ``"substep"``: at every evaluation of
        the field. ``"step"``: once per unit of time, at its start; each substep then takes a fresh
        gradient and moves the eigenvalues to first order, :math:`\lambda_i(z) \approx \lambda_i +
        \nabla\lambda_i\cdot(z - \theta)`, keeping the :math:`\nabla\lambda_i` (a multirate scheme of
        ours: the curvature changes slowly within one GD step, the gradient does not). It costs one
        eigen-solve and ``num_eigs`` third derivatives per step instead of per substep.
    substep_scale, max_substep : float
        The integrator's accuracy (see :class:`~eoslab.flows.Flow`).
    """

    integrator = "euler"
    needs_sharpness = False  # its own eigen-solve at each step's start sets the substeps (see step)

    def __init__(self, lr, *, num_eigs=3, tau=1.0, eig_tol=1e-6, certify_every=10, curvature="substep",
                 substep_scale=0.5, max_substep=1.0):
        super().__init__(lr, substep_scale=substep_scale, max_substep=max_substep)
        self.num_eigs = check_int("num_eigs", num_eigs, low=1, high=8)
        self.tau = check_positive("tau", tau)
        self.eig_tol = check_real("eig_tol", eig_tol, low=0.0, high=1.0, low_open=True, high_open=True)
        self.certify_every = check_int("certify_every", certify_every, low=1)
        self.curvature = check_choice("curvature", curvature, ("substep", "step"))

    def init(self, theta, problem=None):
        return CentralState(EigenTracker(k=self.num_eigs, eig_tol=self.eig_tol, certify_every=self.certify_every))

    def _field(self, problem, theta, state):
        """(eigenvalues, sigma2, velocity, loss) at ``theta``: one Hessian operator for the eigenpairs and ∇λ_i."""
        op = HessianOperator(problem, theta)
        eig = state.tracker.update(problem, theta, operator=op)
        sigma2, G, g = edge_covariance(problem, theta, self.lr, eig.values, eig.vectors, tau=self.tau, operator=op)
        velocity = _central_velocity(self.lr, g, G, sigma2)
        state.point, state.velocity, state.values, state.G = theta, velocity, eig.values, G
        return eig.values, sigma2, velocity, float(op.value)

    def _velocity_at(self, problem, state):
        """The field for one step; its first evaluation, at the step's start, is the anchor for ``"step"``
        (:meth:`step` has computed the field there)."""
        first = [True]

        def velocity(z):
            if first[0]:
                first[0] = False
                return state.velocity
            if self.curvature == "step":  # a fresh gradient, the curvature from the step's start
                _, g = problem.value_and_grad(z)
                values = state.values + state.G.T @ (z - state.point)
                return _central_velocity(self.lr, g, state.G, _edge_sigma2(self.lr, self.tau, values, state.G, g))
            return self._field(problem, z, state)[2]

        return velocity

    def step(self, problem, theta, state, info):
        """One unit of time, its substeps set by the top eigenvalue this flow computed at ``theta`` itself, so
        that the run need not measure the sharpness for it (a second eigen-solve at the same point)."""
        if state.point is not theta:  # observe computed the field at every recorded point; this one was not
            self._field(problem, theta, state)
        return super().step(problem, theta, state, replace(info, sharpness=self.sharpness(state)))

    def sharpness(self, state):
        return None if state.values is None else float(state.values[0])

    def observe(self, problem, theta, state):
        values, sigma2, velocity, loss = self._field(problem, theta, state)
        return {"sigma2": float(sigma2.sum()), "predicted_loss": loss + 0.5 * float(sigma2 @ values)}

    @property
    def label(self):
        return f"central flow (lr={self.lr:g})"
