"""Claims of Chapter 6 (the manifold of minimizers): normalized GD and GD on sqrt(L) lower the sharpness
of a network at nearly zero loss."""
import pytest

import eoslab
from eoslab.optim import GD, NormalizedGD, SqrtLossGD


@pytest.mark.slow
def test_normalized_gd_and_sqrt_gd_lower_the_sharpness_of_a_network_at_nearly_zero_loss():
    net = eoslab.problems.digits_classification(n=100, widths=(32,), dtype="float64")
    gd = eoslab.run(net, GD(0.2), 3000, num_eigs=1, measure_every=3000, progress=False)
    S_gd, L_gd = gd.sharpness[-1], gd.loss[-1]
    assert L_gd < 1e-3
    for optimizer in (NormalizedGD(0.02), SqrtLossGD(0.02)):
        h = eoslab.run(net, optimizer, 10000, theta0=gd.theta, num_eigs=1, measure_every=10000, progress=False)
        # measured: 6.72 -> 5.02 (normalized) and 4.13 (sqrt), with the loss below 1.2e-3 throughout
        assert h.sharpness[-1] < 0.85 * S_gd
        assert h.loss.max() < 2e-3
