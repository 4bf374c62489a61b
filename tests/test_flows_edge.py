"""The central flow and Edge Flow against closed forms: quadratics, the two-variable toy
L(x, y) = ½(s0 + y)x² - c·y, the complementarity problem, and the cost of an Edge Flow step."""
import math

import numpy as np
import pytest
import torch

import eoslab
from eoslab import flows
from eoslab.flows import CentralFlow, EdgeFlow, EdgeState, GradientFlow, edge_covariance, edge_flow_step
from eoslab.flows import edge as flow_edge
from eoslab.flows.central import _complementarity
from eoslab.runs import compare
from eoslab.optim import GD
from eoslab.problems import function_problem, quadratic


def toy(s0=4.0, c=0.02, x0=1e-3, y0=0.0, dims=1):
    """L = Σ_i ½(s0 + y_i) x_i² - c y_i: at x = 0 the sharpness is s0 + max y_i and ∇λ_i = e_{y_i}."""

    def loss(th):
        x, y = th[:dims], th[dims:]
        return (0.5 * (s0 + y) * x**2 - c * y).sum()

    start = torch.tensor([x0] * dims + [y0] * dims)
    return function_problem(loss, start, name="two-variable toy", dtype="float64")


# -- the complementarity problem and the central flow ---------------------------
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
    p = toy(s0=4.0, c=0.02, x0=0.0, dims=2)
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
    p = toy(s0=s0, c=c, x0=0.0)
    cf = eoslab.run(p, CentralFlow(lr, num_eigs=1), 200, num_eigs=1, measure_every=1, progress=False)
    gf = eoslab.run(p, GradientFlow(lr), 200, num_eigs=1, measure_every=1, progress=False)
    assert gf.sharpness[-1] > 4.5  # 3 + 200 * 0.5 * 0.02 = 5
    assert np.abs(cf.sharpness[120:] - 2 / lr).max() < 1e-6  # reached at t = 100, then held
    np.testing.assert_allclose(cf.extras["sigma2"][120:], 2 * c, rtol=1e-6)


def _cycle_means(values, sharpness, threshold):
    """Mean of ``values`` over each full cycle between upward crossings of the threshold."""
    ups = np.flatnonzero((sharpness[:-1] < threshold) & (sharpness[1:] >= threshold)) + 1
    return np.array([values[a:b].mean() for a, b in zip(ups[:-1], ups[1:])])


def test_gd_on_the_toy_oscillates_with_mean_square_two_c():
    # the central flow's σ² is GD's x² averaged over each cycle of the Edge of Stability
    lr, c = 0.5, 0.005
    gd = eoslab.run(toy(s0=3.9, c=c, x0=0.05), GD(lr), 1500, num_eigs=0, save_every=1, progress=False)
    x, y = gd.snapshots[:, 0].double().numpy(), gd.snapshots[:, 1].double().numpy()
    means = _cycle_means(x**2, 3.9 + y, 2 / lr)
    assert len(means) >= 4
    np.testing.assert_allclose(means, 2 * c, rtol=0.05)


# -- Edge Flow -------------------------------------------------------------------
@pytest.mark.parametrize("substeps", [1, 2])
def test_edge_flow_step_costs_two_gradients_and_one_hessian_vector_product(monkeypatch, substeps):
    p = eoslab.problems.chebyshev_regression(width=20, dtype="float64")
    _, state = EdgeFlow(0.3).start(p, p.theta0)
    counts = {"value_and_grad": 0, "hvp": 0, "loss": 0}
    original_vg, original_loss, original_hvp = p.value_and_grad, p.loss, flow_edge.hvp

    def counting_vg(theta, batch_indices=None):
        counts["value_and_grad"] += 1
        return original_vg(theta, batch_indices)

    def counting_loss(theta, batch_indices=None):
        counts["loss"] += 1
        return original_loss(theta, batch_indices)

    def counting_hvp(loss, theta, v):
        counts["hvp"] += 1
        return original_hvp(loss, theta, v)

    monkeypatch.setattr(p, "value_and_grad", counting_vg)
    monkeypatch.setattr(p, "loss", counting_loss)
    monkeypatch.setattr(type(p), "__call__", lambda self, th, b=None: self.loss(th, b))
    monkeypatch.setattr(flow_edge, "hvp", counting_hvp)
    for _ in range(3):
        state = edge_flow_step(p, state, 0.3, substeps=substeps)
    # per (sub)step: ∇L(x + au), ∇L(x - au), and H(x)u, which evaluates the loss once more to build its graph
    assert counts == {"value_and_grad": 6 * substeps, "hvp": 3 * substeps, "loss": 9 * substeps}


