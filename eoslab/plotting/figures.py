"""The book's standard figures, drawn the same way in every chapter."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..thresholds import sgd_momentum_levels
from .style import COLORS, PAGE_WIDTH, STAGE_COLORS

__all__ = ["plot_contour_paths", "plot_eoss", "plot_eoss_phase", "plot_history", "plot_lockstep",
           "plot_two_variable"]


def _records(name, value, attributes, kind):
    """``value`` as a list of records that have ``attributes``; ``TypeError`` naming ``name`` otherwise."""
    items = list(value.values()) if isinstance(value, dict) else list(value) if isinstance(value, (list, tuple)) \
        else [value]
    if not items:
        raise ValueError(f"{name} is empty: pass at least one {kind}")
    for item in items:
        if not all(hasattr(item, a) for a in attributes):
            raise TypeError(f"{name} must be {kind} objects (or a list or dict of them), got {type(item).__name__}")
    return items


def _as_list(histories):
    items = _records("histories", histories, ("loss", "label", "eig_step"), "eoslab History")
    if isinstance(histories, dict):
        return items, list(histories.keys())
    return items, [h.label for h in items]


def _pair(axes):
    """The standard side-by-side pair of axes: ``axes`` if given, else a new figure's."""
    if axes is None:
        return plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.4), constrained_layout=True)
    return axes[0].figure, axes


def _finish_pair(fig, ax_loss, ax_right, right_label, *, title=None, loss_label="training loss"):
    """Axis labels and legends shared by the loss-plus-curvature figures."""
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel(loss_label)
    ax_right.set_xlabel("step")
    ax_right.set_ylabel(right_label)
    ax_loss.legend()
    ax_right.legend()
    if title:
        fig.suptitle(title)
    return fig


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
    fig, axes = _pair(axes)
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
        if np.isfinite(h.threshold):  # adaptive step sizes have no fixed threshold
            ax_sharp.axhline(h.threshold, color=color, ls="--", lw=1)
    if log_loss:
        ax_loss.set_yscale("log")
    ax_sharp.plot([], [], "k--", lw=1, label="stability threshold ($2/\\eta$ for GD)")
    return _finish_pair(fig, ax_loss, ax_sharp, "sharpness  $\\lambda_{\\max}(H)$", title=title)


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
        ax.legend(loc="upper right")
    return ax


def _shade_stages(ax, steps, stage, names):
    """Shade each stretch of constant stage; return legend handles, one per stage present (``names[k]``)."""
    from matplotlib.patches import Patch

    change = np.flatnonzero(np.diff(stage)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(stage)]])
    for a, b in zip(starts, ends):
        right = steps[b] if b < len(steps) else steps[-1] + 1
        ax.axvspan(steps[a], right, color=STAGE_COLORS[int(stage[a])], lw=0, zorder=0)
    return [Patch(color=STAGE_COLORS[k], label=f"{k}: {names[k]}") for k in sorted(set(stage.tolist()))]


def plot_two_variable(traj, *, axes=None, title=None):
    r"""A run of the two-variable model: :math:`|x_t|` (log scale, left) and
    :math:`y_t = S_t - 2/\eta` (right), on the four stages shaded in the background.

    The equilibrium :math:`|x| = \delta = \sqrt{2\alpha/\beta}` and :math:`y = 0`
    are dashed. Returns the figure.
    """
    _records("traj", traj, ("x", "y", "stage", "stage_names"), "TwoVariableTrajectory")
    fig, axes = _pair(axes)
    ax_x, ax_y = axes
    steps = traj.step
    handles = _shade_stages(ax_x, steps, traj.stage, traj.stage_names)
    _shade_stages(ax_y, steps, traj.stage, traj.stage_names)
    ax_x.semilogy(steps, np.abs(traj.x), color="k", lw=1)
    ax_x.axhline(traj.delta, color=COLORS[3], ls="--", lw=1.2, label=r"$\delta = \sqrt{2\alpha/\beta}$")
    ax_x.set(xlabel="step $t$", ylabel="$|x_t|$")
    ax_y.plot(steps, traj.y, color="k", lw=1)
    ax_y.axhline(0.0, color=COLORS[3], ls="--", lw=1.2)
    ax_y.set(xlabel="step $t$", ylabel=r"$y_t = S_t - 2/\eta$")
    ax_x.legend(handles=[*handles, *ax_x.get_legend_handles_labels()[0]], loc="lower right")
    if traj.diverged_at is not None:
        ax_x.set_title(f"diverged at step {traj.diverged_at}", color="#b00")
    if title:
        fig.suptitle(title)
    return fig


