"""eoslab.manifold: the limiting flows along the manifold of minimizers of the toy (1 + x²)y² solve their
equations, and normalized GD and GD on sqrt(L) drift along the manifold as they predict."""
import math

import numpy as np
import pytest

import eoslab
from eoslab.manifold import toy_manifold_flow
from eoslab.optim import NormalizedGD, SqrtLossGD
from eoslab.problems import manifold_toy


def test_the_toy_manifold_flows_solve_their_equations():
    tau = np.linspace(0.0, 3.0, 31)
    for method, rate in (("normalized", lambda x: -x / (2 * (1 + x**2))), ("sqrt", lambda x: -x / 2)):
        x = toy_manifold_flow(2.0, tau, method)
        assert x[0] == pytest.approx(2.0)
        dx = np.gradient(x, tau, edge_order=2)
        np.testing.assert_allclose(dx[1:-1], rate(x[1:-1]), rtol=2e-3)
    assert toy_manifold_flow(-1.0, 1.0, "sqrt") == pytest.approx(-math.exp(-0.5))
    with pytest.raises(ValueError, match="method"):
        toy_manifold_flow(1.0, 1.0, "adam")


@pytest.mark.parametrize("method, optimizer", [("normalized", NormalizedGD), ("sqrt", SqrtLossGD)])
def test_drift_along_the_manifold_follows_the_limiting_flow_on_the_toy(method, optimizer):
    lr = 0.02
    steps = round(1.5 / lr**2)
    h = eoslab.run(manifold_toy(theta0=(2.0, 0.3), dtype="float64"), optimizer(lr), steps, num_eigs=0, save_every=1,
                   progress=False)
    x, y = h.snapshots[:, 0].numpy(), h.snapshots[:, 1].numpy()
    # phase I: Θ(1/η) steps to get within O(η) of Γ = {y = 0}
    reached = int(np.argmax(np.abs(y) < 2 * lr))
    assert 0 < reached < 2 / lr
    # phase II: the drift over Θ(1/η²) steps follows the flow in τ = η² t, started where phase I ended
    predicted = toy_manifold_flow(x[reached], lr**2 * (np.arange(len(x))[reached:] - reached), method)
    np.testing.assert_allclose(x[reached:], predicted, rtol=0.05)
    assert abs(x[-1] / predicted[-1] - 1) < 0.01
    # the drift is real: x fell from 2 to below 1.7 (normalized) or 1.0 (sqrt)
    assert x[-1] < (1.7 if method == "normalized" else 1.0)
    # and the method sits at the edge: over each two-step cycle, 2 / (effective step) averages λ₁ = 2(1 + x²)
    pair = 0.5 * (2 / h.step_size[1:] + 2 / h.step_size[:-1])
    np.testing.assert_allclose(pair[200:], 2 * (1 + x[201:-1] ** 2), rtol=2e-3)
