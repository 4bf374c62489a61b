r"""Running GD up to the edge, seeding its oscillation, and following it in lockstep with the theory.

:func:`find_edge` runs GD until the sharpness first reaches :math:`2/\eta`;
:func:`seed_oscillation` replaces the oscillation along :math:`u` at that point
(rounding noise after a single-precision run) by a chosen one; and
:func:`track` runs GD, gradient flow and the predicted dynamics (which carry
the constrained trajectory) side by side from there. All three are calls of
:func:`eoslab.run` and :func:`eoslab.compare`.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .._validation import check_int, check_real, check_vector, no_other_keywords, renamed
from ..flows import GradientFlow
from ..history import History
from ..methods import Method
from ..optim import GD
from ..problems import Problem
from ..runs import compare, run, until_sharpness_reaches
from .stable_set import PredictedDynamics
from .taylor import TaylorCenter, taylor_center

__all__ = ["EdgeCrossing", "Lockstep", "SeededStart", "find_edge", "seed_oscillation", "track"]


def _as_method(method, where):
    """A :class:`~eoslab.methods.Method`; a bare step size (the old signature) becomes ``GD(lr)``, with a warning."""
    if isinstance(method, Method):
        return method
    if isinstance(method, (int, float)) and not isinstance(method, bool):
        warnings.warn(f"{where}: pass the method (eoslab.optim.GD(lr)) instead of a step size; a bare step size "
                      "will be refused in the next release", DeprecationWarning, stacklevel=3)
        return GD(method)
    raise TypeError(f"method must be an eoslab Method such as eoslab.optim.GD(lr), got {type(method).__name__}")


@dataclass
class EdgeCrossing:
    """Where :func:`find_edge` stopped.

    Attributes
    ----------
    step : int
        The first GD step at which ``S >= 2/η`` (``None`` if never reached).
    theta : torch.Tensor
        The iterate at that step (or the last one).
    u : torch.Tensor
        Its top eigenvector.
    sharpness : float
    checked_step, checked_sharpness : ndarray
        The sharpness measurements taken on the way.
    """

    step: int | None
    theta: torch.Tensor
    u: torch.Tensor
    sharpness: float
    checked_step: np.ndarray
    checked_sharpness: np.ndarray


def find_edge(problem, method, max_steps, *, measure_every=20, eig_tol=1e-4, device=None, dtype=None, progress=True,
              **deprecated):
    r"""Run ``method`` (GD) until the sharpness first reaches its threshold :math:`2/\eta`.

    Two calls of :func:`eoslab.run` with ``stop=until_sharpness_reaches()``:
    the first measures the sharpness every ``measure_every`` steps
    (warm-started Lanczos); once a measurement reaches the threshold, the
    second restarts from the last measurement below it and measures every
    step, so the returned step is the first one with :math:`S \ge 2/\eta`.

    Parameters
    ----------
    problem : Problem
    method : Method
        A stateless update rule, typically ``GD(lr)`` (a bare ``lr`` still works, with a warning).
    max_steps : int
        Give up after this many steps (``step`` is then ``None``).
    measure_every : int
        Steps between the first run's measurements (``check_every`` before).
    eig_tol : float
        Eigen-solver tolerance (``tol`` before).
    device, dtype :
        Where to run (default: the problem's).
    progress : bool
        Show a progress bar.

    Returns
    -------
    EdgeCrossing

    Examples
    --------
    >>> from eoslab.problems import quadratic
    >>> find_edge(quadratic([1.0]), GD(2.5), 10, progress=False).step   # 1 >= 2/2.5 from the start
    0
    """
    method = _as_method(method, "find_edge")
    measure_every = renamed(deprecated, "check_every", "measure_every", "find_edge", value=measure_every,
                            default=True)
    eig_tol = renamed(deprecated, "tol", "eig_tol", "find_edge", value=eig_tol, default=True)
    no_other_keywords(deprecated, "find_edge")
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be an eoslab Problem, got {type(problem).__name__}")
    max_steps = check_int("max_steps", max_steps, low=1)
    measure_every = check_int("measure_every", measure_every, low=1)
    problem = problem.to(device=device, dtype=dtype)
    if method.init(problem.theta0, problem) is not None:
        raise ValueError(f"find_edge restarts from a measured point, so it needs a stateless update rule such as GD; "
                         f"{method.label} carries a state")
    below = [0, problem.theta0]  # the last measurement below the threshold: (step, point)

    def remember(view):
        if view.measured and view.sharpness < view.threshold:
            below[:] = [view.t, view.theta]

    kwargs = dict(eig_tol=eig_tol, stop=until_sharpness_reaches(), divergence_factor=math.inf)
    coarse = run(problem, method, max_steps, measure_every=measure_every, callback=remember, progress=progress,
                 **kwargs)
    checked_step, checked = [coarse.eig_step], [coarse.sharpness]
    last = coarse
    step = None
    if coarse.stopped_at is not None:
        t0, theta0 = below
        fine = run(problem, method, max_steps - t0, theta0=theta0, measure_every=1, progress=False, **kwargs)
        checked_step.append(t0 + fine.eig_step)
        checked.append(fine.sharpness)
        last = fine
        if fine.stopped_at is not None:
            step = t0 + fine.stopped_at
    u = last.eigenvectors[:, 0] if last.eigenvectors is not None else None
    return EdgeCrossing(step, last.theta, u, float(last.sharpness[-1]) if last.sharpness.size else math.nan,
                        np.concatenate(checked_step), np.concatenate(checked))


@dataclass
class SeededStart:
    r"""Where :func:`seed_oscillation` put the start.

    Attributes
    ----------
    theta : torch.Tensor
        The start: the valley floor of the given point, displaced by ``x0`` along ``u``.
    center : TaylorCenter
        At the valley floor (:math:`u\cdot\nabla L = 0` there), so ``center.u`` is the ``u`` of the seed.
    x0 : float
        The chosen oscillation.
    x_before : float
        The oscillation the given point had, :math:`(u\cdot\nabla L)/S` there: its distance along
        ``u`` from the valley floor, by a Newton step.
    """

    theta: torch.Tensor
    center: TaylorCenter
    x0: float
    x_before: float


def _problem_and_point(problem, theta, device, dtype):
    """The problem moved to ``device``/``dtype`` and ``theta`` checked against it and moved with it."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be an eoslab Problem, got {type(problem).__name__}")
    problem = problem.to(device=device, dtype=dtype)
    return problem, check_vector("theta", theta, size=problem.num_params).detach().to(problem.theta0)


