"""Continuous-time models of GD: IGR and the principal flow against closed forms and series
expansions, the authors' quadratic demonstration, a small network, and DAL."""
import math

import numpy as np
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
from eoslab.optim import DAL, GD
from eoslab.problems import chebyshev_regression, quadratic


def authors_quadratic():
    """E(θ) = θᵀ diag(1, 0.01) θ: Hessian eigenvalues 2 and 0.02, start (-0.35, -0.2)."""
    return quadratic([2.0, 0.02], theta0=[-0.35, -0.2], dtype="float64")


# -- the vector fields ---------------------------------------------------------
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


def test_igr_flow_is_gradient_flow_on_the_modified_loss(tiny_mlp):
    lr = 0.1
    theta = tiny_mlp.theta0

    def modified(th):
        (g,) = torch.autograd.grad(tiny_mlp(th), th, create_graph=True)
        return tiny_mlp(th) + lr / 4 * (g @ g)

    th = theta.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(modified(th), th)
    torch.testing.assert_close(igr_flow(tiny_mlp, theta, lr), -lr * expected, rtol=1e-10, atol=1e-12)


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


# -- the authors' demonstration --------------------------------------------------
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


# -- a small network -------------------------------------------------------------
def _distances(lr_times_s, steps):
    p = chebyshev_regression(width=30, dtype="float64")
    S0 = float(torch.linalg.eigvalsh(hessian(p, p.theta0))[-1])
    lr = lr_times_s / S0
    runs = compare(p, {"GD": GD(lr), "GF": GradientFlow(lr, substep_scale=0.2),
                       "PF": PrincipalFlow(lr, substep_scale=0.2)}, steps=steps, num_eigs=0)
    gd = runs["GD"].snapshots
    return {k: (runs[k].snapshots - gd).norm(dim=1).numpy()[1:] for k in ("GF", "PF")}


def test_principal_flow_follows_gd_on_a_network_where_gradient_flow_does_not():
    stable = _distances(1.6, steps=5)  # ηS = 1.6: oscillating but convergent along u
    unstable = _distances(2.3, steps=5)  # ηS = 2.3: the oscillation grows
    assert (stable["PF"] < stable["GF"]).all()
    assert (unstable["PF"] < unstable["GF"]).all()
    assert unstable["PF"].mean() < 0.5 * unstable["GF"].mean()


# -- DAL -------------------------------------------------------------------------
def test_dal_with_p_zero_is_gd_and_records_its_step_sizes():
    q = quadratic([3.0, 1.0], dtype="float64")
    a = eoslab.run(q, GD(0.2), 10, num_eigs=0, progress=False)
    b = eoslab.run(q, DAL(0.2, p=0), 10, num_eigs=0, progress=False)
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_array_equal(b.step_size, np.full(10, 0.2))


def test_dal_step_is_two_over_the_curvature_along_the_gradient_capped():
    q = quadratic([4.0, 1.0], theta0=[1.0, 1.0], dtype="float64")
    g = q.A @ q.theta0
    curvature = float((q.A @ g).norm() / g.norm())  # sqrt(16² + 1) / sqrt(17)
    _, step = DAL(0.1, p=1).update(q.theta0, g, None, loss_fn=q)
    assert step == pytest.approx(2 / curvature)
    _, step = DAL(0.1, p=2).update(q.theta0, g, None, loss_fn=q)
    assert step == pytest.approx(2 / curvature**2)
    _, step = DAL(0.1, p=1, max_scale=0.3).update(q.theta0, g, None, loss_fn=q)
    assert step == 0.3
    h = eoslab.run(q, DAL(0.1, p=1), 5, num_eigs=0, progress=False)
    assert len(h.step_size) == 5 and math.isnan(h.threshold)


def test_dal_with_p_one_sits_at_or_beyond_its_own_edge():
    # mu = ||Hg||/||g|| lies between the Rayleigh quotient of g and the top eigenvalue S, so the
    # p = 1 step 2/mu gives eta_t S >= 2 >= eta_t g'Hg/||g||^2, with equality when g is an eigenvector
    q = quadratic([5.0, 2.0, 0.5, 0.1], dtype="float64")
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        g = torch.randn(4, generator=gen, dtype=torch.float64)
        _, step = DAL(0.1, p=1).update(q.theta0, g, None, loss_fn=q)
        assert step * 5.0 >= 2.0 - 1e-12
        assert step * float(g @ q.A @ g) / float(g @ g) <= 2.0 + 1e-12
    _, step = DAL(0.1, p=1).update(q.theta0, torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64), None,
                                   loss_fn=q)
    assert step * 5.0 == pytest.approx(2.0)


def test_dal_validates():
    for kwargs, name in [({"p": -1.0}, "p"), ({"max_scale": 0.0}, "max_scale"), ({"lr": -0.1}, "lr")]:
        with pytest.raises(ValueError, match=name):
            DAL(**({"lr": 0.1} | kwargs))
    with pytest.raises(ValueError, match="loss_fn"):
        DAL(0.1, p=1).update(torch.zeros(2), torch.ones(2), None)


def test_compare_rejects_what_is_not_a_method_and_labels_that_collide():
    with pytest.raises(TypeError, match="must be an eoslab Method"):
        compare(quadratic([1.0]), [GD(0.1), "gd"], steps=2)
    with pytest.raises(ValueError, match="two methods have the label 'GD"):
        compare(quadratic([1.0]), [GD(0.1), GD(0.1)], steps=2)
    named = compare(quadratic([1.0]), {"a": GD(0.1), "b": GD(0.1)}, steps=2)
    assert list(named) == ["a", "b"]


@pytest.mark.slow
def test_dal_removes_the_loss_spikes_of_gd_at_the_edge_of_stability():
    problem = chebyshev_regression()
    gd = eoslab.run(problem, GD(0.3), 4000, num_eigs=0, progress=False)
    dal = eoslab.run(problem, DAL(0.3, p=1), 4000, num_eigs=0, progress=False)
    jumps = {name: h.loss[1:] / h.loss[:-1] for name, h in (("gd", gd), ("dal", dal))}
    # GD at the edge: dozens of steps where the loss jumps by more than 10 %, some by more than 30 %
    assert (jumps["gd"] > 1.1).sum() >= 10 and jumps["gd"].max() > 1.3
    # DAL with p = 1: none above 10 %, and a final loss below GD's typical late loss (GD's own final
    # value depends on where in a spike the run stops, so compare with its median over the last 500 steps)
    assert (jumps["dal"] > 1.1).sum() == 0 and jumps["dal"].max() < 1.2
    assert dal.loss[-1] < np.median(gd.loss[-500:])
