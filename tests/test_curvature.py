"""eoslab.curvature against independent truths: dense Hessians, finite differences, eigh; the third
derivatives (the gradient of the sharpness, D³L[u, w]) against finite differences of dense Hessians."""
import pytest
import torch

from eoslab import hessian, hvp, sharpness, top_eigenpairs
from eoslab.curvature import HessianOperator, sharpness_gradient, third_derivative
from eoslab.models import MLP
from eoslab.problems import Supervised, chebyshev_regression, quadratic

from conftest import random_orthogonal


def test_hvp_matches_dense_hessian(tiny_mlp):
    theta = tiny_mlp.theta0
    H = hessian(tiny_mlp, theta)
    assert H.shape == (57, 57)
    v = torch.randn(57, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(hvp(tiny_mlp, theta, v), H @ v, rtol=1e-10, atol=1e-12)


def test_hvp_matches_finite_difference_of_gradient(tiny_mlp):
    theta = tiny_mlp.theta0
    v = torch.randn(57, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    eps = 1e-5
    _, g_plus = tiny_mlp.value_and_grad(theta + eps * v)
    _, g_minus = tiny_mlp.value_and_grad(theta - eps * v)
    fd = (g_plus - g_minus) / (2 * eps)
    torch.testing.assert_close(hvp(tiny_mlp, theta, v), fd, rtol=1e-6, atol=1e-8)


def test_dense_hessian_matches_finite_differences_on_cross_entropy():
    g = torch.Generator().manual_seed(3)
    model = MLP([2, 5, 3], activation="gelu")
    X = torch.randn(9, 2, generator=g, dtype=torch.float64)
    y = torch.randint(3, (9,), generator=g)
    p = Supervised(model, X, y, "ce", model.init(g, dtype=torch.float64), name="ce")
    H = hessian(p, p.theta0)
    eps = 1e-5
    e0 = torch.zeros_like(p.theta0)
    e0[4] = 1
    fd = (p.value_and_grad(p.theta0 + eps * e0)[1] - p.value_and_grad(p.theta0 - eps * e0)[1]) / (2 * eps)
    torch.testing.assert_close(H[:, 4], fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 3])
def test_top_eigenpairs_matches_eigh_on_random_matrices(seed, k):
    g = torch.Generator().manual_seed(seed)
    d = 80
    lam = torch.randn(d, generator=g, dtype=torch.float64) * 3  # mixed signs
    q = quadratic(lam, eigenvectors=random_orthogonal(d, g), dtype="float64")
    true_vals, true_vecs = torch.linalg.eigh(q.A)
    true_vals, true_vecs = true_vals.flip(0)[:k], true_vecs.flip(1)[:, :k]
    result = top_eigenpairs(q, q.theta0, k=k, eig_tol=1e-6)
    assert result.converged
    torch.testing.assert_close(result.values, true_vals, rtol=1e-6, atol=0)
    # eigenvectors up to sign
    overlaps = (result.vectors * true_vecs).sum(0).abs()
    torch.testing.assert_close(overlaps, torch.ones(k, dtype=torch.float64), rtol=0, atol=1e-6)


def test_top_eigenpairs_resolves_crowded_top_eigenvalues():
    """Top two eigenvalues 1e-3 apart (relative), as at the Edge of Stability."""
    g = torch.Generator().manual_seed(7)
    d = 200
    bulk = torch.rand(d - 2, generator=g, dtype=torch.float64) * 2.0
    lam = torch.cat([torch.tensor([10.0, 10.0 * (1 - 1e-3)], dtype=torch.float64), bulk])
    q = quadratic(lam, eigenvectors=random_orthogonal(d, g), dtype="float64")
    vals, vecs = top_eigenpairs(q, q.theta0, k=2, eig_tol=1e-9)
    torch.testing.assert_close(vals, lam[:2], rtol=1e-8, atol=0)
    # with tol=1e-3 the top eigenvalue is still within 1e-3 relative
    rough = top_eigenpairs(q, q.theta0, k=1, eig_tol=1e-3)
    assert abs(float(rough.values[0]) - 10.0) / 10.0 < 1e-3
    # and the eigenvectors separate the pair despite the tiny gap
    true_vals, true_vecs = torch.linalg.eigh(q.A)
    overlaps = (vecs * true_vecs.flip(1)[:, :2]).sum(0).abs()
    assert float(overlaps.min()) > 1 - 1e-6


def test_top_eigenpairs_on_a_network_matches_dense_eigh(tiny_mlp):
    theta = tiny_mlp.theta0
    true = torch.linalg.eigvalsh(hessian(tiny_mlp, theta)).flip(0)[:3]
    vals, _ = top_eigenpairs(tiny_mlp, theta, k=3, eig_tol=1e-8)
    torch.testing.assert_close(vals, true, rtol=1e-7, atol=1e-10)
    assert sharpness(tiny_mlp, theta) == pytest.approx(float(true[0]), rel=1e-3)


def test_warm_start_agrees_with_cold_and_settles_in_a_few_products():
    p = chebyshev_regression(dtype="float64")
    theta = p.theta0
    cold = top_eigenpairs(p, theta, k=1)
    _, grad = p.value_and_grad(theta)
    moved = theta - 0.3 * grad  # one GD step later
    cold_moved = top_eigenpairs(p, moved, k=1)
    warm_moved = top_eigenpairs(p, moved, k=1, init=cold.vectors)
    # the warm block is [previous vector, one random column], three block steps deep at least
    assert warm_moved.converged and warm_moved.num_products <= 8
    assert float(warm_moved.values[0]) == pytest.approx(float(cold_moved.values[0]), rel=1e-3)
    assert cold_moved.certified and not warm_moved.certified


def _rotated_quadratic(eigenvalues, dtype, seed=0):
    """A quadratic with these eigenvalues in random (dense) eigenvectors, and its eigenvectors."""
    Q = random_orthogonal(len(eigenvalues), torch.Generator().manual_seed(seed))
    return quadratic(eigenvalues, eigenvectors=Q, dtype=dtype), Q


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("multiplicity", [2, 3])
def test_an_eigenvalue_repeated_at_the_top_is_returned_as_often_as_it_occurs(dtype, multiplicity):
    # was [7, 7, 5.97] with converged=True for a triple 7 (a single Lanczos vector sees one copy of each)
    eigenvalues = [7.0] * multiplicity + torch.linspace(6.0, 0.1, 60 - multiplicity).tolist()
    q, _ = _rotated_quadratic(eigenvalues, dtype)
    result = top_eigenpairs(q, q.theta0, k=multiplicity + 1)
    truth = torch.tensor(eigenvalues[: multiplicity + 1], dtype=result.values.dtype)
    torch.testing.assert_close(result.values, truth, rtol=1e-3, atol=0)
    assert result.converged and result.certified
    # the vectors span the repeated eigenspace: H v = 7 v for each of the first `multiplicity`
    H = hessian(q.to(dtype="float64"), q.theta0.double())
    V = result.vectors[:, :multiplicity].double()
    assert float((H @ V - 7.0 * V).norm(dim=0).max()) < 7e-3
    assert float((V.T @ V - torch.eye(multiplicity, dtype=V.dtype)).abs().max()) < 1e-4


def test_the_exact_invariant_subspace_case_returns_every_copy():
    # [5, 5, 5, 1, 1] with k = 3 was [5, 5, 1], converged=True
    q = quadratic([5.0, 5.0, 5.0, 1.0, 1.0], dtype="float64")
    result = top_eigenpairs(q, q.theta0, k=3)
    torch.testing.assert_close(result.values, torch.tensor([5.0, 5.0, 5.0], dtype=torch.float64))
    assert result.converged


@pytest.mark.parametrize("certify", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_warm_start_on_a_lower_eigenvector_still_finds_the_top(dtype, certify):
    # a single warm vector that is an eigenvector sees nothing else: it returned 5.26 (its own eigenvalue),
    # converged=True; the random column in the block climbs to 7
    eigenvalues = [7.0] + torch.linspace(6.0, 0.1, 59).tolist()
    q, Q = _rotated_quadratic(eigenvalues, dtype, seed=1)
    lower = Q[:, 8].to(q.theta0.dtype)
    result = top_eigenpairs(q, q.theta0, k=1, init=lower, certify=certify)
    assert float(result.values[0]) == pytest.approx(7.0, rel=1e-3)
    assert result.converged and result.certified == certify


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_crowded_top_eigenvalues_at_gaps_of_1e_6(dtype):
    eigenvalues = [10.0 - 1e-6 * i for i in range(6)] + torch.linspace(9.0, 0.1, 54).tolist()
    q, _ = _rotated_quadratic(eigenvalues, dtype, seed=2)
    for k in (1, 3, 5):
        result = top_eigenpairs(q, q.theta0, k=k)
        assert result.converged and result.certified
        truth = torch.tensor(eigenvalues[:k], dtype=result.values.dtype)
        torch.testing.assert_close(result.values, truth, rtol=1e-3, atol=0)
        assert bool((result.residuals <= 1e-3 * result.values.abs()).all())


def test_warm_start_from_a_run_on_a_crowded_spectrum_keeps_every_copy():
    # run(num_eigs=3) recorded [5, 1, 0.5] at every step on a triple top eigenvalue
    from eoslab import run
    from eoslab.optim import GD

    q, _ = _rotated_quadratic([5.0, 5.0, 5.0] + torch.linspace(1.0, 0.5, 57).tolist(), "float64", seed=3)
    history = run(q, GD(0.1), 30, measure_every=3, num_eigs=3, progress=False)
    assert history.eigenvalues.shape == (11, 3)
    assert abs(history.eigenvalues - 5.0).max() < 5e-3


def test_hessian_refuses_a_point_of_another_dtype():
    q = quadratic([2.0, 1.0])  # float32
    with pytest.raises(ValueError, match="theta has dtype torch.float64 but the problem is in torch.float32"):
        hessian(q, q.theta0.double())


def test_residuals_are_true_residuals(tiny_mlp):
    theta = tiny_mlp.theta0
    result = top_eigenpairs(tiny_mlp, theta, k=3, eig_tol=1e-6)
    H = hessian(tiny_mlp, theta)
    true = (H @ result.vectors - result.vectors * result.values).norm(dim=0)
    torch.testing.assert_close(result.residuals, true, rtol=1e-3, atol=1e-9)


def test_warm_start_from_exact_eigenvectors_finds_several():
    """A warm start spanning an invariant subspace must still return k pairs."""
    q = quadratic([5.0, 4.0, 3.0, 1.0, 0.5], dtype="float64")
    exact = torch.eye(5, dtype=torch.float64)[:, :1]  # only the top eigenvector
    vals, _ = top_eigenpairs(q, q.theta0, k=3, init=exact)
    torch.testing.assert_close(vals, torch.tensor([5.0, 4.0, 3.0], dtype=torch.float64))


def test_operator_counts_products_and_returns_gradient():
    q = quadratic([2.0, 1.0], theta0=[1.0, -1.0], dtype="float64")
    op = HessianOperator(q, q.theta0)
    torch.testing.assert_close(op.gradient, torch.tensor([2.0, -1.0], dtype=torch.float64))
    op.matvec(torch.ones(2, dtype=torch.float64))
    op @ torch.ones(2, dtype=torch.float64)
    assert op.num_products == 2


def test_curvature_runs_in_float32_and_stays_on_device():
    p = chebyshev_regression()
    result = top_eigenpairs(p, p.theta0, k=2)
    assert result.values.dtype == torch.float32 and result.vectors.device == p.theta0.device
    assert result.vectors.shape == (p.num_params, 2)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"k": 0}, "k"), ({"eig_tol": 0.0}, "eig_tol"), ({"eig_tol": 1.5}, "eig_tol"), ({"init": torch.zeros(3)}, "init")],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    q = quadratic([1.0, 2.0])
    with pytest.raises(ValueError, match=name):
        top_eigenpairs(q, q.theta0, **kwargs)


