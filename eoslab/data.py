"""Data sets that need no download: Chebyshev regression and scikit-learn's digits."""
from __future__ import annotations

import torch

from ._validation import check_int


def chebyshev_data(degree=4, n=20):
    """``n`` equally spaced points on ``[-1, 1]`` and the Chebyshev polynomial ``T_degree``.

    Returns ``(X, y)`` as float64 tensors of shapes ``(n, 1)`` and ``(n, 1)``,
    with ``T_d(x) = cos(d arccos x)``.
    """
    degree = check_int("degree", degree, low=0)
    n = check_int("n", n, low=1)
    x = torch.linspace(-1.0, 1.0, n, dtype=torch.float64)
    y = torch.cos(degree * torch.arccos(x.clamp(-1.0, 1.0)))
    return x[:, None], y[:, None]


def digits_data(n=1000):
    """The first ``n`` of scikit-learn's bundled 8x8 digits, standardized.

    Each of the 64 pixel features is centred and scaled to unit variance over
    the ``n`` examples (constant pixels are left at zero). Returns
    ``(X, labels)``: float64 ``(n, 64)`` and int64 ``(n,)``.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    total = len(digits.target)
    n = check_int("n", n, low=1, high=total)
    X = torch.as_tensor(digits.data[:n], dtype=torch.float64)
    labels = torch.as_tensor(digits.target[:n], dtype=torch.int64)
    std = X.std(dim=0)
    X = (X - X.mean(dim=0)) / torch.where(std > 0, std, torch.ones_like(std))
    return X, labels
