"""The one Method interface and the one loop: any method runs through eoslab.run, with stop conditions,
callbacks and measures, and the old names still work for one release, with a warning."""
import math

import numpy as np
import pytest
import torch

import eoslab
from eoslab import compare, run, until_sharpness_reaches
from eoslab.flows import EdgeFlow, GradientFlow, PrincipalFlow
from eoslab.methods import Method
from eoslab.optim import GD, HeavyBall
from eoslab.problems import quadratic, sharpening_toy


class Halving(Method):
    """θ ← θ/2 whatever the loss: a method that needs nothing but its own state (a step counter)."""

    def init(self, theta, problem=None):
        return 0

    def step(self, problem, theta, state, info):
        return theta / 2, state + 1

    def observe(self, problem, theta, state):
        return {"count": state, "point": theta}


def test_a_new_method_needs_only_step_and_records_what_it_observes():
    q = quadratic([1.0, 3.0], theta0=[1.0, -2.0], dtype="float64")
    h = run(q, Halving(0.1), 4, num_eigs=0, save_every=1, progress=False)
    np.testing.assert_array_equal(h.extras["count"], [0, 1, 2, 3, 4])
    assert h.extras["point"].shape == (5, 2)  # tensors are stacked, one row per step
    np.testing.assert_allclose(h.snapshots[:, 0].numpy(), [1, 0.5, 0.25, 0.125, 0.0625])
    assert h.step_size.size == 0 and h.threshold == pytest.approx(20.0)  # no step size; 2/lr by default
    assert h.label == "Halving(lr=0.1)"


def test_stop_ends_the_run_at_the_first_measurement_at_the_threshold():
    # S = 3.9 + y on the floor, y grows: GD at η = 0.5 sharpens to 2/η = 4
    toy = sharpening_toy()
    h = run(toy, GD(0.5), 500, measure_every=1, stop=until_sharpness_reaches(), progress=False)
    t = h.stopped_at
    assert t is not None and len(h.loss) == t + 1 and h.sharpness[-1] >= 4.0 > h.sharpness[-2]
    # the same run without a stop passes through the same points
    full = run(toy, GD(0.5), t + 5, measure_every=1, save_every=1, progress=False)
    np.testing.assert_array_equal(full.sharpness[: t + 1], h.sharpness)
    assert full.stopped_at is None
    # a level of one's own, and a stop never met
    assert run(toy, GD(0.5), 50, measure_every=1, stop=until_sharpness_reaches(100.0),
               progress=False).stopped_at is None


def test_callbacks_see_every_step_and_measures_run_on_the_schedule():
    seen = []
    q = quadratic([2.0, 1.0], dtype="float64")

    def measure(view):
        return {"t": view.t, "index": view.index}

    h = run(q, GD(0.1), 10, measure_every=4, callback=lambda v: seen.append((v.t, v.measured, v.index)),
            measures={"probe": measure, "norm": lambda v: float(v.theta.norm())}, progress=False)
    assert [t for t, _, _ in seen] == list(range(11))
    assert [t for t, m, _ in seen if m] == [0, 4, 8, 10] == h.measure_step.tolist() == h.eig_step.tolist()
    assert [i for _, m, i in seen if m] == [0, 1, 2, 3]
    np.testing.assert_array_equal(h.measured["probe.t"], [0, 4, 8, 10])
    np.testing.assert_array_equal(h.measured["probe.index"], [0, 1, 2, 3])
    # GD from (1, 1) on eigenvalues 2 and 1 at η = 0.1: θ_t = (0.8^t, 0.9^t)
    np.testing.assert_allclose(h.measured["norm"], [math.hypot(0.8**t, 0.9**t) for t in (0, 4, 8, 10)], rtol=1e-12)
    with pytest.raises(TypeError, match="callback"):
        run(q, GD(0.1), 3, callback=3, progress=False)
    with pytest.raises(TypeError, match="measures"):
        run(q, GD(0.1), 3, measures={"x": 1}, progress=False)


def test_divergence_is_handled_in_the_loop_for_every_method():
    q = quadratic([1.0], dtype="float64")
    gd = run(q, GD(2.5), 2000, num_eigs=0, progress=False)  # |1 - 2.5| = 1.5 per step: loss x 1e6 by step 18
    assert gd.diverged_at == 18 and len(gd.loss) == 18
    only_non_finite = run(q, GD(2.5), 2000, num_eigs=0, divergence_factor=math.inf, progress=False)
    assert only_non_finite.diverged_at > 800  # 1.5^t overflows float64 near t = 875
    assert run(q, HeavyBall(4.0, 0.5), 2000, num_eigs=0, progress=False).diverged  # 2(1 + β)/η = 0.75 < 1
    assert not run(q, HeavyBall(2.5, 0.5), 2000, num_eigs=0, progress=False).diverged  # 1.2 > 1


def test_only_flows_that_adapt_to_the_sharpness_measure_it_when_nothing_is_recorded(monkeypatch):
    from eoslab import recorder

    calls = []
    original = recorder.EigenTracker.update
    monkeypatch.setattr(recorder.EigenTracker, "update", lambda *a, **k: calls.append(1) or original(*a, **k))
    q = quadratic([3.0, 0.1, 0.04], theta0=[0.01, 1.0, -1.0], dtype="float64")
    run(q, EdgeFlow(0.5), 10, num_eigs=0, progress=False)
    run(q, PrincipalFlow(0.5), 10, num_eigs=0, progress=False)
    assert calls == []
    run(q, GradientFlow(0.5), 10, num_eigs=0, measure_every=5, progress=False)
    assert len(calls) == 3  # steps 0, 5, 10: its substeps follow the last measured sharpness


def test_compare_and_run_take_flows_and_optimizers_alike():
    q = quadratic([1.5], dtype="float64")
    runs = compare(q, {"GD": GD(1.0), "PF": PrincipalFlow(1.0, substep_scale=0.05)}, steps=3, num_eigs=0)
    np.testing.assert_allclose(runs["GD"].snapshots[:, 0].numpy(), runs["PF"].snapshots[:, 0].numpy(), rtol=1e-6)


def test_the_old_names_work_for_one_release_with_a_warning():
    with pytest.warns(DeprecationWarning, match="theta0"):
        q = quadratic([2.0, 1.0], x0=[1.0, 0.5], dtype="float64")
    assert q.theta0.tolist() == [1.0, 0.5]
    with pytest.warns(DeprecationWarning, match="eig_tol"):
        values = eoslab.top_eigenpairs(q, q.theta0, k=1, tol=1e-6).values
    assert float(values[0]) == pytest.approx(2.0)
    with pytest.warns(DeprecationWarning, match="substep_scale"):
        old = run(q, GradientFlow(0.5), 3, alpha=0.1, num_eigs=0, save_every=1, progress=False)
    new = run(q, GradientFlow(0.5, substep_scale=0.1), 3, num_eigs=0, save_every=1, progress=False)
    torch.testing.assert_close(old.snapshots, new.snapshots, rtol=0, atol=0)
    with pytest.raises(AttributeError, match="eoslab.run"):
        eoslab.flows.solve  # noqa: B018
    with pytest.raises(TypeError, match="unexpected keyword argument 'tool'"):
        eoslab.top_eigenpairs(q, q.theta0, tool=1e-6)
