"""eoslab.self_stabilization: the Taylor-expansion constants on an explicit toy, the two-variable model
against its exact averaging identity, the projection onto the stable set and the constrained step against
closed forms on the chapter toy (eoslab.problems.sharpening_toy), find_edge and seed_oscillation."""
import math

import numpy as np
import pytest
import torch

from eoslab import hessian, run
from eoslab import self_stabilization as ss
from eoslab.self_stabilization import taylor_center
from eoslab.optim import GD, HeavyBall
from eoslab.problems import chebyshev_regression, quadratic, sharpening_toy


# -- the Taylor expansion at the edge -------------------------------------------
def test_taylor_center_constants_on_an_explicit_toy():
    # L(a, b) = ½(1 + b)a² - c b: at a = 0, S = 1 + b, u = e_a, ∇S = (0, 1), ∇L = (0, -c),
    # so ∇S⊥ = (0, 1), α = c, β = 1, δ = √(2c).
    c = 0.02
    f = sharpening_toy(s0=1.0, c=c, x0=0.0, y0=1.0)
    center = taylor_center(f, f.theta0)
    assert center.sharpness == pytest.approx(2.0, abs=1e-10)
    assert center.alpha == pytest.approx(c, abs=1e-12)
    assert center.beta == pytest.approx(1.0, abs=1e-12)
    assert center.delta == pytest.approx(math.sqrt(2 * c), abs=1e-10)
    # the sign of u follows the warm start
    assert float(taylor_center(f, f.theta0, u=torch.tensor([-1.0, 0.0], dtype=torch.float64)).u[0]) < 0


def test_taylor_center_sign_alignment_keeps_u_continuous(tiny_mlp):
    c0 = taylor_center(tiny_mlp, tiny_mlp.theta0, eig_tol=1e-8)
    c1 = taylor_center(tiny_mlp, tiny_mlp.theta0 - 1e-3 * c0.grad, u=-c0.u, eig_tol=1e-8)
    assert float(c1.u @ c0.u) < -0.99


# -- the two-variable model -----------------------------------------------------
def test_two_variable_model_shows_the_four_stages_in_order():
    traj = ss.two_variable_model(lr=0.01, alpha=1.0, beta=1.0, steps=3000)
    order = [stage for _, stage in traj.stage_starts()]
    assert order[:8] == [1, 2, 3, 4, 1, 2, 3, 4]
    # stage 2 really is a blow-up (|x| grows) and stage 4 a return (|x| shrinks)
    ax = np.abs(traj.x)
    growth = ax[1:] / ax[:-1]
    assert (growth[traj.stage[:-1] == 2] >= 1).all()
    assert (growth[traj.stage[:-1] == 4] < 1).all()
    # y rises in stages 1-2 and falls in 3-4
    dy = np.diff(traj.y)
    assert (dy[np.isin(traj.stage[:-1], (1, 2))] > 0).all()
    assert (dy[np.isin(traj.stage[:-1], (3, 4))] <= 0).all()


@pytest.mark.parametrize("lr,alpha,beta", [(0.01, 1.0, 1.0), (0.01, 0.5, 20.0), (0.05, 0.2, 5.0)])
def test_two_variable_model_oscillation_settles_on_average_at_the_equilibrium(lr, alpha, beta):
    traj = ss.two_variable_model(lr=lr, alpha=alpha, beta=beta, steps=4000)
    assert traj.diverged_at is None
    # over the last complete cycle, x² averages 2α/β
    assert traj.mean_x2() == pytest.approx(2 * alpha / beta, rel=0.05)
    # the exact identity behind it: Σ (y_{t+1} - y_t) = η Σ (α - ½βx_t²)
    T = len(traj.x) - 1
    identity = 2 * alpha / beta - 2 * (traj.y[T] - traj.y[0]) / (lr * beta * T)
    assert traj.mean_x2(0, T) == pytest.approx(identity, rel=1e-9)


def test_two_variable_model_reports_divergence_and_validates():
    traj = ss.two_variable_model(lr=1.5, alpha=5.0, beta=1e-6, steps=500, y0=1.0)
    assert traj.diverged_at is not None and len(traj.x) == traj.diverged_at
    for kwargs, name in [(dict(lr=-0.1), "lr"), (dict(alpha=0.0), "alpha"), (dict(beta=-1.0), "beta"),
                         (dict(steps=0), "steps")]:
        args = dict(lr=0.01, alpha=1.0, beta=1.0, steps=10) | kwargs
        with pytest.raises(ValueError, match=name):
            ss.two_variable_model(**args)


