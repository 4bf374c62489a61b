"""The problem interface: a loss on a flat parameter vector, together with its data.

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
import functools

import torch

from .._validation import check_finite_vector, resolve_device, resolve_dtype

__all__ = ["FunctionProblem", "Problem", "function_problem"]


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

    def batch_loss(self, batch_indices):
        """``theta -> loss(theta, batch_indices)``: the loss of one mini-batch as a function of ``theta`` (a problem
        whose data comes in chunks returns one that the curvature code evaluates chunk by chunk)."""
        return functools.partial(self.loss, batch_indices=batch_indices)

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
        low, high = (int(v) for v in torch.aminmax(idx))
        if low < 0 or high >= self.num_examples:
            raise ValueError(
                f"batch_indices must lie in [0, {self.num_examples - 1}], got values from {low} to {high}"
            )
        return idx

    def __repr__(self):
        return (
            f"<{type(self).__name__} {self.name!r}: {self.num_params} parameters, "
            f"{self.num_examples} examples, {self.dtype}, {self.device}>"
        )


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
    theta0 = torch.as_tensor(theta0, dtype=resolve_dtype(dtype, like=theta0), device=resolve_device(device)).reshape(-1)
    if theta0.numel() == 0:
        raise ValueError("theta0 must have at least one entry, got an empty start point")
    check_finite_vector("theta0", theta0)
    value = fn(theta0)
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise ValueError(f"fn must return a scalar tensor, got {type(value).__name__}"
                         + (f" of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else ""))
    return FunctionProblem(fn, theta0, name)
