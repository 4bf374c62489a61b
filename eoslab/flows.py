r"""Continuous-time models of gradient descent, integrated beside it.

Flows are written in *step units*: a flow for step size :math:`\eta` has
time measured in gradient steps, so gradient flow is
:math:`\mathrm{d}\theta/\mathrm{d}t = -\eta\nabla L(\theta)` and step ``n`` of
GD is compared with the flow at time ``t = n``.

Each model is a pure function giving its vector field at a point
(:func:`gradient_flow`, :func:`igr_flow`, :func:`principal_flow`), wrapped in
a small :class:`Flow` object with the same ``lr``, ``threshold`` and
``label`` as an optimizer. :func:`solve` integrates a flow with classical
fourth-order Runge-Kutta and returns the same :class:`~eoslab.runs.History`
as :func:`~eoslab.run`, and :func:`compare` runs any mix of optimizers and
flows from one start, so that any two can be drawn by one
:func:`~eoslab.plotting.plot_history` call.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import torch

from ._validation import check_choice, check_int, check_positive, check_real, check_vector
from .curvature import HessianOperator, hessian, hvp, top_eigenpairs
from .runs import Recorder

__all__ = [
    "CentralFlow",
    "EdgeFlow",
    "EdgeState",
    "Flow",
    "GradientFlow",
    "IGRFlow",
    "PrincipalFlow",
    "central_flow",
    "compare",
    "edge_covariance",
    "edge_flow_step",
    "gradient_flow",
    "igr_flow",
    "principal_coefficients",
    "principal_flow",
    "rk4_step",
    "solve",
    "toy_manifold_flow",
]


# ---------------------------------------------------------------------------
# The vector fields, as pure functions
# ---------------------------------------------------------------------------
def gradient_flow(problem, theta, lr):
    r"""Gradient flow in step units: :math:`-\eta\,\nabla L(\theta)`."""
    return -lr * problem.value_and_grad(theta)[1]


def igr_flow(problem, theta, lr):
    r"""The implicit-gradient-regularization flow in step units,
    :math:`-\eta\left(\nabla L + \tfrac{\eta}{2} H\nabla L\right)`.

    Gradient flow on the modified loss :math:`L + \tfrac{\eta}{4}\|\nabla L\|^2`
    (Barrett and Dherin): the first correction of backward error analysis,
    which follows GD to :math:`O(\eta^3)` per step while :math:`\eta\lambda < 1`
    for every Hessian eigenvalue.
    """
    op = HessianOperator(problem, theta)
    g = op.gradient
    return -lr * (g + 0.5 * lr * op.matvec(g))


def principal_coefficients(eigenvalues, lr, *, floor=1e-8):
    r"""The principal-flow coefficients :math:`\log(1 - \eta\lambda_i)/\lambda_i`, complex.

    For :math:`\eta\lambda > 1` the logarithm is complex,
    :math:`\log|1-\eta\lambda| + i\pi`. Three cases are handled explicitly:
    as :math:`\lambda \to 0` the coefficient tends to :math:`-\eta` (gradient
    flow); at :math:`\eta\lambda = 1`, where GD removes the component in one
    step and the logarithm is :math:`-\infty`, :math:`|1 - \eta\lambda|` is
    floored at ``floor`` (the flow then shrinks that component by ``floor``
    per step); negative eigenvalues give real, positive logarithms (growth,
    as in GD).

    Examples
    --------
    >>> c = principal_coefficients(torch.tensor([0.0, 1.0, 3.0], dtype=torch.float64), lr=1.0)
    >>> c[0].real.item(), round(c[1].real.item(), 3), round(c[2].imag.item() * 3, 6)
    (-1.0, -18.421, 3.141593)
    """
    lam = eigenvalues
    x = lr * lam
    one_minus = 1.0 - x
    log_abs = torch.log(torch.clamp(one_minus.abs(), min=floor))
    imag = torch.where(one_minus < 0, torch.full_like(x, math.pi), torch.zeros_like(x))
    log = torch.complex(log_abs, imag)
    small = x.abs() < 1e-8
    safe = torch.where(small, torch.ones_like(lam), lam)
    series = torch.complex(-lr * (1.0 + 0.5 * x), torch.zeros_like(x))  # log(1-x)/lam for small x
    return torch.where(small, series, log / safe)


def _dense_hessian(problem, x, max_params):
    """The problem's own Hessian where it has one (quadratics), else by automatic differentiation."""
    own = getattr(problem, "hessian", None)
    return own(x) if own is not None else hessian(problem, x, max_params=max_params)


