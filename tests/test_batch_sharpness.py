"""Batch sharpness against a direct computation over every batch of a tiny problem."""
from itertools import combinations

import numpy as np
import pytest
import torch

import eoslab
from eoslab.curvature import hessian
from eoslab.stochastic import batch_sharpness


@pytest.fixture
def tiny_regression(tiny_mlp):
    return tiny_mlp  # 12 examples, P = 57, float64


def per_batch_ratio(problem, theta, batch, buffer=None, beta=0.0):
    loss = lambda th: problem.loss(th, torch.tensor(batch))  # noqa: E731
    H = hessian(loss, theta)
    g = torch.func.grad(loss)(theta)
    s = g if buffer is None else g + beta * buffer  # the heavy-ball step direction
    return float(s @ H @ s / (s @ g))


def test_batch_sharpness_samples_are_the_per_batch_ratios(tiny_regression):
    p, theta = tiny_regression, tiny_regression.theta0
    result = batch_sharpness(p, theta, 3, rtol=1e-9, min_batches=5, max_batches=5, seed=7)
    generator = torch.Generator().manual_seed(7)
    direct = [per_batch_ratio(p, theta, torch.randperm(12, generator=generator)[:3].tolist()) for _ in range(5)]
    np.testing.assert_allclose(result.samples.numpy(), direct, rtol=1e-10)
    assert result.num_batches == 5 and result.value == pytest.approx(np.mean(direct))


def test_batch_sharpness_converges_to_the_average_over_all_batches(tiny_regression):
    p, theta = tiny_regression, tiny_regression.theta0
    exact = np.mean([per_batch_ratio(p, theta, list(b)) for b in combinations(range(12), 2)])
    result = batch_sharpness(p, theta, 2, rtol=0.01, max_batches=4000)
    assert abs(result.value - exact) < 3 * result.stderr + 1e-12
    assert result.stderr <= 0.01 * abs(result.value) or result.num_batches == 4000
    # the full batch: the Rayleigh quotient of the full Hessian along the full gradient
    full = batch_sharpness(p, theta, 12, min_batches=2, max_batches=3)
    assert full.value == pytest.approx(per_batch_ratio(p, theta, list(range(12))), rel=1e-10)


def test_momentum_aware_batch_sharpness_uses_the_heavy_ball_step(tiny_regression):
    p, theta = tiny_regression, tiny_regression.theta0
    m = torch.randn(p.num_params, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    result = batch_sharpness(p, theta, 4, buffer=m, beta=0.9, rtol=1e-9, min_batches=3, max_batches=3, seed=1)
    generator = torch.Generator().manual_seed(1)
    direct = [per_batch_ratio(p, theta, torch.randperm(12, generator=generator)[:4].tolist(), m, 0.9)
              for _ in range(3)]
    np.testing.assert_allclose(result.samples.numpy(), direct, rtol=1e-10)
    # beta = 0 is the plain definition
    plain = batch_sharpness(p, theta, 4, rtol=1e-9, min_batches=3, max_batches=3, seed=1)
    zero = batch_sharpness(p, theta, 4, buffer=m, beta=0.0, rtol=1e-9, min_batches=3, max_batches=3, seed=1)
    np.testing.assert_allclose(zero.samples.numpy(), plain.samples.numpy(), rtol=1e-12)


def test_batch_sharpness_validates(tiny_regression):
    p, theta = tiny_regression, tiny_regression.theta0
    for kwargs, name in [({"batch_size": 13}, "batch_size"), ({"batch_size": 0}, "batch_size"),
                         ({"batch_size": 2, "rtol": 0.0}, "rtol"), ({"batch_size": 2, "min_batches": 1}, "min_batches")]:
        with pytest.raises(ValueError, match=name):
            batch_sharpness(p, theta, **kwargs)
    with pytest.raises(ValueError, match="buffer"):
        batch_sharpness(p, theta, 2, buffer=torch.zeros(3, dtype=torch.float64), beta=0.5)
    with pytest.raises(ValueError, match="beta"):
        batch_sharpness(p, theta, 2, buffer=torch.zeros(p.num_params, dtype=torch.float64), beta=1.0)


def test_run_rejects_bad_batch_sizes_and_momentum():
    p = eoslab.problems.digits_classification(n=50, widths=(8,))
    with pytest.raises(ValueError, match="batch_size"):
        eoslab.run(p, eoslab.optim.GD(0.1), 2, batch_size=51, progress=False)
    with pytest.raises(ValueError, match="beta"):
        eoslab.optim.HeavyBall(0.1, 1.0)


def test_run_saves_the_momentum_buffer_with_the_parameters():
    q = eoslab.problems.quadratic([2.0, 1.0], dtype="float64")
    h = eoslab.run(q, eoslab.optim.HeavyBall(0.1, 0.5), 6, num_eigs=0, save_every=3, progress=False)
    assert h.state_snapshots.shape == (3, 2)
    # the buffer at step t is v_t = β v_{t-1} + g_{t-1}, with v_0 = 0
    v = torch.zeros(2, dtype=torch.float64)
    theta = q.theta0.clone()
    buffers = [v.clone()]
    for _ in range(6):
        v = 0.5 * v + q.A @ theta
        theta = theta - 0.1 * v
        buffers.append(v.clone())
    torch.testing.assert_close(h.state_snapshots, torch.stack(buffers[::3]))
    assert eoslab.run(q, eoslab.optim.GD(0.1), 6, num_eigs=0, save_every=3, progress=False).state_snapshots is None
