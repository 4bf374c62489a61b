"""Problems: a loss on a flat parameter vector, together with its data.

Every problem exposes the same small surface:

``theta0``
    the starting point (a flat 1-D tensor);
``loss(theta, batch_indices=None)``
    the full-batch loss, or the mean loss over the examples in ``batch_indices``;
``value_and_grad(theta, batch_indices=None)``
    the loss and its gradient (closed form where one exists);
``num_examples``, ``num_params``, ``device``, ``dtype``;
``predict(theta, inputs=None)``
    the model output, for plots (data problems);
``to(device=None, dtype=None)``
    a copy living on another device or in another precision.

A problem is also callable: ``problem(theta)`` is ``problem.loss(theta)``, so a
problem can be passed wherever :mod:`eoslab.curvature` expects a loss function.
"""
from __future__ import annotations

import copy

import torch

from ._validation import (
    check_choice,
    check_int,
    check_real,
    check_vector,
    resolve_device,
    resolve_dtype,
)
from .data import chebyshev_data, cifar10_data, digits_data
from .models import MLP

__all__ = [
    "Problem",
    "Quadratic",
    "Supervised",
    "quadratic",
    "function_problem",
    "manifold_toy",
    "scalar_two_layer",
    "chebyshev_regression",
    "digits_classification",
    "digits_eoss",
    "cifar10_classification",
]


class Problem:
    """Base class: subclasses set ``theta0`` and ``num_examples`` and define ``_loss``."""

    name = "problem"
    num_examples = 1
    suggested_lr = None

    # -- the loss ---------------------------------------------------------------
    def _loss(self, theta, batch_indices):
        raise NotImplementedError

    def loss(self, theta, batch_indices=None):
        """Mean loss over ``batch_indices`` (all examples when ``None``)."""
        return self._loss(theta, self._check_batch(batch_indices))

    __call__ = loss

    def value_and_grad(self, theta, batch_indices=None):
        """Return ``(loss, gradient)``, both detached, by automatic differentiation."""
        with torch.enable_grad():
            theta = theta.detach().requires_grad_(True)
            value = self.loss(theta, batch_indices)
            (grad,) = torch.autograd.grad(value, theta)
        return value.detach(), grad

    def hessian(self, theta):
        """The dense Hessian at ``theta`` (for small problems; see :func:`eoslab.curvature.hessian`)."""
        from .curvature import hessian

        return hessian(self, theta)

    def predict(self, theta, inputs=None):
        """Model output; only problems with a model define it."""
        raise NotImplementedError(f"{type(self).__name__} has no model output to predict")

    # -- bookkeeping ------------------------------------------------------------
    @property
    def num_params(self):
        return self.theta0.numel()

    @property
    def device(self):
        return self.theta0.device

    @property
    def dtype(self):
        return self.theta0.dtype

    def to(self, device=None, dtype=None):
        """A copy of the problem with its tensors on ``device`` and floats in ``dtype``."""
        device = self.device if device is None else resolve_device(device)
        dtype = self.dtype if dtype is None else resolve_dtype(dtype)
        if device == self.device and dtype == self.dtype:
            return self
        new = copy.copy(self)
        for key, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                target = dtype if value.is_floating_point() else value.dtype
                setattr(new, key, value.to(device=device, dtype=target))
        return new

    def _check_batch(self, batch_indices):
        if batch_indices is None:
            return None
        idx = torch.as_tensor(batch_indices, device=self.device)
        if idx.ndim != 1 or idx.numel() == 0 or idx.is_floating_point():
            raise ValueError(
                f"batch_indices must be a non-empty 1-D sequence of integers, got shape {tuple(idx.shape)}"
            )
        if int(idx.min()) < 0 or int(idx.max()) >= self.num_examples:
            raise ValueError(
                f"batch_indices must lie in [0, {self.num_examples - 1}], "
                f"got values from {int(idx.min())} to {int(idx.max())}"
            )
        return idx

    def __repr__(self):
        return (
            f"<{type(self).__name__} {self.name!r}: {self.num_params} parameters, "
            f"{self.num_examples} examples, {self.dtype}, {self.device}>"
        )


