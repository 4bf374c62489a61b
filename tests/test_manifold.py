"""Normalized GD and GD on sqrt(L): their updates, their edge, and their drift along the manifold of
minimizers, against the closed-form flows of the toy (1 + x²)y² and on a small network."""
import math

import numpy as np
import pytest
import torch

import eoslab
from eoslab.manifold import toy_manifold_flow
from eoslab.optim import GD, NormalizedGD, SqrtLossGD
from eoslab.problems import manifold_toy, quadratic


def test_normalized_gd_takes_steps_of_length_lr_and_stops_at_a_critical_point():
    theta, step = NormalizedGD(0.3).update(torch.zeros(3), torch.tensor([1.0, 2.0, 2.0]), None)
    assert float(theta.norm()) == pytest.approx(0.3) and step == pytest.approx(0.1)
    theta, step = NormalizedGD(0.3).update(torch.ones(3), torch.zeros(3), None)
    assert theta.tolist() == [1.0, 1.0, 1.0] and step == 0.0


def test_sqrt_loss_gd_is_gd_on_the_square_root_and_stops_at_the_minimum():
    q = quadratic([2.0, 8.0], theta0=[1.0, 0.5], dtype="float64")
    theta = q.theta0.clone().requires_grad_(True)
    (g_sqrt,) = torch.autograd.grad(torch.sqrt(q(theta)), theta)
    new, step = SqrtLossGD(0.1).update(q.theta0, q.A @ q.theta0, None, loss=q(q.theta0))
    torch.testing.assert_close(new, q.theta0 - 0.1 * g_sqrt)
    assert step == pytest.approx(0.1 / (2 * math.sqrt(float(q(q.theta0)))))
    same, step = SqrtLossGD(0.1, min_loss=5.0).update(q.theta0, q.A @ q.theta0, None, loss=q(q.theta0))
    assert torch.equal(same, q.theta0) and step == 0.0
    with pytest.raises(ValueError, match="loss"):
        SqrtLossGD(0.1).update(q.theta0, q.theta0, None)


def test_non_finite_gradients_are_reported_as_divergence():
    p = eoslab.problems.function_problem(lambda th: (th**2).sum() / (th[0] - 1.0) ** 4, torch.tensor([1.0, 0.0]),
                                         dtype="float64")
    for opt in (NormalizedGD(0.1), SqrtLossGD(0.1)):
        h = eoslab.run(p, opt, 5, num_eigs=0, progress=False)
        assert h.diverged_at == 0


def test_normalized_gd_on_a_quadratic_ends_in_a_two_cycle_at_the_edge():
    q = quadratic([1.0, 0.4], theta0=[1.0, 1.0], dtype="float64")
    h = eoslab.run(q, NormalizedGD(1.0), 60, num_eigs=0, save_every=1, progress=False)
    tail = h.snapshots[-10:]
    assert float(tail[:, 1].abs().max()) < 1e-12  # the small-curvature coordinate is gone
    np.testing.assert_allclose(tail[:-2, 0], tail[2:, 0], atol=1e-12)  # period two along u
    assert float((tail[1:, 0] - tail[:-1, 0]).abs().min()) == pytest.approx(1.0)  # each step has length η
    # averaged over the cycle, the effective threshold 2/η_eff is the sharpness, 1
    pair = 0.5 * (2 / h.step_size[1:] + 2 / h.step_size[:-1])
    np.testing.assert_allclose(pair[-10:], 1.0, rtol=1e-9)
    # the effective steps themselves are η/|x| at the two points (1.568 and 2.762): neither they nor their mean is 2
    last = h.step_size[-2:]  # step_size[t] takes θ_t to θ_{t+1}
    np.testing.assert_allclose(last, 1.0 / h.snapshots[-3:-1, 0].abs().numpy(), rtol=1e-9)
    assert sorted(np.round(last, 3).tolist()) == [1.568, 2.762]
    assert last.mean() == pytest.approx(2.165, abs=1e-3)


def test_the_toy_manifold_flows_solve_their_equations():
    tau = np.linspace(0.0, 3.0, 31)
    for method, rate in (("normalized", lambda x: -x / (2 * (1 + x**2))), ("sqrt", lambda x: -x / 2)):
        x = toy_manifold_flow(2.0, tau, method)
        assert x[0] == pytest.approx(2.0)
        dx = np.gradient(x, tau, edge_order=2)
        np.testing.assert_allclose(dx[1:-1], rate(x[1:-1]), rtol=2e-3)
    assert toy_manifold_flow(-1.0, 1.0, "sqrt") == pytest.approx(-math.exp(-0.5))
    with pytest.raises(ValueError, match="method"):
        toy_manifold_flow(1.0, 1.0, "adam")


@pytest.mark.parametrize("method, optimizer", [("normalized", NormalizedGD), ("sqrt", SqrtLossGD)])
def test_drift_along_the_manifold_follows_the_limiting_flow_on_the_toy(method, optimizer):
    lr = 0.02
    steps = round(1.5 / lr**2)
    h = eoslab.run(manifold_toy(theta0=(2.0, 0.3), dtype="float64"), optimizer(lr), steps, num_eigs=0, save_every=1,
                   progress=False)
    x, y = h.snapshots[:, 0].numpy(), h.snapshots[:, 1].numpy()
    # phase I: Θ(1/η) steps to get within O(η) of Γ = {y = 0}
    reached = int(np.argmax(np.abs(y) < 2 * lr))
    assert 0 < reached < 2 / lr
    # phase II: the drift over Θ(1/η²) steps follows the flow in τ = η² t, started where phase I ended
    predicted = toy_manifold_flow(x[reached], lr**2 * (np.arange(len(x))[reached:] - reached), method)
    np.testing.assert_allclose(x[reached:], predicted, rtol=0.05)
    assert abs(x[-1] / predicted[-1] - 1) < 0.01
    # the drift is real: x fell from 2 to below 1.7 (normalized) or 1.0 (sqrt)
    assert x[-1] < (1.7 if method == "normalized" else 1.0)
    # and the method sits at the edge: over each two-step cycle, 2 / (effective step) averages λ₁ = 2(1 + x²)
    pair = 0.5 * (2 / h.step_size[1:] + 2 / h.step_size[:-1])
    np.testing.assert_allclose(pair[200:], 2 * (1 + x[201:-1] ** 2), rtol=2e-3)


@pytest.mark.slow
def test_normalized_gd_and_sqrt_gd_lower_the_sharpness_of_a_network_at_nearly_zero_loss():
    net = eoslab.problems.digits_classification(n=100, widths=(32,), dtype="float64")
    gd = eoslab.run(net, GD(0.2), 3000, num_eigs=1, measure_every=3000, progress=False)
    S_gd, L_gd = gd.sharpness[-1], gd.loss[-1]
    assert L_gd < 1e-3
    for optimizer in (NormalizedGD(0.02), SqrtLossGD(0.02)):
        h = eoslab.run(net, optimizer, 10000, theta0=gd.theta, num_eigs=1, measure_every=10000, progress=False)
        # measured: 6.72 -> 5.02 (normalized) and 4.13 (sqrt), with the loss below 1.2e-3 throughout
        assert h.sharpness[-1] < 0.85 * S_gd
        assert h.loss.max() < 2e-3
