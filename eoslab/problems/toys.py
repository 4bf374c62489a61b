"""The chapters' explicit toy losses, defined once for the chapters and the tests alike."""
from __future__ import annotations

import torch

from .._validation import (check_int, check_positive, check_real, check_vector, no_other_keywords, renamed,
                           resolve_dtype)
from .base import function_problem

__all__ = ["manifold_toy", "scalar_two_layer", "sharpening_toy"]


def _manifold_toy_loss(theta):
    x, y = theta[0], theta[1]
    return (1 + x**2) * y**2


def manifold_toy(theta0=(14.7, -3.0), *, device=None, dtype=None, **deprecated):
    r"""The toy :math:`L(x, y) = (1 + x^2)\,y^2`.

    Its minimizers form the line :math:`\Gamma = \{y = 0\}`, along which the
    sharpness is :math:`2(1 + x^2)`: a manifold of minima of varying sharpness.
    ``theta0`` is the start :math:`(x, y)` (``x0`` before).
    """
    theta0 = renamed(deprecated, "x0", "theta0", "manifold_toy", value=theta0, default=True)
    no_other_keywords(deprecated, "manifold_toy")
    theta0 = torch.as_tensor(theta0, dtype=torch.float64)
    check_vector("theta0", theta0, size=2)
    return function_problem(_manifold_toy_loss, theta0, name="manifold toy (1+x^2) y^2", device=device, dtype=dtype)


def scalar_two_layer(theta0=(0.5, 0.3), target=1.0, *, device=None, dtype=None, **deprecated):
    r"""The scalar two-layer network :math:`L(a, b) = \tfrac12 (ab - c)^2`, ``c = target``.

    Its minimizers form the hyperbola :math:`ab = c`, where the sharpness is
    :math:`a^2 + b^2`. ``theta0`` is the start :math:`(a, b)` (``x0`` before).
    """
    theta0 = renamed(deprecated, "x0", "theta0", "scalar_two_layer", value=theta0, default=True)
    no_other_keywords(deprecated, "scalar_two_layer")
    target = check_real("target", target)
    theta0 = torch.as_tensor(theta0, dtype=torch.float64)
    check_vector("theta0", theta0, size=2)
    fn = lambda t: 0.5 * (t[0] * t[1] - target) ** 2  # noqa: E731
    return function_problem(fn, theta0, name="scalar two-layer net", device=device, dtype=dtype)


def sharpening_toy(s0=3.9, c=0.005, x0=0.05, y0=0.0, *, dims=1, device=None, dtype="float64"):
    r"""The toy of Chapters 3 and 5, :math:`L(x, y) = \sum_i \tfrac12 (s_0 + y_i)\,x_i^2 - c\,y_i`.

    ``dims`` copies of an oscillation coordinate :math:`x_i` and a sharpness
    coordinate :math:`y_i`. At :math:`x = 0` the Hessian's eigenvalues along the
    :math:`x_i` are :math:`s_0 + y_i`, each with gradient
    :math:`\nabla\lambda_i = e_{y_i}`, and :math:`-\partial L/\partial y_i = c - \tfrac12 x_i^2`:
    gradient descent raises the sharpness at rate :math:`\eta c` (progressive
    sharpening) while the oscillation :math:`x` pushes it down, the
    two-variable model of self-stabilization with :math:`\alpha = c` and
    :math:`\beta = 1`.

    Parameters
    ----------
    s0 : float
        Sharpness at ``y = 0``.
    c : float
        Sharpening rate, > 0.
    x0, y0 : float
        Start of every ``x_i`` and every ``y_i``.
    dims : int
        Number of (x, y) pairs.
    device, dtype :
        Where the problem lives (default float64).

    Examples
    --------
    >>> toy = sharpening_toy()
    >>> [round(float(v), 6) for v in toy.value_and_grad(toy.theta0)[1]]   # (s0 x, x²/2 - c)
    [0.195, -0.00375]
    """
    s0, c, x0, y0 = check_real("s0", s0), check_positive("c", c), check_real("x0", x0), check_real("y0", y0)
    dims = check_int("dims", dims, low=1)

    def loss(th):
        x, y = th[:dims], th[dims:]
        return (0.5 * (s0 + y) * x**2 - c * y).sum()

    start = torch.tensor([x0] * dims + [y0] * dims, dtype=torch.float64)
    return function_problem(loss, start, name="sharpening toy", device=device, dtype=resolve_dtype(dtype))