def seed_oscillation(problem, theta, x0, *, u=None, iterations=3, eig_tol=1e-10, device=None, dtype="float64",
                     **deprecated):
    r"""Put ``theta`` on its valley floor along the top eigenvector and displace it by ``x0`` along it.

    The oscillation along :math:`u` at the first step above :math:`2/\eta`
    is whatever the run up to it left there; after thousands of
    single-precision steps it is rounding noise, a different number on each
    computer, and the blow-up that follows starts from it. This function
    replaces it by a chosen one. Newton steps along :math:`u`,
    :math:`\theta \leftarrow \theta - \frac{u\cdot\nabla L}{S}\,u`, bring the point
    to the floor of the valley along :math:`u` (where :math:`u\cdot\nabla L = 0`);
    the start is that floor point plus :math:`x_0 u`. The sign of :math:`u`
    is fixed by making its largest entry (in absolute value) positive, so
    that ``x0`` means the same on every computer.

    Parameters
    ----------
    problem : Problem
    theta : torch.Tensor
        Typically :func:`find_edge`'s point.
    x0 : float
        The oscillation to seed.
    u : torch.Tensor, optional
        Warm start for the top eigenvector (e.g. :attr:`EdgeCrossing.u`).
    iterations : int
        Newton steps (each costs one :func:`~eoslab.curvature.taylor_center`).
    eig_tol : float
        Eigen-solver residual tolerance.
    device, dtype :
        Where to compute (default ``float64``, the precision of :func:`track`).

    Returns
    -------
    SeededStart
    """
    eig_tol = renamed(deprecated, "tol", "eig_tol", "seed_oscillation", value=eig_tol, default=True)
    no_other_keywords(deprecated, "seed_oscillation")
    x0 = check_real("x0", x0)
    iterations = check_int("iterations", iterations, low=1)
    problem, theta = _problem_and_point(problem, theta, device, dtype)
    c = taylor_center(problem, theta, None if u is None else u.detach().to(problem.theta0), eig_tol=eig_tol)
    if float(c.u[c.u.abs().argmax()]) < 0:
        c = replace(c, u=-c.u)  # grad_sharpness = ∇³L[u, u] does not change sign
    x_before = float(c.u @ c.grad) / c.sharpness
    for _ in range(iterations):
        c = taylor_center(problem, c.theta - (float(c.u @ c.grad) / c.sharpness) * c.u, c.u, eig_tol=eig_tol)
    return SeededStart(theta=c.theta + x0 * c.u, center=c, x0=x0, x_before=x_before)


