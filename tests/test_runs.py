"""eoslab.runs: the run loop (recording, divergence, determinism, validation, the momentum buffer it saves)
and compare."""
import numpy as np
import pytest
import torch

import eoslab
from eoslab import History, compare, run
from eoslab.flows import CentralFlow, GradientFlow
from eoslab.optim import GD, HeavyBall
from eoslab.problems import chebyshev_regression, function_problem, quadratic, sharpening_toy


def test_history_records_every_step_and_measures_on_schedule():
    q = quadratic([4.0, 1.0], dtype="float64")
    h = run(q, GD(0.1), steps=20, measure_every=5, num_eigs=2, save_every=10, progress=False)
    assert isinstance(h, History)
    assert h.step.tolist() == list(range(21)) and h.loss.shape == h.grad_norm.shape == (21,)
    assert h.eig_step.tolist() == [0, 5, 10, 15, 20]
    np.testing.assert_allclose(h.eigenvalues, [[4.0, 1.0]] * 5, rtol=1e-6)
    np.testing.assert_allclose(h.sharpness, 4.0, rtol=1e-6)
    assert h.snapshot_step.tolist() == [0, 10, 20] and h.snapshots.shape == (3, 2)
    # GD on a diagonal quadratic: x_n = (1 - lr * a)^n x_0
    np.testing.assert_allclose(h.loss[-1], 0.5 * (4 * 0.6**40 + 1 * 0.9**40), rtol=1e-10)
    assert h.threshold == pytest.approx(20.0) and not h.diverged


def test_divergent_run_stops_cleanly_and_reports_the_step():
    q = quadratic([1.0], dtype="float64")
    h = run(q, GD(2.5), steps=1000, progress=False)  # |1 - 2.5| = 1.5 per step
    # loss grows by 2.25 per step: it passes 1e6 x its initial value after 18 steps
    assert h.diverged_at == 18
    assert h.loss.size == 18 and np.isfinite(h.loss).all()
    assert "diverged at step 18" in h.summary()


def test_a_run_that_starts_near_a_minimum_is_not_called_divergent_for_a_growth_that_settles():
    # the loss grows from 5e-12 to 0.85 (1.7e11-fold) while GD self-stabilizes, then falls: the old rule
    # (loss above 1e6 x its start) said "diverged at step 18"; the point never leaves |θ| <= 2
    from eoslab.problems import manifold_toy

    h = run(manifold_toy(theta0=(2.0, 1e-6)), GD(0.25), 200, num_eigs=0, progress=False)
    assert not h.diverged and h.loss.max() > 1e10 * h.loss[0] and h.loss[-1] < 1e-100


def test_a_loss_unbounded_below_explodes_too():
    # an indefinite quadratic: x grows 1.1-fold per step along the negative direction, the loss goes to -inf;
    # the old rule looked only at loss > 1e6 x start and let it reach -6.7e42
    q = quadratic([-1.0, 1.0], theta0=[1.0, 1.0], dtype="float64")
    h = run(q, GD(0.1), 2000, num_eigs=0, progress=False)
    assert h.diverged_at is not None
    x = 1.1 ** h.diverged_at  # |x| at the step that stopped it: past the radius 10 * |θ0| and the loss limit
    assert x > 10 * 2 ** 0.5 and 0.5 * x ** 2 > 1e6 * 0.5 * (-1 + 1)  # (the start's loss is 0)
    assert h.diverged_at < 100 and np.isfinite(h.loss).all()


def test_a_flow_whose_oscillation_explodes_has_diverged():
    # Edge Flow above its edge: the magnitude grows like |1 - ηλ| = 1.5 per step; it reached 1e20 unflagged
    from eoslab.flows import EdgeFlow

    q = quadratic([2.5 / 0.5, 0.1], theta0=[0.01, 1.0], dtype="float64")
    h = run(q, EdgeFlow(0.5), 500, num_eigs=0, progress=False)
    assert h.diverged_at is not None and h.diverged_at < 100
    assert max(h.extras["magnitude"]) <= 10 * 1.0 * 1.5 + 1e-12  # stopped as it left the ball of radius 10


