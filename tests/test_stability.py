"""eoslab.stability: quadratic thresholds from the optimizers themselves, bisection and the spectral radius
agree with the closed forms."""
import numpy as np
import pytest

from eoslab import run
from eoslab.optim import GD, HeavyBall, Nesterov
from eoslab.problems import quadratic
from eoslab.stability import critical_curvature, spectral_radius


OPTIMIZERS = [GD(0.1), GD(0.01), HeavyBall(0.01, 0.5), HeavyBall(0.01, 0.9), Nesterov(0.01, 0.5), Nesterov(0.01, 0.9)]


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=lambda o: o.label)
@pytest.mark.parametrize("factor, diverges", [(1.01, True), (0.99, False)])
def test_runs_diverge_just_above_and_converge_just_below_the_threshold(optimizer, factor, diverges):
    # a 3-D quadratic whose sharpest direction sits 1% above or below the threshold
    a = factor * optimizer.threshold
    q = quadratic([a, 0.3 * a, 0.01 * a], dtype="float64")
    h = run(q, optimizer, steps=6000, num_eigs=0, progress=False)
    if diverges:
        assert h.diverged_at is not None
    else:
        assert h.diverged_at is None and h.loss[-1] < 1e-3 * h.loss[0]


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=lambda o: o.label)
def test_bisection_finds_the_closed_form_threshold(optimizer):
    assert critical_curvature(optimizer) == pytest.approx(optimizer.threshold, rel=1e-3)


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=lambda o: o.label)
def test_spectral_radius_crosses_one_at_the_threshold(optimizer):
    t = optimizer.threshold
    rho = spectral_radius(optimizer, np.array([0.5 * t, 0.999 * t, t, 1.001 * t]))
    assert rho[0] < 1 and rho[1] < 1 and rho[2] == pytest.approx(1.0, abs=1e-12) and rho[3] > 1


def test_critical_curvature_validates_its_bracket():
    with pytest.raises(ValueError, match="high"):
        critical_curvature(GD(0.1), high=5.0)
