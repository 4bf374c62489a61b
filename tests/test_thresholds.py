"""eoslab.thresholds: the stability thresholds' closed forms on the papers' example."""
import pytest

from eoslab.thresholds import gd_threshold, heavy_ball_threshold, nesterov_threshold


def test_closed_forms_and_the_papers_example():
    assert gd_threshold(0.01) == pytest.approx(200)
    assert heavy_ball_threshold(0.01, 0.9) == pytest.approx(380)
    assert nesterov_threshold(0.01, 0.9) == pytest.approx(135.7, abs=0.05)
