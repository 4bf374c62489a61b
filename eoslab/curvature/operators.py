"""The Hessian of a loss at a point as an operator: products, dense matrices, third derivatives."""
from __future__ import annotations

import importlib
import sys
import warnings

import torch

from .._validation import check_finite_vector, check_int, check_like, check_vector

__all__ = ["HessianOperator", "hessian", "hvp", "third_derivative"]


def import_whole(name):
    """Import module ``name`` all or nothing: an interrupt (Ctrl-C) in the middle removes what it had loaded.

    The first double backward of a process makes torch import
    ``torch.fx.experimental.symbolic_shapes``, and with it sympy (hundreds of
    modules, about a second). Interrupted half-way, that leaves modules half
    initialized in ``sys.modules``, and every later curvature call in the
    session fails. So the first :class:`HessianOperator` imports it first,
    through this function: a Ctrl-C there leaves nothing behind, and the next
    call starts the import again. A module that is missing (another torch) is
    skipped.
    """
    before = set(sys.modules)
    try:
        importlib.import_module(name)
    except KeyboardInterrupt:
        for loaded in set(sys.modules) - before:
            del sys.modules[loaded]
        raise
    except ImportError:
        pass


_FIRST_BACKWARD_IMPORTS = ["torch.fx.experimental.symbolic_shapes"]  # emptied once imported


def _check_loss(loss):
    if not callable(loss):
        raise TypeError(f"loss must be a callable loss(theta) -> scalar tensor, got {type(loss).__name__}")


class HessianOperator:
    r"""The Hessian of ``loss`` at ``theta`` as a linear operator ``v -> H v``.

    The gradient graph is built once (double backward), so each product costs
    about one extra backward pass; ``num_products`` counts them.

    Parameters
    ----------
    loss : callable
        ``loss(theta)`` returning a scalar tensor.
    theta : torch.Tensor
        The flat point at which the Hessian is taken.

    Attributes
    ----------
    value : torch.Tensor
        ``L(theta)`` (detached).
    gradient : torch.Tensor
        ``∇L(theta)`` (detached).
    num_products : int
        Hessian-vector products computed so far.
    """

    def __init__(self, loss, theta):
        while _FIRST_BACKWARD_IMPORTS:  # once per process, before the double backward would import them
            import_whole(_FIRST_BACKWARD_IMPORTS[0])
            _FIRST_BACKWARD_IMPORTS.pop()
        _check_loss(loss)
        check_like("theta", theta, loss)
        check_finite_vector("theta", theta)
        self.size = theta.numel()
        self._theta = theta.detach().requires_grad_(True)
        self.num_products = 0
        self._caveat = getattr(loss, "third_derivative_caveat", None)  # a loss that knows its own flaws
        chunks = getattr(loss, "loss_chunks", None)
        self._chunks = chunks() if callable(chunks) else None
        if self._chunks is not None and len(self._chunks) > 1:  # data in chunks: one chunk's graph at a time
            self._grad, self._value, self._gradient = None, None, None  # value and gradient: on first use
            return
        self._chunks = None
        with torch.enable_grad():
            value = loss(self._theta)
            if not isinstance(value, torch.Tensor) or value.numel() != 1:
                raise ValueError("loss must return a scalar tensor")
            if value.requires_grad:
                (self._grad,) = torch.autograd.grad(value, self._theta, create_graph=True, allow_unused=True)
            else:  # a loss that does not depend on theta
                self._grad = None
            if self._grad is None:
                self._grad = torch.zeros_like(self._theta, requires_grad=False)
        self._value = value.detach()
        self._gradient = self._grad.detach()

    @property
    def value(self):
        if self._value is None:
            self._accumulate_gradient()
        return self._value

    @property
    def gradient(self):
        if self._gradient is None:
            self._accumulate_gradient()
        return self._gradient

    def _accumulate_gradient(self):
        """The loss and gradient over the chunks (only when asked for: products do not need them)."""
        value, gradient = 0.0, torch.zeros_like(self._theta, requires_grad=False)
        for weight, chunk_loss in self._chunks:
            chunk_value, grad = self._chunk_gradient(chunk_loss, create_graph=False)
            value, gradient = value + weight * chunk_value.detach(), gradient + weight * grad
        self._value, self._gradient = torch.as_tensor(value, dtype=self.dtype, device=self.device), gradient

    def _chunk_gradient(self, chunk_loss, create_graph):
        """One chunk's loss and gradient at this point (the gradient keeps its graph with ``create_graph``)."""
        with torch.enable_grad():
            value = chunk_loss(self._theta)
            grad = None
            if value.requires_grad:  # else this chunk's loss does not depend on theta
                (grad,) = torch.autograd.grad(value, self._theta, create_graph=create_graph, allow_unused=True)
        return value, torch.zeros_like(self._theta) if grad is None else (grad if create_graph else grad.detach())

    def _accumulate(self, per_chunk):
        """``sum(weight * per_chunk(gradient graph))`` over the chunks, each graph freed before the next."""
        total = torch.zeros_like(self._theta, requires_grad=False)
        for weight, chunk_loss in self._chunks:
            _, grad = self._chunk_gradient(chunk_loss, create_graph=True)
            if grad.requires_grad:  # else the chunk's loss is linear in theta and contributes nothing
                total += weight * per_chunk(grad)
        return total

    @property
    def device(self):
        return self._theta.device

    @property
    def dtype(self):
        return self._theta.dtype

    def matvec(self, v):
        """Return ``H v`` for a vector ``v`` of the same size as ``theta``."""
        self.num_products += 1
        if self._chunks is not None:
            return self._accumulate(lambda grad: self._hv(grad, v))
        if not self._grad.requires_grad:  # the loss is linear: H = 0
            return torch.zeros_like(v)
        return self._hv(self._grad, v)

    __matmul__ = matvec

    def require_at(self, theta):
        """This operator, after checking that it was built at ``theta`` (``ValueError`` if not)."""
        built_at = self._theta.detach()
        if built_at.shape != theta.shape or built_at.dtype != theta.dtype or not torch.equal(built_at, theta.detach()):
            raise ValueError("operator was built at another point than theta: "
                             "build it with HessianOperator(loss, theta)")
        return self

    def third_derivative(self, u, w=None):
        r"""The vector :math:`\nabla^3 L(\theta)[u, w] = \nabla_\theta(u^\top H(\theta) w)`, ``w`` defaulting to ``u``.

        Differentiates this operator's gradient graph twice more (a
        Hessian-vector product that keeps its graph, then the gradient of
        ``u · Hw``), so several third derivatives and products at one point
        share one forward pass. Not counted in ``num_products``.
        """
        if self._caveat:
            warnings.warn(self._caveat, RuntimeWarning, stacklevel=2)
        w = u if w is None else w
        u = u.detach().to(self._theta)
        w = w.detach().to(self._theta)
        if self._chunks is not None:
            return self._accumulate(lambda grad: self._third(grad, u, w))
        if not self._grad.requires_grad:  # the loss is linear
            return torch.zeros_like(self._theta, requires_grad=False)
        return self._third(self._grad, u, w)

    def _hv(self, grad, v):
        """``H v`` from a gradient that keeps its graph."""
        (hv,) = torch.autograd.grad(grad, self._theta, v, retain_graph=self._chunks is None, allow_unused=True)
        return torch.zeros_like(v) if hv is None else hv

    def _third(self, grad, u, w):
        """``∇(u · H w)`` from a gradient that keeps its graph."""
        with torch.enable_grad():
            (hw,) = torch.autograd.grad(grad, self._theta, w, create_graph=True, allow_unused=True)
            if hw is None or not hw.requires_grad:  # the loss is at most quadratic
                return torch.zeros_like(self._theta, requires_grad=False)
            (d3,) = torch.autograd.grad(hw @ u, self._theta, retain_graph=self._chunks is None, allow_unused=True)
        return torch.zeros_like(self._theta, requires_grad=False) if d3 is None else d3.detach()


