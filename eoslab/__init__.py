"""EoS Lab: the Edge of Stability of gradient descent, executable.

Modules, one idea each:

- :mod:`eoslab.problems` -- losses on flat parameter vectors, with their data
- :mod:`eoslab.curvature` -- Hessian-vector products, top eigenpairs, sharpness
- :mod:`eoslab.optim` -- update rules (GD, heavy ball, Nesterov)
- :mod:`eoslab.runs` -- the loop that records a trajectory (:func:`run`)
- :mod:`eoslab.stability` -- linear stability thresholds, closed form and by bisection
- :mod:`eoslab.plotting` -- the book's standard figures
- :mod:`eoslab.widgets` -- slider panels that re-run an experiment
"""
from . import curvature, problems
from .curvature import hessian, hvp, sharpness, top_eigenpairs

__version__ = "0.1.0"
