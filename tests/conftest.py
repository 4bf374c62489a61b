import math

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")  # before eoslab imports pyplot

from eoslab.history import History  # noqa: E402
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


def _same_history(a, b):
    """Every field of two histories equal: arrays and tensors exactly (NaN where NaN), the rest by ==."""
    for name in History.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, dict):
            assert sorted(x) == sorted(y), name
            for key in x:
                np.testing.assert_array_equal(x[key], y[key], err_msg=f"{name}/{key}")
                assert np.asarray(x[key]).dtype == np.asarray(y[key]).dtype
        elif isinstance(x, torch.Tensor):
            assert isinstance(y, torch.Tensor) and x.dtype == y.dtype, name
            torch.testing.assert_close(x.cpu(), y.cpu(), rtol=0, atol=0, equal_nan=True)
        elif isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=name)
            assert x.dtype == y.dtype, name
        elif isinstance(x, float) and math.isnan(x):
            assert math.isnan(y), name
        else:
            assert x == y, name


@pytest.fixture
def same_history():
    """Assert that two histories are equal in every field: arrays and tensors exactly, NaN where NaN."""
    return _same_history
