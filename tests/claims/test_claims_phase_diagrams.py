"""Claims of the phase-diagram appendix: the stored heavy-ball table is what the code computes today.

The page checks its claims against chapters/data/hb_phase.json; this test reruns four of its 72 cells (stable and
diverging ones) with the script's own experiment function, a spot check that the stored table is what the package
computes today. Past the edge
the runs are chaotic, so a cell is compared by what the page says of it (the level it holds, whether it
diverges), not digit by digit.
"""
import importlib.util
import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "chapters" / "data"


def load_script():
    spec = importlib.util.spec_from_file_location("make_hb_phase", DATA / "make_hb_phase.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("lr, beta, seed", [(0.3, 0.3, 0), (0.5, 0.6, 2), (1.0, 0.0, 1), (0.4, 0.9, 1)])
def test_stored_heavy_ball_cells_are_reproduced(lr, beta, seed):
    script = load_script()
    stored = {(r["lr"], r["beta"], r["seed"]): r for r in json.loads((DATA / "hb_phase.json").read_text())["rows"]}
    assert len(stored) == len(script.CONFIGS) == 72
    want, got = stored[(lr, beta, seed)], script.hb_cell(lr, beta, seed)
    assert got["threshold"] == pytest.approx(want["threshold"])
    assert got["initial_sharpness"] == pytest.approx(want["initial_sharpness"], rel=1e-4)  # before any chaos
    assert (got["diverged_at"] is None) == (want["diverged_at"] is None)
    if want["diverged_at"] is None:  # the level it holds, to the precision the page quotes (two digits)
        assert got["median_ratio_at_edge"] == pytest.approx(want["median_ratio_at_edge"], abs=0.01)
        assert abs(got["first_step_at_edge"] - want["first_step_at_edge"]) <= 100
