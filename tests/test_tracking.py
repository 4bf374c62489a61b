"""eoslab.curvature.tracking: the tracker against dense eigh along trajectories, and its schedule of certified
solves; with ``above``, against the exact set of eigenvalues above the level as they cross it."""
import numpy as np
import pytest
import torch

from eoslab import hessian, run
from eoslab.curvature import EigenTracker, HessianOperator
from eoslab.curvature.tracking import DENSE_MAX
from eoslab.curvature.eigen import _orthonormal_columns, _random_columns, block_lanczos
from eoslab.optim import GD
from eoslab.problems import function_problem, quadratic

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


def _crowded_quadratic(P=80, shift=0.0, seed=6):
    """A spectrum crowded at the top like a network's at the edge: eight eigenvalues within 2 % of 10."""
    Q = random_orthogonal(P, torch.Generator().manual_seed(seed))
    top = [10.2 + shift, 10.15, 10.1 - shift, 10.08, 10.05, 10.03, 10.02, 10.0]
    return quadratic(top + np.linspace(9.0, 0.1, P - 8).tolist(), eigenvectors=Q, dtype="float64")


@pytest.mark.parametrize("k", [1, 3])
def test_locking_settles_the_same_pairs_as_the_full_krylov_space_from_a_rough_warm_start(k):
    q = _crowded_quadratic()
    truth, vectors = torch.linalg.eigh(hessian(q, q.theta0))
    truth, vectors = truth.flip(0), vectors.flip(1)
    g = torch.Generator().manual_seed(0)
    rough = vectors[:, : k + 2] + 0.05 * torch.randn(vectors.shape[0], k + 2, generator=g, dtype=torch.float64)
    X = _orthonormal_columns(rough, rough[:, :0], g, rough)
    solves = {lock: block_lanczos(HessianOperator(q, q.theta0), X, k=k, need=k, keep=k, tol=1e-6, lock=lock)
              for lock in (False, True)}
    for solve in solves.values():
        assert solve.converged and solve.worst <= 1e-6
        # a settled Ritz value is within its residual of an eigenvalue; here, of the one of its rank
        torch.testing.assert_close(solve.values[:k], truth[:k], rtol=1e-5, atol=0)
    # with a warm start, expanding only the unsettled pairs costs fewer products
    assert solves[True].products < solves[False].products


def test_need_may_follow_the_ritz_values():
    q = _crowded_quadratic()
    truth = torch.linalg.eigvalsh(hessian(q, q.theta0)).flip(0)
    X = _random_columns(q.num_params, 1, torch.Generator().manual_seed(1), q.theta0)
    X = X / X.norm()
    solve = block_lanczos(HessianOperator(q, q.theta0), X, k=1, need=lambda ritz: int((ritz >= 10.04).sum()) + 1,
                          keep=8, tol=1e-8)
    assert solve.converged and len(solve.residuals) == 6  # five at or above 10.04, and the first below it
    torch.testing.assert_close(solve.values[:6], truth[:6], rtol=1e-7, atol=0)


def test_the_tracker_follows_a_crowded_top_as_the_eigenvalues_swap():
    tracker = EigenTracker(k=3, eig_tol=1e-6, certify_every=100)
    for shift in np.linspace(0.0, -0.2, 9):  # the first and third eigenvalues pass through the second
        q = _crowded_quadratic(shift=float(shift))
        result = tracker.update(q, q.theta0)
        torch.testing.assert_close(result.values, _top(q, q.theta0, 3), rtol=1e-6, atol=0)
        assert result.converged


def test_a_warm_solve_catches_an_eigenvalue_that_rises_clear_above_the_carried_ones():
    Q = random_orthogonal(60, torch.Generator().manual_seed(7))
    eigenvalues = np.linspace(5.0, 0.1, 60)
    tracker = EigenTracker(k=1, certify_every=100)
    q = quadratic(eigenvalues.tolist(), eigenvectors=Q, dtype="float64")
    assert float(tracker.update(q, q.theta0).values[0]) == pytest.approx(5.0, rel=1e-3)
    eigenvalues[20] = 8.0  # far below the carried vectors a moment ago, now on top
    q = quadratic(eigenvalues.tolist(), eigenvectors=Q, dtype="float64")
    result = tracker.update(q, q.theta0)
    assert not result.certified and float(result.values[0]) == pytest.approx(8.0, rel=1e-3)


