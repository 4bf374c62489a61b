"""eoslab.flows.gradient and the integrator the flows share (eoslab.flows.base): gradient flow against the
exact solution on quadratics and against small-step GD, IGR as gradient flow on the modified loss, and the
integrator's settings."""
import numpy as np
import pytest
import torch

from eoslab import run
from eoslab.analysis import distance_by_time
from eoslab.flows import GradientFlow, igr_flow
from eoslab.optim import GD
from eoslab.problems import quadratic

from conftest import random_orthogonal


def test_gradient_flow_matches_the_matrix_exponential(rng):
    Q = random_orthogonal(3, rng)
    lam = torch.tensor([4.0, 1.0, 0.1], dtype=torch.float64)
    q = quadratic(lam, theta0=[1.0, -2.0, 0.5], eigenvectors=Q, dtype="float64")
    lr, T = 0.3, 20
    times = torch.arange(T + 1, dtype=torch.float64)
    # theta(t) = Q exp(-lr * Lambda * t) Q^T theta0
    exact = (Q @ (torch.exp(-lr * lam[:, None] * times[None, :]) * (Q.T @ q.theta0)[:, None])).T
    errors = {}
    for alpha in (0.5, 0.05):
        # alpha = 0.5 and 0.05 give 3 and 24 substeps per unit time (h * lr * S = 0.4 and 0.05)
        h = run(q, GradientFlow(lr, substep_scale=alpha), T, save_every=1, measure_every=5, progress=False)
        errors[alpha] = float((h.snapshots - exact).norm(dim=1).max() / q.theta0.norm())
    assert errors[0.5] < 1e-4
    assert errors[0.05] < 1e-8
    assert errors[0.5] / errors[0.05] > 0.5 * 8.0**4  # fourth order: 8x smaller substeps, ~4096x smaller error
    np.testing.assert_allclose(h.sharpness, 4.0, rtol=1e-6)
    assert h.threshold == pytest.approx(2 / lr)


def test_gradient_flow_and_small_step_gd_agree_but_large_step_gd_does_not():
    q = quadratic([2.0, 0.5], theta0=[1.0, 1.0], dtype="float64")
    flow = run(q, GradientFlow(1.0), 5, save_every=1, progress=False)
    small = run(q, GD(0.01), 500, save_every=100, num_eigs=0, progress=False)
    large = run(q, GD(1.0), 5, save_every=1, num_eigs=0, progress=False)  # eta * lambda_1 = 2: period two
    _, d_small = distance_by_time(small, flow)
    times, d_large = distance_by_time(large, flow)
    assert times.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert d_small.max() < 5e-3
    assert d_large.max() > 0.1


def test_igr_flow_is_gradient_flow_on_the_modified_loss(tiny_mlp):
    lr = 0.1
    theta = tiny_mlp.theta0

    def modified(th):
        (g,) = torch.autograd.grad(tiny_mlp(th), th, create_graph=True)
        return tiny_mlp(th) + lr / 4 * (g @ g)

    th = theta.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(modified(th), th)
    torch.testing.assert_close(igr_flow(tiny_mlp, theta, lr), -lr * expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kwargs, name", [(dict(substep_scale=0.0), "substep_scale"),
                                          (dict(substep_scale=3.0), "substep_scale"),
                                          (dict(max_substep=2.0), "max_substep")])
def test_flows_validate_their_integrator_settings(kwargs, name):
    with pytest.raises(ValueError, match=name):
        GradientFlow(0.1, **kwargs)
