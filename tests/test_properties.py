"""Property-based tests (hypothesis) over the public entry points.

* Junk (hypothesis draws it), in any argument of every public function and class, gets ``TypeError`` or ``ValueError`` (never a raw
  internal error) before any long work.
* The numeric settings of ``run`` and ``top_eigenpairs``, drawn in and out of range, either give a clear error
  naming the argument or a finite result.
* The certified eigensolver returns the true top ``k`` (dense ``eigh``) on random symmetric matrices whose
  eigenvalues repeat and crowd, in float32 and float64.
"""
import math
import re
import warnings

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from eoslab import run, top_eigenpairs  # noqa: E402
from eoslab.optim import GD  # noqa: E402
from eoslab.problems import quadratic  # noqa: E402

from test_bad_input import _entry_points  # noqa: E402

ENTRY_POINTS = _entry_points()
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=True)

junk = st.one_of(
    st.none(), st.booleans(), st.text(max_size=5),
    st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 1e300, -(10**9), 10**12]),
    st.integers(-3, 3), st.lists(st.floats(allow_nan=True), max_size=3),
    st.sampled_from([torch.empty(0), torch.tensor([math.nan]), torch.ones(2, 2), torch.tensor([1, 2]),
                     torch.ones(3, dtype=torch.float64), {"a": 1}, object()]),
)


@pytest.mark.parametrize("name, fn, n", ENTRY_POINTS, ids=[e[0] for e in ENTRY_POINTS])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(data=st.data())
def test_junk_in_any_argument_of_any_entry_point_gets_a_clear_error(name, fn, n, data):
    args = [data.draw(junk, label=f"arg{i}") for i in range(n)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fn(*args)
        except (TypeError, ValueError, FileNotFoundError):
            pass
        except Exception as e:  # noqa: BLE001 - what this test looks for
            raise AssertionError(f"{name}{tuple(map(repr, args))}: raw {type(e).__name__}: {e}") from e


def test_the_sweep_covers_the_package():
    assert len(ENTRY_POINTS) > 60


q64 = quadratic([4.0, 1.0, 0.25], theta0=[1.0, -1.0, 0.5], dtype="float64")
SETTINGS = {
    "steps": st.one_of(st.integers(-3, 12), st.just(2.5)),
    "measure_every": st.one_of(st.none(), st.integers(-2, 5)),
    "num_eigs": st.integers(-1, 4),
    "eig_tol": st.sampled_from([1e-3, 0.0, 1.0, -1e-3, math.nan, 0.5]),
    "batch_size": st.one_of(st.none(), st.integers(-1, 2)),
    "divergence_factor": st.sampled_from([1e6, 1.0, 0.5, math.inf, math.nan, 10.0]),
    "save_every": st.one_of(st.none(), st.integers(-1, 3)),
    "seed": st.one_of(st.integers(-1, 2), st.just(1.5)),
}


@FAST
@given(lr=st.sampled_from([0.1, 0.6, -0.1, 0.0, math.nan, math.inf]), kwargs=st.fixed_dictionaries(SETTINGS))
def test_run_settings_give_a_named_error_or_a_finite_history(lr, kwargs):
    steps = kwargs.pop("steps")
    try:
        method = GD(lr)
    except ValueError as e:
        assert "lr" in str(e)
        return
    try:
        h = run(q64, method, steps, progress=False, **kwargs)
    except (TypeError, ValueError) as e:
        named = [k for k in ["steps", *SETTINGS] if re.search(rf"\b{k}\b", str(e))]
        assert named, f"the error does not name an argument: {e}"
        return
    assert h.loss.size >= 1 and all(map(math.isfinite, h.loss))
    assert h.diverged or h.loss.size == steps + 1


@st.composite
def spectra(draw):
    """Eigenvalues with repeats and near-repeats at the top: drawn from a few levels, some split by 1e-7."""
    size = draw(st.integers(2, 40))
    levels = draw(st.lists(st.sampled_from([-3.0, -0.5, 0.0, 0.1, 1.0, 2.0, 5.0, 7.0]), min_size=1, max_size=4))
    values = [draw(st.sampled_from(levels)) + draw(st.sampled_from([0.0, 0.0, 1e-7, -1e-7])) for _ in range(size)]
    return sorted(values, reverse=True)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(values=spectra(), k=st.integers(1, 6), seed=st.integers(0, 2**16), dtype=st.sampled_from(["float32",
                                                                                                 "float64"]))
def test_cold_solves_return_the_true_top_k_whatever_the_multiplicities(values, k, seed, dtype):
    size = len(values)
    k = min(k, size)
    g = torch.Generator().manual_seed(seed)
    Q, R = torch.linalg.qr(torch.randn(size, size, generator=g, dtype=torch.float64))
    Q = Q * torch.sign(torch.diagonal(R))
    q = quadratic(values, eigenvectors=Q, dtype=dtype)
    result = top_eigenpairs(q, q.theta0, k=k)
    scale = max(abs(v) for v in values) or 1.0
    truth = torch.tensor(values[:k], dtype=torch.float64)
    error = float((result.values.double() - truth).abs().max())
    assert result.converged and result.certified
    assert error <= 2e-3 * scale, f"top {k} of {values}: got {result.values.tolist()}"
