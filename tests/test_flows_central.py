"""eoslab.flows.central: the complementarity problem on small cases, and the central flow against closed
forms on quadratics and on the chapter toy L(x, y) = ½(s0 + y)x² - c·y (eoslab.problems.sharpening_toy)."""
import numpy as np
import pytest
import torch

import eoslab
from eoslab import flows
from eoslab.flows import CentralFlow, GradientFlow, edge_covariance
from eoslab.flows.central import _complementarity
from eoslab.optim import GD
from eoslab.problems import chebyshev_regression, quadratic, sharpening_toy
from eoslab.runs import compare


def test_complementarity_solver_on_small_cases():
    M = np.eye(2)
    assert _complementarity(M, np.array([-1.0, 2.0])).tolist() == [1.0, 0.0]
    assert _complementarity(M, np.array([1.0, 2.0])).tolist() == [0.0, 0.0]
    M = np.array([[2.0, 1.0], [1.0, 2.0]])
    s = _complementarity(M, np.array([-3.0, -3.0]))
    np.testing.assert_allclose(s, [1.0, 1.0])
    # a random PSD case: check the complementarity conditions themselves
    rng = np.random.default_rng(0)
    B = rng.normal(size=(4, 4))
    M, q = B @ B.T, rng.normal(size=4)
    s = _complementarity(M, q)
    w = q + M @ s
    assert (s >= 0).all() and (w >= -1e-9).all() and abs(s @ w) < 1e-9


def test_edge_covariance_on_the_toy_is_two_c_per_direction():
    lr = 0.5  # 2/η = 4 = s0: both directions exactly at the edge
    p = sharpening_toy(s0=4.0, c=0.02, x0=0.0, dims=2)
    U = torch.eye(4, dtype=torch.float64)[:, :2]
    sigma2, G, g = edge_covariance(p, p.theta0, lr, torch.tensor([4.0, 4.0], dtype=torch.float64), U)
    np.testing.assert_allclose(sigma2.numpy(), [0.04, 0.04], atol=1e-12)  # σ² = 2⟨-∇L, ∇S⟩/‖∇S‖² = 2c
    v = flows.central_flow(p, p.theta0, lr, torch.tensor([4.0, 4.0], dtype=torch.float64), U)
    assert float(v.abs().max()) < 1e-12  # the flow stops: sharpening and stabilization balance


def test_central_flow_is_gradient_flow_below_the_edge():
    q = quadratic([3.0, 1.0], theta0=[1.0, -1.0], dtype="float64")
    values, vectors = torch.tensor([3.0, 1.0], dtype=torch.float64), torch.eye(2, dtype=torch.float64)
    torch.testing.assert_close(flows.central_flow(q, q.theta0, 0.5, values, vectors),
                               flows.gradient_flow(q, q.theta0, 0.5), rtol=0, atol=1e-15)
    runs = compare(q, {"CF": CentralFlow(0.5, num_eigs=2)}, steps=5, num_eigs=0)
    np.testing.assert_array_equal(runs["CF"].extras["sigma2"], np.zeros(6))


def test_central_flow_holds_the_toy_at_the_edge_and_predicts_the_average_loss():
    lr, s0, c = 0.5, 3.0, 0.02  # GF sharpens at rate ηc per step from S = 3 past 2/η = 4
    p = sharpening_toy(s0=s0, c=c, x0=0.0)
    cf = eoslab.run(p, CentralFlow(lr, num_eigs=1), 200, num_eigs=1, measure_every=1, progress=False)
    gf = eoslab.run(p, GradientFlow(lr), 200, num_eigs=1, measure_every=1, progress=False)
    assert gf.sharpness[-1] > 4.5  # 3 + 200 * 0.5 * 0.02 = 5
    assert np.abs(cf.sharpness[120:] - 2 / lr).max() < 1e-6  # reached at t = 100, then held
    np.testing.assert_allclose(cf.extras["sigma2"][120:], 2 * c, rtol=1e-6)


