"""Claims of Chapter 2 (Cohen et al., the Edge of Stability): progressive sharpening then the edge on the
book's default problem, and the edge on the digits network."""
import numpy as np
import pytest

from eoslab import run
from eoslab.optim import GD
from eoslab.problems import chebyshev_regression, digits_classification


def test_chebyshev_defaults_show_progressive_sharpening_then_the_edge_of_stability():
    """The default problem at its suggested step: S starts well below 2/eta, rises to it, and stays near it."""
    p = chebyshev_regression()
    lr = p.suggested_lr
    h = run(p, GD(lr), steps=4000, measure_every=25, progress=False)
    edge = 2 / lr
    assert not h.diverged
    assert h.sharpness[0] < 0.7 * edge  # starts far below the edge
    reached = np.flatnonzero(h.sharpness >= edge)
    assert reached.size and h.eig_step[reached[0]] < 3000  # progressive sharpening reaches 2/eta
    after = h.sharpness[reached[0]:]
    assert abs(np.median(after) / edge - 1) < 0.1  # and hovers there
    loss_after = h.loss[h.eig_step[reached[0]]:]
    assert (np.diff(loss_after) > 0).any()  # non-monotone at the edge
    assert h.loss[-1] < 0.5 * h.loss[0]


@pytest.mark.slow
def test_digits_mlp_reaches_the_edge_of_stability():
    p = digits_classification()
    h = run(p, GD(0.2), steps=600, measure_every=50, progress=False)
    assert h.sharpness[0] < 5 and abs(h.sharpness[-1] / 10 - 1) < 0.1
