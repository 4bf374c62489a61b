r"""Batch sharpness: the curvature a mini-batch step feels along its own direction (Chapter 7)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .._validation import check_beta, check_int, check_real, check_vector
from ..curvature import HessianOperator

__all__ = ["BatchSharpness", "batch_sharpness"]


@dataclass
class BatchSharpness:
    """Result of :func:`batch_sharpness`.

    Attributes
    ----------
    value : float
        The Monte Carlo estimate.
    stderr : float
        Its standard error.
    num_batches : int
        Batches drawn.
    samples : torch.Tensor
        The per-batch ratios.
    """

    value: float
    stderr: float
    num_batches: int
    samples: torch.Tensor

    def __float__(self):
        return self.value


def batch_sharpness(problem, theta, batch_size, *, buffer=None, beta=0.0, rtol=0.02, min_batches=10,
                    max_batches=1000, seed=0):
    r"""The batch sharpness :math:`\mathrm{BS}(\theta) = \mathbb{E}_B\!\left[\frac{g_B^\top H_B\, g_B}{\|g_B\|^2}\right]`.

    The curvature that a mini-batch step feels along its own direction
    (Andreyev and Beneventano), with :math:`g_B = \nabla L_B(\theta)` and
    :math:`H_B = \nabla^2 L_B(\theta)` for a batch ``B`` of ``batch_size``
    distinct examples; the expectation is *outside* the ratio. It is
    estimated by Monte Carlo over fresh batches, stopping once the standard
    error is below ``rtol`` times the estimate (after ``min_batches``), or at
    ``max_batches``.

    With a momentum ``buffer`` :math:`m` and its coefficient ``beta``, the
    momentum-aware variant is computed instead: the step that heavy ball
    (PyTorch convention) takes from :math:`\theta` with batch ``B`` is along
    :math:`s_B = g_B + \beta m`, and

    .. math:: \mathrm{BS}_\beta = \mathbb{E}_B\!\left[\frac{s_B^\top H_B\, s_B}{s_B^\top g_B}\right],

    the curvature along the step measured against the gradient's component
    along it (it reduces to the plain definition at ``beta = 0``).

    Parameters
    ----------
    problem : Problem
        Needs ``num_examples`` and ``loss(theta, batch_indices)``.
    theta : torch.Tensor
    batch_size : int
        In ``[1, problem.num_examples]``.
    buffer : torch.Tensor, optional
        The momentum buffer :math:`m` at ``theta`` (``History.state_snapshots``).
    beta : float
        The momentum coefficient, in [0, 1).
    rtol : float
        Target relative standard error, in (0, 1).
    min_batches, max_batches : int
    seed : int
        Seeds the batch draws.

    Returns
    -------
    BatchSharpness

    Examples
    --------
    >>> from eoslab.problems import quadratic
    >>> q = quadratic([3.0, 1.0], theta0=[1.0, 0.0])   # one example: every batch is the full loss
    >>> round(batch_sharpness(q, q.theta0, 1).value, 6)
    3.0
    """
    check_vector("theta", theta)
    if not hasattr(problem, "num_examples") or not hasattr(problem, "loss"):
        raise TypeError(f"problem must be an eoslab Problem (with examples and a batch loss), "
                        f"got {type(problem).__name__}")
    n = check_int("problem.num_examples", problem.num_examples, low=1)
    batch_size = check_int("batch_size", batch_size, low=1, high=n)
    rtol = check_real("rtol", rtol, low=0.0, high=1.0, low_open=True, high_open=True)
    min_batches = check_int("min_batches", min_batches, low=2)
    max_batches = check_int("max_batches", max_batches, low=min_batches)
    beta = check_beta("beta", beta)
    if buffer is not None:
        check_vector("buffer", buffer, size=theta.numel())
        buffer = buffer.detach().to(theta)
    generator = torch.Generator().manual_seed(check_int("seed", seed))
    samples = []
    value = stderr = float("nan")
    for k in range(max_batches):
        batch = torch.randperm(n, generator=generator)[:batch_size].to(theta.device)
        op = HessianOperator(problem.batch_loss(batch), theta)
        g = op.gradient
        step = g if buffer is None else g + beta * buffer
        denominator = float(step @ g)
        numerator = float(step @ op.matvec(step)) if denominator != 0 else 0.0
        if denominator == 0.0:
            continue  # a batch with zero gradient (along the direction) carries no curvature information
        samples.append(numerator / denominator)
        m = len(samples)
        if m >= 2:
            t = torch.tensor(samples, dtype=torch.float64)
            value = float(t.mean())
            stderr = float(t.std() / m**0.5)
            if m >= min_batches and stderr <= rtol * abs(value):
                break
    if not samples:
        raise ValueError("every batch had a zero gradient: batch sharpness is undefined at this point")
    if len(samples) == 1:
        value, stderr = samples[0], float("nan")
    return BatchSharpness(value, stderr, len(samples), torch.tensor(samples, dtype=torch.float64))
