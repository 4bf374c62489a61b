r"""Continuous-time models of gradient descent, one file per model family.

Flows are written in *step units*: a flow for step size :math:`\eta` has time
measured in gradient steps, so step ``n`` of GD is compared with the flow at
time ``t = n``. Every flow is a :class:`~eoslab.methods.Method`, so
:func:`eoslab.run` integrates it and :func:`eoslab.compare` puts it beside GD:

- :mod:`~eoslab.flows.base` -- :class:`Flow` (substeps adapted to the curvature), :func:`rk4_step`
- :mod:`~eoslab.flows.gradient` -- gradient flow and the IGR flow (Barrett and Dherin)
- :mod:`~eoslab.flows.principal` -- the principal flow (Rosca et al.), complex beyond ``ηλ = 1``
- :mod:`~eoslab.flows.central` -- the central flow (Cohen et al. 2025)
- :mod:`~eoslab.flows.edge` -- Edge Flow (after Marion 2026)

Each model is a pure function giving its vector field at a point
(:func:`gradient_flow`, :func:`igr_flow`, :func:`principal_flow`,
:func:`central_flow`) wrapped in a small :class:`Flow`. A new flow goes in a
new file here: subclass :class:`Flow` and define ``velocity`` (and ``rate``
if its stiffness is not :math:`\eta S`).
"""
from .base import Flow, rk4_step
from .central import CentralFlow, CentralState, central_flow, edge_covariance
from .edge import EdgeFlow, EdgeState, edge_flow_step
from .gradient import GradientFlow, IGRFlow, gradient_flow, igr_flow
from .principal import PrincipalFlow, principal_coefficients, principal_flow

__all__ = [
    "CentralFlow", "CentralState", "EdgeFlow", "EdgeState", "Flow", "GradientFlow", "IGRFlow", "PrincipalFlow",
    "central_flow", "edge_covariance", "edge_flow_step", "gradient_flow", "igr_flow", "principal_coefficients",
    "principal_flow", "rk4_step",
]

_MOVED = {
    "solve": "eoslab.run (a flow is a Method: run(problem, flow, steps); the integrator's alpha is the flow's "
             "substep_scale)",
    "compare": "eoslab.compare",
    "toy_manifold_flow": "eoslab.manifold.toy_manifold_flow",
}


def __getattr__(name):
    if name in _MOVED:
        raise AttributeError(f"eoslab.flows.{name} has moved: use {_MOVED[name]}")
    raise AttributeError(f"module 'eoslab.flows' has no attribute {name!r}")
