"""Claims of Chapter 5 (the central flow and Edge Flow) on the chapter toy L(x, y) = ½(s0 + y)x² - c·y
(eoslab.problems.sharpening_toy): GD's x² and Edge Flow's a² average 2c over each cycle of the edge, the
self-stabilization of Chapter 3 reproduced."""
import numpy as np

import eoslab
from eoslab.flows import EdgeFlow
from eoslab.optim import GD
from eoslab.problems import sharpening_toy


def _cycle_means(values, sharpness, threshold):
    """Mean of ``values`` over each full cycle between upward crossings of the threshold."""
    ups = np.flatnonzero((sharpness[:-1] < threshold) & (sharpness[1:] >= threshold)) + 1
    return np.array([values[a:b].mean() for a, b in zip(ups[:-1], ups[1:])])


def test_gd_on_the_toy_oscillates_with_mean_square_two_c():
    # the central flow's σ² is GD's x² averaged over each cycle of the Edge of Stability
    lr, c = 0.5, 0.005
    gd = eoslab.run(sharpening_toy(s0=3.9, c=c, x0=0.05), GD(lr), 1500, num_eigs=0, save_every=1, progress=False)
    x, y = gd.snapshots[:, 0].double().numpy(), gd.snapshots[:, 1].double().numpy()
    means = _cycle_means(x**2, 3.9 + y, 2 / lr)
    assert len(means) >= 4
    np.testing.assert_allclose(means, 2 * c, rtol=0.05)


def test_edge_flow_reproduces_self_stabilization_on_the_toy():
    # the toy is the two-variable model of Chapter 3: Edge Flow's a² averages 2c over its cycles, like GD's x²
    lr, c = 0.5, 0.005
    ef = eoslab.run(sharpening_toy(s0=3.9, c=c, x0=0.05), EdgeFlow(lr), 1500, num_eigs=0, progress=False)
    means = _cycle_means(ef.extras["magnitude"] ** 2, ef.extras["rayleigh"], 2 / lr)
    assert len(means) >= 4
    np.testing.assert_allclose(means, 2 * c, rtol=0.05)


# Edge Flow against the central flow and gradient flow on the digits network (the ranking before and after the
# first blow-up, the overshoot that only Edge Flow follows) is asserted by chapter 5's claim cell and exact outputs.