def test_hvp_rejects_mismatched_shapes():
    q = quadratic([1.0, 2.0])
    with pytest.raises(ValueError, match="v must have 2 entries"):
        hvp(q, q.theta0, torch.ones(3))
    with pytest.raises(ValueError, match="theta"):
        hvp(q, q.theta0.reshape(1, 2), torch.ones(2))


def test_dense_hessian_refuses_large_models():
    p = chebyshev_regression(width=50)
    with pytest.raises(ValueError, match="max_params"):
        hessian(p, p.theta0, max_params=100)


# -- third derivatives ----------------------------------------------------------
def dense_sharpness(loss, theta):
    return float(torch.linalg.eigvalsh(hessian(loss, theta))[-1])


def test_sharpness_gradient_matches_finite_difference_of_dense_sharpness(tiny_mlp):
    theta = tiny_mlp.theta0
    grad_s = sharpness_gradient(tiny_mlp, theta)
    g = torch.Generator().manual_seed(3)
    eps = 1e-5
    errors = []
    for _ in range(3):
        d = torch.randn(theta.numel(), generator=g, dtype=torch.float64)
        d /= d.norm()
        fd = (dense_sharpness(tiny_mlp, theta + eps * d) - dense_sharpness(tiny_mlp, theta - eps * d)) / (2 * eps)
        errors.append(abs(float(grad_s @ d) - fd) / abs(fd))
    assert max(errors) < 1e-3, errors
    # the whole vector, coordinate by coordinate, on a few coordinates
    for i in (0, 20, 56):
        e = torch.zeros_like(theta)
        e[i] = eps
        fd = (dense_sharpness(tiny_mlp, theta + e) - dense_sharpness(tiny_mlp, theta - e)) / (2 * eps)
        assert abs(float(grad_s[i]) - fd) <= 1e-3 * grad_s.norm()