def plot_lockstep(lock, *, axes=None, title=None, stop=None):
    r"""GD, gradient flow, the constrained trajectory and the predicted dynamics side by side.

    Four panels, from a :class:`~eoslab.self_stabilization.Lockstep`: (a)
    the oscillation :math:`|x_t|` of GD and of the prediction, with
    :math:`\delta_t`; (b) the sharpness of all four, with :math:`2/\eta`;
    (c) the loss of all four; (d) the distance from GD to the constrained
    trajectory and to gradient flow. ``stop`` limits the steps drawn.
    Returns the figure.
    """
    _records("lock", lock, ("gd_x", "pred_x", "delta", "gd_sharpness"), "Lockstep")
    if axes is None:
        fig, axes = plt.subplots(2, 2, figsize=(PAGE_WIDTH, 5.6), constrained_layout=True)
        axes = axes.ravel()
    else:
        fig = axes[0].figure
    ax_x, ax_s, ax_l, ax_d = axes
    n = len(lock.step) if stop is None else min(int(stop) + 1, len(lock.step))
    t = lock.step[:n]
    gd, pred, dag, gf = COLORS[0], COLORS[1], "k", COLORS[2]
    ax_x.semilogy(t, np.abs(lock.gd_x[:n]), color=gd, lw=1.2, label="GD")
    ax_x.semilogy(t, np.abs(lock.pred_x[:n]), color=pred, lw=1.2, ls="--", label="predicted")
    ax_x.semilogy(t, lock.delta[:n], color=COLORS[3], lw=1, ls=":", label=r"$\delta_t$")
    ax_x.set(xlabel="step after the edge", ylabel=r"$|x_t| = |u^\dagger\cdot(\theta_t - \theta_t^\dagger)|$",
             title="(a) oscillation along the top eigenvector")
    ax_s.plot(t, lock.gd_sharpness[:n], color=gd, lw=1.2, label="GD")
    ax_s.plot(t, lock.pred_sharpness[:n], color=pred, lw=1.2, ls="--", label="predicted")
    ax_s.plot(t, lock.dagger_sharpness[:n], color=dag, lw=1, label=r"constrained $\theta^\dagger$")
    if np.isfinite(lock.gf_sharpness).any():
        ax_s.plot(t, lock.gf_sharpness[:n], color=gf, lw=1, alpha=0.8, label="gradient flow")
    ax_s.axhline(lock.threshold, color="0.5", ls="--", lw=1, label=r"$2/\eta$")
    ax_s.set(xlabel="step after the edge", ylabel="sharpness", title="(b) sharpness")
    ax_l.plot(t, lock.gd_loss[:n], color=gd, lw=1.2, label="GD")
    ax_l.plot(t, lock.pred_loss[:n], color=pred, lw=1.2, ls="--", label="predicted")
    ax_l.plot(t, lock.dagger_loss[:n], color=dag, lw=1, label=r"constrained $\theta^\dagger$")
    if np.isfinite(lock.gf_loss).any():
        ax_l.plot(t, lock.gf_loss[:n], color=gf, lw=1, alpha=0.8, label="gradient flow")
    ax_l.set(xlabel="step after the edge", ylabel="training loss", title="(c) loss")
    ax_d.semilogy(t, lock.gd_dist[:n], color=dag, lw=1.2, label=r"$\|\theta_t - \theta_t^\dagger\|$")
    if np.isfinite(lock.gd_gf_dist).any():
        ax_d.semilogy(t, np.maximum(lock.gd_gf_dist[:n], 1e-12), color=gf, lw=1.2,
                      label=r"$\|\theta_t - \theta^{\mathrm{GF}}_t\|$")
    ax_d.set(xlabel="step after the edge", ylabel="distance from GD", title="(d) where GD is")
    for ax in axes:
        ax.legend()
    if lock.diverged_at is not None:
        ax_x.set_title(f"diverged at step {lock.diverged_at}", color="#b00")
    if title:
        fig.suptitle(title)
    return fig