def principal_flow(problem, z, lr, *, floor=1e-8, max_params=2_000):
    r"""The principal flow of Rosca et al. in step units, at a real or complex point.

    .. math::
        \frac{\mathrm{d}\theta}{\mathrm{d}t} = \sum_i \frac{\log(1 - \eta\lambda_i)}{\lambda_i}\,
        (\nabla L\cdot u_i)\, u_i ,

    with :math:`(\lambda_i, u_i)` the eigenpairs of the Hessian. On a
    quadratic its solution at integer times is exactly GD: each component is
    multiplied by :math:`e^{\log(1-\eta\lambda)} = 1 - \eta\lambda` per unit of
    time. For :math:`\eta\lambda > 1` the coefficient is complex and so is the
    flow; its real part at integer times is GD.

    The state ``z = x + iy`` may be complex. The eigenpairs are taken at the
    real part ``x`` (a dense symmetric eigendecomposition, so the problem
    must have at most ``max_params`` parameters), and the gradient at ``z``
    is extended to first order in ``y``,
    :math:`\nabla L(x + iy) \approx \nabla L(x) + i H(x)\, y`, which is exact
    for quadratics (our choice for networks). Returns a complex tensor.
    """
    if not torch.is_complex(z):
        z = z.to(torch.complex128 if z.dtype == torch.float64 else torch.complex64)
    x, y = z.real.contiguous(), z.imag.contiguous()
    check_vector("z", x)
    if x.numel() > max_params:
        raise ValueError(f"the principal flow needs the full Hessian: the problem has {x.numel()} parameters, "
                         f"more than max_params={max_params}")
    lam, U = torch.linalg.eigh(_dense_hessian(problem, x, max_params))
    g = problem.value_and_grad(x)[1]
    components = torch.complex(U.T @ g, lam * (U.T @ y))  # u_i . grad L(z)
    coeffs = principal_coefficients(lam, lr, floor=floor)
    return U.to(z.dtype) @ (coeffs * components)


# ---------------------------------------------------------------------------
# The flows, as objects with the surface of an optimizer
# ---------------------------------------------------------------------------
class Flow:
    """A continuous-time model of GD with step size ``lr``, in step units.

    Most flows are a vector field: subclasses define :meth:`velocity`, and
    :meth:`rate` bounds how fast the field changes (the stiffness), which
    sets :func:`solve`'s substep; ``integrator`` is ``"rk4"`` or ``"euler"``.
    ``complex = True`` marks flows whose state is complex (only the real part
    is recorded). A flow with a richer state (:class:`EdgeFlow`) overrides
    :meth:`start`, :meth:`advance` and :meth:`point` instead; :meth:`observe`
    reports extra per-step quantities (recorded in ``History.extras``).
    """

    complex = False
    integrator = "rk4"

    def __init__(self, lr):
        self.lr = check_positive("lr", lr)

    def velocity(self, problem, theta):
        raise NotImplementedError

    def rate(self, problem, theta, sharpness):
        r"""An upper bound on the decay rate of the linearized field, per unit time (:math:`\eta S` by default)."""
        return self.lr * max(sharpness, 0.0)

    # -- the state interface used by solve --------------------------------------
    def start(self, problem, theta):
        """The flow's state at time 0 from the parameter vector ``theta``."""
        if self.complex:
            return theta.to(torch.complex128 if theta.dtype == torch.float64 else torch.complex64)
        return theta

    def point(self, state):
        """The parameter vector the state stands for (recorded, compared with GD)."""
        return state.real.contiguous() if self.complex else state

    def advance(self, problem, state, sharpness, *, alpha, max_substep):
        """The state one unit of time (one GD step) later: substeps of ``integrator``."""
        rate = self.rate(problem, self.point(state), sharpness)
        substep = min(alpha / rate, max_substep) if rate > 0 else max_substep
        n_sub = max(1, math.ceil(1.0 / substep - 1e-9))
        velocity = lambda th: self.velocity(problem, th)  # noqa: E731
        for _ in range(n_sub):  # equal substeps that land exactly on the next integer time
            if self.integrator == "euler":
                state = state + velocity(state) / n_sub
            else:
                state = rk4_step(velocity, state, 1.0 / n_sub)
        return state

    def observe(self, problem, state):
        """Extra scalars to record at each integer time (none by default)."""
        return {}

    @property
    def threshold(self):
        """``2/lr``: the GD stability threshold the flow is compared with."""
        return 2.0 / self.lr

    @property
    def label(self):
        return f"{type(self).__name__}(lr={self.lr:g})"

    def __repr__(self):
        return self.label


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


