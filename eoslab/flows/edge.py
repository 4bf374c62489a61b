r"""Edge Flow (after Marion 2026): a center, an oscillation direction and an oscillation magnitude."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._validation import check_int, check_real
from ..curvature import hvp, top_eigenpairs
from .base import Flow, check_problem

__all__ = ["EdgeFlow", "EdgeState", "edge_flow_step"]


@dataclass
class EdgeState:
    """The state of :class:`EdgeFlow`: GD's iterate is about ``x + phase * a * u``.

    Attributes
    ----------
    x : torch.Tensor
        The center.
    u : torch.Tensor
        The oscillation direction (unit).
    a : float
        The oscillation magnitude (> 0).
    phase : float
        +1 or -1: the sign of the oscillation at this step.
    rayleigh : float
        :math:`u^\\top H(x) u` from the last step's Hessian-vector product.
    curvature : float
        The curvature :math:`\\lambda_u` that set the last change of ``a``.
    """

    x: torch.Tensor
    u: torch.Tensor
    a: float
    phase: float = 1.0
    rayleigh: float = math.nan
    curvature: float = math.nan

    @property
    def iterate(self):
        """The GD iterate the state stands for, ``x + phase * a * u``."""
        return self.x + self.phase * self.a * self.u


def edge_flow_step(problem, state, lr, *, substeps=1):
    r"""One step of Edge Flow (our discretization): two gradients and one Hessian-vector product per substep.

    With :math:`g_\pm = \nabla L(x \pm a u)`, :math:`\bar g = \tfrac12(g_+ + g_-)`
    (the gradient of the symmetrized loss :math:`\tfrac12[L(x+au) + L(x-au)]`),
    the secant curvature :math:`\lambda_u = u\cdot(g_+ - g_-)/(2a)` and
    :math:`Hu = H(x)\,u`, :math:`\rho = u^\top Hu`, each of the ``substeps``
    substeps of size :math:`h = 1/\text{substeps}` is

    .. math::
        x &\leftarrow x - h\eta\,(\bar g - (u\cdot\bar g)\,u) - \frac{u\cdot\bar g}{\rho}\,u, \\
        a &\leftarrow a\,|1 - \eta\lambda_u|^h, \\
        u &\leftarrow \frac{u + \kappa\,(Hu - \rho u)}{\|\cdot\|}, \qquad \kappa = \min(h\eta, 1/\rho).

    The center takes an explicit Euler step on the symmetrized loss across
    ``u`` and, along ``u`` (a stiff direction, decaying at rate
    :math:`\eta\rho \approx 2` per step), relaxes to the floor of the valley in
    one Newton step, the stiff limit of an implicit step. The magnitude
    equation is integrated exactly over the substep (its rate frozen). The
    direction takes an Euler step of the Rayleigh-quotient (Oja) flow
    :math:`\dot u = \eta(Hu - (u^\top Hu)u)`. While ``a`` is too
    small for a finite difference to resolve, :math:`\lambda_u = \rho`.

    The rate :math:`\eta` is our choice, matched to GD: GD multiplies the
    oscillation's component along an eigenvector :math:`u_i` by
    :math:`1 - \eta\lambda_i` per step, so its misalignment with the top
    eigenvector decays per step by :math:`\log|1-\eta\lambda_i| - \log|1-\eta\lambda_1|
    \approx -\eta(\lambda_1 - \lambda_i)` for :math:`\lambda_i` near
    :math:`\lambda_1 \approx 2/\eta`, which is the Oja flow's rate at
    :math:`\eta`. An Euler step :math:`\kappa` multiplies the component along
    :math:`u_i` by :math:`1 - \kappa(\rho - \lambda_i)`; the cap
    :math:`\kappa \le 1/\rho` keeps these factors in :math:`[0, 1]` for
    :math:`0 \le \lambda_i \le \rho`, as the flow's
    :math:`e^{-\eta(\rho - \lambda_i)t}` are (a step :math:`\eta` at
    :math:`\eta\rho > 2` would amplify the flat directions). With one step per
    GD step the cap acts near the edge, where the step is
    :math:`u \leftarrow Hu/\|Hu\|`, one power iteration, which turns :math:`u`
    at about half GD's rate; with two or more substeps it does not act below
    :math:`\eta\rho = 2` and the equation is integrated at rate :math:`\eta`.

    With ``substeps=1`` (the default) the center's step across ``u`` has
    GD's own size :math:`\eta`; more substeps integrate the three equations
    more accurately, at ``substeps`` times the cost. The phase (the sign of
    the oscillation) flips once per step when :math:`1 - \eta\lambda_u < 0` at
    the step's start.
    """
    check_problem(problem)
    if not isinstance(state, EdgeState):
        raise TypeError(f"state must be an EdgeState (from EdgeFlow.start), got {type(state).__name__}")
    substeps = check_int("substeps", substeps, low=1)
    h = 1.0 / substeps
    phase = state.phase
    for k in range(substeps):
        x, u, a = state.x, state.u, state.a
        _, g_plus = problem.value_and_grad(x + a * u)
        _, g_minus = problem.value_and_grad(x - a * u)
        hu = hvp(problem, x, u)
        rho = float(u @ hu)
        g_bar = 0.5 * (g_plus + g_minus)
        eps = torch.finfo(x.dtype).eps
        resolved = a > math.sqrt(eps) * (1.0 + float(x.norm()))
        curvature = float(u @ (g_plus - g_minus)) / (2 * a) if resolved else rho
        along = float(u @ g_bar)
        x_new = x - h * lr * (g_bar - along * u)
        x_new = x_new - (along / rho if rho > 0 else h * lr * along) * u
        factor = 1.0 - lr * curvature
        a_new = max(a * abs(factor) ** h, eps * (1.0 + float(x.norm())))
        step = min(h * lr, 1.0 / rho) if rho > 0 else h * lr  # the cap keeps every factor 1 - step(ρ - λ_i) in [0, 1]
        u_new = u + step * (hu - rho * u)
        u_new = u_new / u_new.norm()
        if k == 0 and factor < 0:
            phase = -phase
        state = EdgeState(x_new, u_new, a_new, phase, rho, curvature)
    return state


class EdgeFlow(Flow):
    r"""Edge Flow: a center, an oscillation direction and an oscillation magnitude (see :func:`edge_flow_step`).

    The three coupled equations, in step units (the book's reading of
    Marion, 2026; see Chapter 5):

    .. math::
        \dot x = -\eta\,\nabla_x \tfrac12\left[L(x + au) + L(x - au)\right], \qquad
        \dot u = \eta\left(Hu - (u^\top Hu)\,u\right), \qquad
        \frac{\mathrm{d}\log a}{\mathrm{d}t} = \log|1 - \eta\lambda_u| .

    The recorded point is the center ``x``. ``History.extras`` holds
    ``magnitude`` (``a``), ``curvature`` (:math:`\lambda_u`) and ``rayleigh``
    (:math:`u^\top H(x)u`).

    The start: ``u`` is the top eigenvector at ``theta``, and ``theta`` is
    split into a center on the floor of the valley along ``u`` (one Newton
    step) and an oscillation, ``a = |u·∇L|/S``.

    Parameters
    ----------
    lr : float
    eig_tol : float
        Tolerance of the eigen-solve at the start.
    substeps : int
        Substeps per GD step (see :func:`edge_flow_step`).
    """

    needs_sharpness = False

    def __init__(self, lr, *, eig_tol=1e-6, substeps=1):
        super().__init__(lr)
        self.eig_tol = check_real("eig_tol", eig_tol, low=0.0, high=1.0, low_open=True, high_open=True)
        self.substeps = check_int("substeps", substeps, low=1)

    def start(self, problem, theta):
        eig = top_eigenpairs(problem, theta, k=1, eig_tol=self.eig_tol)
        u, S = eig.vectors[:, 0], float(eig.values[0])
        _, g = problem.value_and_grad(theta)
        offset = float(u @ g) / S if S > 0 else 0.0
        floor = torch.finfo(theta.dtype).eps * (1.0 + float(theta.norm()))
        state = EdgeState(theta - offset * u, u, max(abs(offset), floor), 1.0 if offset >= 0 else -1.0, S, S)
        return state.x, state

    def step(self, problem, theta, state, info):
        state = edge_flow_step(problem, state, self.lr, substeps=self.substeps)
        return state.x, state

    def observe(self, problem, theta, state):
        return {"magnitude": state.a, "curvature": state.curvature, "rayleigh": state.rayleigh}

    def displacement(self, state):
        return float(state.a)

    @property
    def label(self):
        if self.substeps == 1:
            return f"Edge Flow (lr={self.lr:g})"
        return f"Edge Flow (lr={self.lr:g}, {self.substeps} substeps)"