def test_stages_table():
    assert ss.stages([0.0, 0.0, 2.0, 2.0], [-1.0, 1.0, 1.0, -1.0], alpha=1.0, beta=1.0).tolist() == [1, 2, 3, 4]


# -- the stable set and the two dynamics ----------------------------------------
# The toy L(a, b) = ½(1 + b)a² - c b, c = 0.02, from (0.1, 1.5): M at lr = 1 (2/η = 2) is {a = 0, b <= 1}.
def test_projection_lands_on_the_stable_set_of_an_explicit_toy():
    f = sharpening_toy(s0=1.0, c=0.02, x0=0.1, y0=1.5)
    center = ss.project_to_stable_set(f, f.theta0, lr=1.0, iterations=6)
    a, b = center.theta.tolist()
    assert abs(a) < 1e-10 and b == pytest.approx(1.0, abs=1e-10)
    assert center.sharpness == pytest.approx(2.0, abs=1e-9)
    # below the threshold only the Newton steps along u act: they zero a (the gradient along u)
    # and, since u tilts towards b off the floor, move b a little (0.0065), keeping S < 2/η
    start = torch.tensor([0.1, 0.5], dtype=torch.float64)
    inside = ss.project_to_stable_set(f, start, lr=1.0, iterations=6)
    assert abs(float(inside.theta[0])) < 1e-10 and inside.sharpness < 2.0
    assert float((inside.theta - start).norm()) < 0.11


def test_constrained_step_follows_the_boundary_of_the_toy():
    f = sharpening_toy(s0=1.0, c=0.02, x0=0.1, y0=1.5)
    center = ss.project_to_stable_set(f, f.theta0, lr=1.0, iterations=6)
    nxt = ss.constrained_step(f, center, lr=1.0, iterations=6)
    # GD pushes b up by η c; the projection pulls it back to b = 1
    assert nxt.theta.tolist() == pytest.approx([0.0, 1.0], abs=1e-10)


def test_predicted_step_is_linear_gd_on_a_quadratic():
    q = quadratic([3.0, 1.0, 0.5], dtype="float64")
    center = taylor_center(q, q.theta0)
    v = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
    expected = v - 0.1 * (q.A @ v)
    torch.testing.assert_close(ss.predicted_step(q, v, center, lr=0.1), expected, rtol=1e-12, atol=1e-14)


def test_find_edge_validates():
    with pytest.raises(TypeError, match="problem"):
        ss.find_edge(lambda th: th.sum(), GD(0.1), 10)
    with pytest.raises(ValueError, match="lr"):
        ss.find_edge(chebyshev_regression(), GD(-0.1), 10, progress=False)
    with pytest.raises(ValueError, match="stateless"):
        ss.find_edge(chebyshev_regression(), HeavyBall(0.1, 0.9), 10, progress=False)
    with pytest.warns(DeprecationWarning, match="GD"):
        assert ss.find_edge(quadratic([3.0]), 0.7, 5, progress=False).step == 0


def test_find_edge_on_a_quadratic_never_reaching_the_edge():
    q = quadratic([3.0, 1.0])
    crossing = ss.find_edge(q, GD(0.5), max_steps=50, progress=False)  # 2/η = 4 > 3
    assert crossing.step is None
    crossing = ss.find_edge(q, GD(0.7), max_steps=50, progress=False)  # 2/η ≈ 2.86 < 3
    assert crossing.step == 0


def test_seed_oscillation_puts_the_toy_on_its_floor_and_displaces_it_along_u():
    # L(a, b) = ½(1 + b)a² - c b: the valley floor along u is a = 0, where u = e_a. Off the floor u tilts
    # by about a/(1 + b), so the Newton step measures the oscillation as a to within a few parts in 1000
    f = sharpening_toy(s0=1.0, c=0.02, x0=0.1, y0=1.5)
    point = torch.tensor([1e-3, 1.2], dtype=torch.float64)
    start = ss.seed_oscillation(f, point, 1e-4)
    assert start.x_before == pytest.approx(1e-3, rel=0.01)
    assert start.center.theta.tolist() == pytest.approx([0.0, 1.2], abs=1e-6)
    # three Newton steps along a u that tilts as the point moves: u·∇L falls from 2e-3 to about 1e-10
    assert abs(float(start.center.u @ start.center.grad)) < 1e-9
    torch.testing.assert_close(start.theta - start.center.theta, torch.tensor([1e-4, 0.0], dtype=torch.float64),
                               rtol=0, atol=1e-12)
    # the sign convention: the largest entry of u is positive, whatever the warm start
    flipped = ss.seed_oscillation(f, point, 1e-4, u=torch.tensor([-1.0, 0.0], dtype=torch.float64))
    assert float(flipped.center.u[0]) > 0
    torch.testing.assert_close(flipped.theta, start.theta, rtol=0, atol=1e-12)
    with pytest.raises(TypeError, match="problem"):
        ss.seed_oscillation(lambda th: th.sum(), torch.zeros(2), 1e-4)


