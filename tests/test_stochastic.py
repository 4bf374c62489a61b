"""eoslab.stochastic: batch sharpness against a direct computation over every batch of a tiny problem,
the EoSS levels against the period map of heavy ball and on orthogonal rank-one batches, and eoss_run
against direct computations on a tiny digits network."""
from itertools import combinations

import numpy as np
import pytest
import torch

from eoslab.curvature import hessian
from eoslab.plotting import plot_eoss
from eoslab.problems import digits_eoss
from eoslab.optim import GD, HeavyBall, Nesterov
from eoslab.runs import run
from eoslab.stochastic import batch_sharpness, eoss_levels, eoss_run, plateau_table, rank_one_batches, revisit_level


# -- batch sharpness ------------------------------------------------------------
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


# -- the levels -----------------------------------------------------------------
def test_levels_are_the_linear_stability_thresholds():
    lv = eoss_levels(0.05, 0.5)
    assert (lv.small, lv.large, lv.plain) == pytest.approx((20.0, 60.0, 40.0))
    plain = eoss_levels(0.2)
    assert plain.small == plain.large == plain.plain == pytest.approx(10.0)


def period_map(a, lr, beta, period):
    """One period of heavy ball on a direction pushed at the first step only: (x, v) -> (x, v)."""
    M = np.eye(2)
    for k in range(period):
        push = a if k == 0 else 0.0
        step = np.array([[1.0, 0.0], [push, beta]])  # v <- beta v + push x
        move = np.array([[1.0, -lr], [0.0, 1.0]])  # x <- x - lr v
        M = move @ step @ M
    return M


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("period", [1, 2, 7, 40])
def test_revisit_level_is_where_the_period_map_turns_unstable(beta, period):
    lr = 0.05
    level = revisit_level(lr, beta, period)
    M = period_map(level, lr, beta, period)
    assert np.linalg.det(M) == pytest.approx(beta ** period, abs=1e-12)
    assert np.linalg.eigvals(M).real.min() == pytest.approx(-1.0, abs=1e-9)  # a root at -1 exactly
    assert max(abs(np.linalg.eigvals(period_map(0.999 * level, lr, beta, period)))) < 1
    assert max(abs(np.linalg.eigvals(period_map(1.001 * level, lr, beta, period)))) > 1


def test_revisit_level_joins_the_two_momentum_levels():
    lv = eoss_levels(0.02, 0.9)
    assert revisit_level(0.02, 0.9, 1) == pytest.approx(lv.large)
    assert revisit_level(0.02, 0.9, 500) == pytest.approx(lv.small, rel=1e-9)
    levels = [revisit_level(0.02, 0.9, k) for k in range(1, 60)]
    assert all(a > b for a, b in zip(levels, levels[1:]))  # falls with the period
    with pytest.raises(ValueError, match="period"):
        revisit_level(0.02, 0.9, 0)


def test_rank_one_batches_have_the_curvature_of_their_model():
    p = rank_one_batches(5, 4.0)
    theta = torch.arange(1.0, 6.0, dtype=torch.float64)
    for batch in ([3], [0, 2]):
        H = hessian(lambda th, b=batch: p.loss(th, torch.tensor(b)), theta)
        g = p.value_and_grad(theta, batch)[1]
        torch.testing.assert_close(g, torch.func.grad(lambda th, b=batch: p.loss(th, torch.tensor(b)))(theta))
        assert float(g @ H @ g / (g @ g)) == pytest.approx(4.0 / len(batch))  # batch sharpness a/b
    assert float(torch.linalg.eigvalsh(hessian(p.loss, theta))[-1]) == pytest.approx(4.0 / 5)  # λ_max = a/n
    with pytest.raises(ValueError, match="curvature"):
        rank_one_batches(3, 0.0)


