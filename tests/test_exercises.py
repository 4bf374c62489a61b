"""eoslab.exercises: every self-check says right to a right answer and gives a hint, not the answer, to a
wrong one."""
import dataclasses

import numpy as np
import pytest

from eoslab import run
from eoslab.exercises import (check_edge, check_largest_step, check_plateau, check_threshold,
                              check_two_variable_average)
from eoslab.optim import GD, HeavyBall, Nesterov
from eoslab.problems import digits_eoss, sharpening_toy
from eoslab.stability import critical_curvature
from eoslab.stochastic import eoss_run


@pytest.mark.parametrize("method, opt", [("gd", GD(0.01)), ("heavy_ball", HeavyBall(0.01, 0.9)),
                                         ("nesterov", Nesterov(0.01, 0.9))])
def test_threshold_against_the_experiment(method, opt):
    found = critical_curvature(opt)  # bisection on runs of the optimizer itself: an independent truth
    right = check_threshold(found, lr=0.01, method=method, beta=getattr(opt, "beta", 0.0))
    assert right and repr(right).startswith("Right")
    wrong = check_threshold(found * 0.9, lr=0.01, method=method, beta=getattr(opt, "beta", 0.0))
    assert not wrong and repr(wrong).startswith("Not yet. Hint:")
    assert f"{found:.0f}" not in repr(wrong) and "-1" in repr(wrong)  # a hint, not the answer


def test_threshold_rejects_bad_input():
    with pytest.raises(ValueError, match="method"):
        check_threshold(1.0, lr=0.1, method="adam")
    with pytest.raises(ValueError, match="beta"):
        check_threshold(1.0, lr=0.1, method="heavy_ball", beta=1.0)
    with pytest.raises(ValueError, match="value must be finite"):
        check_threshold(float("nan"), lr=0.1)


def test_largest_step():
    assert check_largest_step(0.5, sharpness=4.0)
    assert not check_largest_step(0.25, sharpness=4.0)


def test_two_variable_average():
    assert check_two_variable_average(2 * 0.02 / 12, alpha=0.02, beta=12)
    wrong = check_two_variable_average(0.02 / 12, alpha=0.02, beta=12)
    assert not wrong and "cycle" in wrong.message


# The chapter toy at s0 = 3.9, c = 0.005: sharpness 3.9 + y, and y grows: GD at η = 0.5 sharpens to 2/η = 4
# and stays there.
def test_edge_right_and_wrong():
    reached = run(sharpening_toy(s0=3.9, c=0.005, x0=0.05), GD(0.5), 400, num_eigs=1, measure_every=5,
                  progress=False)
    assert check_edge(reached)
    short = run(sharpening_toy(s0=3.9, c=0.005, x0=0.05), GD(0.5), 5, num_eigs=1, progress=False)
    assert not check_edge(short) and "never reached" in check_edge(short).message
    unmeasured = run(sharpening_toy(s0=3.9, c=0.005, x0=0.05), GD(0.5), 5, num_eigs=0, progress=False)
    assert "num_eigs" in check_edge(unmeasured).message
    diverged = run(sharpening_toy(s0=3.9, c=0.005, x0=5.0), GD(5.0), 50, num_eigs=1, progress=False)
    assert not check_edge(diverged) and "diverged at step" in check_edge(diverged).message
    with pytest.raises(TypeError, match="History"):
        check_edge([1.0])


def test_edge_refuses_a_run_that_blows_up_without_overflowing():
    # ηλ = 2.1: |1 - ηλ| = 1.1, the loss grows 1.21-fold per step, 13,000-fold in 50 steps: below the run's
    # divergence factor (1e6), and the sharpness sits at 1.05 x 2/η, so check_edge said "Right"
    from eoslab.problems import quadratic

    h = run(quadratic([4.2], theta0=[1.0], dtype="float64"), GD(0.5), 50, num_eigs=1, progress=False)
    assert not h.diverged and h.loss[-1] / h.loss[0] > 1e4
    verdict = check_edge(h)
    assert not verdict and "blowing up" in verdict.message


def test_plateau_right_and_wrong():
    r = eoss_run(digits_eoss(n=40, widths=(6,)), GD(0.2), 8, steps=20, measure_every=10, progress=False)
    level = r.levels.plain
    collapsed = dataclasses.replace(r, batch_sharpness=np.array([1.0, 1.02, 0.98]) * level,
                                    history=dataclasses.replace(r.history, full_loss=np.array([0.5, 0.45, 0.45])))
    verdict = check_plateau(collapsed)  # at the level, but the network did not train
    assert not collapsed.trained and not verdict and "did not train" in verdict.message
    r = dataclasses.replace(r, history=dataclasses.replace(r.history, full_loss=np.array([0.5, 0.2, 0.1])))
    assert r.trained
    right = dataclasses.replace(r, batch_sharpness=np.array([1.0, 1.02, 0.98]) * level)
    assert check_plateau(right)
    low = dataclasses.replace(r, batch_sharpness=np.array([0.2, 0.5, 0.5]) * level)
    verdict = check_plateau(low)
    assert not verdict and "below" in verdict.message and f"{level:g}" not in verdict.message
    full = dataclasses.replace(r, beta=0.9, full_batch=True, levels=dataclasses.replace(r.levels, large=19.0, small=1.0),
                               batch_sharpness=np.array([1.0, 18.0, 19.5]))
    assert check_plateau(full)  # full batch with momentum: judged against 2(1+β)/η
    rising = dataclasses.replace(r, step=np.arange(0, 60, 5), batch_sharpness=np.linspace(0.6, 1.4, 12) * level,
                                 lambda_max=np.ones(12), momentum_batch_sharpness=np.ones(12))
    verdict = check_plateau(rising)  # its window's mean is the level, but it is still climbing
    assert not verdict and "still moving" in verdict.message
    with pytest.raises(TypeError, match="EossRun"):
        check_plateau(r.history)
