r"""Update rules on flat parameter vectors.

Each optimizer is a small object in the style of ``optax``: ``init(theta)``
returns its state, and ``update(theta, grad, state, ...)`` returns the next
point and the next state. Nothing is hidden in the object, so several
optimizers can be stepped in lockstep from one start, and a run can be
replayed exactly.

``threshold`` is the linear-stability threshold of the rule: the curvature
above which the rule diverges on a quadratic (``2/η`` for GD, from
:mod:`eoslab.thresholds`). Plots draw it as the dashed line the sharpness is
compared with.

Every optimizer is a :class:`~eoslab.methods.Method`: :func:`eoslab.run`
hands its :meth:`Optimizer.step` the gradient it computed at the current
point, and the rule's :meth:`~Optimizer.update` does the rest. A new update
rule goes here: subclass :class:`Optimizer` and write ``update`` (and
``init`` and ``threshold`` if it has a state or its own threshold).
"""
from __future__ import annotations

import math

import torch

from ._validation import check_beta, check_positive, check_real
from .curvature import hvp
from .methods import Method
from .thresholds import gd_threshold, heavy_ball_threshold, nesterov_threshold

__all__ = ["DAL", "GD", "HeavyBall", "Nesterov", "NormalizedGD", "OscillationCap", "Optimizer", "SqrtLossGD"]


class Optimizer(Method):
    """A discrete update rule: ``init(theta)`` gives its state, ``update(theta, grad, state)`` one step."""

    def init(self, theta, problem=None):
        """The optimizer state at the start of a run (``None`` for stateless rules)."""
        return None

    def step(self, problem, theta, state, info):
        """The :class:`~eoslab.methods.Method` step: :meth:`update` with the loop's gradient and batch loss."""
        return self.update(theta, info.grad, state, loss=info.loss, loss_fn=info.loss_fn)

    def update(self, theta, grad, state, *, loss=None, loss_fn=None):
        """One step: return ``(theta_next, state_next)``.

        ``loss`` (the value at ``theta``) and ``loss_fn`` (the loss being
        minimized, for rules that need more than the gradient) are passed by
        :func:`eoslab.run`.
        """
        raise NotImplementedError

    def step_size(self, state):
        """The step size the last update took (``lr`` for fixed-step rules); :func:`eoslab.run` records it."""
        return self.lr



class GD(Optimizer):
    r"""Gradient descent :math:`\theta \leftarrow \theta - \eta \nabla L(\theta)`.

    Stable on a quadratic iff every Hessian eigenvalue is below ``2/lr``.

    Examples
    --------
    >>> GD(lr=0.1).threshold
    20.0
    """

    def update(self, theta, grad, state, *, loss=None, loss_fn=None):
        return theta - self.lr * grad, state


class HeavyBall(Optimizer):
    r"""Polyak's heavy ball in PyTorch's convention: :math:`v \leftarrow \beta v + g`, :math:`\theta \leftarrow \theta - \eta v`.

    The same iteration as ``torch.optim.SGD(lr, momentum=beta)``. On a
    quadratic the characteristic polynomial of an eigendirection with
    curvature ``a`` is :math:`z^2 - (1 + \beta - \eta a) z + \beta`; it is stable
    iff :math:`a < 2(1 + \beta)/\eta`.

    Parameters
    ----------
    lr : float
        Step size, > 0.
    beta : float
        Momentum, in [0, 1).
    """

    def __init__(self, lr, beta):
        super().__init__(lr)
        self.beta = check_beta("beta", beta)

    def init(self, theta, problem=None):
        return torch.zeros_like(theta)

    def update(self, theta, grad, state, *, loss=None, loss_fn=None):
        v = self.beta * state + grad
        return theta - self.lr * v, v

    @property
    def threshold(self):
        return heavy_ball_threshold(self.lr, self.beta)

    @property
    def label(self):
        return f"{type(self).__name__}(lr={self.lr:g}, beta={self.beta:g})"


class Nesterov(HeavyBall):
    r"""Nesterov momentum in PyTorch's convention (``SGD(nesterov=True)``).

    :math:`v \leftarrow \beta v + g`, :math:`\theta \leftarrow \theta - \eta (g + \beta v)`.
    On a quadratic: :math:`z^2 - (1+\beta)(1-\eta a) z + \beta(1-\eta a)`, stable
    iff :math:`a < (2 + 2\beta)/(\eta (1 + 2\beta))`.
    """

    def update(self, theta, grad, state, *, loss=None, loss_fn=None):
        v = self.beta * state + grad
        return theta - self.lr * (grad + self.beta * v), v

    @property
    def threshold(self):
        return nesterov_threshold(self.lr, self.beta)


class _AdaptiveStep(Optimizer):
    """Rules whose step size changes every step: the state is the last effective step, recorded by ``run``."""

    def init(self, theta, problem=None):
        return math.nan

    def step_size(self, state):
        return state

    @property
    def threshold(self):
        """No fixed threshold: the effective step adapts (NaN); compare ``2/step_size`` with the sharpness."""
        return math.nan


