"""What a run records: :class:`History`, one record for every method."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

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
    interrupted : bool
        Whether the run was interrupted (Ctrl-C): what it holds is what was
        recorded until then (see :func:`eoslab.run`'s ``checkpoint`` to resume).
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
    interrupted: bool = False

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
        if self.loss.size == 0:
            return f"{self.label}: nothing recorded" + (" (interrupted)" if self.interrupted else "")
        text = f"{self.label}: {int(self.step[-1])} steps, final loss {self.loss[-1]:.4g}"
        if self.interrupted:
            text += " (interrupted)"
        if self.sharpness.size:
            text += f", sharpness {self.sharpness[-1]:.4g}"
            if math.isfinite(self.threshold):
                text += f" (threshold {self.threshold:.4g})"
        return text

    def __repr__(self):
        return f"<History {self.summary()}>"

    def save(self, path, *, attributes=None):
        """Write the history to ``path`` (``.npz`` is added if missing); :meth:`load` reads it back exactly.

        The format is an ordinary NumPy ``.npz`` archive, readable without
        eoslab (``numpy.load(path)``, no pickling): one array per field
        (tensors as arrays of their dtype, ``extras`` and ``measured`` as
        ``extras/NAME`` and ``measured/NAME``), and ``metadata``, a JSON string
        with the fields that are not arrays (label, problem name, the steps at
        which the run diverged or stopped, ``null`` where absent) and the
        names of the fields that were tensors or ``None``. ``attributes``, a
        dict of JSON values, is kept in the metadata too (a record built on the
        history, such as :class:`~eoslab.stochastic.EossRun`, stores its
        setting there); :meth:`load_attributes` reads it back.

        Returns the path written.

        Examples
        --------
        >>> import tempfile, eoslab
        >>> h = eoslab.run(eoslab.problems.quadratic([2.0]), eoslab.optim.GD(0.1), 5, progress=False)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     back = History.load(h.save(d + "/run"))
        >>> back.loss.tolist() == h.loss.tolist() and back.label == h.label
        True
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        arrays, meta = {}, {"format": "eoslab.History", "version": 1, "tensors": [], "none": []}
        if attributes is not None:
            if not isinstance(attributes, dict):
                raise TypeError(f"attributes must be a dict of JSON values, got {type(attributes).__name__}")
            try:
                json.dumps(attributes, allow_nan=True)
            except (TypeError, ValueError) as e:
                raise ValueError(f"attributes must hold JSON values only: {e}") from None
            meta["attributes"] = attributes
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("extras", "measured"):
                meta[f.name] = sorted(value)
                for key, v in value.items():
                    arrays[f"{f.name}/{key}"] = np.asarray(v)
            elif value is None:
                meta["none"].append(f.name)
            elif isinstance(value, torch.Tensor):
                meta["tensors"].append(f.name)
                arrays[f.name] = value.detach().cpu().numpy()
            elif isinstance(value, np.ndarray):
                arrays[f.name] = value
            elif isinstance(value, float):  # lr, threshold: as float64 arrays, exact (NaN included)
                arrays[f.name] = np.float64(value)
            else:
                meta[f.name] = value
        np.savez(path, metadata=np.array(json.dumps(meta)), **arrays)
        return path

    @staticmethod
    def _metadata(path, data):
        meta = json.loads(str(data["metadata"])) if "metadata" in data.files else {}
        if meta.get("format") != "eoslab.History":
            raise ValueError(f"{path} is not a saved eoslab History (no eoslab metadata)")
        return meta

    @classmethod
    def load_attributes(cls, path):
        """The ``attributes`` saved with a history (an empty dict if none were)."""
        with np.load(path, allow_pickle=False) as data:
            return cls._metadata(path, data).get("attributes", {})

    @classmethod
    def load(cls, path):
        """Read a history written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            meta = cls._metadata(path, data)
            values = {}
            for f in fields(cls):
                name = f.name
                if name in ("extras", "measured"):
                    values[name] = {key: data[f"{name}/{key}"] for key in meta[name]}
                elif name in meta["none"]:
                    values[name] = None
                elif name in meta["tensors"]:
                    values[name] = torch.from_numpy(data[name].copy())
                elif name in data.files:
                    values[name] = float(data[name]) if data[name].ndim == 0 else data[name]
                elif name in meta:
                    values[name] = meta[name]
        return cls(**values)