def test_divergence_factor_inf_counts_only_non_finite_numbers():
    from eoslab.problems import manifold_toy

    q = quadratic([1.0], dtype="float64")
    h = run(q, GD(2.5), 100, num_eigs=0, divergence_factor=float("inf"), progress=False)
    assert not h.diverged and h.loss[-1] > 1e30
    with pytest.raises(ValueError, match="divergence_factor"):
        run(manifold_toy(), GD(0.1), 5, divergence_factor=0.5, progress=False)


def test_non_finite_loss_is_reported_as_divergence():
    p = chebyshev_regression()
    h = run(p, GD(50.0), steps=500, divergence_factor=1e30, progress=False)
    assert h.diverged_at is not None and h.diverged_at < 500
    assert torch.isfinite(h.theta).all()


def test_same_seed_gives_identical_history():
    p = chebyshev_regression()
    a = run(p, HeavyBall(0.05, 0.5), steps=200, batch_size=5, measure_every=50, seed=3, progress=False)
    b = run(p, HeavyBall(0.05, 0.5), steps=200, batch_size=5, measure_every=50, seed=3, progress=False)
    c = run(p, HeavyBall(0.05, 0.5), steps=200, batch_size=5, measure_every=50, seed=4, progress=False)
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_array_equal(a.eigenvalues, b.eigenvalues)
    assert not np.array_equal(a.loss, c.loss)


def test_minibatches_without_replacement_cover_each_epoch():
    from eoslab.batches import BatchSampler

    sampler = BatchSampler(10, 5, replacement=False, seed=0, device="cpu")
    first_epoch = torch.cat([sampler(), sampler()])
    assert sorted(first_epoch.tolist()) == list(range(10))