def _check_operator(operator, theta):
    """``operator``, after checking that it is a :class:`HessianOperator` built at ``theta`` itself."""
    if not isinstance(operator, HessianOperator):
        raise TypeError(f"operator must be a HessianOperator, got {type(operator).__name__}")
    return operator.require_at(theta)


def hvp(loss, theta, v):
    r"""The Hessian-vector product :math:`\nabla^2 L(\theta)\, v`.

    Parameters
    ----------
    loss : callable
        ``loss(theta)`` returning a scalar tensor.
    theta, v : torch.Tensor
        Flat vectors of the same size, dtype and device.

    Examples
    --------
    >>> from eoslab.problems import quadratic
    >>> q = quadratic([3.0, 1.0])
    >>> hvp(q, q.theta0, torch.tensor([1.0, 0.0]))
    tensor([3., 0.])
    """
    check_vector("theta", theta)
    check_vector("v", v, size=theta.numel())
    if v.dtype != theta.dtype or v.device != theta.device:
        raise ValueError(f"v must match theta's dtype and device ({theta.dtype}, {theta.device}), "
                         f"got ({v.dtype}, {v.device})")
    return HessianOperator(loss, theta).matvec(v)


def hessian(loss, theta, *, max_params=20_000):
    """The dense Hessian matrix (for tiny problems and tests).

    Raises ``ValueError`` when ``theta`` has more than ``max_params`` entries,
    since the matrix needs ``P**2`` numbers.
    """
    _check_loss(loss)
    check_like("theta", theta, loss)
    check_finite_vector("theta", theta)
    check_int("max_params", max_params, low=1)
    if theta.numel() > max_params:
        raise ValueError(f"theta has {theta.numel()} entries, more than max_params={max_params}: "
                         "use hvp or top_eigenpairs for large models")
    try:  # all P Hessian-vector products at once, through vmap
        H = torch.autograd.functional.hessian(loss, theta.detach(), vectorize=True)
    except RuntimeError:  # losses that vmap cannot batch
        H = torch.autograd.functional.hessian(loss, theta.detach())
    return 0.5 * (H + H.T)


def third_derivative(loss, theta, u, w=None):
    r"""The vector :math:`\nabla^3 L(\theta)[u, w]`, i.e. :math:`\nabla_\theta\,(u^\top \nabla^2 L(\theta)\, w)`.

    Three nested automatic derivatives: a gradient, a Hessian-vector
    product along ``w`` and the gradient of ``u · (H w)``, so it costs a few
    gradients. ``w`` defaults to ``u``. Several at one point share their
    first two passes through :meth:`HessianOperator.third_derivative`.

    Examples
    --------
    >>> from eoslab.problems import function_problem
    >>> f = function_problem(lambda th: th[0] ** 3 + th[0] * th[1] ** 2, torch.tensor([1.0, 2.0]))
    >>> third_derivative(f, f.theta0, torch.tensor([1.0, 0.0]))  # (∂³f/∂x³, ∂³f/∂x²∂y) = (6, 0)
    tensor([6., 0.])
    """
    _check_loss(loss)
    check_vector("theta", theta)
    check_vector("u", u, size=theta.numel())
    w = u if w is None else check_vector("w", w, size=theta.numel())
    return HessianOperator(loss, theta).third_derivative(u, w)
