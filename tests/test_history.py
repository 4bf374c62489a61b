"""eoslab.history: the one record of a run, saved to an open format and read back exactly."""
import numpy as np
import pytest

import eoslab
from eoslab import History
from eoslab.flows import EdgeFlow
from eoslab.optim import DAL, HeavyBall
from eoslab.problems import digits_eoss, quadratic


def test_a_history_round_trips_exactly_none_and_nan_included(tmp_path, same_history):
    p = digits_eoss(n=40, widths=(6,), dtype="float64")
    sgd = eoslab.run(p, HeavyBall(0.1, 0.9), 12, batch_size=8, measure_every=4, save_every=4,
                     measures={"norm": lambda v: float(v.theta.norm())}, progress=False)
    dal = eoslab.run(quadratic([3.0, 1.0]), DAL(0.1), 5, num_eigs=2, progress=False)  # threshold NaN, float32
    edge = eoslab.run(quadratic([3.9, 0.1], theta0=[0.01, 1.0], dtype="float64"), EdgeFlow(0.5), 5, num_eigs=0,
                      progress=False)  # no eigenvalues, no snapshots: None fields
    for h in (sgd, dal, edge):
        back = History.load(h.save(tmp_path / h.label))
        same_history(h, back)
    assert dal.save(tmp_path / "dal.npz").name == "dal.npz"


def test_the_saved_file_is_plain_numpy_readable_without_eoslab(tmp_path):
    h = eoslab.run(quadratic([2.0]), eoslab.optim.GD(0.1), 3, progress=False)
    with np.load(h.save(tmp_path / "run"), allow_pickle=False) as data:
        assert data["loss"].tolist() == h.loss.tolist()
        assert '"label": "GD(lr=0.1)"' in str(data["metadata"])
    np.savez(tmp_path / "other.npz", metadata=np.array('{"format": "x"}'))
    with pytest.raises(ValueError, match="not a saved eoslab History"):
        History.load(tmp_path / "other.npz")
