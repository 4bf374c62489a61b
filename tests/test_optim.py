"""eoslab.optim: the update rules against torch.optim and against their definitions (GD, heavy ball,
Nesterov, DAL, normalized GD, GD on sqrt(L), the oscillation cap)."""
import math

import numpy as np
import pytest
import torch

import eoslab
from eoslab.optim import DAL, GD, HeavyBall, Nesterov, NormalizedGD, SqrtLossGD
from eoslab.problems import quadratic


def _torch_trajectory(theta0, A, steps, **sgd_kwargs):
    p = theta0.clone().requires_grad_(True)
    opt = torch.optim.SGD([p], **sgd_kwargs)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * p @ A @ p).backward()
        opt.step()
        out.append(p.detach().clone())
    return torch.stack(out)


def _our_trajectory(theta0, A, steps, optimizer):
    theta, state, out = theta0.clone(), optimizer.init(theta0), []
    for _ in range(steps):
        theta, state = optimizer.update(theta, A @ theta, state)
        out.append(theta)
    return torch.stack(out)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (GD(0.1), dict(lr=0.1)),
        (HeavyBall(0.05, 0.9), dict(lr=0.05, momentum=0.9)),
        (Nesterov(0.05, 0.7), dict(lr=0.05, momentum=0.7, nesterov=True)),
    ],
)
def test_updates_match_torch_sgd(ours, theirs):
    A = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    theta0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    torch.testing.assert_close(_our_trajectory(theta0, A, 30, ours), _torch_trajectory(theta0, A, 30, **theirs))


def test_first_step_from_a_zero_buffer():
    # heavy ball's first step is a plain gradient step; Nesterov's adds beta * v_1 = beta * g_0 (chapter 1)
    theta0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    g0 = torch.tensor([0.5, 3.0], dtype=torch.float64)
    for opt, factor in ((GD(0.1), 1.0), (HeavyBall(0.1, 0.9), 1.0), (Nesterov(0.1, 0.9), 1.9)):
        theta1, _ = opt.update(theta0, g0, opt.init(theta0))
        torch.testing.assert_close(theta1, theta0 - 0.1 * factor * g0)


def test_thresholds_closed_form():
    assert GD(0.01).threshold == pytest.approx(200.0)
    assert HeavyBall(0.01, 0.9).threshold == pytest.approx(380.0)
    assert Nesterov(0.01, 0.9).threshold == pytest.approx(135.714, rel=1e-5)
    assert HeavyBall(0.01, 0.0).threshold == GD(0.01).threshold == Nesterov(0.01, 0.0).threshold


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: GD(0.0), "lr"),
        (lambda: GD(-0.1), "lr"),
        (lambda: GD(float("nan")), "lr"),
        (lambda: HeavyBall(0.1, 1.0), "beta"),
        (lambda: HeavyBall(0.1, -0.1), "beta"),
        (lambda: Nesterov(0.1, 1.5), "beta"),
    ],
)
def test_bad_hyperparameters_raise_value_error_naming_them(make, name):
    with pytest.raises(ValueError, match=name):
        make()


# -- DAL ------------------------------------------------------------------------
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


def test_dal_in_run_shares_the_gradient_graph_and_matches_the_update_rule(monkeypatch):
    # run hands DAL the operator whose graph gave the gradient; the trajectory is the one the bare rule gives
    # with its own Hessian-vector product, and each step builds one graph (not a gradient, then a graph)
    from eoslab.curvature import operators
    from eoslab.problems import chebyshev_regression
    problem = chebyshev_regression(dtype="float64")
    rule, theta, state, losses = DAL(0.3, p=1), problem.theta0.clone(), None, []
    for _ in range(20):
        loss, grad = problem.value_and_grad(theta)
        losses.append(float(loss))
        theta, state = rule.update(theta, grad, state, loss_fn=problem)
    built = []
    original = operators.HessianOperator.__init__
    monkeypatch.setattr(operators.HessianOperator, "__init__",
                        lambda self, *a, **k: (built.append(1), original(self, *a, **k))[1])
    calls = []
    monkeypatch.setattr(type(problem), "value_and_grad", lambda *a, **k: calls.append(1))
    h = eoslab.run(problem, DAL(0.3, p=1), 19, num_eigs=0, progress=False)
    np.testing.assert_allclose(h.loss, losses, rtol=1e-12)
    assert len(built) == 20 and not calls
    assert DAL(0.3, p=1).needs_hessian and not DAL(0.3, p=0).needs_hessian


def test_dal_step_does_not_overflow_where_its_curvature_is_finite():
    # ||Hg|| = 1e30 overflows float32 when squared inside norm(); ||Hg / ||g|| || = 1e15 does not
    q = quadratic([1e15, 1.0], theta0=[1.0, 0.0])
    _, step = DAL(0.1, p=1).update(q.theta0, q.A @ q.theta0, None, loss_fn=q)
    assert step == pytest.approx(2e-15, rel=1e-5)


def test_dal_that_diverges_stops_cleanly():
    h = eoslab.run(quadratic([50.0, 1.0], dtype="float64"), DAL(0.1, p=0.5, max_scale=5.0), 200, num_eigs=0,
                   progress=False)
    assert h.diverged and 0 < h.diverged_at < 200


def test_dal_validates():
    for kwargs, name in [({"p": -1.0}, "p"), ({"max_scale": 0.0}, "max_scale"), ({"lr": -0.1}, "lr")]:
        with pytest.raises(ValueError, match=name):
            DAL(**({"lr": 0.1} | kwargs))
    with pytest.raises(ValueError, match="loss_fn"):
        DAL(0.1, p=1).update(torch.zeros(2), torch.ones(2), None)


# -- normalized GD and GD on sqrt(L) --------------------------------------------
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


def test_non_finite_gradients_at_the_start_are_bad_input():
    p = eoslab.problems.function_problem(lambda th: (th**2).sum() / (th[0] - 1.0) ** 4, torch.tensor([1.0, 0.0]),
                                         dtype="float64")
    for opt in (NormalizedGD(0.1), SqrtLossGD(0.1)):
        with pytest.raises(ValueError, match="not finite at the start"):  # a start with nothing to run
            eoslab.run(p, opt, 5, num_eigs=0, progress=False)



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


# -- the oscillation cap --------------------------------------------------------
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