def test_float64_and_device_arguments():
    p = chebyshev_regression()
    h = run(p, GD(0.3), steps=5, dtype="float64", device="cpu", progress=False)
    assert h.theta.dtype == torch.float64


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(steps=-1), "steps"),
        (dict(measure_every=0), "measure_every"),
        (dict(num_eigs=-1), "num_eigs"),
        (dict(batch_size=21), "batch_size"),
        (dict(batch_size=0), "batch_size"),
        (dict(eig_tol=2.0), "eig_tol"),
        (dict(theta0=torch.zeros(3)), "theta0"),
        (dict(dtype="int8"), "dtype"),
        (dict(divergence_factor=0.5), r"divergence_factor must be in \(1, inf\]"),
        (dict(checkpoint_every=0, checkpoint="unused"), "checkpoint_every"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(kwargs, name):
    p = chebyshev_regression()
    kwargs = {"steps": 10, **kwargs}
    with pytest.raises(ValueError, match=name):
        run(p, GD(0.1), progress=False, **kwargs)


def test_wrong_object_types_raise_type_error():
    with pytest.raises(TypeError, match="optimizer"):
        run(chebyshev_regression(), 0.1, steps=1)
    with pytest.raises(TypeError, match="problem"):
        run(lambda t: t.sum(), GD(0.1), steps=1)


def test_a_non_finite_gradient_at_the_start_is_bad_input_not_divergence():
    # the norm |theta| is finite everywhere; at the origin its gradient theta / |theta| is 0/0 = nan: there is
    # nothing to run (it was reported as "diverged at step 0")
    f = function_problem(lambda th: torch.sqrt((th ** 2).sum()), torch.tensor([0.0, 0.0]), dtype="float64")
    _, grad = f.value_and_grad(f.theta0)
    assert not torch.isfinite(grad).all() and torch.isfinite(f(f.theta0))
    with pytest.raises(ValueError, match="not finite at the start"):
        run(f, GD(0.1), steps=10, num_eigs=0, progress=False)
    # the same norm away from the origin is finite: the run goes on
    g = function_problem(lambda th: torch.sqrt((th ** 2).sum()), torch.tensor([3.0, 4.0]), dtype="float64")
    assert run(g, GD(0.1), steps=10, num_eigs=0, progress=False).diverged_at is None


def test_run_refuses_what_is_not_a_method_and_a_negative_length():
    q = quadratic([1.0])
    with pytest.raises(ValueError, match="steps"):
        run(q, GradientFlow(0.1), -1, progress=False)
    with pytest.raises(TypeError, match="Method"):
        run(q, lambda th: th, 3)


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


def test_compare_rejects_what_is_not_a_method_and_labels_that_collide():
    with pytest.raises(TypeError, match="must be an eoslab Method"):
        compare(quadratic([1.0]), [GD(0.1), "gd"], steps=2)
    with pytest.raises(ValueError, match="two methods have the label 'GD"):
        compare(quadratic([1.0]), [GD(0.1), GD(0.1)], steps=2)
    named = compare(quadratic([1.0]), {"a": GD(0.1), "b": GD(0.1)}, steps=2)
    assert list(named) == ["a", "b"]


# -- nothing lost: interrupts and checkpoints --------------------------------------
def _stochastic_run(**kwargs):
    from eoslab.optim import HeavyBall
    from eoslab.problems import digits_eoss

    p = digits_eoss(n=40, widths=(6,), dtype="float64")
    return run(p, HeavyBall(0.1, 0.9), 60, batch_size=8, measure_every=5, save_every=5, progress=False, **kwargs)


def test_an_interrupted_run_returns_what_it_recorded_and_resumes_bit_for_bit(tmp_path, same_history):
    whole = _stochastic_run()
    path = tmp_path / "run.ckpt"

    def interrupt(view):
        if view.t == 37:
            raise KeyboardInterrupt

    part = _stochastic_run(checkpoint=path, checkpoint_every=10, callback=interrupt)
    assert part.interrupted and len(part.loss) == 38 and "interrupted" in part.summary()
    np.testing.assert_array_equal(part.loss, whole.loss[:38])
    seen = []
    resumed = _stochastic_run(checkpoint=path, checkpoint_every=10, callback=lambda v: seen.append(v.t))
    assert seen[0] == 30  # from the last checkpoint, with the momentum buffer, the batch order and the warm start
    assert not resumed.interrupted
    same_history(resumed, whole)
    seen.clear()
    again = _stochastic_run(checkpoint=path, checkpoint_every=10, callback=lambda v: seen.append(v.t))
    assert seen == [] and again.loss.tolist() == whole.loss.tolist()  # a finished run is read, not rerun


def test_a_checkpoint_is_never_continued_by_another_run(tmp_path):
    from eoslab.optim import GD
    from eoslab.problems import quadratic

    path = tmp_path / "run.ckpt"
    run(quadratic([1.0]), GD(0.1), 10, checkpoint=path, progress=False)
    with pytest.raises(ValueError, match="another run.*method"):
        run(quadratic([1.0]), GD(0.2), 10, checkpoint=path, progress=False)
    with pytest.raises(ValueError, match="checkpoint_every"):
        run(quadratic([1.0]), GD(0.1), 10, checkpoint=tmp_path / "x", checkpoint_every=0, progress=False)
    # settings that the label does not name count too
    toy = sharpening_toy(s0=3.9, c=0.005, x0=0.05)
    flow_path = tmp_path / "flow.pt"
    run(toy, CentralFlow(0.5, num_eigs=1), 5, num_eigs=0, checkpoint=flow_path, progress=False)
    assert CentralFlow(0.5, num_eigs=1).label == CentralFlow(0.5, num_eigs=1, curvature="step").label
    with pytest.raises(ValueError, match="another run.*curvature"):
        run(toy, CentralFlow(0.5, num_eigs=1, curvature="step"), 5, num_eigs=0, checkpoint=flow_path, progress=False)
    run(toy, CentralFlow(0.5, num_eigs=1), 5, num_eigs=0, checkpoint=flow_path, progress=False)  # the same: fine
    payload = torch.load(path, weights_only=False)
    torch.save({**payload, "version": 1}, path)  # what an older eoslab wrote
    with pytest.raises(ValueError, match="has version 1, expected 5: another eoslab wrote it"):
        run(quadratic([1.0]), GD(0.1), 10, checkpoint=path, progress=False)
    # another start point of the same size (another seed, another network): another run
    start = tmp_path / "start.ckpt"
    run(quadratic([1.0, 2.0], theta0=[1.0, 1.0]), GD(0.1), 10, checkpoint=start, progress=False)
    with pytest.raises(ValueError, match="another run.*start"):
        run(quadratic([1.0, 2.0], theta0=[1.0, 0.5]), GD(0.1), 10, checkpoint=start, progress=False)
    with pytest.raises(ValueError, match="another run.*start"):
        run(quadratic([1.0, 2.0], theta0=[1.0, 1.0]), GD(0.1), 10, theta0=torch.tensor([0.0, 1.0]), checkpoint=start,
            progress=False)