class DAL(_AdaptiveStep):
    r"""Gradient descent with the drift-adjusted learning rate of Rosca et al. (2023).

    With :math:`g = \nabla L(\theta)`, each step uses

    .. math::
        \eta_t = \min\!\left(\frac{2}{(\|Hg\| / \|g\|)^p},\ c_{\max}\right),
        \qquad \theta \leftarrow \theta - \eta_t\, g .

    :math:`\mu = \|Hg\|/\|g\|` is how much the Hessian stretches the
    gradient: at least the curvature along ``g`` (the Rayleigh quotient
    :math:`g^\top Hg/\|g\|^2`) and at most :math:`\max_i|\lambda_i|`, equal to
    both when ``g`` is an eigenvector. With ``p = 1``, :math:`\eta_t\mu = 2`,
    so :math:`\eta_t S \ge 2` whenever :math:`\mu \le S`: the step is at or
    beyond its own edge. ``p = 0`` is a special case, not the formula (which
    would give a step of 2): plain GD with step ``lr`` (the authors'
    convention; ``lr`` is used only then). Larger ``p`` trades speed for
    stability. Each step costs one extra Hessian-vector product.

    Parameters
    ----------
    lr : float
        Step size for ``p = 0``.
    p : float
        The power, >= 0.
    max_scale : float
        The cap :math:`c_{\max}` on the step size (the authors use 5).

    Examples
    --------
    >>> import torch
    >>> from eoslab.problems import quadratic
    >>> q = quadratic([4.0, 1.0], theta0=[1.0, 0.0])   # g along the eigenvalue 4: ||Hg||/||g|| = 4
    >>> theta, step = DAL(lr=0.1, p=1).update(q.theta0, q.A @ q.theta0, None, loss_fn=q)
    >>> step
    0.5
    """

    def __init__(self, lr, p=1.0, max_scale=5.0):
        super().__init__(lr)
        self.p = check_real("p", p, low=0.0)
        self.max_scale = check_positive("max_scale", max_scale)

    @property
    def needs_hessian(self):
        """With ``p > 0``, :func:`eoslab.run` hands each step the gradient's graph for its product ``Hg``."""
        return self.p > 0

    def init(self, theta, problem=None):
        return self.lr if self.p == 0 else math.nan

    def step(self, problem, theta, state, info):
        """The loop's step: ``Hg`` from the operator whose graph gave the gradient, when the loop built one."""
        return self.update(theta, info.grad, state, loss=info.loss, loss_fn=info.loss_fn, operator=info.operator)

    def update(self, theta, grad, state, *, loss=None, loss_fn=None, operator=None):
        """One step; ``operator``, a :class:`~eoslab.curvature.HessianOperator` at ``theta``, replaces ``loss_fn``."""
        if self.p == 0:
            return theta - self.lr * grad, self.lr
        if loss_fn is None and operator is None:
            raise ValueError("DAL with p > 0 needs loss_fn, the loss being minimized, for its Hessian-vector product")
        g_norm = float(grad.norm())
        Hg = (operator.require_at(theta).matvec(grad) if operator is not None else hvp(loss_fn, theta, grad)) \
            if g_norm > 0 else None
        curvature = float((Hg / g_norm).norm()) if g_norm > 0 else 0.0  # divided first: Hg alone may overflow
        if not math.isfinite(curvature):  # the run has left the finite numbers: a NaN step, which run reports
            return theta * math.nan, math.nan
        step = self.max_scale if curvature == 0 else min(2.0 / curvature**self.p, self.max_scale)
        return theta - step * grad, step

    @property
    def threshold(self):
        """``2/lr`` for ``p = 0``; with ``p > 0`` the step adapts and there is no fixed threshold (NaN)."""
        return gd_threshold(self.lr) if self.p == 0 else math.nan

    @property
    def label(self):
        return f"GD (lr={self.lr:g})" if self.p == 0 else f"DAL (p={self.p:g})"