def test_above_sees_a_repeated_eigenvalue_as_often_as_it_occurs():
    eigenvalues = [7.0, 7.0, 7.0] + np.linspace(6.0, 0.1, 57).tolist()
    q = quadratic(eigenvalues, eigenvectors=random_orthogonal(60, torch.Generator().manual_seed(8)),
                  dtype="float64")
    result = EigenTracker(k=1, above=5.0, eig_tol=1e-8).update(q, q.theta0)
    truth = np.sort(eigenvalues)[::-1]
    assert result.certified
    np.testing.assert_allclose(result.values.numpy(), truth[truth >= 5.0], rtol=1e-7)


@pytest.mark.parametrize("P", [1, 3, DENSE_MAX])
def test_a_tiny_problem_is_diagonalized_whole_with_one_product_per_parameter(P):
    Q = random_orthogonal(P, torch.Generator().manual_seed(7))
    eigenvalues = np.linspace(4.0, -1.0, P) if P > 1 else np.array([2.5])
    q = quadratic(eigenvalues.tolist(), eigenvectors=Q, dtype="float64")
    tracker = EigenTracker(k=min(2, P), above=None if P < 3 else 0.5)
    for _ in range(2):  # the first (cold) and a later (warm) solve alike
        result = tracker.update(q, q.theta0)
        expected = np.sort(eigenvalues)[::-1]
        expected = expected[: max(min(2, P), int((expected >= 0.5).sum()) if P >= 3 else 0)]
        np.testing.assert_allclose(result.values.numpy(), expected, rtol=1e-12, atol=1e-12)
        vectors = result.vectors.numpy()
        H = (Q.numpy() * eigenvalues) @ Q.numpy().T
        np.testing.assert_allclose(H @ vectors, vectors * expected, atol=1e-12)
        assert result.num_products == P and result.certified and result.residuals.max() < 1e-12


def test_only_problems_up_to_dense_max_are_diagonalized_whole(monkeypatch):
    calls = []
    monkeypatch.setattr(EigenTracker, "_dense", lambda self, op, theta: calls.append(theta.numel()))
    for P in (DENSE_MAX, DENSE_MAX + 1):
        q = quadratic(np.linspace(3.0, 0.1, P).tolist(), dtype="float64")
        EigenTracker(k=1).update(q, q.theta0)
    assert calls == [DENSE_MAX]


def test_orthonormal_columns_stay_orthogonal_to_the_basis_when_a_column_nearly_repeats_another():
    # the second column is the first plus a sliver just above the rounding floor, and both lie mostly in span(Q):
    # what is left of it after the first is removed must still be orthogonal to Q to rounding
    worst = 0.0
    for seed in range(50):
        g = torch.Generator().manual_seed(seed)
        n, m, eps = 50, 10, torch.finfo(torch.float64).eps
        Q = torch.linalg.qr(torch.randn(n, m, dtype=torch.float64, generator=g))[0]
        a, b = torch.randn(n, 2, dtype=torch.float64, generator=g).unbind(1)
        x = a + 100 * Q @ torch.randn(m, dtype=torch.float64, generator=g)
        X = torch.stack([x, x + 120 * eps * x.norm() * b / b.norm()], 1)
        V = _orthonormal_columns(X, Q, torch.Generator().manual_seed(1), torch.empty(0, dtype=torch.float64))
        assert V.shape[1] == 2
        worst = max(worst, float((Q.T @ V).abs().max()), float((V.T @ V - torch.eye(2, dtype=V.dtype)).abs().max()))
    assert worst < 1e-12, worst


def test_the_growing_basis_never_allocates_past_its_limit():
    from eoslab.curvature.eigen import _Columns

    block = torch.randn(30, 3, dtype=torch.float64)
    columns = _Columns(block, limit=10)
    for _ in range(3):
        columns.append(block)
    columns.append(block[:, :1])
    assert columns.rows.shape[0] == 10 and torch.equal(columns.matrix, torch.cat([block] * 3 + [block[:, :1]], 1))


def test_a_tiny_hessian_that_is_not_finite_is_an_error_not_a_certified_nan():
    f = function_problem(lambda th: (th.abs() ** 1.5).sum(), [0.0, 1.0], dtype="float64")
    with pytest.raises(ValueError, match="not finite"):
        EigenTracker(k=1).update(f, f.theta0)
