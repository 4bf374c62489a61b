import matplotlib
import pytest
import torch

matplotlib.use("Agg")


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(1234)


def random_orthogonal(d, generator):
    Q, R = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    return Q * torch.sign(torch.diagonal(R))
