"""Slider panels: live ones that re-run an experiment, and static ones precomputed on a grid.

:func:`slider_panel` needs a running kernel. Its sliders use
``continuous_update=False``: the experiment re-runs when a slider is
released, not on every pixel of the drag. A run that diverges shows
"diverged at step k" above its (partial) figure; an invalid setting shows
the error message; neither shows a traceback.

:func:`static_panel` runs the same experiment on a grid of slider values
ahead of time and draws every figure. Its output is plain HTML with a few
lines of JavaScript that swap the pictures, so its sliders also work on the
published web site, where there is no kernel.

One experiment has one set of controls in each place: a live panel given a
``grid`` carries its precomputed twin as the HTML form of its output. A
notebook front end (JupyterLab, Binder, Colab) shows the live panel; the
book's web pages, which leave live widgets out (``_config.yml``), show the
twin. The twin is computed when ``$EOSLAB_STATIC_PANELS`` is set (the book's
builds set it), so a live session does not pay for it.
"""
from __future__ import annotations

import base64
import hashlib
import html
import itertools
import json
import math
import os

import ipywidgets as widgets
import matplotlib.pyplot as plt

from ._validation import check_real
from .plotting import figure_png, plot_history

__all__ = ["SliderPanel", "StaticPanel", "slider", "slider_panel", "static_panel"]


def slider(value, low, high, step, description=None, *, readout_format=None):
    """A float (or int, if every bound is an int) slider that updates on release.

    Float sliders show as many decimals as ``step`` has (``0.0005`` shows 4),
    unless ``readout_format`` says otherwise.
    """
    for name, v in (("value", value), ("low", low), ("high", high), ("step", step)):
        check_real(name, v)
    if not low < high:
        raise ValueError(f"low must be below high, got low={low!r}, high={high!r}")
    if not low <= value <= high:
        raise ValueError(f"value must be in [{low}, {high}] (the slider's range), got {value!r}")
    if not 0 < step <= high - low:
        raise ValueError(f"step must be in (0, {high - low}] (the slider's range), got {step!r}")
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


def _draw_history(result, values):
    """The default figure of a panel: :func:`~eoslab.plotting.plot_history` of the result."""
    plot_history(result)


def _key(indices):
    """A static panel's frame key: the sliders' grid indices, comma-separated."""
    return ",".join(map(str, indices))


def _status(result):
    """The line shown above a figure: which runs diverged, and where."""
    return "; ".join(f"{label} diverged at step {k}" for label, k in _diverged_steps(result))


