"""The claims of chapter 2 on real networks (Cohen et al. 2021), asserted with numbers."""
import numpy as np
import pytest

from eoslab import run
from eoslab.analysis import distance_by_time, edge_summary
from eoslab.flows import GradientFlow, solve
from eoslab.optim import GD
from eoslab.problems import chebyshev_regression, digits_classification


@pytest.mark.slow
@pytest.mark.parametrize("lr", [0.2, 0.3, 0.4])
def test_digits_mse_sharpness_settles_at_its_own_two_over_eta(lr):
    h = run(digits_classification(), GD(lr), 1500, measure_every=20, progress=False)
    s = edge_summary(h)
    assert s.first_step is not None and s.first_step < 500  # progressive sharpening reaches 2/eta
    assert h.sharpness[0] < 0.85 * s.threshold  # from well below it
    assert abs(s.median_ratio - 1) < 0.10  # then hovers within 10% of 2/eta
    assert s.loss_increases > 0  # the loss is non-monotone at the edge
    assert s.final_loss < 0.1 * s.initial_loss  # yet decreases over the long run


@pytest.mark.slow
def test_gd_follows_gradient_flow_until_its_sharpness_reaches_two_over_eta():
    p = chebyshev_regression(dtype="float64")
    lr = 0.2
    flow = solve(p, GradientFlow(1.0), 850, save_every=1, measure_every=5, progress=False)  # time = lr * step
    gd = run(p, GD(lr), 4250, save_every=5, measure_every=5, progress=False)
    edge_time = lr * edge_summary(gd).first_step
    times, dist = distance_by_time(gd, flow)
    before = dist[times < edge_time]
    after = dist[times >= edge_time + 50]
    assert 600 < edge_time < 800  # measured: 707 (step 3535)
    assert before.max() < 0.03  # close to the flow while S < 2/eta (measured 0.018)
    assert after.min() > 10 * before.max()  # and far from it after (measured 0.65)


@pytest.mark.slow
def test_cross_entropy_sharpness_reaches_the_edge_then_falls_as_the_loss_vanishes():
    lr = 1.0
    h = run(digits_classification(loss="ce", label_noise=1.0), GD(lr), 1500, measure_every=10, progress=False)
    s = edge_summary(h)
    assert s.first_step is not None and h.sharpness[0] < 0.5 * s.threshold
    peak = int(np.argmax(h.sharpness))
    assert h.sharpness[peak] >= s.threshold
    assert h.sharpness[-1] < 0.25 * s.threshold  # falls late in training
    assert h.eig_step[peak] < 0.5 * h.eig_step[-1]
    assert s.loss_increases > 0 and s.final_loss < 1e-2 * s.initial_loss
