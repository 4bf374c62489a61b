import matplotlib
import pytest
import torch

matplotlib.use("Agg")  # before eoslab imports pyplot

from eoslab.models import MLP  # noqa: E402
from eoslab.problems import Supervised  # noqa: E402


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(1234)


def random_orthogonal(d, generator):
    Q, R = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    return Q * torch.sign(torch.diagonal(R))


@pytest.fixture
def tiny_mlp():
    """A random tanh MLP on random data, float64, small enough for a dense Hessian (P = 57)."""
    g = torch.Generator().manual_seed(0)
    model = MLP([3, 6, 4, 1], activation="tanh")
    X = torch.randn(12, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(12, 1, generator=g, dtype=torch.float64)
    return Supervised(model, X, Y, "mse", model.init(g, dtype=torch.float64), name="tiny")
