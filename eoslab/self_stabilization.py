r"""Self-stabilization: why gradient descent does not diverge at the Edge of Stability.

After Damian, Nichani and Lee (ICLR 2023). Near a reference point with
sharpness :math:`S`, top eigenvector :math:`u` and sharpness gradient
:math:`\nabla S = \nabla^3 L[u, u]` (see :func:`eoslab.curvature.taylor_center`),
an oscillation of size :math:`x` along :math:`u` moves the weights by
:math:`-\tfrac12\eta x^2\nabla S`, which lowers the sharpness. This module
holds the models built on that observation:

- :func:`two_variable_model`, the map
  :math:`x_{t+1} = -(1+\eta y_t)x_t,\ y_{t+1} = y_t + \eta(\alpha - \tfrac12\beta x_t^2)`
  with :math:`y = S - 2/\eta`, and :func:`stages`, its four stages;
- :func:`project_to_stable_set`, the projection onto
  :math:`\mathcal M = \{S(\theta)\le 2/\eta,\ u\cdot\nabla L(\theta) = 0\}`;
- :func:`constrained_step` (projected GD, the *constrained trajectory*
  :math:`\theta^\dagger`) and :func:`predicted_step` (the *predicted dynamics*
  of the displacement :math:`v = \theta - \theta^\dagger`);
- :func:`find_edge`, which runs GD until the sharpness first reaches
  :math:`2/\eta`; :func:`seed_oscillation`, which replaces the oscillation
  along :math:`u` at that point (rounding noise after a single-precision
  run) by a chosen one; and :func:`track`, which runs GD, gradient flow, the
  constrained trajectory and the predicted dynamics in lockstep from there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm.auto import tqdm

from ._validation import check_int, check_positive, check_real, check_vector
from .curvature import HessianOperator, TaylorCenter, taylor_center, top_eigenpairs
from .flows import GradientFlow
from .problems import Problem

__all__ = [
    "TwoVariableTrajectory", "two_variable_model", "stages", "STAGE_NAMES",
    "project_to_stable_set", "constrained_step", "predicted_step",
    "EdgeCrossing", "find_edge", "SeededStart", "seed_oscillation", "Lockstep", "track",
]

STAGE_NAMES = {
    1: "progressive sharpening",
    2: "blow-up",
    3: "self-stabilization",
    4: "return to stability",
}


# ---------------------------------------------------------------------------
# The two-variable model
# ---------------------------------------------------------------------------
def stages(x, y, alpha, beta):
    r"""The stage (1-4) of each point of a two-variable trajectory.

    Read off the two signs that drive the map: ``y`` (is the sharpness
    above :math:`2/\eta`, so that :math:`|x|` grows?) and
    :math:`\tfrac12\beta x^2 - \alpha` (does the oscillation push the
    sharpness down faster than progressive sharpening pushes it up?).

    ==========  ==========================  =========  ============================
    stage       name                        ``y``      :math:`\tfrac12\beta x^2`
    ==========  ==========================  =========  ============================
    1           progressive sharpening      < 0        < α
    2           blow-up                     >= 0       < α
    3           self-stabilization          >= 0       >= α
    4           return to stability         < 0        >= α
    ==========  ==========================  =========  ============================
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    strong = 0.5 * beta * x**2 >= alpha
    above = y >= 0
    return np.where(above, np.where(strong, 3, 2), np.where(strong, 4, 1))