class PrincipalFlow(Flow):
    r"""The principal flow (see :func:`principal_flow`): complex state, dense Hessians.

    Parameters
    ----------
    lr : float
    floor : float
        Floor on :math:`|1 - \eta\lambda|` at the singularity :math:`\eta\lambda = 1`.
    max_params : int
        Largest problem accepted (the flow needs a dense eigendecomposition per evaluation).
    """

    complex = True

    def __init__(self, lr, *, floor=1e-8, max_params=2_000):
        super().__init__(lr)
        self.floor = check_real("floor", floor, low=0.0, high=1.0, low_open=True, high_open=True)
        self.max_params = check_int("max_params", max_params, low=1)

    def velocity(self, problem, theta):
        return principal_flow(problem, theta, self.lr, floor=self.floor, max_params=self.max_params)

    def rate(self, problem, theta, sharpness):
        """The largest :math:`|\\log(1 - \\eta\\lambda_i)|` over the spectrum at ``theta``."""
        lam = torch.linalg.eigvalsh(_dense_hessian(problem, theta.real.contiguous(), self.max_params))
        x = self.lr * lam
        return float(torch.sqrt(torch.log(torch.clamp((1 - x).abs(), min=self.floor)) ** 2
                                + torch.where(x > 1, math.pi**2, 0.0)).max())

    @property
    def label(self):
        return f"principal flow (lr={self.lr:g})"


