"""The scripts under experiments/ run end to end on small data the test makes, and write what they promise."""
import importlib.util
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

import eoslab

ROOT = Path(__file__).resolve().parents[1]


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def cifar_root(tmp_path):
    """A CIFAR-10 folder in the python format with 30 random images (nothing is downloaded)."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batch = {b"data": rng.integers(0, 256, size=(30, 3072), dtype=np.uint8),
             b"labels": rng.integers(0, 10, 30).tolist()}
    with open(folder / "data_batch_1", "wb") as handle:
        pickle.dump(batch, handle)
    return tmp_path


def test_the_cifar_cnn_experiment_writes_histories_a_summary_and_a_figure_and_resumes(cifar_root, tmp_path):
    script = load_script("cohen_cifar10_cnn")
    out = tmp_path / "results"
    argv = ["--root", str(cifar_root), "--out", str(out), "--n", "30", "--lrs", "0.05", "0.1", "--steps", "12",
            "--measure-every", "6", "--widths", "2", "2", "--chunk-size", "8"]
    summary = script.main(argv)
    saved = json.loads((out / "summary.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    assert saved["config"]["n"] == 30 and saved["config"]["lrs"] == [0.05, 0.1]
    assert saved["machine"]["torch"] and saved["machine"]["eoslab"] == eoslab.__version__
    assert [r["lr"] for r in saved["runs"]] == [0.05, 0.1] and (out / "figure.png").stat().st_size > 10_000
    first = eoslab.History.load(out / "lr_0.05.npz")
    assert first.loss.shape == (13,) and first.eig_step.tolist() == [0, 6, 12]
    assert saved["runs"][0]["initial_loss"] == pytest.approx(float(first.loss[0]))
    # both step sizes start from one initialization; a second call returns the same histories (from checkpoints)
    second = eoslab.History.load(out / "lr_0.1.npz")
    assert first.loss[0] == second.loss[0] and first.loss[1] != second.loss[1]
    script.main(argv)
    np.testing.assert_array_equal(eoslab.History.load(out / "lr_0.05.npz").loss, first.loss)