@dataclass
class TwoVariableTrajectory:
    """A run of :func:`two_variable_model`.

    Attributes
    ----------
    x, y : ndarray
        The oscillation along ``u`` and the sharpness excess ``S - 2/η``, steps ``0..T``.
    stage : ndarray of int
        :func:`stages` of each step.
    lr, alpha, beta : float
    diverged_at : int or None
        First step at which ``x`` or ``y`` overflowed.
    """

    x: np.ndarray
    y: np.ndarray
    stage: np.ndarray
    lr: float
    alpha: float
    beta: float
    diverged_at: int | None = None

    @property
    def delta(self):
        r"""The equilibrium oscillation size :math:`\delta = \sqrt{2\alpha/\beta}`."""
        return math.sqrt(2 * self.alpha / self.beta)

    @property
    def step(self):
        return np.arange(len(self.x))

    @property
    def label(self):
        return f"two-variable model (lr={self.lr:g}, alpha={self.alpha:g}, beta={self.beta:g})"

    def stage_starts(self):
        """``(step, stage)`` for each step at which the stage changes (and step 0)."""
        change = np.flatnonzero(np.diff(self.stage)) + 1
        starts = np.concatenate([[0], change])
        return [(int(t), int(self.stage[t])) for t in starts]

    def cycles(self):
        """Steps at which ``y`` crosses 0 upwards: each begins a blow-up, so consecutive ones bound a cycle."""
        return np.flatnonzero((self.y[:-1] < 0) & (self.y[1:] >= 0)) + 1

    def mean_x2(self, start=None, stop=None):
        r"""The average of :math:`x_t^2` over ``start <= t < stop`` (default: the last complete cycle)."""
        if start is None and stop is None:
            ups = self.cycles()
            if len(ups) < 2:
                raise ValueError("the trajectory has no complete cycle: run it longer or pass start/stop")
            start, stop = ups[-2], ups[-1]
        return float(np.mean(self.x[start:stop] ** 2))


def two_variable_model(lr, alpha, beta, steps, *, x0=0.01, y0=-1.0):
    r"""Iterate the two-variable model of self-stabilization.

    .. math::
        x_{t+1} = -(1 + \eta y_t)\,x_t, \qquad
        y_{t+1} = y_t + \eta\left(\alpha - \tfrac12\beta x_t^2\right),

    where :math:`x` is the displacement along the top eigenvector and
    :math:`y = S - 2/\eta` the sharpness above the threshold. The first
    equation is GD on the quadratic along :math:`u` (its multiplier is
    :math:`1 - \eta S`); the second says the sharpness grows at the
    progressive-sharpening rate :math:`\eta\alpha` and falls by
    :math:`\tfrac12\eta\beta x^2` because of the oscillation.

    Parameters
    ----------
    lr : float
        Step size η > 0.
    alpha : float
        Progressive-sharpening rate, > 0.
    beta : float
        Self-stabilization strength :math:`\|\nabla S_\perp\|^2`, > 0.
    steps : int
        Number of steps.
    x0, y0 : float
        Start: a small oscillation, below the threshold by default.

    Returns
    -------
    TwoVariableTrajectory

    Examples
    --------
    >>> traj = two_variable_model(lr=0.01, alpha=1.0, beta=1.0, steps=3000)
    >>> [name for _, name in traj.stage_starts()[:4]]
    [1, 2, 3, 4]
    >>> round(traj.mean_x2() / traj.delta**2, 2)
    1.0
    """
    lr = check_positive("lr", lr)
    alpha = check_positive("alpha", alpha)
    beta = check_positive("beta", beta)
    steps = check_int("steps", steps, low=1)
    x0 = check_real("x0", x0)
    y0 = check_real("y0", y0)
    xs = np.empty(steps + 1)
    ys = np.empty(steps + 1)
    x, y = x0, y0
    diverged_at = None
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps + 1):
            if not (math.isfinite(x) and math.isfinite(y)) or abs(x) > 1e150:
                diverged_at = t
                break
            xs[t], ys[t] = x, y
            x, y = -(1.0 + lr * y) * x, y + lr * (alpha - 0.5 * beta * x * x)
    n = steps + 1 if diverged_at is None else diverged_at
    xs, ys = xs[:n], ys[:n]
    return TwoVariableTrajectory(xs, ys, stages(xs, ys, alpha, beta), lr, alpha, beta, diverged_at)


