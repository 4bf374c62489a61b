"""EoS Lab: the Edge of Stability of gradient descent, executable.

Modules, one idea each:

- :mod:`eoslab.problems` -- losses on flat parameter vectors, with their data
- :mod:`eoslab.data` -- data sets read from disk (digits, Chebyshev, CIFAR-10)
- :mod:`eoslab.models` -- functional networks on flat vectors
- :mod:`eoslab.curvature` -- Hessian-vector products, top eigenpairs, sharpness
- :mod:`eoslab.optim` -- update rules (GD, heavy ball, Nesterov)
- :mod:`eoslab.runs` -- the loop that records a trajectory (:func:`run`)
- :mod:`eoslab.flows` -- continuous-time models (gradient flow), integrated like a run
- :mod:`eoslab.self_stabilization` -- the two-variable model, the constrained trajectory, the predicted dynamics
- :mod:`eoslab.stochastic` -- SGD at its edge: batch sharpness along a run, its plateau, momentum's levels
- :mod:`eoslab.exercises` -- self-checks for the exercises: right or wrong, with a hint
- :mod:`eoslab.analysis` -- numbers read off histories (the edge phase, distances)
- :mod:`eoslab.stability` -- linear stability thresholds, closed form and by experiment
- :mod:`eoslab.plotting` -- the book's standard figures
- :mod:`eoslab.widgets` -- slider panels that re-run an experiment (imported on use)

Examples
--------
>>> import eoslab
>>> problem = eoslab.problems.chebyshev_regression()
>>> history = eoslab.run(problem, eoslab.optim.GD(lr=0.3), steps=100, progress=False)
>>> history.loss.shape
(101,)
"""
from . import (analysis, curvature, data, exercises, flows, optim, plotting, problems, self_stabilization, stability,
               stochastic)
from .curvature import hessian, hvp, sharpness, top_eigenpairs
from .runs import History, run

__all__ = [
    "analysis", "curvature", "data", "exercises", "flows", "optim", "plotting", "problems", "self_stabilization", "stability",
    "stochastic",
    "hessian", "hvp", "sharpness", "top_eigenpairs",
    "History", "run",
]

__version__ = "0.1.0"
