"""Gradient flow against the exact solution on quadratics; edge summaries and trajectory distances."""
import numpy as np
import pytest
import torch

from eoslab import History, run
from eoslab.analysis import distance_by_time, edge_summary
from eoslab.flows import GradientFlow
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


def test_distance_by_time_matches_snapshots_by_lr_times_step():
    q = quadratic([1.0], dtype="float64")
    a = run(q, GD(0.2), 50, save_every=5, num_eigs=0, progress=False)  # times 0, 1, 2, ...
    b = run(q, GD(0.5), 20, save_every=1, num_eigs=0, progress=False)  # times 0, 0.5, 1, ...
    times, dist = distance_by_time(a, b)
    assert times.tolist() == pytest.approx([float(t) for t in range(11)])
    assert dist[0] == 0.0
    with pytest.raises(ValueError, match="save_every"):
        distance_by_time(run(q, GD(0.2), 5, num_eigs=0, progress=False), b)


def _history(loss, sharpness, lr=0.1):
    steps = np.arange(len(loss))
    return History(step=steps, loss=np.asarray(loss, float), grad_norm=np.zeros(len(loss)), eig_step=steps,
                   eigenvalues=np.asarray(sharpness, float)[:, None], full_loss=np.asarray(loss, float),
                   eig_products=np.zeros(len(loss), int), diverged_at=None, theta=torch.zeros(1),
                   lr=lr, threshold=2 / lr, label="test")


def test_edge_summary_reads_the_phase_after_the_first_crossing():
    h = _history([1.0, 0.9, 0.8, 0.85, 0.7, 0.75, 0.6], [5, 10, 19, 21, 20, 19.5, 20.5])
    s = edge_summary(h)
    assert s.first_step == 3 and s.loss_increases == 1  # from step 3 on: 0.85 -> 0.7 -> 0.75 -> 0.6
    assert s.median_ratio == pytest.approx(np.median([21, 20, 19.5, 20.5]) / 20)
    assert (s.initial_loss, s.final_loss) == (1.0, 0.6)
    never = edge_summary(_history([1.0, 0.5], [1.0, 2.0]))
    assert never.first_step is None and np.isnan(never.median_ratio) and "never reached" in str(never)


@pytest.mark.parametrize("kwargs, name", [(dict(substep_scale=0.0), "substep_scale"),
                                          (dict(substep_scale=3.0), "substep_scale"),
                                          (dict(max_substep=2.0), "max_substep")])
def test_flows_validate_their_integrator_settings(kwargs, name):
    with pytest.raises(ValueError, match=name):
        GradientFlow(0.1, **kwargs)


def test_run_refuses_what_is_not_a_method_and_a_negative_length():
    q = quadratic([1.0])
    with pytest.raises(ValueError, match="steps"):
        run(q, GradientFlow(0.1), -1, progress=False)
    with pytest.raises(TypeError, match="Method"):
        run(q, lambda th: th, 3)