# ---------------------------------------------------------------------------
# The stable set, the constrained trajectory and the predicted dynamics
# ---------------------------------------------------------------------------
def project_to_stable_set(loss, theta, lr, u=None, *, iterations=3, tol=1e-8, center=None):
    r"""Project ``theta`` onto :math:`\mathcal M = \{S \le 2/\eta,\ u\cdot\nabla L = 0\}`.

    A few linearized steps, each solving both constraints to first order:

    .. math::
        \theta \leftarrow \theta + a\,u - b\,\frac{\nabla S_\perp}{\|\nabla S_\perp\|^2},
        \qquad a = -\frac{u\cdot\nabla L}{S},
        \qquad b = \max\!\left(0,\ S + a\,(u\cdot\nabla S) - \tfrac{2}{\eta}\right).

    The step ``a u`` is a Newton step along ``u`` that zeroes the gradient
    component there; the step along :math:`\nabla S_\perp` (orthogonal to
    ``u``) then brings the sharpness, as it will be after the Newton step,
    down to :math:`2/\eta`. The term :math:`a\,(u\cdot\nabla S)` is our
    addition to the authors' rule: without it a point off the valley floor
    is pushed past the boundary of :math:`\mathcal M` into its interior.

    Parameters
    ----------
    loss : callable
    theta : torch.Tensor
    lr : float
    u : torch.Tensor, optional
        Warm start for the top eigenvector.
    iterations : int
        Linearized steps (each costs one :func:`~eoslab.curvature.taylor_center`).
    tol : float
        Eigen-solver residual tolerance.
    center : TaylorCenter, optional
        A center already computed at ``theta``.

    Returns
    -------
    TaylorCenter
        At the projected point.
    """
    lr = check_positive("lr", lr)
    iterations = check_int("iterations", iterations, low=0)
    c = taylor_center(loss, theta, u, tol=tol) if center is None else center
    for _ in range(iterations):
        g_perp = c.grad_sharpness_perp
        a = -float(c.u @ c.grad) / c.sharpness
        step = a * c.u
        excess = c.sharpness + a * float(c.u @ c.grad_sharpness) - 2.0 / lr
        norm2 = float(g_perp @ g_perp)
        if excess > 0 and norm2 > 0:
            step = step - excess / norm2 * g_perp
        c = taylor_center(loss, c.theta + step, c.u, tol=tol)
    return c


def constrained_step(loss, center, lr, *, iterations=3, tol=1e-8):
    r"""One step of the constrained trajectory (projected GD):
    :math:`\theta^\dagger_{t+1} = \mathrm{proj}_{\mathcal M}(\theta^\dagger_t - \eta\nabla L(\theta^\dagger_t))`.

    ``center`` is the :class:`~eoslab.curvature.TaylorCenter` at
    :math:`\theta^\dagger_t`; returns the one at :math:`\theta^\dagger_{t+1}`.
    """
    lr = check_positive("lr", lr)
    moved = center.theta - lr * center.grad
    return project_to_stable_set(loss, moved, lr, center.u, iterations=iterations, tol=tol)


def predicted_step(loss, v, center, lr, *, operator=None):
    r"""One step of the predicted dynamics of the displacement :math:`v = \theta - \theta^\dagger`.

    .. math::
        v_{t+1} = v_t - \eta\left[H(\theta^\dagger_t)\,v_t + x_t y_t\,u_t
        + \tfrac12\left(x_t^2 - \delta_t^2\right)\nabla S_{\perp,t}\right],
        \qquad x_t = u_t\cdot v_t,\ y_t = \nabla S_{\perp,t}\cdot v_t,

    where :math:`u_t`, :math:`\nabla S_{\perp,t}` and
    :math:`\delta_t = \sqrt{2\alpha_t/\beta_t}` are taken at
    :math:`\theta^\dagger_t` (``center``). It is the gradient of the cubic
    Taylor model of the loss around :math:`\theta^\dagger_t` along ``v``,
    minus the gradient step the constrained trajectory itself takes.
    """
    lr = check_positive("lr", lr)
    op = HessianOperator(loss, center.theta) if operator is None else operator
    g_perp = center.grad_sharpness_perp
    x = v @ center.u
    y = v @ g_perp
    force = op.matvec(v) + x * y * center.u + 0.5 * (x * x - center.delta**2) * g_perp
    return v - lr * force


