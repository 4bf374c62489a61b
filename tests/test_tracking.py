"""eoslab.curvature.tracking: the tracker against dense eigh along trajectories, and its schedule of certified
solves; with ``above``, against the exact set of eigenvalues above the level as they cross it."""
import numpy as np
import pytest
import torch

from eoslab import hessian, run
from eoslab.curvature import EigenTracker
from eoslab.optim import GD
from eoslab.problems import quadratic

from conftest import random_orthogonal


def _top(problem, theta, k):
    return torch.linalg.eigvalsh(hessian(problem, theta)).flip(0)[:k]


def test_tracking_along_a_gd_run_matches_dense_eigh_and_certifies_on_schedule(tiny_mlp):
    h = run(tiny_mlp, GD(0.5), 12, num_eigs=0, save_every=1, progress=False)  # consecutive steps
    tracker = EigenTracker(k=3, eig_tol=1e-4, certify_every=4)
    products, certified = {True: [], False: []}, []
    for theta in h.snapshots:
        result = tracker.update(tiny_mlp, theta)
        torch.testing.assert_close(result.values, _top(tiny_mlp, theta, 3), rtol=2e-4, atol=1e-9)
        assert result.converged
        certified.append(result.certified)
        products[result.certified].append(result.num_products)
    assert certified == [i % 4 == 0 for i in range(len(h.snapshots))]
    assert min(products[False]) >= 3 + tracker.guard  # the carried block, at least
    assert np.mean(products[False]) < np.mean(products[True])  # the warm solves are the cheap ones


def test_a_repeated_top_eigenvalue_is_kept_by_the_warm_solves():
    Q = random_orthogonal(40, torch.Generator().manual_seed(4))
    tracker = EigenTracker(k=3, certify_every=100)
    for shift in (0.0, 0.01, 0.02, 0.03):  # a triple eigenvalue at the top, moving
        q = quadratic([7.0 + shift] * 3 + np.linspace(6.0, 0.1, 37).tolist(), eigenvectors=Q, dtype="float64")
        result = tracker.update(q, q.theta0)
        torch.testing.assert_close(result.values, torch.full((3,), 7.0 + shift, dtype=torch.float64), rtol=1e-3,
                                   atol=0)


def test_above_follows_every_eigenvalue_as_it_crosses_the_level():
    Q = random_orthogonal(30, torch.Generator().manual_seed(5))
    base = np.linspace(5.0, 0.5, 30)
    tracker = EigenTracker(k=1, above=4.0, certify_every=100, eig_tol=1e-6)
    seen = []
    for lift in (0.0, 0.3, 0.6, 0.9, 0.3, 0.0):  # eigenvalues rise past 4 and fall back
        eigenvalues = base + lift * np.exp(-np.arange(30) / 3.0)
        q = quadratic(eigenvalues.tolist(), eigenvectors=Q, dtype="float64")
        result = tracker.update(q, q.theta0)
        truth = np.sort(eigenvalues)[::-1]
        expected = truth[truth >= 4.0]
        np.testing.assert_allclose(result.values.numpy()[: len(expected)], expected, rtol=1e-5)
        seen.append(len(result.values))
    assert seen[3] == int((np.sort(base + 0.9 * np.exp(-np.arange(30) / 3.0)) >= 4.0).sum()) > seen[0]
    assert seen[-1] < seen[3]  # dropped again


def test_tracker_validates():
    with pytest.raises(ValueError, match="k"):
        EigenTracker(k=0)
    with pytest.raises(ValueError, match="guard"):
        EigenTracker(guard=-1)
    with pytest.raises(ValueError, match="certify_every"):
        EigenTracker(certify_every=0)
    assert "EigenTracker(k=2, above=3" in repr(EigenTracker(k=2, above=3.0))
