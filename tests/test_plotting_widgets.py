"""Figures and slider panels: the threshold line, the divergence message, invalid settings."""
import matplotlib.pyplot as plt
import pytest

from eoslab import run
from eoslab.optim import GD
from eoslab.plotting import plot_contour_paths, plot_history
from eoslab.problems import quadratic
from eoslab.widgets import slider_panel


def _quadratic_run(lr, steps=50):
    return run(quadratic([1.0, 0.5], dtype="float64"), GD(lr), steps, progress=False)


def test_plot_history_draws_the_threshold_and_marks_divergence():
    fig = plot_history([_quadratic_run(0.5), _quadratic_run(2.5)])
    ax_loss, ax_sharp = fig.axes
    dashed = [line.get_ydata()[0] for line in ax_sharp.get_lines() if line.get_linestyle() == "--" and len(line.get_ydata())]
    assert 4.0 in dashed and 0.8 in dashed
    assert any("diverged at step" in t.get_text() for t in ax_loss.get_legend().get_texts())
    plt.close(fig)


def test_plot_contour_paths_accepts_a_dict_of_paths():
    q = quadratic([1.0, 0.5], dtype="float64")
    h = run(q, GD(0.5), 10, save_every=1, progress=False)
    ax = plot_contour_paths(q, {"GD": h.snapshots.numpy()}, xlim=(-1.5, 1.5), ylim=(-1.5, 1.5), minimum=(0, 0))
    path, star = ax.get_lines()
    assert path.get_xydata().shape == (11, 2) and star.get_marker() == "*"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["GD"]
    plt.close(ax.figure)


def test_panel_reports_divergence_instead_of_failing():
    panel = slider_panel(lambda lr: _quadratic_run(lr), lr=(2.5, 0.1, 3.0, 0.1))
    status = panel.children[1]
    assert "diverged at step" in status.value
    slider = panel.children[0]
    slider.value = 0.5  # moving the slider re-runs the experiment
    assert status.value == ""
    plt.close("all")


def test_panel_reports_invalid_settings():
    panel = slider_panel(lambda lr: _quadratic_run(lr), lr=(0.0, 0.0, 1.0, 0.1))
    assert "Invalid setting" in panel.children[1].value and "lr" in panel.children[1].value


def test_panel_needs_sliders():
    with pytest.raises(ValueError, match="slider"):
        slider_panel(lambda lr: None)
    with pytest.raises(ValueError, match="lr"):
        slider_panel(lambda lr: None, lr=(1, 2))
