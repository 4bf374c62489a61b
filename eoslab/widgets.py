"""Slider panels that re-run an experiment and redraw its figure.

The sliders use ``continuous_update=False``: the experiment re-runs when a
slider is released, not on every pixel of the drag. A run that diverges
shows "diverged at step k" above its (partial) figure; an invalid setting
shows the error message; neither shows a traceback.
"""
from __future__ import annotations

import html

import ipywidgets as widgets
import matplotlib.pyplot as plt

from .plotting import plot_history

__all__ = ["slider", "slider_panel"]


def slider(value, low, high, step, description=None, *, readout_format=None):
    """A float (or int, if every bound is an int) slider that updates on release.

    Float sliders show as many decimals as ``step`` has (``0.0005`` shows 4),
    unless ``readout_format`` says otherwise.
    """
    is_int = all(isinstance(v, int) and not isinstance(v, bool) for v in (value, low, high, step))
    cls = widgets.IntSlider if is_int else widgets.FloatSlider
    kwargs = dict(value=value, min=low, max=high, step=step, description=description or "",
                  continuous_update=False, style={"description_width": "initial"},
                  layout=widgets.Layout(width="420px"))
    if not is_int:
        kwargs["readout_format"] = readout_format or f".{_decimals(step)}f"
    return cls(**kwargs)


def _decimals(step):
    """Decimals needed to show multiples of ``step`` (at least 2)."""
    text = f"{step:.10f}".rstrip("0")
    return max(2, len(text.split(".")[1]) if "." in text else 0)


def _diverged_steps(result):
    items = result.values() if isinstance(result, dict) else result if isinstance(result, (list, tuple)) else [result]
    return [(getattr(h, "label", "run"), h.diverged_at) for h in items if getattr(h, "diverged_at", None) is not None]


def slider_panel(experiment, *, plot=None, **sliders):
    """A panel of sliders that re-runs ``experiment`` and redraws its figure.

    Parameters
    ----------
    experiment : callable
        Called as ``experiment(**values)`` with the sliders' current values;
        returns a :class:`~eoslab.runs.History`, a list or dict of them, or
        anything ``plot`` can draw.
    plot : callable, optional
        ``plot(result, values)`` draws a figure (default:
        :func:`~eoslab.plotting.plot_history` of the result).
    **sliders :
        ``name=(value, min, max, step)`` tuples or ready-made widgets; the
        names are the keyword arguments of ``experiment``.

    Returns
    -------
    ipywidgets.VBox
        Display it (it is the cell's value) to use it.

    Examples
    --------
    >>> from eoslab import run, problems, optim
    >>> panel = slider_panel(  # doctest: +SKIP
    ...     lambda lr: run(problems.quadratic([1.0]), optim.GD(lr), 50, progress=False),
    ...     lr=(0.5, 0.1, 2.5, 0.05))
    >>> panel  # doctest: +SKIP
    """
    if not callable(experiment):
        raise TypeError(f"experiment must be callable, got {type(experiment).__name__}")
    if not sliders:
        raise ValueError("slider_panel needs at least one slider, e.g. lr=(0.1, 0.01, 1.0, 0.01)")
    controls = {}
    for name, spec in sliders.items():
        if isinstance(spec, widgets.Widget):
            controls[name] = spec
        elif isinstance(spec, tuple) and len(spec) == 4:
            controls[name] = slider(*spec, description=name)
        else:
            raise ValueError(f"slider {name!r} must be a (value, min, max, step) tuple or a widget, got {spec!r}")
    status = widgets.HTML()
    output = widgets.Output()
    draw = plot or (lambda result, values: plot_history(result))

    def refresh(_=None):
        values = {name: control.value for name, control in controls.items()}
        with output:
            output.clear_output(wait=True)
            try:
                result = experiment(**values)
            except (ValueError, TypeError) as error:
                status.value = f"<b style='color:#b00'>Invalid setting:</b> {html.escape(str(error))}"
                return
            diverged = _diverged_steps(result)
            if diverged:
                status.value = "<b style='color:#b00'>" + "; ".join(
                    html.escape(f"{label} diverged at step {k}") for label, k in diverged) + "</b>"
            else:
                status.value = ""
            draw(result, values)
            plt.show()

    for control in controls.values():
        control.observe(refresh, names="value")
    refresh()
    return widgets.VBox([*controls.values(), status, output])