@pytest.mark.parametrize("lr_lambda", [1.5, 1.9, 2.0, 2.1, 2.5])
def test_edge_flow_magnitude_grows_at_log_one_minus_lr_lambda_on_a_quadratic(lr_lambda):
    lr = 0.5
    q = quadratic([lr_lambda / lr, 0.1, 0.04], theta0=[0.01, 1.0, -1.0], dtype="float64")
    h = eoslab.run(q, EdgeFlow(lr), 30, num_eigs=0, progress=False)
    growth = np.diff(np.log(h.extras["magnitude"]))
    np.testing.assert_allclose(growth, math.log(abs(1 - lr_lambda)), atol=1e-6)


def test_edge_flow_center_is_gd_without_its_oscillation_on_a_quadratic():
    lr = 0.5
    q = quadratic([4.0, 0.1, 0.04], theta0=[0.01, 1.0, -1.0], dtype="float64")  # ηλ_1 = 2: a period-two orbit
    runs = compare(q, {"GD": GD(lr), "EF": EdgeFlow(lr)}, steps=40, num_eigs=0)
    gd, center = runs["GD"].snapshots, runs["EF"].snapshots
    # across u the center is GD itself; along u it sits at the valley floor while GD swings by ±a
    torch.testing.assert_close(center[:, 1:], gd[:, 1:], rtol=0, atol=1e-12)
    assert float(center[:, 0].abs().max()) < 1e-12
    np.testing.assert_allclose(np.abs(gd[:, 0].numpy()), runs["EF"].extras["magnitude"], rtol=1e-9)
    # and the GD midpoint (θ_{t-1} + 2θ_t + θ_{t+1})/4 agrees with the center to O((ηλ_2)²)
    mid = (gd[:-2] + 2 * gd[1:-1] + gd[2:]) / 4
    rel = (center[1:-1] - mid).norm(dim=1) / mid.norm(dim=1)
    assert float(rel.max()) < 1e-3


def test_edge_flow_reproduces_self_stabilization_on_the_toy():
    # the toy is the two-variable model of Chapter 3: Edge Flow's a² averages 2c over its cycles, like GD's x²
    lr, c = 0.5, 0.005
    ef = eoslab.run(toy(s0=3.9, c=c, x0=0.05), EdgeFlow(lr), 1500, num_eigs=0, progress=False)
    means = _cycle_means(ef.extras["magnitude"] ** 2, ef.extras["rayleigh"], 2 / lr)
    assert len(means) >= 4
    np.testing.assert_allclose(means, 2 * c, rtol=0.05)


