r"""Your own network as a problem: :func:`from_module` wraps a ``torch.nn.Module`` on a flat parameter vector.

The module keeps its structure; the problem reads its trainable parameters
as one flat vector ``theta`` (in ``named_parameters`` order, each tensor
row-major, the layout of ``torch.nn.utils.parameters_to_vector``) and
evaluates it with :func:`torch.func.functional_call`. So ``run``, the
eigen-solvers, the flows, batch sharpness and the widgets work on it
unchanged, exactly as on the built-in networks.

**The full-batch loss over data larger than one pass.** With ``chunk_size``,
the loss, its gradient and every Hessian-vector product are sums over chunks
of at most ``chunk_size`` examples, each weighted by its share of the data:

.. math:: L = \sum_c \frac{n_c}{n} L_c, \qquad \nabla L = \sum_c \frac{n_c}{n} \nabla L_c,
          \qquad H v = \sum_c \frac{n_c}{n} \nabla(\nabla L_c \cdot v),

which equals the one-pass value up to rounding because ``loss_fn`` averages
over the examples of its batch. Memory is bounded by one chunk: each product
rebuilds the chunk's graph (one forward, one backward, one double backward
per chunk) instead of keeping all of them.

**What the Hessian means with buffers.** The module is put in evaluation
mode (``model.eval()``): dropout is off and BatchNorm normalizes with its
running statistics, so the loss is a fixed function of ``theta`` and a mean
over examples, and its Hessian is the Hessian of that function. In training
mode BatchNorm normalizes each batch by its own statistics: the loss of a
batch is then not a mean of per-example losses, and its Hessian depends on
how the data is split. :func:`from_module` checks both properties on the
first examples before any long work: a loss that is not a per-example mean
(BatchNorm in training mode, ``reduction="sum"``) is an error, and a
Hessian-vector product that differs when applied twice (dropout in training
mode) is a warning.
"""
from __future__ import annotations

import math

import torch

from .._validation import check_int, resolve_device, resolve_dtype
from .base import Problem
from .module_checks import check_loss_fn, check_mean_and_determinism, check_structure, select_parameters
from .module_data import Column, indices, length, read_data, take, to_device

__all__ = ["ModuleProblem", "from_module"]