# ---------------------------------------------------------------------------
# Running up to the edge, then in lockstep
# ---------------------------------------------------------------------------
@dataclass
class EdgeCrossing:
    """Where :func:`find_edge` stopped.

    Attributes
    ----------
    step : int
        The first GD step at which ``S >= 2/η`` (``None`` if never reached).
    theta : torch.Tensor
        The iterate at that step (or the last one).
    u : torch.Tensor
        Its top eigenvector.
    sharpness : float
    checked_step, checked_sharpness : ndarray
        The sharpness measurements taken on the way.
    """

    step: int | None
    theta: torch.Tensor
    u: torch.Tensor
    sharpness: float
    checked_step: np.ndarray
    checked_sharpness: np.ndarray


def find_edge(problem, lr, max_steps, *, check_every=20, tol=1e-4, device=None, dtype=None, progress=True):
    r"""Run GD until the sharpness first reaches :math:`2/\eta`.

    The sharpness is measured every ``check_every`` steps (warm-started
    Lanczos); once a measurement reaches the threshold, GD restarts from
    the previous measurement and checks every step, so the returned step
    is the first one with :math:`S \ge 2/\eta`.

    Parameters
    ----------
    problem : Problem
    lr : float
    max_steps : int
        Give up after this many steps (``step`` is then ``None``).
    check_every : int
    tol : float
        Eigen-solver tolerance.
    device, dtype :
        Where to run (default: the problem's).
    progress : bool
        Show a progress bar.

    Returns
    -------
    EdgeCrossing
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be an eoslab Problem, got {type(problem).__name__}")
    lr = check_positive("lr", lr)
    max_steps = check_int("max_steps", max_steps, low=1)
    check_every = check_int("check_every", check_every, low=1)
    problem = problem.to(device=device, dtype=dtype)
    threshold = 2.0 / lr
    theta, u = problem.theta0.detach().clone(), None
    steps, values = [], []
    saved = (0, theta, None)
    stride, t = check_every, 0
    bar = tqdm(total=max_steps, disable=not progress, desc="GD to the edge", leave=False)
    while t <= max_steps:
        if t % stride == 0 or stride == 1:
            eig = top_eigenpairs(problem, theta, k=1, tol=tol, init=u)
            u, s = eig.vectors[:, 0], float(eig.values[0])
            steps.append(t)
            values.append(s)
            bar.set_postfix(sharpness=f"{s:.4g}", refresh=False)
            if s >= threshold:
                if stride == 1:
                    bar.close()
                    return EdgeCrossing(t, theta, u, s, np.array(steps), np.array(values))
                t, theta, u = saved  # back to the last check below the threshold; go one step at a time
                stride = 1
                continue
            saved = (t, theta, u)
        _, grad = problem.value_and_grad(theta)
        if not torch.isfinite(grad).all():
            break
        theta = theta - lr * grad
        t += 1
        bar.update(1)
    bar.close()
    return EdgeCrossing(None, theta, u, values[-1], np.array(steps), np.array(values))


@dataclass
class SeededStart:
    r"""Where :func:`seed_oscillation` put the start.

    Attributes
    ----------
    theta : torch.Tensor
        The start: the valley floor of the given point, displaced by ``x0`` along ``u``.
    center : TaylorCenter
        At the valley floor (:math:`u\cdot\nabla L = 0` there), so ``center.u`` is the ``u`` of the seed.
    x0 : float
        The chosen oscillation.
    x_before : float
        The oscillation the given point had, :math:`(u\cdot\nabla L)/S` there: its distance along
        ``u`` from the valley floor, by a Newton step.
    """

    theta: torch.Tensor
    center: TaylorCenter
    x0: float
    x_before: float


def _problem_and_point(problem, theta, device, dtype):
    """The problem moved to ``device``/``dtype`` and ``theta`` checked against it and moved with it."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be an eoslab Problem, got {type(problem).__name__}")
    problem = problem.to(device=device, dtype=dtype)
    return problem, check_vector("theta", theta, size=problem.num_params).detach().to(problem.theta0)