# ---------------------------------------------------------------------------
# The central flow (Cohen, Damian, Talwalkar, Kolter, Lee 2025)
# ---------------------------------------------------------------------------
def _complementarity(M, q):
    """Solve the small linear complementarity problem s >= 0, w = q + M s >= 0, s.w = 0 (M symmetric PSD).

    By enumerating the active sets (k <= 8 eigenvalues: at most 256 tiny solves),
    preferring the smallest active set that works.
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
    raise RuntimeError("the central flow's complementarity problem has no solution")


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
    k = eigenvectors.shape[1]
    op = HessianOperator(problem, theta) if operator is None else operator
    G = torch.stack([op.third_derivative(eigenvectors[:, i]) for i in range(k)], dim=1)
    g = op.gradient
    q = (G.T @ g + (2.0 / lr - eigenvalues) / (lr * tau)).detach().cpu().double().numpy()
    M = (0.5 * G.T @ G).detach().cpu().double().numpy()
    sigma2 = torch.as_tensor(_complementarity(M, q), dtype=theta.dtype, device=theta.device)
    return sigma2, G, g


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


class CentralFlow(Flow):
    r"""The central flow (see :func:`central_flow`), integrated by explicit Euler.

    Tracks the top ``num_eigs`` eigenpairs with warm-started Lanczos at every
    evaluation. Records, in ``History.extras``, ``sigma2`` (the total
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
    """

    integrator = "euler"

    def __init__(self, lr, *, num_eigs=3, tau=1.0, eig_tol=1e-6):
        super().__init__(lr)
        self.num_eigs = check_int("num_eigs", num_eigs, low=1, high=8)
        self.tau = check_positive("tau", tau)
        self.eig_tol = check_real("eig_tol", eig_tol, low=0.0, high=1.0, low_open=True, high_open=True)
        self._vectors = None
        self._observed = None  # (point, velocity) from observe, reused by the next velocity call there

    def start(self, problem, theta):
        self._vectors = None
        self._observed = None
        return theta

    def _field(self, problem, theta):
        """(eigenvalues, sigma2, velocity, loss) at ``theta``: one Hessian operator for the eigenpairs and ∇λ_i."""
        op = HessianOperator(problem, theta)
        k = min(self.num_eigs, theta.numel())
        eig = top_eigenpairs(problem, theta, k=k, tol=self.eig_tol, init=self._vectors, operator=op)
        self._vectors = eig.vectors
        sigma2, G, g = edge_covariance(problem, theta, self.lr, eig.values, eig.vectors, tau=self.tau, operator=op)
        return eig.values, sigma2, _central_velocity(self.lr, g, G, sigma2), float(op.value)

    def velocity(self, problem, theta):
        if self._observed is not None and self._observed[0] is theta:  # computed by observe at this very point
            return self._observed[1]
        return self._field(problem, theta)[2]

    def observe(self, problem, state):
        values, sigma2, velocity, loss = self._field(problem, state)
        self._observed = (state, velocity)
        return {"sigma2": float(sigma2.sum()), "predicted_loss": loss + 0.5 * float(sigma2 @ values)}

    @property
    def label(self):
        return f"central flow (lr={self.lr:g})"


# ---------------------------------------------------------------------------
# Edge Flow (after Marion 2026): center, direction and magnitude
# ---------------------------------------------------------------------------
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
    """

    def __init__(self, lr, *, eig_tol=1e-6, substeps=1):
        super().__init__(lr)
        self.eig_tol = check_real("eig_tol", eig_tol, low=0.0, high=1.0, low_open=True, high_open=True)
        self.substeps = check_int("substeps", substeps, low=1)

    def start(self, problem, theta):
        eig = top_eigenpairs(problem, theta, k=1, tol=self.eig_tol)
        u, S = eig.vectors[:, 0], float(eig.values[0])
        _, g = problem.value_and_grad(theta)
        offset = float(u @ g) / S if S > 0 else 0.0
        floor = torch.finfo(theta.dtype).eps * (1.0 + float(theta.norm()))
        return EdgeState(theta - offset * u, u, max(abs(offset), floor), 1.0 if offset >= 0 else -1.0, S, S)

    def point(self, state):
        return state.x

    def advance(self, problem, state, sharpness, *, alpha, max_substep):
        return edge_flow_step(problem, state, self.lr, substeps=self.substeps)

    def observe(self, problem, state):
        return {"magnitude": state.a, "curvature": state.curvature, "rayleigh": state.rayleigh}

    @property
    def label(self):
        if self.substeps == 1:
            return f"Edge Flow (lr={self.lr:g})"
        return f"Edge Flow (lr={self.lr:g}, {self.substeps} substeps)"


def rk4_step(velocity, theta, h):
    """One classical Runge-Kutta step of size ``h`` for ``dθ/dt = velocity(θ)``."""
    k1 = velocity(theta)
    k2 = velocity(theta + 0.5 * h * k1)
    k3 = velocity(theta + 0.5 * h * k2)
    k4 = velocity(theta + h * k3)
    return theta + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)