class ModuleProblem(Problem):
    """A ``torch.nn.Module`` fit to data, on a flat vector of (some of) its parameters; see :func:`from_module`.

    Attributes
    ----------
    model : torch.nn.Module
        The module (in evaluation mode unless built with ``train=True``).
    names : list of str
        The parameters that ``theta`` holds, in order.
    chunk_size : int
        The most examples evaluated in one pass.
    """

    def __init__(self, model, loss_fn, inputs, targets, names, theta0, chunk_size, name):
        self.model = model
        self.loss_fn = loss_fn
        self.inputs = inputs
        self.targets = targets
        self.names = names
        selected = set(names)
        self.shapes = [tuple(p.shape) for n, p in model.named_parameters() if n in selected]
        self._fixed = [n for n, _ in model.named_parameters() if n not in selected]  # held by the module, not theta
        self._numels = [math.prod(s) for s in self.shapes]
        self.theta0 = theta0
        self.chunk_size = chunk_size
        self.name = name
        self.num_examples = length(inputs)

    @property
    def third_derivative_caveat(self):
        """Why third derivatives of this loss would be wrong, or ``None`` (read by
        :meth:`~eoslab.curvature.HessianOperator.third_derivative`, which warns)."""
        wrong = (torch.nn.LayerNorm, torch.nn.modules.instancenorm._InstanceNorm)
        fused = [n for n, m in self.model.named_modules() if isinstance(m, wrong)]
        if not fused:
            return None
        return (f"the module uses torch's layer or instance normalization ({', '.join(fused[:3])}"
                f"{' ...' if len(fused) > 3 else ''}), whose fused kernels give a wrong third derivative, so the "
                "sharpness gradient ∇S is wrong; replace nn.LayerNorm by eoslab.architectures.LayerNorm (the same "
                "function and parameters). (torch.nn.functional.layer_norm called directly is wrong too, and is "
                "not detected.)")

    # -- the parameters ---------------------------------------------------------
    def unflatten(self, theta):
        """``{name: tensor}`` views of ``theta``, shaped like the module's parameters."""
        return {n: t.view(s) for n, t, s in zip(self.names, theta.split(self._numels), self.shapes)}

    def write_to(self, theta, model=None):
        """Copy ``theta`` into the parameters of ``model`` (default: this problem's module), in place."""
        model = self.model if model is None else model
        params = dict(model.named_parameters())
        with torch.no_grad():
            for n, t in self.unflatten(theta.detach()).items():
                params[n].copy_(t)
        return model

    # -- the loss ---------------------------------------------------------------
    def _examples(self, index):
        """Inputs and targets of the examples ``index`` (a slice or index tensor), on the problem's device."""
        if isinstance(self.inputs, Column):  # a dataset of pairs: read each example once
            items = [self.inputs.dataset[i] for i in indices(index, len(self.inputs))]
            x, y = (torch.stack([torch.as_tensor(item[k]) for item in items]) for k in (0, 1))
        else:
            x, y = take(self.inputs, index), take(self.targets, index)
        return to_device(x, self.device, self.dtype), to_device(y, self.device, self.dtype)

    def _forward(self, theta, x):
        # the parameters outside theta enter detached: no graph through them, whatever their requires_grad
        params = {n: self.model.get_parameter(n).detach() for n in self._fixed}
        params.update(self.unflatten(theta))
        return torch.func.functional_call(self.model, params, (x,))

    def batch_loss(self, batch_indices):
        """The loss of one mini-batch as a callable that the curvature code evaluates chunk by chunk."""
        return _BatchLoss(self, batch_indices)

    def _chunk_loss(self, theta, index):
        x, y = self._examples(index)
        return self.loss_fn(self._forward(theta, x), y)

    def _pieces(self, batch_indices):
        """``[(weight, index)]``: the chunks of the batch (all examples when ``None``), weights summing to one."""
        if batch_indices is None:
            n = self.num_examples
            return [(min(self.chunk_size, n - a) / n, slice(a, min(a + self.chunk_size, n)))
                    for a in range(0, n, self.chunk_size)]
        n = batch_indices.numel()
        return [(min(self.chunk_size, n - a) / n, batch_indices[a:a + self.chunk_size].cpu())
                for a in range(0, n, self.chunk_size)]

    def loss_chunks(self, batch_indices=None):
        """``[(weight, loss_c)]`` with ``loss = sum(weight * loss_c(theta))``, one per chunk (the curvature code's
        hook: :class:`~eoslab.curvature.HessianOperator` accumulates over them when there are several)."""
        return [(w, lambda theta, i=i: self._chunk_loss(theta, i))
                for w, i in self._pieces(self._check_batch(batch_indices))]

    def _loss(self, theta, batch_indices):
        pieces = self._pieces(batch_indices)
        if len(pieces) == 1:
            return self._chunk_loss(theta, pieces[0][1])
        return sum(w * self._chunk_loss(theta, i) for w, i in pieces)

    def value_and_grad(self, theta, batch_indices=None):
        """Loss and gradient, accumulated chunk by chunk (one chunk's graph in memory at a time)."""
        pieces = self._pieces(self._check_batch(batch_indices))
        value, grad = 0.0, torch.zeros_like(theta)
        with torch.enable_grad():
            theta = theta.detach().requires_grad_(True)
            for w, i in pieces:
                loss = self._chunk_loss(theta, i)
                (g,) = torch.autograd.grad(loss, theta, allow_unused=True) if loss.requires_grad else (None,)
                value = value + w * loss.detach()
                if g is not None:
                    grad += w * g
        return value, grad

    def predict(self, theta, inputs=None):
        """The module's output on ``inputs`` (default: the training inputs, chunk by chunk)."""
        with torch.no_grad():
            if inputs is not None:
                return self._forward(theta.detach(), to_device(torch.as_tensor(inputs), self.device, self.dtype))
            return torch.cat([self._forward(theta.detach(), self._examples(i)[0]) for _, i in self._pieces(None)])

    def accuracy(self, theta):
        """Fraction of examples whose largest output is their label (integer or one-hot targets)."""
        out = self.predict(theta)
        y = to_device(take(self.targets, slice(None)), out.device, None)
        labels = y.argmax(dim=1) if y.ndim == 2 else y
        return float((out.argmax(dim=1) == labels).double().mean())

    def to(self, device=None, dtype=None):
        """A copy on ``device`` in ``dtype``: the module is copied there; data stays where it is, each chunk
        moving when it is used (data on the old device moves with the problem)."""
        import copy

        device = self.device if device is None else resolve_device(device)
        dtype = self.dtype if dtype is None else resolve_dtype(dtype)
        if device == self.device and dtype == self.dtype:
            return self
        new = copy.copy(self)
        new.model = copy.deepcopy(self.model).to(device=device, dtype=dtype)
        if isinstance(self.loss_fn, torch.nn.Module):  # e.g. a class-weighted loss holds tensors
            new.loss_fn = copy.deepcopy(self.loss_fn).to(device=device, dtype=dtype)
        new.theta0 = self.theta0.to(device=device, dtype=dtype)
        for key in ("inputs", "targets"):
            data = getattr(self, key)
            if isinstance(data, torch.Tensor) and data.device == self.device:
                setattr(new, key, data.to(device=device, dtype=dtype if data.is_floating_point() else data.dtype))
        return new