@pytest.mark.slow
def test_curvature_once_per_step_stays_within_the_integrators_own_error(monkeypatch):
    """``curvature="step"`` keeps λ_i's gradients over a step and moves λ_i to first order. Its departure
    from the per-substep flow should be of the order of Euler's own error, estimated as twice the gap
    between the per-substep flow and the same with half the substep (Euler's error is linear in h)."""
    p = chebyshev_regression(dtype="float64")
    start = eoslab.run(p, GD(0.3), 3000, measure_every=10, stop=eoslab.until_sharpness_reaches(),
                       progress=False).theta
    calls = []
    original = flows.central.edge_covariance
    monkeypatch.setattr(flows.central, "edge_covariance", lambda *a, **k: calls.append(1) or original(*a, **k))
    flow = {"substep": CentralFlow(0.3, num_eigs=1, eig_tol=1e-8),
            "half": CentralFlow(0.3, num_eigs=1, eig_tol=1e-8, substep_scale=0.25),
            "step": CentralFlow(0.3, num_eigs=1, eig_tol=1e-8, curvature="step")}
    runs, evaluations = {}, {}
    for name, method in flow.items():
        calls.clear()
        runs[name] = eoslab.run(p, method, 50, theta0=start, num_eigs=1, measure_every=1, save_every=1,
                                progress=False)
        evaluations[name] = len(calls)
    assert evaluations["step"] == 51 and evaluations["substep"] >= 4 * 50  # the curvature: once per step

    def gap(a, b):
        return max(float((x - y).norm()) for x, y in zip(runs[a].snapshots, runs[b].snapshots))

    euler_error = 2 * gap("substep", "half")
    assert 0 < gap("step", "substep") <= 2 * euler_error
    for name in flow:  # both hold the sharpness at 2/η
        assert np.abs(runs[name].sharpness[10:] - 2 / 0.3).max() < 1e-4


def test_the_substeps_follow_the_flows_own_eigenvalue_without_a_second_solve(monkeypatch):
    toy = sharpening_toy(s0=3.9, c=0.005, x0=0.05)  # H = [[3.9 + y, x], [x, 0]]; the rate eta * S sets the substeps
    substeps = []
    real_step = flows.Flow.step

    def counting_step(self, problem, theta, state, info):
        substeps.append(max(1, int(np.ceil(self.lr * info.sharpness / self.substep_scale - 1e-9))))
        a, x = 3.9 + float(theta[1]), float(theta[0])
        assert info.sharpness == pytest.approx((a + (a * a + 4 * x * x) ** 0.5) / 2, rel=1e-12)  # this point's
        return real_step(self, problem, theta, state, info)

    monkeypatch.setattr(flows.Flow, "step", counting_step)
    calls = []  # the run's own solves: its tracker has the run's eig_tol, 1e-3 (the flow's: 1e-6)
    real_update = eoslab.recorder.EigenTracker.update
    monkeypatch.setattr(eoslab.recorder.EigenTracker, "update",
                        lambda self, *a, **k: (calls.append(1) if self.eig_tol == 1e-3 else None)
                        or real_update(self, *a, **k))
    bare = eoslab.run(toy, CentralFlow(0.5, num_eigs=1), 60, num_eigs=0, save_every=1, progress=False)
    assert calls == [] and len(substeps) == 60  # the run measured nothing: the flow's own solve set the rate
    measured = eoslab.run(toy, CentralFlow(0.5, num_eigs=1), 60, num_eigs=1, measure_every=25, save_every=1,
                          progress=False)
    assert len(calls) == 4  # steps 0, 25, 50 and 60, for the record only
    torch.testing.assert_close(bare.snapshots, measured.snapshots, rtol=0, atol=0)


def test_a_stop_condition_sees_the_flows_own_sharpness_when_the_run_measures_none():
    toy = sharpening_toy(s0=3.0, c=0.05)  # sharpens from 3 towards 2/eta = 4
    h = eoslab.run(toy, CentralFlow(0.5, num_eigs=1), 100, num_eigs=0, measure_every=1, save_every=1,
                   stop=eoslab.until_sharpness_reaches(3.5), progress=False)

    def top(theta):  # H = [[s0 + y, x], [x, 0]]
        a, x = 3.0 + float(theta[1]), float(theta[0])
        return (a + (a * a + 4 * x * x) ** 0.5) / 2

    assert h.stopped_at is not None and h.stopped_at > 0
    assert top(h.snapshots[h.stopped_at]) >= 3.5 > top(h.snapshots[h.stopped_at - 1])