class OscillationCap(Optimizer):
    r"""Gradient descent that stops the Edge of Stability oscillation from growing past ``cap``.

    A mitigation built on the Edge Flow picture (Chapter 5; the rule is
    ours). Near the edge GD's iterates are about :math:`x + (-1)^t a u`, and
    the oscillation grows by :math:`|1 - \eta\rho|` per step, :math:`\rho = u^\top Hu`.
    Each step this optimizer

    1. updates its estimate of ``u`` by one step of the Rayleigh-quotient
       (Oja) flow, :math:`u \leftarrow u + \tfrac{\eta}{2}(Hu - \rho u)`,
       normalized (one Hessian-vector product);
    2. estimates the oscillation from the last move,
       :math:`a_t = |u\cdot(\theta_t - \theta_{t-1})|/2`;
    3. takes the step :math:`\eta` unless the oscillation is about to grow past
       ``cap`` (:math:`\eta\rho > 2` and :math:`a_t|1 - \eta\rho| > \mathrm{cap}`),
       in which case it takes :math:`2/\rho`, the step that holds :math:`a` constant.

    Self-stabilization needs the oscillation to reach about
    :math:`\delta = \sqrt{2\alpha/\beta}` (Chapter 3), so a cap below
    :math:`\delta` cannot stop the sharpness from rising; a cap somewhat
    above it cuts the overshoot of each blow-up.

    Parameters
    ----------
    lr : float
    cap : float
        Largest oscillation magnitude allowed to grow further, > 0.
    seed : int
        Seeds the random start of ``u``.
    """

    def __init__(self, lr, cap, *, seed=0):
        super().__init__(lr)
        self.cap = check_positive("cap", cap)
        self.seed = int(seed)

    def init(self, theta, problem=None):
        u = torch.randn(theta.numel(), generator=torch.Generator().manual_seed(self.seed), dtype=torch.float64)
        u = u.to(theta)
        return {"u": u / u.norm(), "previous": theta.clone(), "step": self.lr}

    def update(self, theta, grad, state, *, loss=None, loss_fn=None):
        if loss_fn is None:
            raise ValueError("OscillationCap needs loss_fn, the loss being minimized, for its Hessian-vector product")
        u = state["u"]
        hu = hvp(loss_fn, theta, u)
        rho = float(u @ hu)
        u = u + 0.5 * self.lr * (hu - rho * u)
        u = u / u.norm()
        a = abs(float(u @ (theta - state["previous"]))) / 2
        step = self.lr
        if self.lr * rho > 2 and a * abs(1 - self.lr * rho) > self.cap:
            step = 2.0 / rho
        return theta - step * grad, {"u": u, "previous": theta, "step": step}

    def step_size(self, state):
        return state["step"]

    @property
    def label(self):
        return f"GD with oscillation cap {self.cap:g} (lr={self.lr:g})"


class NormalizedGD(_AdaptiveStep):
    r"""Normalized gradient descent, :math:`\theta \leftarrow \theta - \eta\,\nabla L/\|\nabla L\|`.

    Every step has length ``lr``. The effective step size on :math:`L` is
    :math:`\eta/\|\nabla L\|`, which grows as the gradient shrinks, so near a
    minimum the method always reaches the Edge of Stability (Arora, Li and
    Panigrahi, 2022). At a point with zero gradient it stays put; a
    non-finite gradient is passed on, so that :func:`eoslab.run` reports the
    divergence. ``step_size`` records :math:`\eta/\|\nabla L\|`.

    Examples
    --------
    >>> import torch
    >>> theta, step = NormalizedGD(0.5).update(torch.zeros(2), torch.tensor([3.0, 4.0]), None)
    >>> theta.tolist(), step
    ([-0.30000001192092896, -0.4000000059604645], 0.1)
    """

    def update(self, theta, grad, state, *, loss=None, loss_fn=None):
        norm = float(grad.norm())
        if norm == 0.0:
            return theta, 0.0
        if not math.isfinite(norm):
            return theta - grad, math.nan
        step = self.lr / norm
        return theta - step * grad, step

    @property
    def label(self):
        return f"normalized GD (lr={self.lr:g})"


class SqrtLossGD(_AdaptiveStep):
    r"""Gradient descent on :math:`\sqrt{L - L^\star}`: :math:`\theta \leftarrow \theta - \eta\,\nabla L / (2\sqrt{L - L^\star})`.

    With a constant ``lr`` on :math:`\sqrt{L}`, the effective step size on
    :math:`L` is :math:`\eta/(2\sqrt{L - L^\star})`, which grows as the loss falls,
    so near a minimum the method reaches the Edge of Stability (Arora, Li and
    Panigrahi, 2022). ``min_loss`` is :math:`L^\star` (0 for interpolating
    models). At :math:`L \le L^\star` it stays put; ``step_size`` records the
    effective step.

    Examples
    --------
    >>> import torch
    >>> from eoslab.problems import quadratic
    >>> q = quadratic([2.0], theta0=[1.0])                      # L = x², sqrt(L) = |x|
    >>> theta, step = SqrtLossGD(0.5).update(q.theta0, q.A @ q.theta0, None, loss=q(q.theta0))
    >>> theta.tolist(), step
    ([0.5], 0.25)
    """

    def __init__(self, lr, min_loss=0.0):
        super().__init__(lr)
        self.min_loss = check_real("min_loss", min_loss)

    def update(self, theta, grad, state, *, loss=None, loss_fn=None):
        if loss is None:
            if loss_fn is None:
                raise ValueError("SqrtLossGD needs the loss value (loss=) or the loss function (loss_fn=)")
            loss = loss_fn(theta)
        excess = float(loss) - self.min_loss
        if not math.isfinite(excess):
            return theta - grad, math.nan
        if excess <= 0.0:
            return theta, 0.0
        step = self.lr / (2.0 * math.sqrt(excess))
        return theta - step * grad, step

    @property
    def label(self):
        return f"GD on sqrt(L) (lr={self.lr:g})"