class _BatchLoss:
    """``theta -> loss`` of one mini-batch, with its chunks for :class:`~eoslab.curvature.HessianOperator`."""

    def __init__(self, problem, batch_indices):
        self.problem, self.batch_indices = problem, batch_indices

    def __call__(self, theta):
        return self.problem.loss(theta, self.batch_indices)

    @property
    def third_derivative_caveat(self):
        return self.problem.third_derivative_caveat

    def loss_chunks(self):
        return self.problem.loss_chunks(self.batch_indices)


def from_module(model, loss_fn, data, *, params=None, chunk_size=None, train=False, name=None):
    """Wrap a ``torch.nn.Module`` and its data as a :class:`~eoslab.problems.Problem` on a flat parameter vector.

    Parameters
    ----------
    model : torch.nn.Module
        The network. The problem lives on its parameters' device and dtype
        (move it first, or use ``problem.to(...)``, which copies it). It is put
        in evaluation mode unless ``train=True``; ``theta0`` is a copy of its
        parameters, and :meth:`ModuleProblem.write_to` copies a ``theta`` back.
    loss_fn : callable
        ``loss_fn(output, target)``, averaging over the examples of its batch
        (``torch.nn.MSELoss()``, ``torch.nn.CrossEntropyLoss()``, or a function).
        Cohen et al.'s square loss is ``lambda out, y: 0.5 * ((out - y) ** 2).sum(1).mean()``.
    data : (inputs, targets) tensors, Dataset or DataLoader
        The training set: two tensors with one example per row, a map-style
        dataset of ``(input, target)`` pairs, or a ``DataLoader`` over one read
        in order (``shuffle=False``; its ``batch_size`` is the default chunk).
        Data may stay on the CPU while the module is on a GPU: each chunk moves
        when it is used.
    params : callable, str or list of str, optional
        Which trainable parameters ``theta`` holds (default: all): names or
        module prefixes (``"layers.2"`` selects that layer's weight and bias),
        or ``params(name, parameter) -> bool``. The others stay fixed. The
        sharpness of one layer is the top eigenvalue of its diagonal block.
    chunk_size : int, optional
        The most examples in one forward pass (default: all, or the
        DataLoader's batch size). Full-batch quantities are accumulated over
        chunks; the values equal the one-pass ones up to rounding.
    train : bool
        Keep the module in training mode (dropout on, BatchNorm on batch
        statistics): checked, and refused where the loss stops being a mean.
    name : str, optional

    Returns
    -------
    ModuleProblem

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> X, y = torch.randn(32, 4), torch.randn(32, 1)
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    >>> problem = from_module(net, nn.MSELoss(), (X, y), chunk_size=10)
    >>> problem.num_params, problem.num_examples
    (49, 32)
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(output, target), got {type(loss_fn).__name__}")
    if not isinstance(train, bool):
        raise TypeError(f"train must be True or False, got {train!r}")
    inputs, targets, loader_batch = read_data(data)
    check_loss_fn(loss_fn, targets)
    check_structure(model)
    n = length(inputs)
    chunk_size = (loader_batch or n) if chunk_size is None else check_int("chunk_size", chunk_size, low=1)
    chunk_size = min(chunk_size, n)
    names = select_parameters(model, params)
    selected = dict(model.named_parameters())
    floating = {selected[k].dtype for k in names}
    if len(floating) != 1 or next(iter(floating)) not in (torch.float32, torch.float64):
        raise ValueError(f"the selected parameters must all be float32 or all float64, got "
                         f"{sorted(map(str, floating))}: curvature near the edge is a small difference of large "
                         "numbers, which half precision cannot resolve (model.float() converts)")
    theta0 = torch.cat([selected[k].detach().reshape(-1) for k in names]).clone()
    if not bool(torch.isfinite(theta0).all()):
        raise ValueError("the module's parameters are not all finite")
    label = name or f"{type(model).__name__} ({theta0.numel()} params, {n} examples)"
    problem = ModuleProblem(model, loss_fn, inputs, targets, names, theta0, chunk_size, label)
    was_training = model.training
    buffers = {k: b.clone() for k, b in model.named_buffers()}  # the checks must leave no trace in the module
    model.train(train)
    try:
        check_mean_and_determinism(problem)
    except Exception:
        model.train(was_training)
        raise
    finally:
        with torch.no_grad():
            for k, b in model.named_buffers():
                b.copy_(buffers[k])
    return problem