def solve(
    problem,
    flow,
    steps,
    *,
    alpha=0.5,
    max_substep=1.0,
    measure_every=None,
    num_eigs=1,
    eig_tol=1e-3,
    theta0=None,
    save_every=None,
    divergence_factor=1e6,
    device=None,
    dtype=None,
    seed=0,
    progress=True,
):
    r"""Integrate ``flow`` from ``problem.theta0`` up to time ``steps`` (in GD steps).

    Each unit of time is one call of the flow's :meth:`Flow.advance`. For a
    vector field that is Runge-Kutta 4 (explicit Euler for
    :class:`CentralFlow`) with a curvature-adapted step: the substep is
    :math:`h = \min(\alpha / r, h_{\max})`, where :math:`r` is the flow's
    :meth:`Flow.rate` (for gradient flow :math:`\eta S`, with ``S`` the
    sharpness at the last measurement, taken at least every
    ``measure_every`` steps, warm-started). The stiffest direction decays at
    rate :math:`r`, so ``alpha`` sets the accuracy (RK4 is stable up to
    :math:`h r \approx 2.8`; its error per substep is about
    :math:`\alpha^5/120` relative).

    The loss is recorded at every integer time, so the history lines up
    step by step with a GD run of the same ``lr``.

    Parameters
    ----------
    problem : Problem
    flow : Flow
        E.g. ``GradientFlow(lr=0.1)``.
    steps : int
        Final time, in GD steps.
    alpha : float
        Substep times curvature, in (0, 2.5].
    max_substep : float
        Largest substep, in GD steps.
    measure_every, num_eigs, eig_tol, theta0, save_every, divergence_factor, device, dtype, seed, progress :
        As in :func:`eoslab.run`. The sharpness is measured for step-size
        control even when ``num_eigs=0``; it is recorded only if ``num_eigs > 0``.

    Returns
    -------
    History
        ``step`` holds the integer times. For a complex flow
        (:class:`PrincipalFlow`) everything recorded is the real part.
    """
    if not isinstance(flow, Flow):
        raise TypeError(f"flow must be an eoslab Flow, got {type(flow).__name__}")
    alpha = check_real("alpha", alpha, low=0.0, high=2.5, low_open=True)
    max_substep = check_real("max_substep", max_substep, low=0.0, high=1.0, low_open=True)
    recorder = Recorder(problem, flow, steps, measure_every=measure_every, num_eigs=num_eigs, eig_tol=eig_tol,
                        save_every=save_every, divergence_factor=divergence_factor, seed=seed,
                        device=device, dtype=dtype, progress=progress, always_measure=True)
    problem = recorder.problem
    state = flow.start(problem, recorder.start(theta0))
    extras = {}
    for t in range(recorder.steps + 1):
        theta = flow.point(state)
        loss, grad = problem.value_and_grad(theta)
        if not recorder.record(t, theta, loss, grad):
            break
        for key, value in flow.observe(problem, state).items():
            extras.setdefault(key, []).append(float(value))
        if t == recorder.steps:
            break
        state = flow.advance(problem, state, recorder.sharpness, alpha=alpha, max_substep=max_substep)
    history = recorder.history()
    history.extras = {key: np.asarray(values) for key, values in extras.items()}
    return history