@pytest.mark.parametrize("n, level_name", [(1, "large"), (200, "small")])
def test_sgd_with_momentum_on_orthogonal_batches_turns_unstable_at_the_predicted_level(n, level_name):
    lr, beta = 0.02, 0.9
    level = getattr(eoss_levels(lr, beta), level_name)
    norms = []
    for factor in (0.9, 1.1):
        h = run(rank_one_batches(n, factor * level), HeavyBall(lr, beta), 20 * max(n, 10), batch_size=1, num_eigs=0,
                progress=False)
        norms.append(float(h.theta.norm() / n ** 0.5))
    assert norms[0] < 0.1 and norms[1] > 10, norms


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=-0.1), "lr"),
    (dict(lr=0.1, beta=1.0), r"beta.*\[0, 1\)"),
    (dict(lr=0.1, beta=-0.2), r"beta.*\[0, 1\)"),
])
def test_levels_reject_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        eoss_levels(**kwargs)


# -- eoss_run -------------------------------------------------------------------
def test_predicted_level_follows_the_regime():
    import dataclasses

    r = eoss_run(digits_eoss(n=40, widths=(6,)), GD(0.1), 8, steps=4, measure_every=4, progress=False)
    assert r.predicted_level == pytest.approx(20.0)  # plain SGD: 2/η
    momentum = dataclasses.replace(r, beta=0.9, levels=eoss_levels(0.1, 0.9))
    assert momentum.predicted_level == pytest.approx(2.0)  # small batch: 2(1-β)/η
    assert dataclasses.replace(momentum, full_batch=True).predicted_level == pytest.approx(38.0)  # 2(1+β)/η


@pytest.fixture
def tiny_digits():
    return digits_eoss(n=40, widths=(6,), dtype="float64")


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch_size=0), r"batch_size.*1"),
    (dict(batch_size=41), r"batch_size.*40"),
    (dict(batch_size=8, measure_every=0), "measure_every"),
])
def test_eoss_run_rejects_bad_input(tiny_digits, kwargs, match):
    with pytest.raises(ValueError, match=match):
        eoss_run(tiny_digits, GD(0.1), kwargs.pop("batch_size"), steps=10, progress=False, **kwargs)
    with pytest.raises(TypeError, match="GD or eoslab.optim.HeavyBall"):
        eoss_run(tiny_digits, Nesterov(0.1, 0.9), 8, steps=10, progress=False)


def test_eoss_run_keeps_its_old_signature_for_one_release_with_a_warning(tiny_digits):
    with pytest.warns(DeprecationWarning, match="HeavyBall"):
        old = eoss_run(tiny_digits, 0.3, 4, beta=0.5, steps=20, measurements=2, progress=False)
    new = eoss_run(tiny_digits, HeavyBall(0.3, 0.5), 4, steps=20, measure_every=10, progress=False)
    np.testing.assert_array_equal(old.batch_sharpness, new.batch_sharpness)
    assert old.beta == new.beta == 0.5


def test_eoss_run_measures_what_a_direct_computation_gives(tiny_digits):
    p = tiny_digits
    beta, B = 0.5, 5
    r = eoss_run(p, HeavyBall(0.3, beta), B, steps=30, measure_every=10, rtol=1e-12, max_batches=10, progress=False)
    assert r.step.tolist() == [0, 10, 20, 30]
    h = r.history
    for k, t in enumerate(r.step):
        theta = h.snapshots[k]
        # λ_max against a dense eigendecomposition of the full-batch Hessian
        assert r.lambda_max[k] == pytest.approx(float(torch.linalg.eigvalsh(hessian(p.loss, theta))[-1]), rel=1e-4)
        # both batch sharpnesses against dense per-batch Hessians on the same batch draws
        generator = torch.Generator().manual_seed(k)
        plain, aware = [], []
        for _ in range(10):
            batch = torch.randperm(40, generator=generator)[:B]
            loss = lambda th, b=batch: p.loss(th, b)  # noqa: E731
            H, g = hessian(loss, theta), torch.func.grad(loss)(theta)
            s = g + beta * h.state_snapshots[k]
            plain.append(float(g @ H @ g / (g @ g)))
            aware.append(float(s @ H @ s / (s @ g)))
        assert r.batch_sharpness[k] == pytest.approx(np.mean(plain), rel=1e-9)
        assert r.momentum_batch_sharpness[k] == pytest.approx(np.mean(aware), rel=1e-9)
    window = r.step >= 15
    assert r.plateau().batch_sharpness == pytest.approx(r.batch_sharpness[window].mean())
    assert r.plateau().num_measurements == 2