@dataclass
class Lockstep:
    r"""What :func:`track` recorded, one entry per step ``0..T``.

    For each process ``p`` in ``gd`` (gradient descent), ``pred`` (the
    predicted dynamics :math:`\theta^\dagger + v`), ``dagger`` (the
    constrained trajectory) and ``gf`` (gradient flow), the attributes
    ``p_loss`` and ``p_sharpness`` hold the loss and sharpness. Also:

    Attributes
    ----------
    gd_x, pred_x : ndarray
        The oscillation :math:`x = u^\dagger\cdot(\theta - \theta^\dagger)`.
    gd_dist, pred_dist : ndarray
        :math:`\|\theta - \theta^\dagger\|`.
    gd_gf_dist : ndarray
        :math:`\|\theta_{GD} - \theta_{GF}\|`.
    alpha, beta, delta : ndarray
        At :math:`\theta^\dagger_t`.
    lr : float
    diverged_at : int or None
        First step at which a process left the finite numbers.
    runs : dict of str -> History
        The runs themselves (``"gd"``, ``"pred"``, ``"gf"``), from :func:`eoslab.compare`.
    """

    step: np.ndarray
    lr: float
    gd_loss: np.ndarray
    gd_sharpness: np.ndarray
    gd_x: np.ndarray
    gd_dist: np.ndarray
    pred_loss: np.ndarray
    pred_sharpness: np.ndarray
    pred_x: np.ndarray
    pred_dist: np.ndarray
    dagger_loss: np.ndarray
    dagger_sharpness: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    delta: np.ndarray
    gf_loss: np.ndarray
    gf_sharpness: np.ndarray
    gd_gf_dist: np.ndarray
    diverged_at: int | None = None
    runs: dict = field(default_factory=dict)

    @property
    def threshold(self):
        return 2.0 / self.lr

    def save(self, directory):
        """Write the runs to ``directory``, one :meth:`History.save` file each (``gd.npz``, ``pred.npz``,
        ``gf.npz``); :meth:`load` rebuilds the whole view from them, exactly. Returns the directory."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, history in self.runs.items():
            history.save(directory / f"{name}.npz", attributes={"record": "eoslab.Lockstep", "lr": self.lr})
        return directory

    @classmethod
    def load(cls, directory):
        """Read a view written by :meth:`save`."""
        directory = Path(directory)
        runs = {name: directory / f"{name}.npz" for name in ("gd", "pred", "gf")}
        runs = {name: path for name, path in runs.items() if path.exists()}
        if "gd" not in runs or "pred" not in runs:
            raise ValueError(f"{directory} holds no saved Lockstep (gd.npz and pred.npz)")
        setting = History.load_attributes(runs["gd"])
        if setting.get("record") != "eoslab.Lockstep":
            raise ValueError(f"{runs['gd']} was not saved by Lockstep.save")
        return _lockstep({name: History.load(path) for name, path in runs.items()}, float(setting["lr"]))


def track(problem, method, theta0=None, steps=None, *, iterations=3, eig_tol=1e-8, gradient_flow=True, device=None,
          dtype="float64", progress=True, **deprecated):
    r"""GD, gradient flow, the constrained trajectory and the predicted dynamics, side by side.

    One call of :func:`eoslab.compare`: ``method`` (GD) and gradient flow
    start from ``theta0`` (typically :func:`seed_oscillation`'s point), and
    :class:`~eoslab.self_stabilization.PredictedDynamics` from the same point,
    which it splits into the constrained trajectory's start
    :math:`\theta^\dagger_0 = \mathrm{proj}_{\mathcal M}(\theta_0)` and
    :math:`v_0 = \theta_0 - \theta^\dagger_0`. Every run measures its sharpness
    at every step; the losses, sharpnesses, oscillations and distances are
    gathered in a :class:`Lockstep`. The default ``float64`` follows the
    authors' protocol: single precision blurs the third derivatives.

    Parameters
    ----------
    problem : Problem
    method : Method
        Typically ``GD(lr)`` (a bare ``lr`` still works, with a warning).
    theta0 : torch.Tensor
        The start (``theta`` before).
    steps : int
    iterations : int
        Linearized projection steps per constrained step.
    eig_tol : float
        Eigen-solver residual tolerance (all eigen-solves are warm-started).
    gradient_flow : bool
        Also integrate gradient flow (costs a few gradients per step).
    device, dtype :
        Where to run.
    progress : bool

    Returns
    -------
    Lockstep
    """
    method = _as_method(method, "track")
    theta0 = renamed(deprecated, "theta", "theta0", "track", value=theta0)
    no_other_keywords(deprecated, "track")
    if theta0 is None or steps is None:
        raise TypeError("track needs the start theta0 and the number of steps")
    steps = check_int("steps", steps, low=1)
    problem, theta0 = _problem_and_point(problem, theta0, device, dtype)
    lr = method.lr
    methods = {"gd": method, "pred": PredictedDynamics(lr, iterations=iterations, eig_tol=eig_tol)}
    if gradient_flow:
        methods["gf"] = GradientFlow(lr)  # RK4 with substeps of at most 0.5 / (lr S)
    runs = compare(problem, methods, steps, theta0=theta0, num_eigs=1, measure_every=1, eig_tol=eig_tol,
                   divergence_factor=math.inf, progress=progress)
    return _lockstep(runs, lr)


def _lockstep(runs, lr):
    """The :class:`Lockstep` view of :func:`track`'s runs (``"gd"``, ``"pred"`` and, optionally, ``"gf"``)."""
    n = min(len(h.loss) for h in runs.values())
    stops = [h.diverged_at for h in runs.values() if h.diverged_at is not None]
    gd, pred, e = runs["gd"], runs["pred"], runs["pred"].extras
    dagger = torch.as_tensor(e["dagger_theta"][:n])
    u = torch.as_tensor(e["dagger_u"][:n])
    away = gd.snapshots[:n].to(dagger) - dagger
    nan = np.full(n, np.nan)
    gf = runs.get("gf")
    return Lockstep(
        step=np.arange(n), lr=lr,
        gd_loss=gd.loss[:n], gd_sharpness=gd.sharpness[:n],
        gd_x=(u * away).sum(dim=1).numpy(), gd_dist=away.norm(dim=1).numpy(),
        pred_loss=pred.loss[:n], pred_sharpness=pred.sharpness[:n], pred_x=e["x"][:n], pred_dist=e["dist"][:n],
        dagger_loss=e["dagger_loss"][:n], dagger_sharpness=e["dagger_sharpness"][:n],
        alpha=e["alpha"][:n], beta=e["beta"][:n], delta=e["delta"][:n],
        gf_loss=nan if gf is None else gf.loss[:n], gf_sharpness=nan if gf is None else gf.sharpness[:n],
        gd_gf_dist=nan if gf is None else (gd.snapshots[:n] - gf.snapshots[:n]).norm(dim=1).numpy(),
        diverged_at=min(stops) if stops else None, runs=runs,
    )
