"""eoslab.widgets: slider panels report divergence and invalid settings, carry a precomputed twin for web
pages; static panels draw every grid point with the live panel's messages, in HTML that needs no kernel."""
import base64
import json
import re

import matplotlib.pyplot as plt
import pytest

from eoslab import run
from eoslab.optim import GD
from eoslab.problems import quadratic
from eoslab.widgets import slider_panel, static_panel


# -- live slider panels ---------------------------------------------------------
def _quadratic_run(lr, steps=50):
    return run(quadratic([1.0, 0.5], dtype="float64"), GD(lr), steps, progress=False)


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


def test_a_live_panel_carries_its_precomputed_twin_for_web_pages():
    grid = {"lr": [0.5, 1.0, 2.5]}
    panel = slider_panel(lambda lr: _quadratic_run(lr, 20), lr=(1.0, 0.1, 3.0, 0.1), grid=grid, static=True)
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # notebooks render the live panel
    assert 'class="eoslab-static-panel"' in bundle["text/html"]  # pages render the twin
    assert panel.twin.initial == (1,) and panel.twin.frame(lr=2.5)["status"].endswith("diverged at step 18")
    live_only = slider_panel(lambda lr: _quadratic_run(lr, 20), lr=(1.0, 0.1, 3.0, 0.1), grid=grid, static=False)
    assert live_only.twin is None
    assert "open this chapter as a notebook" in live_only._repr_mimebundle_()["text/html"]
    with pytest.raises(ValueError, match="one list of values per slider"):
        slider_panel(lambda lr: _quadratic_run(lr, 20), lr=(1.0, 0.1, 3.0, 0.1), grid={"eta": [1.0]})


def test_the_twin_is_computed_only_where_the_book_asks_for_it(monkeypatch):
    calls = []

    def experiment(lr):
        calls.append(lr)
        return _quadratic_run(lr, 5)

    monkeypatch.delenv("EOSLAB_STATIC_PANELS", raising=False)
    assert slider_panel(experiment, lr=(1.0, 0.1, 3.0, 0.1), grid={"lr": [0.5, 1.0]}).twin is None
    assert calls == [1.0]  # the live panel's own first run only
    monkeypatch.setenv("EOSLAB_STATIC_PANELS", "1")
    assert slider_panel(experiment, lr=(1.0, 0.1, 3.0, 0.1), grid={"lr": [0.5, 1.0]}).twin is not None
    assert sorted(calls[1:]) == [0.5, 1.0, 1.0]


# -- static panels --------------------------------------------------------------
def experiment(lr, steps):
    return run(quadratic([1.0, 0.5], dtype="float64"), GD(lr), steps, progress=False)


@pytest.fixture(scope="module")
def panel():
    return static_panel(experiment, labels={"lr": "learning rate η"}, lr=[0.0, 0.5, 1.5, 2.5], steps=[10, 40])


def test_every_combination_is_a_frame_with_the_live_panel_messages(panel):
    assert len(panel.frames) == 8 and panel.names == ["lr", "steps"]
    assert panel.initial == (1, 0)  # the middle of each grid (rounded down)
    for key, frame in panel.frames.items():
        i, j = map(int, key.split(","))
        lr, steps = panel.values[0][i], panel.values[1][j]
        if lr == 0.0:
            assert frame["png"] is None and frame["status"].startswith("Invalid setting") and "lr" in frame["status"]
        else:
            assert base64.b64decode(frame["png"])[:8] == b"\x89PNG\r\n\x1a\n"
            assert ("diverged at step" in frame["status"]) == (lr == 2.5 and steps == 40)  # 1.5^2t passes 1e6
    # the loss grows by (1 - 2.5)^2 = 2.25 a step along the curvature-1 axis: past 1e6 times its start at step 18
    first = next(t for t in range(100) if 2.25**t > 1e6)
    assert panel.frame(lr=2.5, steps=40)["status"] == f"GD(lr=2.5) diverged at step {first}"


def test_html_carries_sliders_frames_and_script(panel):
    text = panel._repr_html_()
    assert text == panel._repr_html_()  # deterministic, so a page rebuild does not change
    assert text.count('type="range"') == 2 and "learning rate η" in text
    payload = json.loads(re.search(r'class="eoslab-frames">(.*?)</script>', text, re.S).group(1).replace("<\\/", "</"))
    assert set(payload["frames"]) == set(panel.frames)
    assert payload["labels"]["lr"] == ["0", "0.5", "1.5", "2.5"]
    assert f'src="data:image/png;base64,{panel.frames["1,0"]["png"]}"' in text  # the first figure works without JS
    assert panel.nbytes == len(text.encode()) < 500_000


def test_initial_values_can_be_chosen():
    p = static_panel(experiment, initial={"lr": 1.5}, lr=[0.5, 1.5], steps=[5])
    assert p.initial == (1, 0)


@pytest.mark.parametrize("grids, match", [
    ({}, "at least one grid"),
    ({"lr": []}, "non-empty list"),
    ({"lr": 0.5}, "non-empty list"),
    ({"lr": list(range(15)), "steps": list(range(15))}, "225 combinations"),
])
def test_bad_grids_are_refused(grids, match):
    with pytest.raises(ValueError, match=match):
        static_panel(experiment, **grids)


@pytest.mark.parametrize("args, match", [((2.0, 0.0, 1.0, 0.1), r"value must be in \[0.0, 1.0\]"),
                                         ((0.5, 1.0, 0.0, 0.1), "low must be below high"),
                                         ((0.5, 0.0, 1.0, 0.0), "step must be in"),
                                         ((float("nan"), 0.0, 1.0, 0.1), "value must be finite")])
def test_a_slider_outside_its_range_is_refused_not_clamped(args, match):
    from eoslab.widgets import slider

    with pytest.raises(ValueError, match=match):
        slider(*args)