# ---------------------------------------------------------------------------
# Quadratics and explicit toys
# ---------------------------------------------------------------------------
class Quadratic(Problem):
    r"""The quadratic :math:`L(\theta) = \tfrac12 \theta^\top A \theta` with ``A`` symmetric.

    Built by :func:`quadratic`. The gradient ``A theta`` and the Hessian ``A``
    are exact; ``eigenvalues`` (descending) and ``eigenvectors`` (columns) are kept.
    """

    name = "quadratic"

    def __init__(self, A, theta0, eigenvalues, eigenvectors):
        self.A = A
        self.theta0 = theta0
        self.eigenvalues = eigenvalues
        self.eigenvectors = eigenvectors

    def _loss(self, theta, batch_indices):
        return 0.5 * theta @ (self.A @ theta)

    def value_and_grad(self, theta, batch_indices=None):
        self._check_batch(batch_indices)
        theta = theta.detach()
        grad = self.A @ theta
        return 0.5 * theta @ grad, grad

    def hessian(self, theta):
        """``A``, the Hessian everywhere."""
        return self.A

    @property
    def sharpness(self):
        """``λ_max(A)``, the sharpness everywhere."""
        return float(self.eigenvalues[0])


def quadratic(eigenvalues, x0=None, eigenvectors=None, *, device=None, dtype=None):
    r"""The quadratic :math:`L(x) = \tfrac12 x^\top A x`, :math:`A = Q\,\mathrm{diag}(\lambda)\,Q^\top`.

    Parameters
    ----------
    eigenvalues : sequence of float
        The eigenvalues of ``A`` (any order, any sign).
    x0 : sequence of float, optional
        The starting point; by default the all-ones vector.
    eigenvectors : array-like of shape (d, d), optional
        An orthogonal matrix ``Q`` whose columns are the eigenvectors; by
        default the identity (``A`` diagonal).
    device, dtype :
        Where the problem lives (default CPU, float32).

    Returns
    -------
    Quadratic

    Examples
    --------
    >>> q = quadratic([2.0, 0.5], x0=[1.0, 1.0], dtype="float64")
    >>> float(q.loss(q.theta0))
    1.25
    """
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    lam = torch.as_tensor(eigenvalues, dtype=torch.float64).reshape(-1)
    if lam.numel() == 0 or not torch.isfinite(lam).all():
        raise ValueError(f"eigenvalues must be a non-empty sequence of finite numbers, got {eigenvalues!r}")
    d = lam.numel()
    if eigenvectors is None:
        Q = torch.eye(d, dtype=torch.float64)
    else:
        Q = torch.as_tensor(eigenvectors, dtype=torch.float64)
        if Q.shape != (d, d):
            raise ValueError(f"eigenvectors must have shape ({d}, {d}) to match eigenvalues, got {tuple(Q.shape)}")
        if not torch.allclose(Q.T @ Q, torch.eye(d, dtype=torch.float64), atol=1e-8):
            raise ValueError("eigenvectors must be an orthogonal matrix (Q^T Q = I)")
    x0 = torch.ones(d, dtype=torch.float64) if x0 is None else torch.as_tensor(x0, dtype=torch.float64)
    check_vector("x0", x0, size=d)
    order = torch.argsort(lam, descending=True)
    lam, Q = lam[order], Q[:, order]
    A = (Q * lam) @ Q.T
    A = 0.5 * (A + A.T)
    to = dict(device=device, dtype=dtype)
    return Quadratic(A.to(**to), x0.to(**to), lam.to(**to), Q.to(**to))


class FunctionProblem(Problem):
    """A loss given as a Python function of the flat parameter vector."""

    def __init__(self, fn, theta0, name):
        self.fn = fn
        self.theta0 = theta0
        self.name = name

    def _loss(self, theta, batch_indices):
        return self.fn(theta)