def seed_oscillation(problem, theta, x0, *, u=None, iterations=3, tol=1e-10, device=None, dtype="float64"):
    r"""Put ``theta`` on its valley floor along the top eigenvector and displace it by ``x0`` along it.

    The oscillation along :math:`u` at the first step above :math:`2/\eta`
    is whatever the run up to it left there; after thousands of
    single-precision steps it is rounding noise, a different number on each
    computer, and the blow-up that follows starts from it. This function
    replaces it by a chosen one. Newton steps along :math:`u`,
    :math:`\theta \leftarrow \theta - \frac{u\cdot\nabla L}{S}\,u`, bring the point
    to the floor of the valley along :math:`u` (where :math:`u\cdot\nabla L = 0`);
    the start is that floor point plus :math:`x_0 u`. The sign of :math:`u`
    is fixed by making its largest entry (in absolute value) positive, so
    that ``x0`` means the same on every computer.

    Parameters
    ----------
    problem : Problem
    theta : torch.Tensor
        Typically :func:`find_edge`'s point.
    x0 : float
        The oscillation to seed.
    u : torch.Tensor, optional
        Warm start for the top eigenvector (e.g. :attr:`EdgeCrossing.u`).
    iterations : int
        Newton steps (each costs one :func:`~eoslab.curvature.taylor_center`).
    tol : float
        Eigen-solver residual tolerance.
    device, dtype :
        Where to compute (default ``float64``, the precision of :func:`track`).

    Returns
    -------
    SeededStart
    """
    x0 = check_real("x0", x0)
    iterations = check_int("iterations", iterations, low=1)
    problem, theta = _problem_and_point(problem, theta, device, dtype)
    c = taylor_center(problem, theta, None if u is None else u.detach().to(problem.theta0), tol=tol)
    if float(c.u[c.u.abs().argmax()]) < 0:
        c = replace(c, u=-c.u)  # grad_sharpness = ∇³L[u, u] does not change sign
    x_before = float(c.u @ c.grad) / c.sharpness
    for _ in range(iterations):
        c = taylor_center(problem, c.theta - (float(c.u @ c.grad) / c.sharpness) * c.u, c.u, tol=tol)
    return SeededStart(theta=c.theta + x0 * c.u, center=c, x0=x0, x_before=x_before)


@dataclass
class Lockstep:
    r"""What :func:`track` recorded, one entry per step ``0..T``.

    For each process ``p`` in ``gd`` (gradient descent), ``pred`` (the
    predicted dynamics :math:`\theta^\dagger + v`), ``dagger`` (the
    constrained trajectory) and ``gf`` (gradient flow), the attributes
    ``p_loss`` and ``p_sharpness`` hold the loss and sharpness. Also:

    Attributes
    ----------
    gd_x, pred_x : ndarray
        The oscillation :math:`x = u^\dagger\cdot(\theta - \theta^\dagger)`.
    gd_dist, pred_dist : ndarray
        :math:`\|\theta - \theta^\dagger\|`.
    gd_gf_dist : ndarray
        :math:`\|\theta_{GD} - \theta_{GF}\|`.
    alpha, beta, delta : ndarray
        At :math:`\theta^\dagger_t`.
    lr : float
    diverged_at : int or None
        First step at which a process left the finite numbers.
    """

    step: np.ndarray
    lr: float
    gd_loss: np.ndarray
    gd_sharpness: np.ndarray
    gd_x: np.ndarray
    gd_dist: np.ndarray
    pred_loss: np.ndarray
    pred_sharpness: np.ndarray
    pred_x: np.ndarray
    pred_dist: np.ndarray
    dagger_loss: np.ndarray
    dagger_sharpness: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    delta: np.ndarray
    gf_loss: np.ndarray
    gf_sharpness: np.ndarray
    gd_gf_dist: np.ndarray
    diverged_at: int | None = None

    @property
    def threshold(self):
        return 2.0 / self.lr


