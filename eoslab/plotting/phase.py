"""Phase diagrams from sweep tables: a measured quantity over a plane of two parameters, several seeds per cell."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["phase_cells", "plot_phase_plane"]


def _finite(v):
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def phase_cells(rows, x, y, value, *, diverged="diverged_at"):
    """Group rows (one per run, e.g. a sweep table's records) by their ``(x, y)`` parameters.

    Returns ``{(x, y): cell}`` where ``cell`` has ``runs`` (how many), ``diverged`` (how many have a
    ``diverged`` entry that is a number: ``None`` and NaN mean the run did not diverge), ``values`` (the
    finite ``value`` of the runs that did not diverge), ``missing`` (runs that neither diverged nor have a
    finite value: never reached, or not finished), and the ``median``, ``low`` and ``high`` of the values
    (NaN when there are none).

    >>> rows = [{"lr": 0.1, "beta": 0.0, "r": 1.0, "diverged_at": None},
    ...         {"lr": 0.1, "beta": 0.0, "r": 1.2, "diverged_at": None},
    ...         {"lr": 0.2, "beta": 0.0, "r": 5.0, "diverged_at": 40}]
    >>> cells = phase_cells(rows, "lr", "beta", "r")
    >>> cells[(0.1, 0.0)]["median"], cells[(0.2, 0.0)]["diverged"], cells[(0.2, 0.0)]["values"]
    (1.1, 1, [])
    """
    if not isinstance(rows, (list, tuple)) or not rows or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"rows must be a non-empty list of dicts, one per run, got {type(rows).__name__}")
    missing = sorted({k for r in rows for k in (x, y, value) if k not in r})
    if missing:
        raise ValueError(f"rows lack the keys {missing}")
    cells = {}
    for r in rows:
        cell = cells.setdefault((r[x], r[y]), {"runs": 0, "diverged": 0, "missing": 0, "values": []})
        cell["runs"] += 1
        if _finite(r.get(diverged)):
            cell["diverged"] += 1
        elif _finite(r[value]):
            cell["values"].append(float(r[value]))
        else:
            cell["missing"] += 1
    for cell in cells.values():
        v = cell["values"]
        cell.update(median=float(np.median(v)) if v else math.nan, low=min(v) if v else math.nan,
                    high=max(v) if v else math.nan)
    return cells


def plot_phase_plane(rows, *, x="lr", y="beta", value="median_ratio_at_edge", center=1.0, span=0.15, ax=None,
                     title=None, colorbar_label=None, xlabel=None, ylabel=None):
    """A phase diagram: each cell of the ``(x, y)`` grid coloured by the median of ``value`` over its seeds.

    The colour scale is centred on ``center`` (the prediction) and spans ``center ± span``; each cell prints
    its median and, below it, the range over the seeds that did not diverge. A cell where every run diverged
    is grey and marked ×; one where some did says how many, and so does one where some runs have no value.

    Returns
    -------
    matplotlib.figure.Figure
    """
    cells = phase_cells(rows, x, y, value)
    xs, ys = sorted({k[0] for k in cells}), sorted({k[1] for k in cells})
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 0.9 * len(ys) + 1.6), constrained_layout=True)
    else:
        fig = ax.figure
    grid = np.full((len(ys), len(xs)), np.nan)
    for (xv, yv), cell in cells.items():
        grid[ys.index(yv), xs.index(xv)] = cell["median"]
    cmap = plt.get_cmap("PuOr_r").copy()
    cmap.set_bad("0.85")
    image = ax.imshow(np.ma.masked_invalid(grid), origin="lower", aspect="auto", cmap=cmap,
                      vmin=center - span, vmax=center + span)
    for (xv, yv), cell in cells.items():
        i, j = ys.index(yv), xs.index(xv)
        if cell["diverged"] == cell["runs"]:
            ax.text(j, i, "×\ndiverged", ha="center", va="center", fontsize=10, color="0.25")
            continue
        text = f"{cell['median']:.2f}" if cell["values"] else "–"
        if len(cell["values"]) > 1:
            text += f"\n{cell['low']:.2f}–{cell['high']:.2f}"
        if cell["diverged"]:
            text += f"\n{cell['diverged']}/{cell['runs']} diverged"
        if cell["missing"]:
            text += f"\n{cell['missing']}/{cell['runs']} without a value"
        dark = cell["values"] and abs(cell["median"] - center) > 0.7 * span
        ax.text(j, i, text, ha="center", va="center", fontsize=10, color="white" if dark else "black")
    ax.set_xticks(range(len(xs)), [f"{v:g}" for v in xs])
    ax.set_yticks(range(len(ys)), [f"{v:g}" for v in ys])
    ax.set(xlabel=xlabel or x, ylabel=ylabel or y, title=title)
    fig.colorbar(image, ax=ax, label=colorbar_label or value, extend="both")
    return fig
