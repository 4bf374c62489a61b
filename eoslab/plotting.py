"""The book's standard figures, drawn the same way in every chapter."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["plot_history", "plot_contour_paths", "COLORS"]

COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def _as_list(histories):
    if isinstance(histories, dict):
        return list(histories.values()), list(histories.keys())
    if not isinstance(histories, (list, tuple)):
        histories = [histories]
    return list(histories), [h.label for h in histories]


def plot_history(histories, *, labels=None, all_eigenvalues=False, log_loss=True, axes=None, title=None):
    """The standard Edge of Stability figure: loss (left) and sharpness (right).

    Each run's sharpness is drawn with its stability threshold (``2/η`` for
    GD) as a dashed line in the same colour. A run that diverged ends with a
    cross and says so in the legend.

    Parameters
    ----------
    histories : History, list of History, or dict label -> History
    labels : list of str, optional
        Legend entries (default: each run's optimizer label, or the dict keys).
    all_eigenvalues : bool
        Draw every tracked eigenvalue, not only the top one.
    log_loss : bool
        Logarithmic loss axis.
    axes : pair of matplotlib Axes, optional
        Draw into these instead of a new figure.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    runs, default_labels = _as_list(histories)
    labels = default_labels if labels is None else list(labels)
    if len(labels) != len(runs):
        raise ValueError(f"labels must have one entry per history ({len(runs)}), got {len(labels)}")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    else:
        fig = axes[0].figure
    ax_loss, ax_sharp = axes
    for i, (h, label) in enumerate(zip(runs, labels)):
        color = COLORS[i % len(COLORS)]
        text = label if not h.diverged else f"{label} (diverged at step {h.diverged_at})"
        ax_loss.plot(h.step, h.loss, color=color, lw=1.2, label=text)
        if h.diverged and h.step.size:
            ax_loss.plot(h.step[-1], h.loss[-1], "x", color=color, ms=8, mew=2)
        if h.eigenvalues.size:
            eigs = h.eigenvalues if all_eigenvalues else h.eigenvalues[:, :1]
            for j in range(eigs.shape[1]):
                ax_sharp.plot(h.eig_step, eigs[:, j], color=color, lw=1.4 if j == 0 else 0.9,
                              marker="o" if len(h.eig_step) < 3 else None,  # keep short runs visible
                              alpha=1.0 if j == 0 else 0.55, label=label if j == 0 else None)
        ax_sharp.axhline(h.threshold, color=color, ls="--", lw=1)
    if log_loss:
        ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss")
    ax_sharp.set_xlabel("step")
    ax_sharp.set_ylabel("sharpness  $\\lambda_{\\max}(H)$")
    ax_sharp.plot([], [], "k--", lw=1, label="stability threshold ($2/\\eta$ for GD)")
    ax_loss.legend(fontsize=8)
    ax_sharp.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_contour_paths(loss, paths, *, xlim, ylim, ax=None, levels=20, labels=None, minimum=None, resolution=200):
    """Level sets of a two-parameter loss with optimizer paths drawn on top.

    Parameters
    ----------
    loss : callable
        ``loss(theta)`` for a 2-vector ``theta`` (a 2-D problem works). It is
        first tried on the whole ``(N, 2)`` grid at once through
        ``torch.func.vmap``, and evaluated point by point only if that fails.
    paths : array-like of shape (T, 2), or a list / dict of them
    xlim, ylim : (float, float)
    minimum : (float, float), optional
        A minimizer to mark with a star.
    resolution : int
        Grid points per axis.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4), constrained_layout=True)
    xs = np.linspace(*xlim, resolution)
    ys = np.linspace(*ylim, resolution)
    X, Y = np.meshgrid(xs, ys)
    grid = torch.tensor(np.stack([X.ravel(), Y.ravel()], axis=1), dtype=torch.float64)
    with torch.no_grad():
        try:
            Z = torch.func.vmap(loss)(grid).numpy().reshape(X.shape)
        except Exception:  # losses that vmap cannot batch
            Z = np.array([float(loss(p)) for p in grid]).reshape(X.shape)
    ax.contour(X, Y, Z, levels=levels, colors="0.75", linewidths=0.7)
    if isinstance(paths, dict):
        labels, paths = list(paths.keys()), list(paths.values())
    elif not isinstance(paths, (list, tuple)) or np.ndim(paths[0]) == 1:
        paths = [paths]
    labels = labels or [None] * len(paths)
    for i, (path, label) in enumerate(zip(paths, labels)):
        path = np.asarray(path, dtype=float)
        ax.plot(path[:, 0], path[:, 1], "o-", ms=2.5, lw=0.9, color=COLORS[i % len(COLORS)], label=label)
    if minimum is not None:
        ax.plot(*minimum, "k*", ms=9)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel("$\\theta_1$")
    ax.set_ylabel("$\\theta_2$")
    if any(labels):
        ax.legend(fontsize=8, loc="upper right")
    return ax
