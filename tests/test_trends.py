"""eoslab.trends: the levelled-off test against series whose answer is known by construction."""
import math

import numpy as np
import pytest

from eoslab.trends import trend


def test_a_flat_noisy_series_has_levelled_off_and_a_ramp_has_not():
    rng = np.random.default_rng(0)
    flat = 10 + 0.5 * rng.standard_normal(40)
    t = trend(flat)
    assert t.levelled_off and abs(t.change) < 0.05
    ramp = np.linspace(8.0, 12.0, 40)  # halves' means 9 and 11 (to within a step): change 2/10
    t = trend(ramp)
    assert not t.levelled_off and t.change == pytest.approx(2.05 / 10, rel=0.05)


def test_a_drift_smaller_than_the_scatter_or_than_rtol_counts_as_levelled():
    rng = np.random.default_rng(1)
    noisy_drift = np.linspace(0.0, 0.5, 20) + 10 + 2.0 * rng.standard_normal(20)  # drift 0.25 << 2 σ/√10
    assert trend(noisy_drift).levelled_off
    small = np.linspace(9.9, 10.1, 40)  # a 2 % drift without noise: inside rtol = 5 %, outside rtol = 1 %
    assert trend(small).levelled_off and not trend(small, rtol=0.01).levelled_off


def test_short_or_non_finite_series():
    assert math.isnan(trend([1.0, 2.0, 3.0]).change) and trend([1.0, 2.0, 3.0]).levelled_off
    t = trend([1.0, 2.0, np.nan, 4.0, 5.0])
    assert math.isnan(t.change) and not t.levelled_off
    change, levelled = trend([1.0, 1.0, 1.0, 1.0])  # unpacks as a pair
    assert change == 0.0 and levelled
