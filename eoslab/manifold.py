r"""Chapter 6: the drift of normalized GD and GD on :math:`\sqrt{L}` along the manifold of minimizers.

After Arora, Li and Panigrahi (2022), for the chapter's toy loss
:math:`L(x, y) = (1 + x^2)\,y^2` (:func:`eoslab.problems.manifold_toy`).
"""
from __future__ import annotations

import math

import numpy as np

from ._validation import check_choice

__all__ = ["toy_manifold_flow"]


def toy_manifold_flow(x0, tau, method):
    r"""The limiting drift of normalized GD or GD on :math:`\sqrt{L}` along :math:`\Gamma = \{y = 0\}` for
    :math:`L(x, y) = (1 + x^2)\,y^2`, in the slow time :math:`\tau = \eta^2 t`.

    On :math:`\Gamma` the sharpness is :math:`\lambda_1 = 2(1 + x^2)`. The limiting
    flows, :math:`\dot X = -\tfrac14\,\partial\Phi\,\nabla\log\lambda_1` for
    normalized GD and :math:`\dot X = -\tfrac18\,\partial\Phi\,\nabla\lambda_1` for GD
    on :math:`\sqrt L` (:math:`\partial\Phi` projects onto the tangent space of
    :math:`\Gamma`, here the :math:`x` axis), become

    .. math::
        \text{normalized: } \frac{\mathrm{d}x}{\mathrm{d}\tau} = -\frac{x}{2(1 + x^2)}, \qquad
        \sqrt{L}\text{: } \frac{\mathrm{d}x}{\mathrm{d}\tau} = -\frac{x}{2},

    solved in closed form: :math:`x^2 + \log x^2 = x_0^2 + \log x_0^2 - \tau` (by
    Newton's method on :math:`\log x^2`) and :math:`x = x_0 e^{-\tau/2}`.

    Parameters
    ----------
    x0 : float
        Start on :math:`\Gamma`.
    tau : float or array
        Slow times :math:`\eta^2 t`, >= 0.
    method : {"normalized", "sqrt"}

    Examples
    --------
    >>> round(float(toy_manifold_flow(2.0, 2.0, "sqrt")), 6), round(float(toy_manifold_flow(2.0, 0.0, "normalized")), 6)
    (0.735759, 2.0)
    """
    method = check_choice("method", method, ("normalized", "sqrt"))
    tau = np.asarray(tau, dtype=float)
    if (tau < 0).any():
        raise ValueError("tau must be >= 0")
    x0 = float(x0)
    if x0 == 0.0:
        return np.zeros_like(tau)
    if method == "sqrt":
        return x0 * np.exp(-tau / 2)
    target = x0**2 + math.log(x0**2) - tau
    w = np.full_like(tau, math.log(x0**2))  # w = log x², root of e^w + w = target
    for _ in range(200):  # Newton from the right: e^w + w is convex and increasing, so it converges monotonically
        w_new = w - (np.exp(w) + w - target) / (np.exp(w) + 1)
        done = np.allclose(w_new, w, rtol=0, atol=1e-15)
        w = w_new
        if done:
            break
    return math.copysign(1.0, x0) * np.exp(w / 2)
