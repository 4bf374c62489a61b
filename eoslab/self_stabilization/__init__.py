r"""Self-stabilization: why gradient descent does not diverge at the Edge of Stability (Chapter 3).

After Damian, Nichani and Lee (ICLR 2023). Near a reference point with
sharpness :math:`S`, top eigenvector :math:`u` and sharpness gradient
:math:`\nabla S = \nabla^3 L[u, u]` (:func:`taylor_center`), an oscillation
of size :math:`x` along :math:`u` moves the weights by
:math:`-\tfrac12\eta x^2\nabla S`, which lowers the sharpness. The models
built on that observation, one file each:

- :mod:`~eoslab.self_stabilization.two_variable` -- the map
  :math:`x_{t+1} = -(1+\eta y_t)x_t,\ y_{t+1} = y_t + \eta(\alpha - \tfrac12\beta x_t^2)`
  with :math:`y = S - 2/\eta`, and its four :func:`stages`;
- :mod:`~eoslab.self_stabilization.taylor` -- :class:`TaylorCenter`: the
  constants :math:`\alpha`, :math:`\beta`, :math:`\delta` at a point;
- :mod:`~eoslab.self_stabilization.stable_set` -- the projection onto
  :math:`\mathcal M = \{S(\theta)\le 2/\eta,\ u\cdot\nabla L(\theta) = 0\}`, the
  constrained trajectory and the predicted dynamics, as methods;
- :mod:`~eoslab.self_stabilization.edge` -- :func:`find_edge`,
  :func:`seed_oscillation` and :func:`track`, which run them beside GD.
"""
from .edge import EdgeCrossing, Lockstep, SeededStart, find_edge, seed_oscillation, track
from .stable_set import (ConstrainedTrajectory, PredictedDynamics, PredictedState, constrained_step, predicted_step,
                         project_to_stable_set)
from .taylor import TaylorCenter, taylor_center
from .two_variable import STAGE_NAMES, TwoVariableTrajectory, stages, two_variable_model

__all__ = [
    "STAGE_NAMES", "TwoVariableTrajectory", "stages", "two_variable_model",
    "TaylorCenter", "taylor_center",
    "ConstrainedTrajectory", "PredictedDynamics", "PredictedState", "constrained_step", "predicted_step",
    "project_to_stable_set",
    "EdgeCrossing", "Lockstep", "SeededStart", "find_edge", "seed_oscillation", "track",
]