def function_problem(fn, theta0, *, name="function", device=None, dtype=None):
    """Wrap a differentiable function ``fn(theta) -> scalar`` as a problem.

    Parameters
    ----------
    fn : callable
        Maps a flat tensor to a scalar tensor, using torch operations only.
    theta0 : sequence of float
        The starting point.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    theta0 = torch.as_tensor(theta0, dtype=resolve_dtype(dtype), device=resolve_device(device)).reshape(-1)
    value = fn(theta0)
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise ValueError("fn must return a scalar tensor")
    return FunctionProblem(fn, theta0, name)


def _manifold_toy_loss(theta):
    x, y = theta[0], theta[1]
    return (1 + x**2) * y**2


def manifold_toy(x0=(14.7, -3.0), *, device=None, dtype=None):
    r"""The toy :math:`L(x, y) = (1 + x^2)\,y^2`.

    Its minimizers form the line :math:`\Gamma = \{y = 0\}`, along which the
    sharpness is :math:`2(1 + x^2)`: a manifold of minima of varying sharpness.
    """
    theta0 = torch.as_tensor(x0, dtype=torch.float64)
    check_vector("x0", theta0, size=2)
    return function_problem(_manifold_toy_loss, theta0, name="manifold toy (1+x^2) y^2", device=device, dtype=dtype)


def scalar_two_layer(x0=(0.5, 0.3), target=1.0, *, device=None, dtype=None):
    r"""The scalar two-layer network :math:`L(a, b) = \tfrac12 (ab - c)^2`, ``c = target``.

    Its minimizers form the hyperbola :math:`ab = c`, where the sharpness is
    :math:`a^2 + b^2`.
    """
    target = check_real("target", target)
    theta0 = torch.as_tensor(x0, dtype=torch.float64)
    check_vector("x0", theta0, size=2)
    fn = lambda t: 0.5 * (t[0] * t[1] - target) ** 2  # noqa: E731
    return function_problem(fn, theta0, name="scalar two-layer net", device=device, dtype=dtype)


# ---------------------------------------------------------------------------
# Networks on data
# ---------------------------------------------------------------------------
LOSSES = ("mse", "ce")


class Supervised(Problem):
    """A functional network fit to ``(X, Y)`` by mean-squared error or cross-entropy.

    MSE is ``½‖f(x) - y‖²`` summed over outputs and averaged over examples
    (the convention of Cohen et al. 2021); cross-entropy is averaged over
    examples. For MSE classification ``Y`` holds one-hot targets; for
    cross-entropy it holds integer labels.
    """

    def __init__(self, model, X, Y, loss_name, theta0, name, suggested_lr=None):
        self.model = model
        self.X = X
        self.Y = Y
        self.loss_name = loss_name
        self.theta0 = theta0
        self.name = name
        self.num_examples = X.shape[0]
        self.suggested_lr = suggested_lr

    def _loss(self, theta, batch_indices):
        X, Y = (self.X, self.Y) if batch_indices is None else (self.X[batch_indices], self.Y[batch_indices])
        out = self.model.apply(theta, X)
        if self.loss_name == "mse":
            # written out by hand: F.mse_loss trips torch.func's forward-over-reverse HVPs
            return 0.5 * ((out - Y) ** 2).sum(dim=1).mean()
        return torch.nn.functional.cross_entropy(out, Y)

    def predict(self, theta, inputs=None):
        """The network output on ``inputs`` (default: the training inputs)."""
        X = self.X if inputs is None else torch.as_tensor(inputs, dtype=self.dtype, device=self.device)
        with torch.no_grad():
            return self.model.apply(theta.detach(), X)

    def accuracy(self, theta):
        """Fraction of training examples classified correctly (classification problems)."""
        labels = self.Y.argmax(dim=1) if self.Y.ndim == 2 else self.Y
        return float((self.predict(theta).argmax(dim=1) == labels).to(torch.float64).mean())


def chebyshev_regression(
    degree=4,
    n=20,
    width=100,
    depth=1,
    activation="tanh",
    *,
    init_scale=0.3,
    seed=0,
    device=None,
    dtype=None,
):
    """A tanh MLP fit by MSE to the Chebyshev polynomial ``T_degree`` on ``n`` points of [-1, 1].

    The small, fast Edge of Stability demonstration (after the in-browser
    tutorial "Investigating the Edge of Stability"): with the defaults and
    ``lr = problem.suggested_lr``, full-batch GD shows progressive sharpening
    and then the Edge of Stability within a few thousand steps, in a couple
    of seconds on a CPU.

    Parameters
    ----------
    degree : int
        Degree of the target Chebyshev polynomial.
    n : int
        Number of equally spaced training points on [-1, 1].
    width, depth : int
        Hidden width and number of hidden layers.
    activation : str
        See :class:`eoslab.models.MLP`.
    init_scale : float
        Multiplies PyTorch's default initialization. The default 0.3 starts
        the sharpness near 4, below ``2/0.3 ≈ 6.7``, so that progressive
        sharpening is visible before the Edge of Stability (reached after
        about 2,000 steps at ``lr=0.3``).
    seed : int
        Seeds the initialization.
    device, dtype :
        Where the problem lives (default CPU, float32).
    """
    width = check_int("width", width, low=1)
    depth = check_int("depth", depth, low=1)
    seed = check_int("seed", seed)
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    X, y = chebyshev_data(degree, n)
    model = MLP([1] + [width] * depth + [1], activation=activation)
    theta0 = model.init(torch.Generator().manual_seed(seed), scale=init_scale, dtype=dtype, device=device)
    to = dict(device=device, dtype=dtype)
    return Supervised(
        model, X.to(**to), y.to(**to), "mse", theta0,
        name=f"Chebyshev T{degree} regression ({model.num_params} params)",
        suggested_lr=0.3,
    )


def digits_classification(
    n=1000,
    widths=(200, 200),
    activation="tanh",
    loss="mse",
    *,
    label_noise=0.0,
    init_scale=1.0,
    seed=0,
    device=None,
    dtype=None,
):
    """An MLP classifying the first ``n`` of scikit-learn's bundled 8x8 digits.

    Cohen et al.'s architecture (two tanh hidden layers of 200) on real data
    that ships with scikit-learn, so nothing is downloaded. With
    ``loss="mse"`` the loss is ``½‖f(x) - onehot(y)‖²`` summed over the ten
    classes and averaged over examples; with ``loss="ce"`` it is the
    cross-entropy.

    Parameters
    ----------
    n : int
        Number of training examples, 1 to 1797.
    widths : sequence of int
        Hidden widths.
    activation : str
        See :class:`eoslab.models.MLP`.
    loss : {"mse", "ce"}
    label_noise : float
        Fraction of examples, in [0, 1], whose label is replaced by a class
        drawn uniformly at random (``1.0``: a pure memorization task, which
        trains slowly enough to show the Edge of Stability with cross-entropy).
        The noise is seeded by ``seed`` too, independently of the weights.
    init_scale : float
        Multiplies PyTorch's default initialization.
    seed : int
        Seeds the initialization and the label noise.
    device, dtype :
        Where the problem lives (default CPU, float32).
    """
    loss = check_choice("loss", loss, LOSSES)
    label_noise = check_real("label_noise", label_noise, low=0.0, high=1.0)
    seed = check_int("seed", seed)
    X, labels = digits_data(n)
    labels = _noisy_labels(labels, 10, label_noise, seed)
    name = f"digits ({n} examples, {loss}" + (f", {label_noise:g} label noise" if label_noise else "")
    lr = 0.2 if loss == "mse" else 1.0
    return _classification(X, labels, 10, widths, activation, loss, init_scale, seed, device, dtype, name, lr)


def digits_eoss(n=1000, widths=(200, 200), *, label_noise=0.2, seed=0, device=None, dtype=None):
    """The setting of the Edge of Stochastic Stability chapter: a ReLU MLP on noisy digits.

    Andreyev and Beneventano's recipe (ReLU MLP, squared loss, small
    initialization: PyTorch's default times 0.2) on scikit-learn's digits,
    with ``label_noise`` (default 20 %) of the labels redrawn at random. The
    noise keeps the task hard enough that SGD reaches its edge before it
    fits the data; on clean digits it fits first and batch sharpness stops
    short of ``2/η``.

    Parameters
    ----------
    n : int
        Training examples, 1 to 1797.
    widths : sequence of int
        Hidden widths.
    label_noise : float
        Fraction of labels redrawn uniformly, in [0, 1].
    seed : int
        Seeds the initialization and the label noise.
    device, dtype :
        Where the problem lives (default CPU, float32).
    """
    return digits_classification(n, widths, activation="relu", loss="mse", label_noise=label_noise, init_scale=0.2,
                                 seed=seed, device=device, dtype=dtype)


def cifar10_classification(
    root,
    n=5000,
    widths=(200, 200),
    activation="tanh",
    loss="mse",
    *,
    download=False,
    init_scale=1.0,
    seed=0,
    device=None,
    dtype=None,
):
    """An MLP on the first ``n`` CIFAR-10 training images (Cohen et al.'s CIFAR-10-5k).

    The setup of Cohen et al. (2021): 5,000 images, a fully connected tanh
    network with two hidden layers of 200, MSE on one-hot targets. The data
    are read from ``root`` (see :func:`eoslab.data.cifar10_data`); nothing is
    downloaded unless ``download=True`` (which needs torchvision and a
    network connection). Sized for a GPU: pass ``device="cuda"``.
    """
    loss = check_choice("loss", loss, LOSSES)
    seed = check_int("seed", seed)
    X, labels = cifar10_data(root, n, download=download)
    name = f"CIFAR-10 ({n} examples, {loss}"
    return _classification(X, labels, 10, widths, activation, loss, init_scale, seed, device, dtype, name, 0.01)


def _noisy_labels(labels, num_classes, fraction, seed):
    if fraction == 0:
        return labels
    g = torch.Generator().manual_seed(10_007 + seed)
    flip = torch.rand(len(labels), generator=g) < fraction
    random = torch.randint(num_classes, (len(labels),), generator=g)
    return torch.where(flip, random, labels)


def _classification(X, labels, num_classes, widths, activation, loss, init_scale, seed, device, dtype, name, lr):
    """An MLP ``X.shape[1] -> widths -> num_classes`` with MSE (one-hot) or cross-entropy."""
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    model = MLP([X.shape[1], *tuple(widths), num_classes], activation=activation)
    theta0 = model.init(torch.Generator().manual_seed(seed), scale=init_scale, dtype=dtype, device=device)
    Y = torch.nn.functional.one_hot(labels, num_classes).to(dtype) if loss == "mse" else labels
    return Supervised(
        model, X.to(device=device, dtype=dtype), Y.to(device), loss, theta0,
        name=f"{name}, {model.num_params} params)",
        suggested_lr=lr,
    )