def test_third_derivative_matches_finite_difference_of_hessian_and_is_symmetric(tiny_mlp):
    theta = tiny_mlp.theta0
    g = torch.Generator().manual_seed(4)
    u, w, d = (torch.randn(theta.numel(), generator=g, dtype=torch.float64) for _ in range(3))
    eps = 1e-5
    H_plus = hessian(tiny_mlp, theta + eps * d)
    H_minus = hessian(tiny_mlp, theta - eps * d)
    fd = float(u @ ((H_plus - H_minus) / (2 * eps)) @ w)
    t_uw = third_derivative(tiny_mlp, theta, u, w)
    assert float(t_uw @ d) == pytest.approx(fd, rel=1e-6)
    torch.testing.assert_close(t_uw, third_derivative(tiny_mlp, theta, w, u), rtol=1e-10, atol=1e-12)


def test_third_derivative_of_a_quadratic_is_zero():
    q = quadratic([3.0, 1.0], dtype="float64")
    out = third_derivative(q, q.theta0, torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert torch.equal(out, torch.zeros(2, dtype=torch.float64))


def test_an_operator_built_at_another_point_is_refused():
    from eoslab.problems import chebyshev_regression

    p = chebyshev_regression(dtype="float64")
    op = HessianOperator(p, p.theta0)
    assert top_eigenpairs(p, p.theta0, operator=op).values.shape == (1,)  # the same point: used
    with pytest.raises(ValueError, match="another point"):
        top_eigenpairs(p, p.theta0 + 1e-3, operator=op)
    with pytest.raises(TypeError, match="HessianOperator"):
        top_eigenpairs(p, p.theta0, operator="op")
