"""EoS Lab: the Edge of Stability of gradient descent, executable.

The package is built in layers; a module imports only from the layers above
it in this list (``tests/test_layout.py`` checks it):

1. **What to minimize and its curvature** --
   :mod:`eoslab.data` (data sets read from disk), :mod:`eoslab.models`
   (functional networks on flat vectors), :mod:`eoslab.architectures`
   (networks from the literature as ``torch.nn`` modules),
   :mod:`eoslab.problems` (losses on flat parameter vectors: quadratics, the
   chapters' toys, networks on data, your own module through
   :func:`~eoslab.problems.from_module`),
   :mod:`eoslab.curvature` (Hessian-vector products, top eigenpairs,
   third derivatives: operators only), :mod:`eoslab.thresholds` (the
   stability thresholds ``2/η``, ``2(1±β)/η``, written once),
   :mod:`eoslab.trends` (whether a measured series has levelled off).
2. **What moves θ** -- :mod:`eoslab.methods` (the one :class:`~eoslab.methods.Method`
   interface), :mod:`eoslab.optim` (update rules: GD, heavy ball, Nesterov,
   DAL, normalized GD, GD on √L, the oscillation cap), :mod:`eoslab.flows`
   (continuous-time models, one file per family).
3. **The one loop** -- :mod:`eoslab.history` (:class:`History`, the one
   record, saved and loaded in an open format), :mod:`eoslab.batches` (which
   examples a stochastic step uses), :mod:`eoslab.checkpoints` (a run in
   progress, kept on disk), :mod:`eoslab.recorder` (what the loop records at
   each step), :mod:`eoslab.runs` (:func:`run`, :func:`compare`) and
   :mod:`eoslab.sweep` (an experiment over a grid, on a laptop, a Dask
   cluster or SLURM, into one table; nothing lost, nothing recomputed).
4. **The chapters' own models** -- :mod:`eoslab.stability` (Chapter 1),
   :mod:`eoslab.self_stabilization` (Chapter 3), :mod:`eoslab.manifold`
   (Chapter 6), :mod:`eoslab.stochastic` (Chapter 7).
5. **Reading and showing results** -- :mod:`eoslab.analysis` (numbers read
   off histories), :mod:`eoslab.exercises` (self-checks), :mod:`eoslab.plotting`
   (the book's figures), :mod:`eoslab.widgets` (slider panels; imported on use).

Where new code goes: a new update rule is a class in :mod:`eoslab.optim`; a
new continuous-time model is a file in ``eoslab/flows/``; a new problem is a
:class:`~eoslab.problems.Problem` in ``eoslab/problems/``; a new chapter's
models go in a new topic module (layer 4), which uses :func:`run` rather than
a loop of its own.

Examples
--------
>>> import eoslab
>>> problem = eoslab.problems.chebyshev_regression()
>>> history = eoslab.run(problem, eoslab.optim.GD(lr=0.3), steps=100, progress=False)
>>> history.loss.shape
(101,)
"""
from . import (analysis, architectures, batches, checkpoints, curvature, data, exercises, flows, manifold, methods,
               models, optim, plotting, problems, recorder, self_stabilization, stability, stochastic, sweep,
               thresholds, trends)
from .curvature import hessian, hvp, sharpness, top_eigenpairs
from .history import History
from .methods import Method
from .runs import compare, run, until_sharpness_reaches

__all__ = [
    "analysis", "architectures", "batches", "checkpoints", "curvature", "data", "exercises", "flows", "manifold",
    "methods", "models", "optim", "plotting", "problems", "recorder", "self_stabilization", "stability", "stochastic",
    "sweep", "thresholds", "trends", "hessian", "hvp", "sharpness", "top_eigenpairs",
    "History", "Method", "compare", "run", "until_sharpness_reaches",
]

__version__ = "0.2.0"