# -- through the one loop --------------------------------------------------------
def test_find_edge_finds_the_first_step_a_dense_eigendecomposition_finds():
    toy = sharpening_toy()  # S = 3.9 + y near x = 0; GD at η = 0.5 sharpens to 2/η = 4
    gd = run(toy, GD(0.5), 200, num_eigs=0, save_every=1, progress=False)
    dense = [float(torch.linalg.eigvalsh(hessian(toy, th))[-1]) for th in gd.snapshots]
    first = next(t for t, s in enumerate(dense) if s >= 4.0)
    for every in (1, 7, 50):  # the coarse pass overshoots, the fine pass steps back
        crossing = ss.find_edge(toy, GD(0.5), 200, measure_every=every, eig_tol=1e-10, progress=False)
        assert crossing.step == first
        torch.testing.assert_close(crossing.theta, gd.snapshots[first], rtol=0, atol=0)
        assert crossing.sharpness == pytest.approx(dense[first], rel=1e-9)


def toy():
    """The toy of the tests above: L(a, b) = ½(1 + b)a² - 0.02 b from (0.1, 1.5)."""
    return sharpening_toy(s0=1.0, c=0.02, x0=0.1, y0=1.5)


def test_track_is_gd_gradient_flow_and_the_predicted_dynamics_side_by_side():
    f = toy()
    lr, steps = 1.0, 6
    lock = ss.track(f, GD(lr), f.theta0, steps, progress=False)
    assert set(lock.runs) == {"gd", "pred", "gf"} and len(lock.step) == steps + 1
    gd = run(f, GD(lr), steps, num_eigs=0, save_every=1, progress=False)
    np.testing.assert_array_equal(lock.gd_loss, gd.loss)
    # the primitives, composed by hand: the constrained trajectory and the displacement it carries
    dagger = ss.project_to_stable_set(f, f.theta0, lr)
    v = f.theta0 - dagger.theta
    for t in range(steps + 1):
        assert lock.dagger_sharpness[t] == pytest.approx(dagger.sharpness, rel=1e-12)
        assert lock.pred_x[t] == pytest.approx(float(dagger.u @ v), rel=1e-9, abs=1e-15)
        assert lock.gd_x[t] == pytest.approx(float(dagger.u @ (gd.snapshots[t] - dagger.theta)), rel=1e-9,
                                             abs=1e-15)
        v = ss.predicted_step(f, v, dagger, lr)
        dagger = ss.constrained_step(f, dagger, lr)


def test_a_lockstep_saves_and_loads_exactly(tmp_path):
    f = toy()
    lock = ss.track(f, GD(1.0), f.theta0, 4, progress=False)
    back = ss.Lockstep.load(lock.save(tmp_path / "lock"))
    assert sorted(p.name for p in (tmp_path / "lock").iterdir()) == ["gd.npz", "gf.npz", "pred.npz"]
    for name, value in vars(lock).items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(getattr(back, name), value, err_msg=name)
    assert (back.lr, back.diverged_at, set(back.runs)) == (lock.lr, lock.diverged_at, set(lock.runs))
    with pytest.raises(ValueError, match="no saved Lockstep"):
        ss.Lockstep.load(tmp_path)


def test_the_constrained_trajectory_is_a_method_of_its_own():
    f = toy()
    h = run(f, ss.ConstrainedTrajectory(1.0), 5, num_eigs=1, measure_every=1, save_every=1, progress=False)
    np.testing.assert_allclose(h.sharpness, 2.0, rtol=1e-8)  # on the boundary of M: S = 2/η
    np.testing.assert_allclose(h.extras["sharpness"], h.sharpness, rtol=1e-8)
    assert h.label == "constrained trajectory (lr=1)"


def test_track_and_find_edge_keep_their_old_signatures_for_one_release():
    f = toy()
    with pytest.warns(DeprecationWarning, match="GD"):
        old = ss.track(f, 1.0, theta=f.theta0, steps=2, gradient_flow=False, progress=False)
    np.testing.assert_array_equal(old.gd_loss, ss.track(f, GD(1.0), f.theta0, 2, gradient_flow=False,
                                                        progress=False).gd_loss)
    with pytest.warns(DeprecationWarning, match="measure_every"):
        ss.find_edge(sharpening_toy(), GD(0.5), 100, check_every=10, progress=False)