def track(problem, lr, theta, steps, *, iterations=3, eig_tol=1e-8, gradient_flow=True, device=None,
          dtype="float64", progress=True):
    r"""Run GD, gradient flow, the constrained trajectory and the predicted dynamics in lockstep.

    All four start from ``theta`` (typically :func:`find_edge`'s point):
    GD and gradient flow from ``theta`` itself, the constrained trajectory
    from its projection :math:`\theta^\dagger_0 = \mathrm{proj}_{\mathcal M}(\theta)`,
    and the predicted dynamics from :math:`v_0 = \theta - \theta^\dagger_0`.
    Each step records the losses, sharpnesses, oscillations and distances
    of :class:`Lockstep`. The default ``float64`` follows the authors'
    protocol: single precision blurs the third derivatives.

    Parameters
    ----------
    problem : Problem
    lr : float
    theta : torch.Tensor
        The start.
    steps : int
    iterations : int
        Linearized projection steps per constrained step.
    eig_tol : float
        Eigen-solver residual tolerance (all eigen-solves are warm-started).
    gradient_flow : bool
        Also integrate gradient flow (costs a few gradients per step).
    device, dtype :
        Where to run.
    progress : bool

    Returns
    -------
    Lockstep
    """
    lr = check_positive("lr", lr)
    steps = check_int("steps", steps, low=1)
    problem, theta = _problem_and_point(problem, theta, device, dtype)

    dagger = project_to_stable_set(problem, theta, lr, iterations=iterations, tol=eig_tol)
    flow = GradientFlow(lr)  # RK4 with substeps of at most 0.5 / (lr S)
    gd, v, gf = theta.clone(), theta - dagger.theta, theta.clone()
    u_gd = u_pred = u_gf = dagger.u
    s_gf = dagger.sharpness
    keys = ["gd_loss", "gd_sharpness", "gd_x", "gd_dist", "pred_loss", "pred_sharpness", "pred_x", "pred_dist",
            "dagger_loss", "dagger_sharpness", "alpha", "beta", "delta", "gf_loss", "gf_sharpness", "gd_gf_dist"]
    rec = {k: [] for k in keys}
    diverged_at = None
    for t in tqdm(range(steps + 1), disable=not progress, desc="lockstep", leave=False):
        pred = dagger.theta + v
        gd_loss, gd_grad = problem.value_and_grad(gd)
        values = [gd_loss, gd_grad, pred, v, gf]
        if not all(bool(torch.isfinite(z).all()) for z in values) or not math.isfinite(dagger.loss):
            diverged_at = t
            break
        e_gd = top_eigenpairs(problem, gd, tol=eig_tol, init=u_gd)
        e_pred = top_eigenpairs(problem, pred, tol=eig_tol, init=u_pred)
        u_gd, u_pred = e_gd.vectors[:, 0], e_pred.vectors[:, 0]
        rec["gd_loss"].append(float(gd_loss))
        rec["gd_sharpness"].append(float(e_gd.values[0]))
        rec["gd_x"].append(float(dagger.u @ (gd - dagger.theta)))
        rec["gd_dist"].append(float((gd - dagger.theta).norm()))
        rec["pred_loss"].append(float(problem(pred)))
        rec["pred_sharpness"].append(float(e_pred.values[0]))
        rec["pred_x"].append(float(dagger.u @ v))
        rec["pred_dist"].append(float(v.norm()))
        rec["dagger_loss"].append(dagger.loss)
        rec["dagger_sharpness"].append(dagger.sharpness)
        rec["alpha"].append(dagger.alpha)
        rec["beta"].append(dagger.beta)
        rec["delta"].append(dagger.delta)
        if gradient_flow:
            e_gf = top_eigenpairs(problem, gf, tol=eig_tol, init=u_gf)
            u_gf, s_gf = e_gf.vectors[:, 0], float(e_gf.values[0])
            rec["gf_loss"].append(float(problem(gf)))
            rec["gf_sharpness"].append(s_gf)
            rec["gd_gf_dist"].append(float((gd - gf).norm()))
        if t == steps:
            break
        gd = gd - lr * gd_grad
        v = predicted_step(problem, v, dagger, lr)
        if gradient_flow:
            gf = flow.advance(problem, gf, s_gf, alpha=0.5, max_substep=1.0)
        dagger = constrained_step(problem, dagger, lr, iterations=iterations, tol=eig_tol)
    n = len(rec["gd_loss"])
    arrays = {k: np.asarray(rec[k], dtype=float) if rec[k] else np.full(n, np.nan) for k in keys}
    return Lockstep(step=np.arange(n), lr=lr, diverged_at=diverged_at, **arrays)
