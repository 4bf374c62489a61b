"""eoslab.flows.edge: Edge Flow against closed forms on quadratics and on the chapter toy
L(x, y) = ½(s0 + y)x² - c·y (eoslab.problems.sharpening_toy), the solution of its equations, and the cost
of a step."""
import math

import numpy as np
import pytest
import torch

import eoslab
from eoslab.flows import CentralFlow, EdgeFlow, EdgeState, edge_flow_step
from eoslab.flows import edge as flow_edge
from eoslab.optim import GD
from eoslab.problems import quadratic, sharpening_toy
from eoslab.runs import compare


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
    p = sharpening_toy(s0=s0, c=c, x0=0.0)
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
    p = sharpening_toy(s0=3.9, c=0.005, x0=0.05)
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