def test_edge_flow_substeps_on_a_quadratic_are_euler_steps_of_gradient_flow_across_u():
    # across u the substepped center is explicit Euler on gradient flow, (1 - ηλ/n)^n per step, which tends to
    # gradient flow's exp(-ηλ); the magnitude still changes by exactly |1 - ηλ_1| per step, whatever n
    lr, lam = 0.5, np.array([4.0, 0.1, 0.04])
    q = quadratic(lam.tolist(), theta0=[0.01, 1.0, -1.0], dtype="float64")
    steps = 20
    for n in (1, 4, 64):
        h = eoslab.run(q, EdgeFlow(lr, substeps=n), steps, num_eigs=0, save_every=1, progress=False)
        across = h.snapshots[:, 1:].numpy()
        closed = np.array([[1.0, -1.0]]) * (1 - lr * lam[1:] / n) ** (n * np.arange(steps + 1))[:, None]
        np.testing.assert_allclose(across, closed, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(np.diff(np.log(h.extras["magnitude"])), math.log(abs(1 - lr * lam[0])), atol=1e-9)
    z = lr * lam[1:]
    flow = np.array([1.0, -1.0]) * np.exp(-z * steps)  # gradient flow's closed form at t = steps
    # (1 - z/n)^(nt) = exp(-zt)(1 - t z²/(2n) + O(1/n²)): at n = 64 within 5 % of that first-order term
    np.testing.assert_allclose(np.abs(across[-1] - flow), np.abs(flow) * steps * z**2 / (2 * 64), rtol=0.05)


def _toy_edge_flow_ode(s0, c, lr, a0, horizon):
    """Edge Flow's three equations on the toy, from the center (0, 0) with u = e_x: u stays e_x, the center stays
    on x = 0, and what is left is dy/dt = η(c - a²/2), d(log a)/dt = log|1 - η(s0 + y)|, solved by scipy."""
    from scipy.integrate import solve_ivp

    def rhs(t, z):
        return [lr * (c - 0.5 * math.exp(2 * z[1])), math.log(abs(1 - lr * (s0 + z[0])))]

    return solve_ivp(rhs, (0, horizon), [0.0, math.log(a0)], rtol=1e-12, atol=1e-14, dense_output=True).sol


def test_edge_flow_with_substeps_converges_to_the_solution_of_its_equations_on_the_toy():
    s0, c, lr, a0, horizon = 3.9, 0.005, 0.5, 0.05, 100
    p = toy(s0=s0, c=c, x0=0.0)
    truth = _toy_edge_flow_ode(s0, c, lr, a0, horizon)
    errors = []
    for n in (1, 4, 16):
        state = EdgeState(torch.zeros(2, dtype=torch.float64), torch.tensor([1.0, 0.0], dtype=torch.float64), a0)
        error = 0.0
        for t in range(1, horizon + 1):
            state = edge_flow_step(p, state, lr, substeps=n)
            y, log_a = truth(t)
            error = max(error, abs(float(state.x[1]) - y), abs(math.log(state.a) - log_a))
        assert float(state.x[0]) == 0.0 and state.u.tolist() == [1.0, 0.0]
        errors.append(error)
    # explicit Euler is first order: four times the substeps, a quarter of the error (measured ratios 4.0);
    # a scheme converging to anything else would stall, with ratios falling towards 1
    assert 3.0 < errors[0] / errors[1] < 5.0 and 3.0 < errors[1] / errors[2] < 5.0, errors
    assert errors[2] < 0.005, errors  # measured 0.0032 at n = 16: errors[0] / 16


def test_edge_flow_direction_converges_to_the_closed_form_of_the_oja_flow_on_a_quadratic():
    # on a quadratic H is constant and du/dt = η(Hu - (uᵀHu)u) has the solution u(t) = e^{ηtH}u0 / ‖e^{ηtH}u0‖
    lr, lam = 0.5, np.array([3.0, 2.5, 1.0])
    q = quadratic(lam.tolist(), theta0=[0.0, 0.0, 0.0], dtype="float64")
    u0 = torch.tensor([0.2, 0.6, 0.77], dtype=torch.float64)
    u0 = u0 / u0.norm()
    horizon = 10
    errors = []
    for n in (4, 16, 64):
        state = EdgeState(torch.zeros(3, dtype=torch.float64), u0.clone(), 1e-3)
        error = 0.0
        for t in range(1, horizon + 1):
            state = edge_flow_step(q, state, lr, substeps=n)
            exact = np.exp(lr * t * lam) * u0.numpy()
            error = max(error, float(np.abs(state.u.numpy() - exact / np.linalg.norm(exact)).max()))
        errors.append(error)
    # explicit Euler on the sphere is first order: four times the substeps, about a quarter of the error
    assert 3.0 < errors[0] / errors[1] < 5.0 and 3.0 < errors[1] / errors[2] < 5.0, errors
    assert errors[2] < 1e-2, errors


def test_edge_flow_direction_step_is_capped_at_one_over_rho():
    # a step η at ηρ = 2 would give -(I - ηH)u, which at ηρ > 2 amplifies the flat directions; the cap 1/ρ gives
    # u + (Hu - ρu)/ρ = Hu/ρ, one power iteration, and with two substeps (step η/2 = 1/ρ) two of them
    lr = 0.5
    lam = torch.tensor([5.0, 3.0, 0.0], dtype=torch.float64)
    q = quadratic(lam.tolist(), theta0=[0.0, 0.0, 0.0], dtype="float64")
    u = torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64) / math.sqrt(2)  # ρ = (5 + 3)/2 = 4 = 2/η
    zero = torch.zeros(3, dtype=torch.float64)
    one = edge_flow_step(q, EdgeState(zero, u, 1e-3), lr)
    torch.testing.assert_close(one.u, lam * u / (lam * u).norm(), rtol=0, atol=1e-15)
    below = torch.tensor([0.6, 0.0, 0.8], dtype=torch.float64)  # ρ = 1.8 < 1/η: the step is η, uncapped
    rho = float(below @ (lam * below))
    step = edge_flow_step(q, EdgeState(zero, below, 1e-3), lr).u
    expected = below + lr * (lam * below - rho * below)
    torch.testing.assert_close(step, expected / expected.norm(), rtol=0, atol=1e-15)


