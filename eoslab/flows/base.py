r"""The base of every continuous-time model: :class:`Flow`, and the Runge-Kutta step.

Flows are written in *step units*: a flow for step size :math:`\eta` has
time measured in gradient steps, so gradient flow is
:math:`\mathrm{d}\theta/\mathrm{d}t = -\eta\nabla L(\theta)` and step ``n`` of
GD is compared with the flow at time ``t = n``. A flow is a
:class:`~eoslab.methods.Method`: :func:`eoslab.run` advances it one unit of
time per step and records the same :class:`~eoslab.history.History` as for
GD.
"""
from __future__ import annotations

import copy
import math

import torch

from .._validation import check_like, check_real
from ..methods import Method

__all__ = ["Flow", "rk4_step"]


def check_problem(problem, theta=None):
    """``problem`` has a loss and a gradient (an eoslab Problem); ``theta``, if given, is a point of it."""
    if not callable(getattr(problem, "value_and_grad", None)):
        raise TypeError(f"problem must be an eoslab Problem (with value_and_grad), got {type(problem).__name__}")
    if theta is not None:
        check_like("theta", theta, problem)


def rk4_step(velocity, theta, h):
    """One classical Runge-Kutta step of size ``h`` for ``dθ/dt = velocity(θ)``."""
    k1 = velocity(theta)
    k2 = velocity(theta + 0.5 * h * k1)
    k3 = velocity(theta + 0.5 * h * k2)
    k4 = velocity(theta + h * k3)
    return theta + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)


class Flow(Method):
    r"""A continuous-time model of GD with step size ``lr``, in step units.

    Most flows are a vector field: subclasses define :meth:`velocity`, and
    :meth:`rate` bounds how fast the field changes (the stiffness). Each unit
    of time (one GD step) is integrated in equal substeps of ``integrator``
    (``"rk4"`` or ``"euler"``), of size
    :math:`h = \min(s / r, h_{\max})` with ``s = substep_scale``, ``r`` the
    :meth:`rate` at the current point (for gradient flow :math:`\eta S`, with
    ``S`` the sharpness the run measured last) and :math:`h_{\max}` =
    ``max_substep``. The stiffest direction decays at rate :math:`r`, so
    ``substep_scale`` sets the accuracy (RK4 is stable up to
    :math:`h r \approx 2.8`; its error per substep is about :math:`s^5/120`
    relative). The run measures the sharpness on its schedule for this even
    when it records none (``needs_sharpness``).

    ``complex = True`` marks flows whose state is complex (the recorded
    point is the real part). A flow with a richer state (:class:`EdgeFlow`)
    overrides :meth:`start` and :meth:`step` instead.

    Parameters
    ----------
    lr : float
        The GD step size the flow models.
    substep_scale : float
        Substep times curvature, in (0, 2.5].
    max_substep : float
        Largest substep, in GD steps, in (0, 1].
    """

    complex = False
    integrator = "rk4"
    needs_sharpness = True

    def __init__(self, lr, *, substep_scale=0.5, max_substep=1.0):
        super().__init__(lr)
        self._set_integrator(substep_scale, max_substep)

    def _set_integrator(self, substep_scale, max_substep):
        self.substep_scale = check_real("substep_scale", substep_scale, low=0.0, high=2.5, low_open=True)
        self.max_substep = check_real("max_substep", max_substep, low=0.0, high=1.0, low_open=True)

    def with_integrator(self, *, substep_scale=None, max_substep=None):
        """A copy of this flow with other integrator settings (those not given are kept)."""
        flow = copy.copy(self)
        flow._set_integrator(self.substep_scale if substep_scale is None else substep_scale,
                             self.max_substep if max_substep is None else max_substep)
        return flow

    def velocity(self, problem, theta):
        raise NotImplementedError

    def rate(self, problem, theta, sharpness):
        r"""An upper bound on the decay rate of the linearized field, per unit time (:math:`\eta S` by default)."""
        return self.lr * max(sharpness, 0.0)

    def init(self, theta, problem=None):
        """A complex flow's state is its complex point; a real flow's point is its whole state (``None``)."""
        if self.complex:
            return theta.to(torch.complex128 if theta.dtype == torch.float64 else torch.complex64)
        return None

    def point(self, z):
        """The parameter vector a flow state stands for (recorded, compared with GD)."""
        return z.real.contiguous() if self.complex else z

    def _velocity_at(self, problem, state):
        """The field ``z -> velocity`` for this step (a flow with a state binds it here)."""
        return lambda z: self.velocity(problem, z)

    def step(self, problem, theta, state, info):
        """One unit of time: equal substeps of ``integrator`` that land exactly on the next integer time."""
        z = state if self.complex else theta
        rate = self.rate(problem, theta, info.sharpness)
        substep = min(self.substep_scale / rate, self.max_substep) if rate > 0 else self.max_substep
        n_sub = max(1, math.ceil(1.0 / substep - 1e-9))
        velocity = self._velocity_at(problem, state)
        for _ in range(n_sub):
            if self.integrator == "euler":
                z = z + velocity(z) / n_sub
            else:
                z = rk4_step(velocity, z, 1.0 / n_sub)
        return self.point(z), (z if self.complex else state)

    def buffer(self, state):
        return None
