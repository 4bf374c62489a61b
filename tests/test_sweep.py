"""eoslab.sweep: the same table on every engine, nothing recomputed after an interrupt, nothing lost to a failure."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the experiments' module, importable by worker processes too
import sweep_experiments  # noqa: E402

from eoslab.sweep import RUN_COLUMNS, config_seed, grid, sweep  # noqa: E402

pd = pytest.importorskip("pandas")

GRID = grid(lr=[0.1, 0.25], beta=[0.0, 0.9], seed=[0, 1])  # 2 x 2 x 2 seeds; lr 0.25 with beta 0 diverges
MEASURED = ["lr", "beta", "seed", "final_loss", "diverged", "threshold", "start_norm", "status"]


@pytest.fixture
def calls(tmp_path, monkeypatch):
    """A folder where every call of the experiment leaves a file (and where tests leave flags)."""
    folder = tmp_path / "calls"
    folder.mkdir()
    monkeypatch.setenv("EOSLAB_SWEEP_CALLS", str(folder))
    return folder


def count(folder):
    return len(list(folder.glob("call-*")))


def measured(table):
    return table[MEASURED].reset_index(drop=True)


@pytest.fixture(scope="module")
def serial_table():
    return sweep(sweep_experiments.heavy_ball_on_a_quadratic, GRID, progress=False)


def test_the_serial_table_has_one_row_per_configuration_in_order(serial_table):
    t = serial_table
    assert len(t) == 8 and list(t.columns[:3]) == ["lr", "beta", "seed"]
    assert t[["lr", "beta", "seed"]].to_dict("records") == GRID
    assert (t.status == "ok").all() and set(RUN_COLUMNS) <= set(t.columns)
    # the known answers: GD diverges above 2/lr; heavy ball with beta = 0.9 is stable below 2(1+beta)/lr = 15.2
    assert t.loc[(t.lr == 0.25) & (t.beta == 0.0), "diverged"].all()
    assert not t.loc[t.beta == 0.9, "diverged"].any()
    np.testing.assert_allclose(t.threshold, [2 / lr * (1 + b) for lr, b in zip(t.lr, t.beta)])
    assert t.attrs["eoslab"] and t.attrs["interrupted"] is False


def test_local_processes_give_the_serial_table(serial_table, tmp_path):
    table = sweep(sweep_experiments.heavy_ball_on_a_quadratic, GRID, engine="processes", workers=2,
                  store=tmp_path / "store", progress=False)
    pd.testing.assert_frame_equal(measured(table), measured(serial_table))
    assert table.worker.nunique() >= 1 and len(list((tmp_path / "store").glob("*.json"))) == 8


def test_a_dask_local_cluster_with_two_workers_gives_the_serial_table(serial_table):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
            distributed.Client(c) as client:
        table = sweep(sweep_experiments.heavy_ball_on_a_quadratic, GRID, engine=client, progress=False)
    pd.testing.assert_frame_equal(measured(table), measured(serial_table))


def test_submitits_local_executor_gives_the_serial_table(serial_table, tmp_path, monkeypatch):
    submitit = pytest.importorskip("submitit")
    # its jobs are fresh interpreters: they find the experiments' module through PYTHONPATH, as on a cluster
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                                                   os.environ.get("PYTHONPATH")])))
    executor = submitit.LocalExecutor(folder=tmp_path / "submitit")
    executor.update_parameters(timeout_min=10)
    table = sweep(sweep_experiments.heavy_ball_on_a_quadratic, GRID, engine=executor, progress=False)
    pd.testing.assert_frame_equal(measured(table), measured(serial_table))


def test_an_interrupted_sweep_resumes_without_recomputing_a_finished_cell(calls, tmp_path, serial_table):
    store = tmp_path / "store"
    (calls / "interrupt-lr0.1-beta0.9-seed1").touch()  # Ctrl-C during the fourth configuration
    first = sweep(sweep_experiments.heavy_ball_on_a_quadratic, GRID, store=store, progress=False)
    assert first.attrs["interrupted"] and list(first.status) == ["ok"] * 3 + ["pending"] * 5
    assert count(calls) == 4
    second = sweep(sweep_experiments.heavy_ball_on_a_quadratic, GRID, store=store, progress=False)
    assert count(calls) == 4 + 5  # the five that had not finished, and nothing else
    pd.testing.assert_frame_equal(measured(second), measured(serial_table))
    sweep(sweep_experiments.heavy_ball_on_a_quadratic, GRID, store=store, progress=False)
    assert count(calls) == 9  # all stored: a third call runs nothing


def test_a_cell_that_raises_is_recorded_and_retried_alone(calls, tmp_path, serial_table):
    store = tmp_path / "store"
    (calls / "raise-lr0.1-beta0.9-seed0").touch()
    first = sweep(sweep_experiments.heavy_ball_on_a_quadratic, GRID, store=store, progress=False)
    failed = first[first.status == "failed"]
    assert len(failed) == 1 and "asked to fail" in failed.error.iloc[0] and (first.status == "ok").sum() == 7
    assert count(calls) == 8
    sweep(sweep_experiments.heavy_ball_on_a_quadratic, GRID, store=store, progress=False)
    assert count(calls) == 8  # failures are kept, not retried, unless asked
    (calls / "raise-lr0.1-beta0.9-seed0").unlink()
    again = sweep(sweep_experiments.heavy_ball_on_a_quadratic, GRID, store=store, retry_failed=True, progress=False)
    assert count(calls) == 9
    pd.testing.assert_frame_equal(measured(again), measured(serial_table))


def test_a_worker_killed_mid_sweep_costs_only_its_own_cell(calls, tmp_path, serial_table):
    store = tmp_path / "store"
    (calls / "kill-lr0.25-beta0-seed0").touch()  # the worker running the fifth cell dies, once
    first = sweep(sweep_experiments.heavy_ball_on_a_quadratic, GRID, engine="processes", workers=2, store=store,
                  progress=False)
    pd.testing.assert_frame_equal(measured(first), measured(serial_table))  # every cell finished
    # the dead worker's cell and the one running beside it ran again; nothing that had finished did
    assert 9 <= count(calls) <= 10
    (calls / "kill-always-lr0.1-beta0.9-seed1").touch()  # a cell that kills its worker every time
    again = sweep(sweep_experiments.heavy_ball_on_a_quadratic, GRID, engine="processes", workers=2,
                  store=tmp_path / "second", progress=False)
    lost = again[again.status != "ok"]
    assert list(lost.status) == ["lost"] and lost.error.str.contains("worker").all()
    assert lost[["lr", "beta", "seed"]].to_dict("records") == [{"lr": 0.1, "beta": 0.9, "seed": 1}]
    (calls / "kill-always-lr0.1-beta0.9-seed1").unlink()
    before = count(calls)
    third = sweep(sweep_experiments.heavy_ball_on_a_quadratic, GRID, engine="processes", workers=2,
                  store=tmp_path / "second", progress=False)
    assert count(calls) - before == 1  # a lost cell runs again without being asked; only it
    pd.testing.assert_frame_equal(measured(third), measured(serial_table))


def test_seeds_come_from_the_parameters_not_from_the_order():
    def draw(lr, seed):
        return {"seed_seen": seed}

    configs = grid(lr=[0.1, 0.2, 0.3])
    forward = sweep(draw, configs, progress=False)
    backward = sweep(draw, configs[::-1], progress=False)
    assert list(forward.seed_seen) == [config_seed(c) for c in configs] == list(backward.seed_seen[::-1])
    assert len(set(forward.seed_seen)) == 3


def test_numpy_values_are_stored_and_found_again(calls, tmp_path):
    configs = grid(x=np.array([0.5, 1.5]), replicate=np.arange(2))  # numpy scalars in the grid
    first = sweep(sweep_experiments.numpy_everywhere, configs, store=tmp_path / "s", progress=False)
    assert (first.status == "ok").all() and list(first.y) == [1.0, 1.0, 3.0, 3.0] and count(calls) == 4
    assert first.seed_seen[0] == config_seed({"x": 0.5, "replicate": 0})  # the same seed as plain numbers get
    again = sweep(sweep_experiments.numpy_everywhere, grid(x=[0.5, 1.5], replicate=[0, 1]), store=tmp_path / "s",
                  progress=False)
    assert count(calls) == 4 and list(again.n) == [0, 1, 0, 1]  # plain numbers name the same cells


def test_a_result_may_not_overwrite_a_parameter_or_a_run_column_and_a_device_parameter_is_kept():
    table = sweep(sweep_experiments.clashing, grid(x=[1]), progress=False)
    assert table.status[0] == "failed" and "rename them" in table.error[0] and table.x[0] == 1
    table = sweep(sweep_experiments.wants_device, [{"x": 1, "device": "cpu"}, {"x": 2}], device="meta",
                  progress=False)
    assert list(table.got) == ["cpu", "meta"] and list(table.device) == ["cpu", "meta"]


def test_a_store_belongs_to_one_experiment_and_skips_unreadable_files(tmp_path):
    store = tmp_path / "s"
    sweep(sweep_experiments.wants_device, grid(x=[1, 2]), store=store, progress=False)
    with pytest.raises(ValueError, match="holds results of"):
        sweep(sweep_experiments.clashing, grid(x=[1, 2]), store=store, progress=False)
    (store / "notes.json").write_text("{}")
    (store / "empty.json").write_text("")
    with pytest.warns(RuntimeWarning, match="not a readable record"):
        table = sweep(sweep_experiments.wants_device, grid(x=[1, 2, 3]), store=store, progress=False)
    assert (table.status == "ok").all()


def test_an_experiment_that_workers_cannot_import_is_refused_before_any_work(calls):
    with pytest.raises(ValueError, match="cannot be sent to worker processes"):
        sweep(lambda x: {"y": x}, grid(x=[1, 2]), engine="processes", workers=2, progress=False)
    assert count(calls) == 0


def test_bad_input_is_refused_before_any_work():
    f = sweep_experiments.heavy_ball_on_a_quadratic
    with pytest.raises(ValueError, match="grid"):
        grid()
    with pytest.raises(ValueError, match="lr must be a list"):
        grid(lr=0.1)
    with pytest.raises(ValueError, match="configs"):
        sweep(f, [], progress=False)
    with pytest.raises(ValueError, match="twice"):
        sweep(f, [{"lr": 0.1}, {"lr": 0.1}], progress=False)
    with pytest.raises(ValueError, match="engine"):
        sweep(f, GRID, engine="slurm", progress=False)
    with pytest.raises(ValueError, match="workers"):
        sweep(f, GRID, engine="processes", workers=0, progress=False)
    with pytest.raises(TypeError, match="callable"):
        sweep(None, GRID, progress=False)
    table = sweep(lambda lr: [lr], grid(lr=[0.1]), progress=False)  # not a dict: recorded, with the reason
    assert table.status[0] == "failed" and "must return a dict" in table.error[0]