def test_edge_flow_substeps_default_is_one_step():
    p = toy(s0=3.9, c=0.005, x0=0.05)
    one = eoslab.run(p, EdgeFlow(0.5), 50, num_eigs=0, save_every=1, progress=False)
    explicit = eoslab.run(p, EdgeFlow(0.5, substeps=1), 50, num_eigs=0, save_every=1, progress=False)
    torch.testing.assert_close(one.snapshots, explicit.snapshots, rtol=0, atol=0)
    assert EdgeFlow(0.5, substeps=4).label == "Edge Flow (lr=0.5, 4 substeps)"


def test_edge_flow_validates():
    with pytest.raises(ValueError, match="lr"):
        EdgeFlow(-1.0)
    with pytest.raises(ValueError, match="substeps"):
        EdgeFlow(0.1, substeps=0)
    with pytest.raises(ValueError, match="num_eigs"):
        CentralFlow(0.1, num_eigs=0)


# -- mitigation and analysis helpers ---------------------------------------------
def test_midpoints_recover_the_center_of_a_period_two_orbit():
    q = quadratic([4.0], theta0=[0.3], dtype="float64")  # ηλ = 2: θ_t = ±0.3
    gd = eoslab.run(q, GD(0.5), 6, num_eigs=0, save_every=1, progress=False)
    mid = eoslab.analysis.midpoints(gd)
    assert mid.shape == (5, 1) and float(mid.abs().max()) == 0.0
    errors = eoslab.analysis.tracking_error(gd, gd, horizons=[1, 3, 10])
    np.testing.assert_allclose(errors[:2], [0.3, 0.3]) and np.isnan(errors[2])
    with pytest.raises(ValueError, match="save_every"):
        eoslab.analysis.midpoints(eoslab.run(q, GD(0.5), 6, num_eigs=0, progress=False))


def test_oscillation_cap_holds_the_oscillation_on_a_quadratic_beyond_the_edge():
    from eoslab.optim import OscillationCap

    q = quadratic([5.0], theta0=[0.01], dtype="float64")  # η = 0.5: ηλ = 2.5, GD grows by 1.5 per step
    gd = eoslab.run(q, GD(0.5), 30, num_eigs=0, save_every=1, progress=False)
    capped = eoslab.run(q, OscillationCap(0.5, cap=0.05), 30, num_eigs=0, save_every=1, progress=False)
    assert gd.diverged and abs(float(gd.snapshots[-1, 0])) > 5
    assert float(capped.snapshots[:, 0].abs().max()) < 0.05 * 1.5 + 1e-12
    assert np.isclose(capped.step_size, 2 / 5.0).any() and np.isclose(capped.step_size, 0.5).any()
    with pytest.raises(ValueError, match="cap"):
        OscillationCap(0.5, cap=0.0)


# Edge Flow against the central flow and gradient flow on the digits network (the ranking before and after the
# first blow-up, the overshoot that only Edge Flow follows) is asserted by chapter 5's claim cell and exact outputs.