def test_eoss_run_is_deterministic_and_full_batch_by_default(tiny_digits):
    a = eoss_run(tiny_digits, GD(0.3), 4, steps=20, measure_every=10, progress=False)
    b = eoss_run(tiny_digits, GD(0.3), 4, steps=20, measure_every=10, progress=False)
    np.testing.assert_array_equal(a.batch_sharpness, b.batch_sharpness)
    full = eoss_run(tiny_digits, GD(0.3), steps=20, measure_every=10, progress=False)
    assert full.full_batch and full.batch_size == 40 and full.history.batch_size is None
    assert full.label == "η=0.3, β=0, full batch"


def test_a_divergent_run_stops_cleanly_and_has_no_plateau(tiny_digits):
    r = eoss_run(tiny_digits, GD(500.0), 8, steps=50, measure_every=10, progress=False)
    assert r.diverged_at is not None and "diverged at step" in repr(r)
    with pytest.raises(ValueError, match="diverged at step"):
        r.plateau()
    row = plateau_table([r])[0]
    assert np.isnan(row["batch_sharpness"]) and row["diverged_at"] == r.diverged_at
    fig = plot_eoss([r])
    assert "diverged at step" in fig.axes[0].get_legend().get_texts()[0].get_text()


def test_eoss_run_keeps_a_checkpoint_and_reads_a_finished_run_back(tiny_digits, tmp_path, same_history):
    path = tmp_path / "eoss.ckpt"
    first = eoss_run(tiny_digits, HeavyBall(0.3, 0.5), 4, steps=20, measure_every=10, checkpoint=path, progress=False)
    again = eoss_run(tiny_digits, HeavyBall(0.3, 0.5), 4, steps=20, measure_every=10, checkpoint=path, progress=False)
    same_history(first.history, again.history)
    np.testing.assert_array_equal(first.batch_sharpness, again.batch_sharpness)


def test_a_plateau_says_whether_the_series_has_levelled_off():
    import dataclasses

    r = eoss_run(digits_eoss(n=40, widths=(6,)), GD(0.1), 8, steps=20, measure_every=1, progress=False)
    step = np.arange(21)
    flat = dataclasses.replace(r, step=step, batch_sharpness=10 + 0.5 * np.cos(step * 2.1),
                               lambda_max=np.full(21, 5.0), momentum_batch_sharpness=np.full(21, 10.0))
    p = flat.plateau()
    assert p.levelled_off and abs(p.trend) < 0.05 and "not levelled off" not in str(p)
    rising = dataclasses.replace(flat, batch_sharpness=7.7 + 0.2 * step)  # 9.7 -> 11.7 across the window
    p = rising.plateau()
    assert not p.levelled_off and p.trend > 0.1 and "not levelled off" in str(p)
    assert plateau_table([rising])[0]["levelled_off"] is False


def test_an_eoss_run_saves_and_loads_exactly(tiny_digits, tmp_path):
    from eoslab import History
    from eoslab.stochastic import EossRun

    r = eoss_run(tiny_digits, HeavyBall(0.2, 0.5), 4, steps=12, measure_every=4, progress=False)
    back = EossRun.load(r.save(tmp_path / "run"))
    for name in ("step", "batch_sharpness", "stderr", "momentum_batch_sharpness", "lambda_max"):
        np.testing.assert_array_equal(getattr(back, name), getattr(r, name))
    assert (back.lr, back.beta, back.batch_size, back.full_batch) == (r.lr, r.beta, r.batch_size, r.full_batch)
    assert back.levels == r.levels and repr(back) == repr(r)
    np.testing.assert_array_equal(back.history.loss, r.history.loss)
    plain = r.history.save(tmp_path / "history")
    with pytest.raises(ValueError, match="not an EossRun"):
        EossRun.load(plain)
    assert History.load_attributes(plain) == {}
    with pytest.raises(TypeError, match="attributes must be a dict"):
        r.history.save(tmp_path / "x", attributes=[1])
