"""What a run records: :class:`History`, one record for every method."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["History"]


@dataclass
class History:
    """What a run recorded. Arrays are NumPy, ready to plot.

    Attributes
    ----------
    step : ndarray of int
        Steps ``0..T`` at which the loss was recorded (``T`` = last step reached).
    loss : ndarray
        Loss at ``theta_t`` (the mini-batch loss when ``batch_size`` is set).
    grad_norm : ndarray
        ``‖∇L(theta_t)‖`` of the same loss.
    eig_step : ndarray of int
        Steps at which the top Hessian eigenvalues were measured.
    eigenvalues : ndarray, shape (len(eig_step), num_eigs)
        Top eigenvalues of the full-batch Hessian, largest first.
    full_loss : ndarray
        Full-batch loss at ``eig_step`` (equal to ``loss`` there for full-batch runs).
    eig_products : ndarray of int
        Hessian-vector products each measurement used.
    diverged_at : int or None
        The step at which the loss became non-finite or exploded, else ``None``.
    theta : torch.Tensor
        The last finite iterate.
    snapshot_step, snapshots :
        Steps and parameter vectors saved every ``save_every`` steps.
    step_size : ndarray
        The step size of each update (``step_size[t]`` took ``theta_t`` to
        ``theta_{t+1}``): constant for GD, adaptive for :class:`~eoslab.optim.DAL`.
        Empty for flows (their :meth:`~eoslab.methods.Method.step_size` is ``None``).
    state_snapshots : torch.Tensor or None
        The method's :meth:`~eoslab.methods.Method.buffer` at each snapshot
        step (the momentum buffer of :class:`~eoslab.optim.HeavyBall`): the
        ``buffer`` of a momentum-aware :func:`~eoslab.stochastic.batch_sharpness`.
    extras : dict of str -> ndarray
        Per-step quantities particular to a method, such as the Edge Flow's
        oscillation magnitude (see :meth:`eoslab.methods.Method.observe`);
        a tensor-valued quantity is stacked into an array of shape ``(T + 1, P)``.
    measure_step : ndarray of int
        Steps at which the run's ``measures`` were taken (its measurement schedule).
    measured : dict of str -> ndarray
        What each measure returned, one entry per ``measure_step``.
    eigenvectors : torch.Tensor or None
        The top eigenvectors at the last measurement (columns), to warm-start a later solve.
    stopped_at : int or None
        The step at which a ``stop`` condition ended the run early, else ``None``.
    lr, threshold, label :
        The method's step size, stability threshold (``2/η`` for GD) and name.
    """

    step: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    eig_step: np.ndarray
    eigenvalues: np.ndarray
    full_loss: np.ndarray
    eig_products: np.ndarray
    diverged_at: int | None
    theta: torch.Tensor
    lr: float
    threshold: float
    label: str
    problem_name: str = ""
    batch_size: int | None = None
    snapshot_step: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    snapshots: torch.Tensor | None = None
    step_size: np.ndarray = field(default_factory=lambda: np.zeros(0))
    state_snapshots: torch.Tensor | None = None
    extras: dict = field(default_factory=dict)
    measure_step: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    measured: dict = field(default_factory=dict)
    eigenvectors: torch.Tensor | None = None
    stopped_at: int | None = None

    @property
    def sharpness(self):
        """The top eigenvalue at each measurement (empty if none were taken)."""
        if self.eigenvalues.size == 0:
            return np.zeros(0)
        return self.eigenvalues[:, 0]

    @property
    def diverged(self):
        return self.diverged_at is not None

    def summary(self):
        """One line: final loss and sharpness, or where the run diverged."""
        if self.diverged:
            return f"{self.label}: diverged at step {self.diverged_at}"
        text = f"{self.label}: {int(self.step[-1])} steps, final loss {self.loss[-1]:.4g}"
        if self.sharpness.size:
            text += f", sharpness {self.sharpness[-1]:.4g}"
            if math.isfinite(self.threshold):
                text += f" (threshold {self.threshold:.4g})"
        return text

    def __repr__(self):
        return f"<History {self.summary()}>"
