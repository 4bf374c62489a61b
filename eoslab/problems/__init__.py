"""Problems: a loss on a flat parameter vector, together with its data.

Every problem exposes the same small surface (:class:`Problem`): ``theta0``
(the starting point), ``loss(theta, batch_indices=None)``,
``value_and_grad(theta, batch_indices=None)``, ``num_examples``,
``num_params``, ``device``, ``dtype``, ``predict`` and ``to``. A problem is
callable, ``problem(theta) == problem.loss(theta)``, so it can be passed
wherever :mod:`eoslab.curvature` expects a loss function.

One file each: :mod:`~eoslab.problems.base` (the interface and
:func:`function_problem`), :mod:`~eoslab.problems.quadratic`,
:mod:`~eoslab.problems.toys` (the chapters' explicit toy losses),
:mod:`~eoslab.problems.networks` (networks fit to data) and
:mod:`~eoslab.problems.modules` (your own ``torch.nn.Module``, through
:func:`from_module`, over data in chunks). A new problem is a
subclass of :class:`Problem` with ``_loss`` (and ``value_and_grad`` if it has
a closed form).
"""
from .base import FunctionProblem, Problem, function_problem
from .modules import ModuleProblem, from_module
from .networks import (Supervised, chebyshev_regression, cifar10_classification, digits_classification, digits_eoss,
                       square_loss)
from .quadratic import Quadratic, quadratic
from .toys import manifold_toy, scalar_two_layer, sharpening_toy

__all__ = [
    "Problem", "FunctionProblem", "ModuleProblem", "Quadratic", "Supervised", "from_module",
    "quadratic", "function_problem", "manifold_toy", "scalar_two_layer", "sharpening_toy",
    "chebyshev_regression", "digits_classification", "digits_eoss", "cifar10_classification", "square_loss",
]
