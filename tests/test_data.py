"""eoslab.data: the CIFAR-10 loader, and the problem built on it, on small files in CIFAR-10's python
format made here."""
import pickle

import numpy as np
import pytest
import torch

from eoslab import run
from eoslab.data import cifar10_data
from eoslab.optim import GD
from eoslab.problems import cifar10_classification


@pytest.fixture
def cifar_root(tmp_path):
    """Two training batches of 12 images each and a test batch of 5, as torchvision stores them."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, size in [("data_batch_1", 12), ("data_batch_2", 12), ("test_batch", 5)]:
        batch = {b"data": rng.integers(0, 256, size=(size, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, size=size).tolist()}
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle)
    return tmp_path


def test_loader_reads_across_batches_and_standardizes_per_channel(cifar_root):
    X, labels = cifar10_data(cifar_root, n=20)
    assert X.shape == (20, 3072) and labels.shape == (20,)
    with open(cifar_root / "cifar-10-batches-py" / "data_batch_2", "rb") as handle:
        second = pickle.load(handle)
    assert labels[12:].tolist() == second[b"labels"][:8]
    channels = X.reshape(20, 3, 1024)
    np.testing.assert_allclose(channels.mean(dim=(0, 2)).numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose(channels.std(dim=(0, 2)).numpy(), 1.0, rtol=1e-12)
    # the first image's red channel, standardized by hand
    with open(cifar_root / "cifar-10-batches-py" / "data_batch_1", "rb") as handle:
        raw = torch.as_tensor(pickle.load(handle)[b"data"][:12], dtype=torch.float64) / 255
    all_red = torch.cat([raw[:, :1024], torch.as_tensor(second[b"data"][:8, :1024], dtype=torch.float64) / 255])
    expected = (raw[0, :1024] - all_red.mean()) / all_red.std()
    torch.testing.assert_close(X[0, :1024], expected)


def test_loader_reads_the_test_batch(cifar_root):
    X, labels = cifar10_data(cifar_root, n=5, train=False)
    assert X.shape == (5, 3072)


def test_loader_errors_are_clear(cifar_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        cifar10_data(tmp_path / "nowhere", n=5)
    with pytest.raises(ValueError, match="n=100"):
        cifar10_data(cifar_root, n=100)


def test_cifar_problem_is_cohens_architecture_and_trains(cifar_root):
    p = cifar10_classification(cifar_root, n=24, dtype="float64")
    assert p.model.sizes == [3072, 200, 200, 10] and p.loss_name == "mse" and p.Y.shape == (24, 10)
    h = run(p, GD(0.01), 5, num_eigs=1, progress=False)
    assert not h.diverged and h.loss[-1] < h.loss[0]
