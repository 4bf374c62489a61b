r"""The principal flow of Rosca et al.: GD's exact continuous-time extension on quadratics (complex beyond ηλ = 1)."""
from __future__ import annotations

import math

import torch

from .._validation import check_int, check_real, check_vector
from ..curvature import hessian
from .base import Flow, check_problem

__all__ = ["PrincipalFlow", "principal_coefficients", "principal_flow"]


def principal_coefficients(eigenvalues, lr, *, floor=1e-8):
    r"""The principal-flow coefficients :math:`\log(1 - \eta\lambda_i)/\lambda_i`, complex.

    For :math:`\eta\lambda > 1` the logarithm is complex,
    :math:`\log|1-\eta\lambda| + i\pi`. Three cases are handled explicitly:
    as :math:`\lambda \to 0` the coefficient tends to :math:`-\eta` (gradient
    flow); at :math:`\eta\lambda = 1`, where GD removes the component in one
    step and the logarithm is :math:`-\infty`, :math:`|1 - \eta\lambda|` is
    floored at ``floor`` (the flow then shrinks that component by ``floor``
    per step); negative eigenvalues give real, positive logarithms (growth,
    as in GD).

    Examples
    --------
    >>> c = principal_coefficients(torch.tensor([0.0, 1.0, 3.0], dtype=torch.float64), lr=1.0)
    >>> c[0].real.item(), round(c[1].real.item(), 3), round(c[2].imag.item() * 3, 6)
    (-1.0, -18.421, 3.141593)
    """
    if not isinstance(eigenvalues, torch.Tensor):
        raise TypeError(f"eigenvalues must be a torch.Tensor, got {type(eigenvalues).__name__}")
    lr = check_real("lr", lr, low=0.0, low_open=True)
    lam = eigenvalues
    x = lr * lam
    one_minus = 1.0 - x
    log_abs = torch.log(torch.clamp(one_minus.abs(), min=floor))
    imag = torch.where(one_minus < 0, torch.full_like(x, math.pi), torch.zeros_like(x))
    log = torch.complex(log_abs, imag)
    small = x.abs() < 1e-8
    safe = torch.where(small, torch.ones_like(lam), lam)
    series = torch.complex(-lr * (1.0 + 0.5 * x), torch.zeros_like(x))  # log(1-x)/lam for small x
    return torch.where(small, series, log / safe)


def _dense_hessian(problem, x, max_params):
    """The problem's own Hessian where it has one (quadratics), else by automatic differentiation."""
    own = getattr(problem, "hessian", None)
    return own(x) if own is not None else hessian(problem, x, max_params=max_params)


def principal_flow(problem, z, lr, *, floor=1e-8, max_params=2_000):
    r"""The principal flow of Rosca et al. in step units, at a real or complex point.

    .. math::
        \frac{\mathrm{d}\theta}{\mathrm{d}t} = \sum_i \frac{\log(1 - \eta\lambda_i)}{\lambda_i}\,
        (\nabla L\cdot u_i)\, u_i ,

    with :math:`(\lambda_i, u_i)` the eigenpairs of the Hessian. On a
    quadratic its solution at integer times is exactly GD: each component is
    multiplied by :math:`e^{\log(1-\eta\lambda)} = 1 - \eta\lambda` per unit of
    time. For :math:`\eta\lambda > 1` the coefficient is complex and so is the
    flow; its real part at integer times is GD.

    The state ``z = x + iy`` may be complex. The eigenpairs are taken at the
    real part ``x`` (a dense symmetric eigendecomposition, so the problem
    must have at most ``max_params`` parameters), and the gradient at ``z``
    is extended to first order in ``y``,
    :math:`\nabla L(x + iy) \approx \nabla L(x) + i H(x)\, y`, which is exact
    for quadratics (our choice for networks). Returns a complex tensor.
    """
    check_problem(problem)
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"z must be a torch.Tensor, got {type(z).__name__}")
    if not torch.is_complex(z):
        z = z.to(torch.complex128 if z.dtype == torch.float64 else torch.complex64)
    x, y = z.real.contiguous(), z.imag.contiguous()
    check_vector("z", x)
    if x.numel() > max_params:
        raise ValueError(f"the principal flow needs the full Hessian: the problem has {x.numel()} parameters, "
                         f"more than max_params={max_params}")
    lam, U = torch.linalg.eigh(_dense_hessian(problem, x, max_params))
    g = problem.value_and_grad(x)[1]
    components = torch.complex(U.T @ g, lam * (U.T @ y))  # u_i . grad L(z)
    coeffs = principal_coefficients(lam, lr, floor=floor)
    return U.to(z.dtype) @ (coeffs * components)


class PrincipalFlow(Flow):
    r"""The principal flow (see :func:`principal_flow`): complex state, dense Hessians.

    Parameters
    ----------
    lr : float
    floor : float
        Floor on :math:`|1 - \eta\lambda|` at the singularity :math:`\eta\lambda = 1`.
    max_params : int
        Largest problem accepted (the flow needs a dense eigendecomposition per evaluation).
    substep_scale, max_substep : float
        The integrator's accuracy (see :class:`~eoslab.flows.Flow`); the rate is the largest
        :math:`|\log(1 - \eta\lambda_i)|`, from the dense spectrum, so no sharpness is measured for it.
    """

    complex = True
    needs_sharpness = False

    def __init__(self, lr, *, floor=1e-8, max_params=2_000, substep_scale=0.5, max_substep=1.0):
        super().__init__(lr, substep_scale=substep_scale, max_substep=max_substep)
        self.floor = check_real("floor", floor, low=0.0, high=1.0, low_open=True, high_open=True)
        self.max_params = check_int("max_params", max_params, low=1)

    def velocity(self, problem, theta):
        return principal_flow(problem, theta, self.lr, floor=self.floor, max_params=self.max_params)

    def rate(self, problem, theta, sharpness):
        """The largest :math:`|\\log(1 - \\eta\\lambda_i)|` over the spectrum at ``theta``."""
        lam = torch.linalg.eigvalsh(_dense_hessian(problem, theta.real.contiguous(), self.max_params))
        x = self.lr * lam
        return float(torch.sqrt(torch.log(torch.clamp((1 - x).abs(), min=self.floor)) ** 2
                                + torch.where(x > 1, math.pi**2, 0.0)).max())

    @property
    def label(self):
        return f"principal flow (lr={self.lr:g})"
