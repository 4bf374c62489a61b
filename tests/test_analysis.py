"""eoslab.analysis: distances between trajectories by time, edge summaries, midpoints and tracking errors,
against hand-made histories and short runs on quadratics."""
import numpy as np
import pytest
import torch

import eoslab
from eoslab import History, run
from eoslab.analysis import distance_by_time, edge_summary
from eoslab.optim import GD
from eoslab.problems import quadratic


def test_distance_by_time_matches_snapshots_by_lr_times_step():
    q = quadratic([1.0], dtype="float64")
    a = run(q, GD(0.2), 50, save_every=5, num_eigs=0, progress=False)  # times 0, 1, 2, ...
    b = run(q, GD(0.5), 20, save_every=1, num_eigs=0, progress=False)  # times 0, 0.5, 1, ...
    times, dist = distance_by_time(a, b)
    assert times.tolist() == pytest.approx([float(t) for t in range(11)])
    assert dist[0] == 0.0
    with pytest.raises(ValueError, match="save_every"):
        distance_by_time(run(q, GD(0.2), 5, num_eigs=0, progress=False), b)


def _history(loss, sharpness, lr=0.1):
    steps = np.arange(len(loss))
    return History(step=steps, loss=np.asarray(loss, float), grad_norm=np.zeros(len(loss)), eig_step=steps,
                   eigenvalues=np.asarray(sharpness, float)[:, None], full_loss=np.asarray(loss, float),
                   eig_products=np.zeros(len(loss), int), diverged_at=None, theta=torch.zeros(1),
                   lr=lr, threshold=2 / lr, label="test")


def test_edge_summary_reads_the_phase_after_the_first_crossing():
    h = _history([1.0, 0.9, 0.8, 0.85, 0.7, 0.75, 0.6], [5, 10, 19, 21, 20, 19.5, 20.5])
    s = edge_summary(h)
    assert s.first_step == 3 and s.loss_increases == 1  # from step 3 on: 0.85 -> 0.7 -> 0.75 -> 0.6
    assert s.median_ratio == pytest.approx(np.median([21, 20, 19.5, 20.5]) / 20)
    assert (s.initial_loss, s.final_loss) == (1.0, 0.6)
    never = edge_summary(_history([1.0, 0.5], [1.0, 2.0]))
    assert never.first_step is None and np.isnan(never.median_ratio) and "never reached" in str(never)


def test_edge_summary_says_when_the_sharpness_has_not_levelled_off():
    steps = 12
    flat = edge_summary(_history(np.linspace(1, 0.5, steps), [21, 19, 20.5, 19.5, 20, 20.2, 19.8, 20.1, 20, 19.9,
                                                              20.1, 20]))
    assert flat.levelled_off and "not levelled off" not in str(flat)
    rising = edge_summary(_history(np.linspace(1, 0.5, steps), np.linspace(20, 26, steps)))
    # halves' means 21.5 and 24.5 (to within a step) over a level of 23: the phase is still sharpening
    assert not rising.levelled_off and rising.trend == pytest.approx(3.27 / 23, rel=0.05)
    assert "not levelled off" in str(rising)


def test_midpoints_recover_the_center_of_a_period_two_orbit():
    q = quadratic([4.0], theta0=[0.3], dtype="float64")  # ηλ = 2: θ_t = ±0.3
    gd = eoslab.run(q, GD(0.5), 6, num_eigs=0, save_every=1, progress=False)
    mid = eoslab.analysis.midpoints(gd)
    assert mid.shape == (5, 1) and float(mid.abs().max()) == 0.0
    errors = eoslab.analysis.tracking_error(gd, gd, horizons=[1, 3, 10])
    np.testing.assert_allclose(errors[:2], [0.3, 0.3]) and np.isnan(errors[2])
    with pytest.raises(ValueError, match="save_every"):
        eoslab.analysis.midpoints(eoslab.run(q, GD(0.5), 6, num_eigs=0, progress=False))