def slider_panel(experiment, *, plot=None, grid=None, static=None, **sliders):
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
    grid : dict, optional
        ``{name: [values...]}`` for every slider: the grid of the panel's
        precomputed twin (:func:`static_panel`), which web pages show in its
        place. It starts where the sliders start, or, for a slider whose
        value is not on its grid, at the grid's middle.
    static : bool, optional
        Compute the twin now. Default: when ``$EOSLAB_STATIC_PANELS`` is set
        to anything but ``0`` (the book's builds set it); a live session
        skips the work.
    **sliders :
        ``name=(value, min, max, step)`` tuples or ready-made widgets; the
        names are the keyword arguments of ``experiment``.

    Returns
    -------
    SliderPanel
        An ``ipywidgets.VBox``: display it (it is the cell's value) to use it.

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
    draw = plot or _draw_history

    def refresh(_=None):
        values = {name: control.value for name, control in controls.items()}
        with output:
            output.clear_output(wait=True)
            try:
                result = experiment(**values)
            except (ValueError, TypeError) as error:
                status.value = f"<b style='color:#b00'>Invalid setting:</b> {html.escape(str(error))}"
                return
            message = _status(result)
            status.value = f"<b style='color:#b00'>{html.escape(message)}</b>" if message else ""
            draw(result, values)
            plt.show()

    if grid is not None:
        if not isinstance(grid, dict) or sorted(grid) != sorted(controls):
            raise ValueError(f"grid must be a dict with one list of values per slider ({sorted(controls)}), "
                             f"got {grid!r}")
    if static is None:
        static = os.environ.get("EOSLAB_STATIC_PANELS", "0") not in ("", "0")
    twin = None
    if grid is not None and static:
        start = {n: c.value for n, c in controls.items() if c.value in list(grid[n])}
        twin = static_panel(experiment, plot=plot, labels={n: c.description or n for n, c in controls.items()},
                            initial=start, **grid)
    for control in controls.values():
        control.observe(refresh, names="value")
    refresh()
    return SliderPanel([*controls.values(), status, output], twin=twin)


#: What a web page shows for a live panel without a precomputed twin.
LIVE_ONLY = ('<div class="eoslab-live-only" style="font-size:85%;color:#555;border-left:3px solid #ccc;'
             'padding-left:8px">A live panel: open this chapter as a notebook (the rocket button at the top of '
             'the page: Binder or Colab) to move its sliders.</div>')


class SliderPanel(widgets.VBox):
    """A live panel (:func:`slider_panel`) with its precomputed twin, if any, as the HTML form of its output.

    Notebook front ends render the live widget; a page that does not render
    widgets (the book's web site) renders :attr:`twin`, or a line saying the
    panel needs a kernel.
    """

    def __init__(self, children, *, twin=None):
        super().__init__(children)
        self.twin = twin

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        bundle["text/html"] = self.twin._repr_html_() if self.twin is not None else LIVE_ONLY
        return bundle


MAX_FRAMES = 200


class StaticPanel:
    """Precomputed slider figures, shown as HTML that needs no kernel (see :func:`static_panel`).

    Attributes
    ----------
    names : list of str
        The experiment's keyword arguments, one slider each.
    values : list of list
        Each slider's grid of values.
    frames : dict
        ``"i,j,..."`` (indices into ``values``) -> ``{"png": base64 or None, "status": str}``.
    initial : tuple of int
        The indices shown first.
    """

    def __init__(self, names, descriptions, values, frames, initial):
        self.names, self.descriptions, self.values = names, descriptions, values
        self.frames, self.initial = frames, initial

    @property
    def nbytes(self):
        """Size of the HTML, in bytes."""
        return len(self._repr_html_().encode())

    def frame(self, **setting):
        """The frame for one setting (every slider's value given)."""
        return self.frames[_key(self.values[i].index(setting[name]) for i, name in enumerate(self.names))]

    def _repr_html_(self):
        payload = {"frames": self.frames, "labels": {n: [f"{v:g}" if isinstance(v, float) else str(v) for v in vals]
                                                     for n, vals in zip(self.names, self.values)}}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        uid = "eoslab-static-" + hashlib.sha1(text.encode()).hexdigest()[:12]
        first = self.frames[_key(self.initial)]
        safe = text.replace("</", "<\\/")  # keeps the JSON from closing its script tag
        rows = []
        for name, description, vals, k in zip(self.names, self.descriptions, self.values, self.initial):
            label = payload["labels"][name][k]
            rows.append(
                f'<label style="display:block;margin:2px 0">{html.escape(description)} '
                f'<input type="range" min="0" max="{len(vals) - 1}" step="1" value="{k}" data-param="{name}" '
                f'style="vertical-align:middle;width:260px"> <output>{html.escape(label)}</output></label>')
        image = (f'<img alt="precomputed figure" style="max-width:100%" src="data:image/png;base64,{first["png"]}">'
                 if first["png"] else '<img alt="precomputed figure" style="max-width:100%;display:none">')
        script = f"""(function () {{
  var root = document.getElementById("{uid}");
  var data = JSON.parse(root.querySelector("script.eoslab-frames").textContent);
  var inputs = Array.prototype.slice.call(root.querySelectorAll("input[type=range]"));
  function show() {{
    var key = inputs.map(function (i) {{ return i.value; }}).join(",");
    inputs.forEach(function (i) {{ i.nextElementSibling.textContent = data.labels[i.dataset.param][i.value]; }});
    var frame = data.frames[key], img = root.querySelector("img");
    if (frame.png) {{ img.src = "data:image/png;base64," + frame.png; img.style.display = ""; }}
    else {{ img.style.display = "none"; }}
    root.querySelector(".eoslab-status").textContent = frame.status;
  }}
  inputs.forEach(function (i) {{ i.addEventListener("input", show); }});
}})();"""
        return (f'<div class="eoslab-static-panel" id="{uid}">'
                f'<div style="font-size:85%;color:#555">Precomputed on a grid: these sliders work in this page. '
                f'For other values, open the chapter live (the rocket button at the top of the page).</div>{"".join(rows)}'
                f'<div class="eoslab-status" style="color:#b00;font-weight:bold">{html.escape(first["status"])}</div>'
                f'{image}<script type="application/json" class="eoslab-frames">{safe}</script>'
                f'<script>{script}</script></div>')

    def __repr__(self):
        return f"<StaticPanel {' x '.join(f'{n} ({len(v)})' for n, v in zip(self.names, self.values))}: {len(self.frames)} frames>"


def static_panel(experiment, *, plot=None, labels=None, initial=None, dpi=100, **grids):
    """A slider figure precomputed on a grid, whose sliders work without a kernel.

    Runs ``experiment`` at every combination of the grid values, draws each
    result exactly as :func:`slider_panel` would, and returns a
    :class:`StaticPanel`. Displayed in a notebook or a built page it is a
    set of range sliders over the grid and the figure of the chosen
    combination, swapped by a few lines of JavaScript: no kernel and no
    external library. Divergence and invalid settings show the same
    messages as the live panel.

    Parameters
    ----------
    experiment : callable
        As for :func:`slider_panel`.
    plot : callable, optional
        ``plot(result, values)``; default :func:`~eoslab.plotting.plot_history`.
    labels : dict, optional
        Slider descriptions by name (default: the names).
    initial : dict, optional
        The value each slider starts at (default: the middle of its grid).
    dpi : int
        Resolution of the pictures (they are stored in the page).
    **grids :
        ``name=[values...]``, one slider each; at most 200 combinations in all.

    Returns
    -------
    StaticPanel

    Examples
    --------
    >>> from eoslab import run, problems, optim
    >>> panel = static_panel(lambda lr: run(problems.quadratic([1.0]), optim.GD(lr), 20, progress=False),
    ...                      lr=[0.5, 1.5, 2.5])
    >>> panel
    <StaticPanel lr (3): 3 frames>
    >>> panel.frame(lr=2.5)["status"]
    'GD(lr=2.5) diverged at step 18'
    """
    if not callable(experiment):
        raise TypeError(f"experiment must be callable, got {type(experiment).__name__}")
    if not grids:
        raise ValueError("static_panel needs at least one grid, e.g. lr=[0.1, 0.2, 0.4]")
    names = list(grids)
    values = []
    for name, grid in grids.items():
        grid = list(grid) if isinstance(grid, (list, tuple, range)) else None
        if not grid:
            raise ValueError(f"grid {name!r} must be a non-empty list of values, got {grids[name]!r}")
        values.append(grid)
    count = math.prod(len(grid) for grid in values)
    if count > MAX_FRAMES:
        raise ValueError(f"the grids have {count} combinations; at most {MAX_FRAMES} fit in a page")
    labels = labels or {}
    initial = initial or {}
    start = tuple(values[i].index(initial[n]) if n in initial else (len(values[i]) - 1) // 2
                  for i, n in enumerate(names))
    draw = plot or _draw_history
    frames = {}
    for combo in itertools.product(*(range(len(grid)) for grid in values)):
        setting = {name: values[i][k] for i, (name, k) in enumerate(zip(names, combo))}
        png = None
        try:
            result = experiment(**setting)
        except (ValueError, TypeError) as error:
            status = f"Invalid setting: {error}"
        else:
            status = _status(result)
            with plt.rc_context({"figure.dpi": dpi}):
                draw(result, setting)
                fig = plt.gcf()
                data = figure_png(fig, dpi=dpi)
                plt.close(fig)
            png = base64.b64encode(data).decode()
        frames[_key(combo)] = {"png": png, "status": status}
    return StaticPanel(names, [labels.get(n, n) for n in names], values, frames, start)
