r"""The one interface for everything that moves :math:`\theta`: :class:`Method`.

A discrete update rule (:mod:`eoslab.optim`), a continuous-time model
(:mod:`eoslab.flows`) and a chapter's own process (the constrained
trajectory of :mod:`eoslab.self_stabilization`) are all a ``Method``, and
:func:`eoslab.run` drives any of them the same way:

.. code-block:: python

    theta, state = method.start(problem, theta0)        # time 0
    for t in range(steps):
        ...                                              # record, measure
        theta, state = method.step(problem, theta, state, info)

``theta`` is the point the method stands for (what is recorded and compared
with GD); ``state`` is everything else it carries, explicitly, in the manner
of ``optax`` (a momentum buffer, a complex flow state, an oscillation
direction). Nothing is hidden in the method object, so one object can drive
several runs, and a run can be replayed.

Writing a new method: subclass :class:`Method` (or
:class:`~eoslab.optim.Optimizer` for an update rule that needs only the
gradient, or :class:`~eoslab.flows.Flow` for a vector field), define
:meth:`Method.step`, and, if it has one, :meth:`Method.init` for its state
and :attr:`Method.threshold` for its stability threshold.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ._validation import check_positive
from .thresholds import gd_threshold

__all__ = ["Method", "StepInfo"]


@dataclass
class StepInfo:
    """What the loop hands to :meth:`Method.step` about the current point.

    Attributes
    ----------
    t : int
        The step (time, in GD steps) being left.
    loss, grad : torch.Tensor
        The loss and gradient at ``theta`` on this step's batch (the full
        loss for full-batch runs), already computed by the loop.
    loss_fn : callable
        The loss this step minimizes, ``loss_fn(theta) -> scalar`` (the
        batch's), for rules that need more than the gradient.
    sharpness : float
        The last measured sharpness of the full loss (NaN before the first
        measurement), for flows that adapt their substeps to it.
    operator : HessianOperator or None
        For a method with ``needs_hessian``: the Hessian operator of ``loss_fn``
        at ``theta``, whose gradient graph gave ``loss`` and ``grad``, so that
        the step's Hessian-vector products need no second forward pass.
    """

    t: int
    loss: torch.Tensor
    grad: torch.Tensor
    loss_fn: Callable
    sharpness: float = math.nan
    operator: object = None


class Method:
    """The shared surface: ``lr``, ``threshold``, ``label``, ``init``/``start``, ``step``, ``observe``.

    Parameters
    ----------
    lr : float
        The step size :math:`\\eta` (for a flow, the GD step size it models:
        its time is counted in GD steps).

    Class attributes
    ----------------
    needs_sharpness : bool
        The loop measures the sharpness on its schedule even when the run
        records none, because :meth:`step` uses ``info.sharpness``.
    needs_hessian : bool
        The loop computes each point's loss and gradient through a
        :class:`~eoslab.curvature.HessianOperator` (a gradient that keeps its
        graph) and hands it to :meth:`step` as ``info.operator``: for rules
        that take Hessian-vector products at the current point.
    """

    needs_sharpness = False
    needs_hessian = False

    def __init__(self, lr):
        self.lr = check_positive("lr", lr)

    def init(self, theta, problem=None):
        """The method's state at the start (``None`` for stateless rules)."""
        return None

    def start(self, problem, theta):
        """``(theta, state)`` at time 0 from the start point ``theta``.

        The default keeps ``theta`` and calls :meth:`init`; a method whose
        recorded point differs from the start (Edge Flow's center) overrides it.
        """
        return theta, self.init(theta, problem)

    def step(self, problem, theta, state, info):
        """One unit of time (one GD step): return ``(theta_next, state_next)``."""
        raise NotImplementedError

    def observe(self, problem, theta, state):
        """Quantities to record at each step, ``{name: float or tensor}`` (``History.extras``); none by default."""
        return {}

    def step_size(self, state):
        """The step size of the last update, recorded in ``History.step_size`` (``None``: not recorded)."""
        return None

    def buffer(self, state):
        """The tensor to keep with each parameter snapshot (a momentum buffer), or ``None``."""
        return state if isinstance(state, torch.Tensor) else None

    def sharpness(self, state):
        """The top Hessian eigenvalue the method computed itself at the current point, or ``None``.

        A central flow solves for its eigenpairs at every step; :func:`eoslab.run` gives that value to
        ``stop``, ``callback``, ``measures`` and the next step between its own measurements, so that a run
        need not solve again for it.
        """
        return None

    def displacement(self, state):
        """The length of any displacement the state carries beyond ``theta`` (a flow's oscillation), else 0.

        :func:`eoslab.run` counts a run as diverged when it leaves the ball
        that bounds the point (see ``divergence_factor`` there).
        """
        return 0.0

    @property
    def threshold(self):
        """The curvature the sharpness is compared with (``2/lr`` unless the rule says otherwise)."""
        return gd_threshold(self.lr)

    @property
    def label(self):
        return f"{type(self).__name__}(lr={self.lr:g})"

    def __repr__(self):
        return self.label
