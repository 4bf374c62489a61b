"""Networks fit to data: functional MLPs on Chebyshev regression, scikit-learn's digits and CIFAR-10."""
from __future__ import annotations

import torch

from .._validation import check_choice, check_int, check_real, resolve_device, resolve_dtype
from ..data import chebyshev_data, cifar10_data, digits_data
from ..models import MLP
from .base import Problem

__all__ = ["Supervised", "chebyshev_regression", "cifar10_classification", "digits_classification", "digits_eoss",
           "square_loss"]


LOSSES = ("mse", "ce")


def square_loss(output, target):
    r"""Cohen et al.'s square loss: :math:`\tfrac12\|f(x) - y\|^2` summed over outputs, averaged over examples.

    ``output`` and ``target`` have one example per row (one-hot targets for classification). Written out by
    hand: ``F.mse_loss`` averages over outputs too (a loss ten times smaller on ten classes, and so an edge at
    a ten times larger step), and trips torch.func's forward-over-reverse products. The loss of every
    built-in network with ``loss="mse"``, and the one to give :func:`~eoslab.problems.from_module` for their
    setting.

    Examples
    --------
    >>> float(square_loss(torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [0.0, 2.0]])))
    1.25
    """
    if not isinstance(output, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError(f"square_loss takes two tensors, got {type(output).__name__} and {type(target).__name__}")
    if output.shape != target.shape or output.ndim != 2:
        raise ValueError(f"output and target must both have shape (examples, outputs), got {tuple(output.shape)} "
                         f"and {tuple(target.shape)} (one-hot targets for classification)")
    return 0.5 * ((output - target) ** 2).sum(dim=1).mean()


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
            return square_loss(out, Y)
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
