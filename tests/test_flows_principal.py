"""eoslab.flows.principal: the principal flow against closed forms and its series expansion, and the
authors' quadratic demonstration (GD at integer times, an oscillation between them)."""
import math

import pytest
import torch

import eoslab
from eoslab.curvature import hessian
from eoslab.flows import (
    GradientFlow,
    IGRFlow,
    PrincipalFlow,
    gradient_flow,
    igr_flow,
    principal_coefficients,
    principal_flow,
)
from eoslab.runs import compare, run
from eoslab.optim import GD
from eoslab.problems import chebyshev_regression, quadratic


def authors_quadratic():
    """E(θ) = θᵀ diag(1, 0.01) θ: Hessian eigenvalues 2 and 0.02, start (-0.35, -0.2)."""
    return quadratic([2.0, 0.02], theta0=[-0.35, -0.2], dtype="float64")


# -- the vector field -----------------------------------------------------------
def test_principal_coefficients_reproduce_one_gd_step_per_unit_time():
    lr = 0.5
    lam = torch.tensor([-1.0, 0.0, 1e-12, 0.3, 1.0, 3.0, 4.0, 5.0], dtype=torch.float64)
    c = principal_coefficients(lam, lr)
    # exp(λ c) is the factor per unit time: 1 - ηλ, the GD factor (sign flip included)
    factor = torch.exp(lam.to(c.dtype) * c)
    expected = (1 - lr * lam).to(c.dtype)
    torch.testing.assert_close(factor, expected, rtol=1e-12, atol=1e-12)
    assert c[1] == pytest.approx(-lr) and c[2].real == pytest.approx(-lr)  # gradient flow at λ = 0
    # ηλ = 1: GD kills the component; the flow shrinks it by the floor per step
    singular = principal_coefficients(torch.tensor([2.0], dtype=torch.float64), lr, floor=1e-8)
    assert float(torch.exp(2.0 * singular).abs()) == pytest.approx(1e-8)


def test_principal_flow_expands_to_igr_for_small_steps(tiny_mlp):
    # log(1 - x)/x = -1 - x/2 - x²/3 - ...: PF = GF + IGR correction + O(η³)
    theta = tiny_mlp.theta0
    S = float(torch.linalg.eigvalsh(hessian(tiny_mlp, theta))[-1])
    errors = {}
    for lr in (0.1 / S, 0.05 / S):
        pf = principal_flow(tiny_mlp, theta, lr)
        assert float(pf.imag.abs().max()) == 0.0  # all ηλ < 1: a real field
        errors[lr] = (float((pf.real - igr_flow(tiny_mlp, theta, lr)).norm()),
                      float((pf.real - gradient_flow(tiny_mlp, theta, lr)).norm()))
    (igr_a, gf_a), (igr_b, gf_b) = errors.values()
    assert igr_a < 0.1 * gf_a
    assert igr_a / igr_b == pytest.approx(8.0, rel=0.1)  # third order in η
    assert gf_a / gf_b == pytest.approx(4.0, rel=0.1)  # second order in η


def test_principal_flow_refuses_large_problems():
    p = chebyshev_regression(width=100)
    with pytest.raises(ValueError, match="max_params"):
        principal_flow(p, p.theta0, 0.1, max_params=100)


# -- the authors' demonstration -------------------------------------------------
@pytest.mark.parametrize("lr", [0.5, 0.9, 1.0, 1.05])
def test_principal_flow_is_gd_at_integer_times_on_the_authors_quadratic(lr):
    E = authors_quadratic()
    fine = dict(substep_scale=0.05)
    runs = compare(E, {"GD": GD(lr), "GF": GradientFlow(lr, **fine), "IGR": IGRFlow(lr, **fine),
                       "PF": PrincipalFlow(lr, **fine)}, steps=8, num_eigs=0)
    gd = runs["GD"].snapshots
    rel = {k: float(((h.snapshots - gd).norm(dim=1) / gd.norm(dim=1)).max()) for k, h in runs.items()}
    assert rel["PF"] < 1e-6
    if lr * 2.0 > 1:  # beyond the radius of the IGR series
        assert rel["GF"] > 0.1 and rel["IGR"] > 0.1


def test_principal_flow_oscillates_between_integer_times():
    # ηλ = 1.8: GD flips the sign along u each step; PF's real part passes through 0 at half steps
    E = authors_quadratic()
    lr = 0.9
    half = run(E, PrincipalFlow(lr, substep_scale=0.05, max_substep=0.5), 1, num_eigs=0, save_every=1,
               progress=False)
    assert half.snapshots[1, 0] == pytest.approx(-0.35 * (1 - lr * 2.0), rel=1e-6)
    v = E.theta0.to(torch.complex128)
    for _ in range(200):  # half a step of the flow, by hand, 200 RK4 substeps
        v = eoslab.flows.rk4_step(lambda z: principal_flow(E, z, lr), v, 0.5 / 200)
    assert abs(float(v.real[0])) < 1e-9  # |1 - ηλ|^(1/2) cos(π/2) = 0
    assert float(v.imag[0]) == pytest.approx(-0.35 * math.sqrt(0.8), rel=1e-6)
