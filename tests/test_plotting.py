"""eoslab.plotting: the figures draw what they say (the threshold line, the divergence message, the stages,
the phase diagram), and the book style and the PNG metadata."""
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

from eoslab import run
from eoslab.optim import GD
from eoslab.plotting import plot_contour_paths, plot_eoss_phase, plot_history
from eoslab.problems import quadratic


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


def test_plot_two_variable_shades_every_stage_and_marks_divergence():
    from eoslab.plotting import STAGE_COLORS, plot_two_variable
    from eoslab.self_stabilization import two_variable_model

    fig = plot_two_variable(two_variable_model(0.01, 1.0, 1.0, 3000))
    ax_x, ax_y = fig.axes
    labels = ax_x.get_legend().get_texts()
    assert [t.get_text()[0] for t in labels[:4]] == ["1", "2", "3", "4"]
    assert len(ax_x.patches) >= 8 and {p.get_facecolor()[:3] for p in ax_x.patches} == {
        matplotlib.colors.to_rgb(c) for c in STAGE_COLORS.values()}
    plt.close(fig)
    fig = plot_two_variable(two_variable_model(1.5, 5.0, 1e-6, 500, y0=1.0))
    assert "diverged" in fig.axes[0].get_title()
    plt.close(fig)


def test_plot_lockstep_draws_four_panels():
    import numpy as np

    from eoslab.plotting import plot_lockstep
    from eoslab.self_stabilization import Lockstep

    n = 5
    z = np.linspace(0.1, 0.5, n)
    fields = {k: z for k in Lockstep.__dataclass_fields__ if k not in ("step", "lr", "diverged_at")}
    lock = Lockstep(step=np.arange(n), lr=0.3, **fields)
    fig = plot_lockstep(lock, stop=3)
    assert len(fig.axes) == 4
    assert len(fig.axes[1].lines[0].get_xdata()) == 4
    plt.close(fig)


def _png_text(data):
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(data))
    return image.text, image.size


def test_figure_png_records_the_smallest_text_and_the_resolution():
    from eoslab.plotting import figure_png

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1], label="a line")
    ax.tick_params(labelsize=9)
    ax.legend(fontsize=7.5)
    ax.set_title("title", fontsize=14)
    text, size = _png_text(figure_png(fig, dpi=50))
    assert text["eoslab:smallest-font-pt"] == "7.5" and text["eoslab:dpi"] == "50"
    assert size[0] <= 4 * 50 + 1  # cropped to the content, never enlarged
    ax.get_legend().remove()
    text, _ = _png_text(figure_png(fig, dpi=50))
    assert text["eoslab:smallest-font-pt"] == "9"  # a removed legend does not count
    plt.close(fig)


def test_book_style_figures_fit_the_page_with_text_at_least_10_points():
    from eoslab.plotting import PAGE_WIDTH, STYLE, smallest_font, use_book_style

    with plt.rc_context():
        use_book_style()
        fig = plot_history([_quadratic_run(0.5), _quadratic_run(2.5)], title="a title")
        assert fig.get_figwidth() <= PAGE_WIDTH
        assert smallest_font(fig) == min(STYLE["xtick.labelsize"], STYLE["legend.fontsize"]) >= 10
        plt.close(fig)


def test_phase_figure_draws_every_group_and_marks_divergence():
    rows = [dict(beta=0.0, lr=0.2, batch_size=b, full_batch=b == 100, batch_sharpness=9.0) for b in (8, 100)]
    rows += [dict(beta=0.9, lr=0.1, batch_size=8, full_batch=False, batch_sharpness=np.nan),
             dict(beta=0.9, lr=0.1, batch_size=100, full_batch=True, batch_sharpness=37.0)]
    fig = plot_eoss_phase(rows)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "β = 0, η = 0.2" in labels and "β = 0.9, η = 0.1" in labels and "diverged" in labels
    assert [t.get_text() for t in ax.get_xticklabels()] == ["8", "full"]
    assert ax.get_ylim()[1] == pytest.approx(1.9 * 1.15)
