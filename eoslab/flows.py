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

import torch

from ._validation import check_int, check_positive, check_real, check_vector
from .curvature import HessianOperator, hessian
from .runs import Recorder

__all__ = [
    "Flow", "GradientFlow", "IGRFlow", "PrincipalFlow",
    "gradient_flow", "igr_flow", "principal_flow", "principal_coefficients",
    "solve", "compare", "rk4_step",
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
    """A vector field ``dθ/dt = velocity(problem, θ)`` in step units for step size ``lr``.

    Subclasses define :meth:`velocity`; :meth:`rate` bounds how fast the
    field changes (the stiffness), which sets :func:`solve`'s substep.
    ``complex = True`` marks flows whose state is complex (only the real part
    is recorded).
    """

    complex = False

    def __init__(self, lr):
        self.lr = check_positive("lr", lr)

    def velocity(self, problem, theta):
        raise NotImplementedError

    def rate(self, problem, theta, sharpness):
        r"""An upper bound on the decay rate of the linearized field, per unit time (:math:`\eta S` by default)."""
        return self.lr * max(sharpness, 0.0)

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

    Runge-Kutta 4 with a curvature-adapted step: the substep is
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
    theta = recorder.start(theta0)
    if flow.complex:
        theta = theta.to(torch.complex128 if theta.dtype == torch.float64 else torch.complex64)
    velocity = lambda th: flow.velocity(problem, th)  # noqa: E731
    for t in range(recorder.steps + 1):
        real = theta.real.contiguous() if flow.complex else theta
        loss, grad = problem.value_and_grad(real)
        if not recorder.record(t, real, loss, grad) or t == recorder.steps:
            break
        rate = flow.rate(problem, real, recorder.sharpness)
        substep = min(alpha / rate, max_substep) if rate > 0 else max_substep
        n_sub = max(1, math.ceil(1.0 / substep - 1e-9))
        for _ in range(n_sub):  # equal substeps that land exactly on the next integer time
            theta = rk4_step(velocity, theta, 1.0 / n_sub)
    return recorder.history()


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
