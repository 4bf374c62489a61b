"""eoslab.problems: losses against hand computations, batches, validation, devices and dtypes."""
import numpy as np
import pytest
import torch

from eoslab.problems import (
    chebyshev_regression,
    digits_classification,
    function_problem,
    manifold_toy,
    quadratic,
    scalar_two_layer,
)

from conftest import random_orthogonal


def test_quadratic_loss_gradient_and_eigen_decomposition(rng):
    Q = random_orthogonal(4, rng)
    q = quadratic([0.5, 3.0, -1.0, 2.0], theta0=[1.0, 2.0, 3.0, 4.0], eigenvectors=Q, dtype="float64")
    A = Q @ torch.diag(torch.tensor([0.5, 3.0, -1.0, 2.0], dtype=torch.float64)) @ Q.T
    x = q.theta0
    assert float(q.loss(x)) == pytest.approx(float(0.5 * x @ A @ x))
    value, grad = q.value_and_grad(x)
    torch.testing.assert_close(grad, A @ x)
    assert q.sharpness == 3.0
    assert q.eigenvalues.tolist() == [3.0, 2.0, 0.5, -1.0]


def test_quadratic_closed_form_gradient_equals_autograd():
    q = quadratic([4.0, 1.0], theta0=[0.3, -0.7], dtype="float64")
    _, closed = q.value_and_grad(q.theta0)
    theta = q.theta0.clone().requires_grad_(True)
    q.loss(theta).backward()
    torch.testing.assert_close(closed, theta.grad)


def test_mse_is_half_squared_error_summed_over_classes_averaged_over_examples():
    p = digits_classification(n=50, widths=(8,), dtype="float64")
    out = p.predict(p.theta0)
    onehot = torch.nn.functional.one_hot(p.Y.argmax(1), 10).to(torch.float64)
    expected = 0.5 * ((out - onehot) ** 2).sum() / 50
    assert float(p.loss(p.theta0)) == pytest.approx(float(expected), rel=1e-12)


def test_cross_entropy_digits():
    p = digits_classification(n=40, widths=(8,), loss="ce", dtype="float64")
    expected = torch.nn.functional.cross_entropy(p.predict(p.theta0), p.Y)
    assert float(p.loss(p.theta0)) == pytest.approx(float(expected))
    assert 0.0 <= p.accuracy(p.theta0) <= 1.0


def test_minibatch_loss_is_the_mean_over_the_batch():
    p = chebyshev_regression(dtype="float64")
    idx = [0, 3, 7]
    per_example = [float(p.loss(p.theta0, [i])) for i in idx]
    assert float(p.loss(p.theta0, idx)) == pytest.approx(np.mean(per_example))
    assert float(p.loss(p.theta0, list(range(p.num_examples)))) == pytest.approx(float(p.loss(p.theta0)))


def test_chebyshev_defaults():
    p = chebyshev_regression()
    assert p.num_examples == 20 and p.num_params == 301 and p.suggested_lr == 0.3
    x = p.X[:, 0].double()
    torch.testing.assert_close(p.Y[:, 0].double(), 8 * x**4 - 8 * x**2 + 1, rtol=1e-5, atol=1e-5)


def test_digits_sizes_and_standardization():
    p = digits_classification()
    assert p.num_examples == 1000 and p.num_params == 64 * 200 + 200 + 200 * 200 + 200 + 200 * 10 + 10
    assert float(p.X.mean(0).abs().max()) < 1e-5


def test_same_seed_same_network_and_different_seed_differs():
    a, b, c = chebyshev_regression(seed=3), chebyshev_regression(seed=3), chebyshev_regression(seed=4)
    assert torch.equal(a.theta0, b.theta0) and not torch.equal(a.theta0, c.theta0)


def test_to_changes_dtype_and_keeps_integer_labels():
    p = digits_classification(n=30, widths=(4,), loss="ce")
    p64 = p.to(dtype="float64")
    assert p64.theta0.dtype == torch.float64 and p64.X.dtype == torch.float64 and p64.Y.dtype == torch.int64
    assert float(p64.loss(p64.theta0)) == pytest.approx(float(p.loss(p.theta0)), rel=1e-5)


def test_toys():
    toy = manifold_toy(theta0=(2.0, 0.5), dtype="float64")
    assert float(toy.loss(toy.theta0)) == pytest.approx(5 * 0.25)
    net = scalar_two_layer(theta0=(2.0, 0.25), target=1.0, dtype="float64")
    assert float(net.loss(net.theta0)) == pytest.approx(0.125)
    f = function_problem(lambda t: (t**4).sum(), [1.0, 2.0], dtype="float64")
    assert float(f(f.theta0)) == 17.0


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: chebyshev_regression(activation="sigmoidish"), "activation"),
        (lambda: digits_classification(loss="hinge"), "loss"),
        (lambda: digits_classification(n=5000), "n"),
        (lambda: chebyshev_regression(width=0), "width"),
        (lambda: chebyshev_regression(init_scale=-1), "scale"),
        (lambda: quadratic([1.0, 2.0], theta0=[1.0]), "theta0"),
        (lambda: quadratic([1.0, 2.0], eigenvectors=torch.ones(2, 2)), "eigenvectors"),
        (lambda: quadratic([1.0], dtype="float16"), "dtype"),
        (lambda: chebyshev_regression(device="tpu9"), "device"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_bad_batch_indices():
    p = chebyshev_regression()
    with pytest.raises(ValueError, match="batch_indices"):
        p.loss(p.theta0, [0, 20])
    with pytest.raises(ValueError, match="batch_indices"):
        p.loss(p.theta0, [])


@pytest.mark.parametrize("bias", [True, False])
def test_mlp_apply_is_the_layer_formula_written_out(bias):
    from eoslab.models import MLP

    net = MLP([3, 5, 4, 2], activation="tanh", bias=bias)
    theta = net.init(torch.Generator().manual_seed(0), dtype=torch.float64)
    X = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    # theta holds W_1 (5 x 3, row-major), b_1, W_2, b_2, W_3, b_3, one after the other
    chunks, start, h = [], 0, X
    for shape in [(5, 3), (5,), (4, 5), (4,), (2, 4), (2,)]:
        if len(shape) == 1 and not bias:
            continue
        size = int(np.prod(shape))
        chunks.append(theta[start:start + size].reshape(shape))
        start += size
    assert start == theta.numel() == net.num_params
    weights = chunks[0::2] if bias else chunks
    biases = chunks[1::2] if bias else [0.0] * 3
    for i, (W, b) in enumerate(zip(weights, biases)):
        h = h @ W.T + b
        h = torch.tanh(h) if i < 2 else h
    torch.testing.assert_close(net.apply(theta, X), h, rtol=1e-14, atol=1e-14)
    assert net.apply(theta, X[0]).shape == (2,)  # a single input, without the batch dimension
    torch.testing.assert_close(net.apply(theta, X[0]), h[0], rtol=1e-14, atol=1e-14)
