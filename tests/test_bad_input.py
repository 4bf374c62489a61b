"""Bad input gets a clear error: every public entry point, fed junk, raises ValueError or TypeError (never a raw
AttributeError or RuntimeError from deep inside), and the errors users hit name the argument."""
import dataclasses
import importlib
import inspect
import math
import warnings

import pytest
import torch

import eoslab
from eoslab import compare, run, top_eigenpairs
from eoslab.analysis import distance_by_time, edge_summary
from eoslab.optim import GD
from eoslab.problems import Problem, chebyshev_regression, function_problem, quadratic
from eoslab.stochastic import batch_sharpness
from eoslab.self_stabilization import taylor_center

MODULES = ["analysis", "batches", "checkpoints", "curvature", "data", "exercises", "flows", "history", "manifold",
           "methods", "models", "optim", "plotting", "problems", "recorder", "runs", "self_stabilization", "stability",
           "stochastic", "thresholds", "trends"]
NAN = float("nan")


def _entry_points():
    """Every public function and every public class that is not a record or a problem built by a builder."""
    out = []
    for m in MODULES:
        module = importlib.import_module(f"eoslab.{m}")
        for name in module.__all__:
            obj = getattr(module, name)
            if not callable(obj) or dataclasses.is_dataclass(obj):
                continue
            if inspect.isclass(obj) and issubclass(obj, Problem):  # made by quadratic(), digits_eoss(), ...
                continue
            try:
                params = inspect.signature(obj).parameters.values()
            except (TypeError, ValueError):
                continue
            required = [p for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY,
                                                                                   p.POSITIONAL_OR_KEYWORD)]
            if required:
                out.append((f"{m}.{name}", obj, len(required)))
    return out


@pytest.mark.parametrize("junk", ["junk", NAN, None], ids=["str", "nan", "None"])
def test_every_entry_point_refuses_junk_with_a_clear_error(junk):
    raw = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fn, n in _entry_points():
            try:
                fn(*[junk] * n)
            except (TypeError, ValueError, FileNotFoundError):  # a data reader pointed at a missing folder says so
                continue
            except Exception as e:  # noqa: BLE001 - what this test looks for
                raw.append(f"{name}: {type(e).__name__}: {str(e)[:80]}")
    assert not raw, "raw errors:\n" + "\n".join(raw)
    assert len(_entry_points()) > 60  # the sweep covers the package, not a handful


q = quadratic([2.0, 1.0], dtype="float64")
flat = function_problem(lambda t: (t * 0).sum() + 1.0, [1.0, 2.0])


@pytest.mark.parametrize("call, error, match", [
    (lambda: quadratic([1.0, 2.0], theta0=[NAN, 1.0]), ValueError, "theta0 must be finite"),
    (lambda: quadratic([1.0, 2.0], theta0=[math.inf, 1.0]), ValueError, "theta0 must be finite"),
    (lambda: function_problem(lambda t: t.sum(), []), ValueError, "theta0 must have at least one entry"),
    (lambda: function_problem(lambda t: t.sum(), [NAN]), ValueError, "theta0 must be finite"),
    (lambda: function_problem(lambda t: 2 * t, [1.0, 2.0]), ValueError,
     r"fn must return a scalar tensor, got .*\(2,\)"),
    (lambda: run(q, GD(0.1), 3, theta0=torch.tensor([NAN, 1.0], dtype=torch.float64)), ValueError,
     "theta0 must be finite"),
    (lambda: run(q, GD(0.1), 3, theta0=[1.0, 2.0]), TypeError, "theta0 must be a torch.Tensor"),
    (lambda: run(chebyshev_regression(), GD(0.1), 3, batch_size=4, replacement="no"), TypeError,
     "replacement must be True or False"),
    (lambda: run(quadratic([1e30, 1.0], theta0=[1e10, 1.0]), GD(1e-31), 3), ValueError,
     "not finite at the start .* try dtype='float64'"),
    (lambda: compare(q, [], 3), ValueError, "methods is empty"),
    (lambda: compare(q, 3, 3), TypeError, "methods must be a dict"),
    (lambda: top_eigenpairs(q, torch.ones(3, dtype=torch.float64)), ValueError, "theta must have 2 entries"),
    (lambda: top_eigenpairs(q, torch.ones(2)), ValueError, "theta has dtype torch.float32 but the problem is in"),
    (lambda: top_eigenpairs(q, torch.tensor([NAN, 1.0], dtype=torch.float64)), ValueError, "theta must be finite"),
    (lambda: taylor_center(q, torch.ones(3, dtype=torch.float64)), ValueError, "theta must have 2 entries"),
    (lambda: edge_summary([1, 2]), TypeError, "history must be an eoslab History"),
    (lambda: distance_by_time(1, 2), TypeError, "a must be an eoslab History"),
    (lambda: batch_sharpness(lambda t: t.sum(), torch.ones(2), 1), TypeError, "problem must be an eoslab Problem"),
    (lambda: eoslab.plotting.plot_history([1.0]), TypeError, "histories must be eoslab History"),
    (lambda: eoslab.flows.edge_flow_step(q, q.theta0, 0.1), TypeError, "state must be an EdgeState"),
    (lambda: eoslab.stability.characteristic_roots(0.1, 1.0), TypeError, "optimizer must be GD, HeavyBall or Nesterov"),
])
def test_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_float64_start_values_give_a_float64_problem():
    assert quadratic([1.0], theta0=torch.tensor([1.0], dtype=torch.float64)).dtype == torch.float64
    assert function_problem(lambda t: (t**2).sum(), torch.tensor([1.0], dtype=torch.float64)).dtype == torch.float64
    assert quadratic([1.0], theta0=[1.0]).dtype == torch.float32  # Python numbers: the default, float32
    assert flat.dtype == torch.float32