def plot_eoss(runs, *, axes=None, title=None):
    """Batch sharpness along SGD runs: full-batch loss (left); batch sharpness and λ_max (right).

    For each :class:`~eoslab.stochastic.EossRun`, batch sharpness is the solid
    line with dots and the full-batch :math:`\\lambda_{\\max}` the dashed line, in
    the run's colour; the predicted levels are thin horizontal lines in the
    same colour: :math:`2/\\eta` (dotted) for plain SGD, and with momentum
    :math:`2(1-\\beta)/\\eta` (dotted) and :math:`2(1+\\beta)/\\eta` (dash-dot).
    The left legend names the runs (a diverged run says so there); the right
    one keys the line styles.

    Parameters
    ----------
    runs : EossRun or list of EossRun
    axes : pair of matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    _records("runs", runs, ("history", "batch_sharpness", "levels"), "EossRun")
    runs = list(runs) if isinstance(runs, (list, tuple)) else [runs]
    fig, axes = _pair(axes)
    ax_loss, ax_bs = axes
    for i, r in enumerate(runs):
        color = COLORS[i % len(COLORS)]
        h = r.history
        label = r.label if r.diverged_at is None else f"{r.label} (diverged at step {r.diverged_at})"
        if h.eig_step.size:
            ax_loss.plot(h.eig_step, h.full_loss, color=color, marker=".", lw=1.2, label=label)
        ax_bs.plot(r.step, r.batch_sharpness, color=color, marker="o", ms=3, lw=1.4)
        ax_bs.plot(r.step, r.lambda_max, color=color, ls="--", lw=1.2)
        if r.beta == 0:
            ax_bs.axhline(r.levels.plain, color=color, ls=":", lw=1.2)
        else:
            ax_bs.axhline(r.levels.small, color=color, ls=":", lw=1.2)
            ax_bs.axhline(r.levels.large, color=color, ls="-.", lw=1.0)
    ax_loss.set_yscale("log")
    # the right panel's legend keys the line styles; the left one names the runs (same colours)
    ax_bs.plot([], [], "k-", marker="o", ms=3, lw=1.4, label="batch sharpness")
    ax_bs.plot([], [], "k--", lw=1.2, label="$\\lambda_{\\max}$, full batch")
    ax_bs.plot([], [], "k:", lw=1.2, label="$2/\\eta$ or $2(1-\\beta)/\\eta$")
    if any(r.beta > 0 for r in runs):
        ax_bs.plot([], [], "k-.", lw=1.0, label="$2(1+\\beta)/\\eta$")
    return _finish_pair(fig, ax_loss, ax_bs, "curvature", title=title, loss_label="full-batch training loss")


def plot_eoss_phase(rows, *, ax=None, title=None):
    """The phase picture: plateau of batch sharpness (in units of ``2/η``) against batch size.

    ``rows`` are the dicts of :func:`eoslab.stochastic.plateau_table` (or
    the stored ``eoss_phase.json``). Runs are grouped by ``(beta, lr)``; each
    group is a line, with its two predicted levels ``1-β`` (dotted) and
    ``1+β`` (dash-dot) in its colour. Full batch is drawn at the right end;
    diverged runs are crosses on the top edge, and runs that did not train
    (``trained`` false) are hollow circles.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(rows, (list, tuple)) or not all(isinstance(r, dict) for r in rows):
        raise TypeError(f"rows must be a list of dicts (plateau_table's rows), got {type(rows).__name__}")
    needed = ("beta", "lr", "batch_size", "batch_sharpness")
    missing = sorted({k for r in rows for k in needed if k not in r})
    if missing:
        raise ValueError(f"rows lack the keys {missing}: pass plateau_table's rows")
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 5), constrained_layout=True)
    else:
        fig = ax.figure
    groups = {}
    for row in rows:
        groups.setdefault((row["beta"], row["lr"]), []).append(row)
    top = max([sgd_momentum_levels(lr, b)[1] * lr / 2 for b, lr in groups] + [1.0]) * 1.15
    for i, ((beta, lr), group) in enumerate(groups.items()):
        small, large = (level * lr / 2 for level in sgd_momentum_levels(lr, beta))  # in units of 2/η
        color = COLORS[i % len(COLORS)]
        group = sorted(group, key=lambda r: r["batch_size"])
        x = np.array([r["batch_size"] for r in group], dtype=float)
        y = np.array([r["batch_sharpness"] * lr / 2 for r in group], dtype=float)
        ok = np.isfinite(y)
        stuck = ok & ~np.array([r.get("trained", True) for r in group])
        good = ok & ~stuck
        ax.plot(x[good], y[good], marker="o", color=color, lw=1.4, label=f"β = {beta:g}, η = {lr:g}")
        if stuck.any():  # the run never trained: its "plateau" is that of a collapsed network
            ax.plot(x[stuck], y[stuck], "o", ms=9, mfc="white", mec=color, mew=1.5)
        if (~ok).any():
            ax.plot(x[~ok], np.full((~ok).sum(), top * 0.97), "x", color=color, ms=8, mew=2)
        ax.axhline(small, color=color, ls=":", lw=1.1)
        if beta > 0:
            ax.axhline(large, color=color, ls="-.", lw=1.0)
    full = [r["batch_size"] for r in rows if r.get("full_batch")]
    ax.set_xscale("log", base=2)
    ticks = sorted({r["batch_size"] for r in rows})
    ax.set_xticks(ticks)
    ax.set_xticklabels(["full" if t in full else str(t) for t in ticks])
    ax.set_ylim(0, top)
    ax.set_xlabel("batch size")
    ax.set_ylabel("batch-sharpness plateau  × η/2")
    ax.plot([], [], "k:", lw=1.1, label="predicted $1-\\beta$ (small batch)")
    ax.plot([], [], "k-.", lw=1.0, label="predicted $1+\\beta$ (large batch)")
    ax.plot([], [], "kx", ms=8, mew=2, label="diverged")
    ax.plot([], [], "o", ms=9, mfc="white", mec="k", mew=1.5, label="did not train")
    ax.legend(ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    if title:
        ax.set_title(title)
    return fig
