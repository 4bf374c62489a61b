"""Functional models on flat parameter vectors.

A model here is a pair ``(init, apply)``: ``init`` draws a flat vector ``theta``
and ``apply(theta, X)`` evaluates the network with weights read out of
``theta``. Keeping the weights flat lets the curvature code and the flows act
on plain vectors (``theta + a * u``, ``H @ v``), as in the equations.
"""
from __future__ import annotations

import math

import torch

from ._validation import check_choice, check_int, check_positive

__all__ = ["MLP"]

ACTIVATIONS = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "gelu": torch.nn.functional.gelu,
    "elu": torch.nn.functional.elu,
    "softplus": torch.nn.functional.softplus,
    "linear": lambda z: z,
}


class MLP:
    """A fully connected network ``sizes[0] -> ... -> sizes[-1]`` on a flat vector.

    Layer ``i`` computes ``h @ W_i.T + b_i`` followed by the activation (none
    after the last layer). ``theta`` stores, layer after layer, ``W_i``
    (row-major, shape ``(out, in)``) and then ``b_i``.

    Parameters
    ----------
    sizes : sequence of int
        Input width, hidden widths, output width (at least two entries).
    activation : str
        One of ``tanh``, ``relu``, ``gelu``, ``elu``, ``softplus``, ``linear``.
    bias : bool
        Whether layers carry biases.

    Examples
    --------
    >>> net = MLP([1, 8, 1])
    >>> theta = net.init(torch.Generator().manual_seed(0))
    >>> net.apply(theta, torch.zeros(3, 1)).shape
    torch.Size([3, 1])
    """

    def __init__(self, sizes, activation="tanh", bias=True):
        sizes = [check_int("sizes[%d]" % i, s, low=1) for i, s in enumerate(sizes)]
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least an input and an output width, got {sizes!r}")
        self.sizes = sizes
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self._act = ACTIVATIONS[self.activation]
        self.bias = bool(bias)
        self.shapes = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            self.shapes.append((fan_out, fan_in))
            if self.bias:
                self.shapes.append((fan_out,))
        self._numels = [math.prod(s) for s in self.shapes]
        self.num_params = sum(self._numels)

    def unflatten(self, theta):
        """Split ``theta`` into the list of weight and bias tensors (views)."""
        return [chunk.view(shape) for chunk, shape in zip(theta.split(self._numels), self.shapes)]

    def init(self, generator, *, scale=1.0, dtype=torch.float32, device=None):
        """PyTorch's default ``nn.Linear`` initialization, times ``scale``.

        Every weight and bias of a layer with fan-in ``m`` is drawn from
        ``U(-1/sqrt(m), 1/sqrt(m))``. Drawn on the CPU in float64 from
        ``generator`` so that the same seed gives the same network on every
        device and dtype.
        """
        scale = check_positive("scale", scale)
        chunks = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            bound = scale / math.sqrt(fan_in)
            for shape in [(fan_out, fan_in)] + ([(fan_out,)] if self.bias else []):
                u = torch.rand(shape, generator=generator, dtype=torch.float64)
                chunks.append(((2 * u - 1) * bound).reshape(-1))
        return torch.cat(chunks).to(device=device, dtype=dtype)

    def apply(self, theta, X):
        """Network output for inputs ``X`` of shape ``(n, sizes[0])``."""
        params = self.unflatten(theta)
        step = 2 if self.bias else 1
        h = X
        layers = len(self.sizes) - 1
        for i in range(layers):
            W = params[step * i]
            if self.bias and h.ndim == 2:  # one fused product-and-sum: fewer autograd nodes per step
                h = torch.addmm(params[step * i + 1], h, W.T)
            else:
                h = h @ W.T
                if self.bias:
                    h = h + params[step * i + 1]
            if i < layers - 1:
                h = self._act(h)
        return h

    def __repr__(self):
        return f"MLP(sizes={self.sizes}, activation={self.activation!r}, params={self.num_params})"
