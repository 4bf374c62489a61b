"""Data sets that need no download: Chebyshev regression and scikit-learn's digits."""
from __future__ import annotations

import torch

from ._validation import check_int

__all__ = ["chebyshev_data", "cifar10_data", "digits_data"]


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


CIFAR10_FOLDER = "cifar-10-batches-py"


def _read_cifar_batch(path):
    import pickle

    with open(path, "rb") as handle:
        batch = pickle.load(handle, encoding="bytes")
    data = batch[b"data"] if b"data" in batch else batch["data"]
    labels = batch[b"labels"] if b"labels" in batch else batch["labels"]
    return torch.as_tensor(data, dtype=torch.uint8).reshape(-1, 3, 32, 32), torch.as_tensor(labels, dtype=torch.int64)


def cifar10_data(root, n=5000, *, train=True, download=False):
    """The first ``n`` CIFAR-10 images, standardized per channel, flattened.

    Reads the python-pickle release (``<root>/cifar-10-batches-py/data_batch_1``
    ... ``data_batch_5`` and ``test_batch``), which is what
    ``torchvision.datasets.CIFAR10`` keeps on disk. Nothing is downloaded
    unless ``download=True``, which needs torchvision and a network
    connection.

    Parameters
    ----------
    root : str or path
        The folder holding ``cifar-10-batches-py``.
    n : int
        Number of images, from the start of the training (or test) set.
    train : bool
        Training batches (50,000 images) or the test batch (10,000).
    download : bool
        Fetch the data with torchvision when it is missing.

    Returns
    -------
    X : float64 tensor of shape (n, 3072)
        Each channel centred and scaled to unit variance over the ``n`` images.
    labels : int64 tensor of shape (n,)
    """
    from pathlib import Path

    n = check_int("n", n, low=1)
    root = Path(root).expanduser()
    folder = root / CIFAR10_FOLDER
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    if not (folder / names[0]).exists():
        if not download:
            raise FileNotFoundError(
                f"CIFAR-10 not found in {folder}: place the python version of CIFAR-10 there "
                "(the folder torchvision.datasets.CIFAR10 creates), or pass download=True"
            )
        try:
            import torchvision
        except ImportError:
            raise ImportError("download=True needs torchvision: pip install torchvision") from None
        torchvision.datasets.CIFAR10(str(root), train=train, download=True)
    images, labels, have = [], [], 0
    for name in names:
        if have >= n or not (folder / name).exists():
            break
        x, y = _read_cifar_batch(folder / name)
        images.append(x)
        labels.append(y)
        have += len(y)
    images, labels = torch.cat(images)[:n], torch.cat(labels)[:n]
    if len(labels) < n:
        raise ValueError(f"n={n} is more than the {len(labels)} images found in {folder}")
    X = images.to(torch.float64) / 255.0
    mean = X.mean(dim=(0, 2, 3), keepdim=True)
    std = X.std(dim=(0, 2, 3), keepdim=True)
    X = (X - mean) / torch.where(std > 0, std, torch.ones_like(std))
    return X.reshape(n, -1), labels