def compare(problem, methods, steps, *, save_every=1, **kwargs):
    r"""Run optimizers and flows side by side from the same start.

    Parameters
    ----------
    problem : Problem
    methods : list or dict
        :class:`~eoslab.optim.Optimizer` and :class:`Flow` objects (a dict
        gives them labels; a list uses each method's ``label``).
    steps : int
    save_every : int
        Parameter snapshots for distances and paths (default every step).
    **kwargs :
        Passed to :func:`eoslab.run` and :func:`solve` (``measure_every``,
        ``num_eigs``, ``device``, ``dtype``, ``progress``, ...); ``alpha`` and
        ``max_substep`` go to the flows only.

    Returns
    -------
    dict
        label -> :class:`~eoslab.runs.History`, ready for
        :func:`~eoslab.plotting.plot_history`.

    Examples
    --------
    >>> from eoslab.optim import GD
    >>> from eoslab.problems import quadratic
    >>> q = quadratic([1.5], dtype="float64")
    >>> runs = compare(q, [GD(1.0), PrincipalFlow(1.0)], steps=3, progress=False, alpha=0.05)
    >>> [round(float(h.snapshots[3, 0]), 6) for h in runs.values()]
    [-0.125, -0.125]
    """
    from .optim import Optimizer
    from .runs import run

    items = list(methods.items()) if isinstance(methods, dict) else [(getattr(m, "label", m), m) for m in methods]
    flow_only = {k: kwargs.pop(k) for k in ("alpha", "max_substep") if k in kwargs}
    kwargs.setdefault("progress", False)
    out = {}
    for label, method in items:
        if isinstance(method, Flow):
            out[label] = solve(problem, method, steps, save_every=save_every, **kwargs, **flow_only)
        elif isinstance(method, Optimizer):
            out[label] = run(problem, method, steps, save_every=save_every, **kwargs)
        else:
            raise TypeError(f"methods must be optimizers or flows, got {type(method).__name__}")
    return out


# ---------------------------------------------------------------------------
# Drift along the manifold of minimizers (Arora, Li, Panigrahi 2022), for the toy
# ---------------------------------------------------------------------------
def toy_manifold_flow(x0, tau, method):
    r"""The limiting drift of normalized GD or GD on :math:`\sqrt{L}` along :math:`\Gamma = \{y = 0\}` for
    :math:`L(x, y) = (1 + x^2)\,y^2`, in the slow time :math:`\tau = \eta^2 t`.

    On :math:`\Gamma` the sharpness is :math:`\lambda_1 = 2(1 + x^2)`. The limiting
    flows, :math:`\dot X = -\tfrac14\,\partial\Phi\,\nabla\log\lambda_1` for
    normalized GD and :math:`\dot X = -\tfrac18\,\partial\Phi\,\nabla\lambda_1` for GD
    on :math:`\sqrt L` (:math:`\partial\Phi` projects onto the tangent space of
    :math:`\Gamma`, here the :math:`x` axis), become

    .. math::
        \text{normalized: } \frac{\mathrm{d}x}{\mathrm{d}\tau} = -\frac{x}{2(1 + x^2)}, \qquad
        \sqrt{L}\text{: } \frac{\mathrm{d}x}{\mathrm{d}\tau} = -\frac{x}{2},

    solved in closed form: :math:`x^2 + \log x^2 = x_0^2 + \log x_0^2 - \tau` (by
    Newton's method on :math:`\log x^2`) and :math:`x = x_0 e^{-\tau/2}`.

    Parameters
    ----------
    x0 : float
        Start on :math:`\Gamma`.
    tau : float or array
        Slow times :math:`\eta^2 t`, >= 0.
    method : {"normalized", "sqrt"}

    Examples
    --------
    >>> round(float(toy_manifold_flow(2.0, 2.0, "sqrt")), 6), round(float(toy_manifold_flow(2.0, 0.0, "normalized")), 6)
    (0.735759, 2.0)
    """
    method = check_choice("method", method, ("normalized", "sqrt"))
    tau = np.asarray(tau, dtype=float)
    if (tau < 0).any():
        raise ValueError("tau must be >= 0")
    x0 = float(x0)
    if x0 == 0.0:
        return np.zeros_like(tau)
    if method == "sqrt":
        return x0 * np.exp(-tau / 2)
    target = x0**2 + math.log(x0**2) - tau
    w = np.full_like(tau, math.log(x0**2))  # w = log x², root of e^w + w = target
    for _ in range(200):  # Newton from the right: e^w + w is convex and increasing, so it converges monotonically
        w_new = w - (np.exp(w) + w - target) / (np.exp(w) + 1)
        done = np.allclose(w_new, w, rtol=0, atol=1e-15)
        w = w_new
        if done:
            break
    return math.copysign(1.0, x0) * np.exp(w / 2)
