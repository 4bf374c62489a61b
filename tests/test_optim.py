"""Update rules against torch.optim and against their definitions."""
import pytest
import torch

from eoslab.optim import GD, HeavyBall, Nesterov


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
