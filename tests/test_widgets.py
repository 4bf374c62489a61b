"""Static slider panels: every grid point drawn, the same messages as the live panel, HTML that needs no kernel."""
import base64
import json
import re

import pytest

from eoslab import run
from eoslab.optim import GD
from eoslab.problems import quadratic
from eoslab.widgets import static_panel


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
