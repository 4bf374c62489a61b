"""The one loop: :func:`run` drives any :class:`~eoslab.methods.Method` and records a :class:`~eoslab.history.History`.

Everything that advances :math:`\\theta` step by step goes through
:func:`run`: GD and its variants, mini-batch SGD, the flows, and the
chapters' own processes. It records the loss every step, the top Hessian
eigenvalues and any ``measures`` on one schedule, parameter snapshots,
stops cleanly on divergence, and accepts a ``stop`` condition and a
``callback``, so "run until the sharpness reaches ``2/η``" is a call of
:func:`run` with ``stop=until_sharpness_reaches()``. :func:`compare` runs
several methods from one start.
"""
from __future__ import annotations

import hashlib

import torch

from ._validation import check_int, check_real, no_other_keywords, renamed
from .batches import BatchSampler
from .checkpoints import load_checkpoint, save_checkpoint
from .curvature import HessianOperator
from .flows import Flow
from .history import History
from .methods import Method, StepInfo
from .recorder import Recorder, StepView

__all__ = ["History", "StepView", "compare", "run", "until_sharpness_reaches"]


def until_sharpness_reaches(level=None):
    """A ``stop`` condition for :func:`run`: the first measured sharpness at or above ``level``.

    ``level`` defaults to the method's threshold (``2/η`` for GD). The run
    then ends at that measurement, with ``history.stopped_at`` set.

    Examples
    --------
    >>> from eoslab.problems import quadratic
    >>> from eoslab.optim import GD
    >>> h = run(quadratic([1.0, 3.0]), GD(0.5), 10, measure_every=1, stop=until_sharpness_reaches(2.5),
    ...         progress=False)
    >>> h.stopped_at
    0
    """
    if level is not None:
        level = check_real("level", level)

    def stop(view):
        return view.measured and view.sharpness >= (view.threshold if level is None else level)

    return stop


def _with_integrator(method, old, where):
    """The deprecated ``alpha=``/``max_substep=`` of the old ``solve``: set on a copy of the flow."""
    scale = renamed(old, "alpha", "substep_scale", where)
    max_substep = old.pop("max_substep", None)
    if scale is None and max_substep is None:
        return method
    if not isinstance(method, Flow):
        return method  # an optimizer: the integrator settings are the flows' only
    return method.with_integrator(substep_scale=scale, max_substep=max_substep)


def _fingerprint(theta):
    """A short hash of a start point's values, for a checkpoint's signature: a run from another initialization
    (another seed, another architecture of the same size) must not continue this one."""
    theta = torch.as_tensor(theta).detach().cpu().contiguous()
    return hashlib.sha1(theta.numpy().tobytes()).hexdigest()[:16]


def _settings(method):
    """A method's own settings (its plain attributes: ``lr``, ``beta``, ``curvature``...), for a checkpoint's
    signature: its label need not name them all, and a run continued under other settings would be two runs."""
    return {key: value for key, value in sorted(vars(method).items())
            if isinstance(value, (bool, int, float, str, type(None)))}


def run(problem, method, steps, *, theta0=None, measure_every=None, num_eigs=1, eig_tol=1e-3, measures=None,
        batch_size=None, replacement=False, save_every=None, stop=None, callback=None, divergence_factor=1e6,
        checkpoint=None, checkpoint_every=None, device=None, dtype=None, seed=0, progress=True, **deprecated):
    """Run ``method`` on ``problem`` for ``steps`` steps, recording a :class:`~eoslab.history.History`.

    Every step records the loss and gradient norm at the current point;
    on the measurement schedule (every ``measure_every`` steps and the last)
    the top ``num_eigs`` Hessian eigenvalues of the full-batch loss and
    every ``measures`` entry. An :class:`~eoslab.curvature.EigenTracker`
    does the eigen-solves: certified (cold) at the first measurement and
    every ``CERTIFY_EVERY``-th (10th) after it, warm-started from the last
    Ritz vectors between (see :func:`eoslab.top_eigenpairs`). A run that diverges (below) stops there
    and reports ``diverged_at``; ``stop`` ends it early (``stopped_at``).

    Parameters
    ----------
    problem : Problem
        What to minimize.
    method : Method
        An update rule (``eoslab.optim.GD(lr=0.1)``), a flow
        (``eoslab.flows.GradientFlow(0.1)``) or any other
        :class:`~eoslab.methods.Method`.
    steps : int
        Number of steps (for a flow: the final time, in GD steps), >= 0.
    theta0 : torch.Tensor, optional
        Start here instead of ``problem.theta0``.
    measure_every : int, optional
        Steps between measurements; default ``max(1, steps // 100)``.
    num_eigs : int
        Top eigenvalues to track (0 to skip curvature).
    eig_tol : float
        Relative residual tolerance of each eigen-solve (see :func:`eoslab.top_eigenpairs`).
    measures : dict of str -> callable, optional
        ``{name: f}``; ``f(view)`` gets the :class:`StepView` at each measurement and returns a float
        or a dict of floats (recorded as ``name.key``), in ``History.measured``.
    batch_size : int, optional
        Mini-batch size for stochastic steps; ``None`` for full-batch.
    replacement : bool
        Draw batches with replacement (default: reshuffled epochs).
    save_every : int, optional
        Keep a copy of the parameters (and the method's buffer) every ``save_every`` steps.
    stop : callable, optional
        ``stop(view) -> bool``, asked at every step after recording; e.g. :func:`until_sharpness_reaches`.
    callback : callable, optional
        ``callback(view)``, called at every step after recording.
    divergence_factor : float
        A run diverges when its loss, gradient or point becomes non-finite, or when it explodes: its loss
        grows ``divergence_factor``-fold from its initial value (> 1), in absolute value (a loss unbounded
        below explodes too), while its point leaves the ball of radius ``10 max(‖θ₀‖, 1)``; or a flow's
        oscillation (:meth:`~eoslab.methods.Method.displacement`) outgrows that ball. The ball keeps a run
        that starts near a minimum, whose loss can grow a million-fold and settle, from counting as
        diverged. ``math.inf`` counts only non-finite numbers.
    checkpoint : str or path, optional
        Keep the run's progress in this file (see :mod:`eoslab.checkpoints`): every
        ``checkpoint_every`` steps and at the end. If the file exists, the run continues from it,
        and gives the same history, bit for bit, as a run that was never interrupted; a finished
        run's checkpoint returns its history at once. Only a run with the same settings may use it.
        ``measures``, ``stop`` and ``callback`` are not stored: pass the same ones again.
    checkpoint_every : int, optional
        Steps between checkpoints (default ``max(1, steps // 20)``).
    device, dtype : optional
        Move the problem (e.g. ``device="cuda"``, ``dtype="float64"``) before running.
    seed : int
        Seeds the batch sampler and the eigensolver's random start.
    progress : bool
        Show a progress bar.

    Returns
    -------
    History
        An interrupt (Ctrl-C) ends the run cleanly: the history holds what was recorded, with
        ``interrupted=True``, and a ``checkpoint`` lets the same call continue it.

    Examples
    --------
    >>> from eoslab.problems import quadratic
    >>> from eoslab.optim import GD
    >>> h = run(quadratic([1.0]), GD(lr=2.5), steps=100, progress=False)
    >>> h.diverged_at is not None
    True
    """
    if not isinstance(method, Method):
        raise TypeError(f"method must be an eoslab Method (an optimizer or a flow), got {type(method).__name__}")
    method = _with_integrator(method, deprecated, "run")
    no_other_keywords(deprecated, "run")
    recorder = Recorder(problem, method, steps, measure_every=measure_every, num_eigs=num_eigs, eig_tol=eig_tol,
                         measures=measures, save_every=save_every, divergence_factor=divergence_factor, seed=seed,
                         device=device, dtype=dtype, progress=progress)
    problem, steps = recorder.problem, recorder.steps
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, low=1, high=problem.num_examples)
    if not isinstance(replacement, bool):
        raise TypeError(f"replacement must be True or False, got {replacement!r}")
    for name, fn in (("stop", stop), ("callback", callback)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    sampler = None
    if batch_size is not None and batch_size < problem.num_examples:
        sampler = BatchSampler(problem.num_examples, batch_size, replacement, recorder.seed, problem.device)

    every, saved = None, None
    if checkpoint is not None:
        every = max(1, steps // 20) if checkpoint_every is None else check_int("checkpoint_every", checkpoint_every,
                                                                                 low=1)
        signature = dict(method=method.label, settings=_settings(method), problem=problem.name,
                         num_params=problem.num_params, start=_fingerprint(theta0 if theta0 is not None
                                                                              else problem.theta0),
                         dtype=str(problem.dtype), steps=steps, batch_size=batch_size, replacement=replacement,
                         measure_every=recorder.measure_every, num_eigs=recorder.num_eigs, eig_tol=recorder.eig_tol,
                         save_every=recorder.save_every, seed=recorder.seed, measures=sorted(recorder.measures))
        saved = load_checkpoint(checkpoint, signature, problem.device)
    first = 0
    if saved is not None:
        recorder.load_state_dict(saved["recorder"])
        recorder.diverged_at, recorder.stopped_at = saved["diverged_at"], saved["stopped_at"]
        if saved["finished"]:
            recorder.bar.close()
            return recorder.history(batch_size=batch_size)
        first, theta, state = saved["t"], saved["theta"], saved["state"]
        if sampler is not None:
            sampler.load_state_dict(saved["sampler"])
        if recorder.progress:
            recorder.bar.update(first)
    else:
        theta, state = method.start(problem, recorder.start(theta0))

    def keep(t_next, finished):
        save_checkpoint(checkpoint, dict(signature=signature, t=t_next, theta=theta, state=state, finished=finished,
                                         recorder=recorder.state_dict(), diverged_at=recorder.diverged_at,
                                         stopped_at=recorder.stopped_at,
                                         sampler=None if sampler is None else sampler.state_dict()))

    try:
        for t in range(first, steps + 1):
            batch = sampler() if sampler is not None else None
            loss_fn = problem if batch is None else problem.batch_loss(batch)
            operator = None
            if method.needs_hessian and bool(torch.isfinite(theta).all()):  # one graph for the gradient and Hv
                operator = HessianOperator(loss_fn, theta)
                loss, grad = operator.value, operator.gradient
            else:
                loss, grad = problem.value_and_grad(theta, batch)
            if not recorder.record(t, theta, state, loss, grad, full_batch=batch is None,
                                   operator=operator if batch is None else None):  # diverged
                break
            if callback is not None or stop is not None:
                view = recorder.view(t, theta, state)
                if callback is not None:
                    callback(view)
                if stop is not None and t < steps and stop(view):
                    recorder.stopped_at = t
                    break
            if t == steps:
                break
            theta, state = method.step(problem, theta, state,
                                       StepInfo(t, loss, grad, loss_fn, recorder.sharpness, operator))
            theta = theta.detach()
            size = method.step_size(state)
            if size is not None:
                recorder.step_sizes.append(float(size))
            if every is not None and (t + 1) % every == 0:
                keep(t + 1, finished=False)
        if checkpoint is not None:
            keep(t, finished=True)
    except KeyboardInterrupt:  # what was recorded is returned; a checkpoint continues from its last save
        recorder.interrupted = True
    finally:
        recorder.bar.close()
    return recorder.history(batch_size=batch_size)


def compare(problem, methods, steps, *, save_every=1, **kwargs):
    r"""Run several methods (optimizers, flows, any :class:`~eoslab.methods.Method`) from the same start.

    Parameters
    ----------
    problem : Problem
    methods : dict or list
        ``{label: method}``, or a list that uses each method's ``label``.
        Two methods with the same label are an error (one would hide the other).
    steps : int
    save_every : int
        Parameter snapshots for distances and paths (default every step).
    **kwargs :
        Passed to :func:`run` (``theta0``, ``measure_every``, ``num_eigs``,
        ``device``, ``dtype``, ``progress``, ...).

    Returns
    -------
    dict
        label -> :class:`~eoslab.history.History`, in the order given, ready for
        :func:`~eoslab.plotting.plot_history`.

    Examples
    --------
    >>> from eoslab.optim import GD
    >>> from eoslab.flows import PrincipalFlow
    >>> from eoslab.problems import quadratic
    >>> q = quadratic([1.5], dtype="float64")
    >>> runs = compare(q, [GD(1.0), PrincipalFlow(1.0, substep_scale=0.05)], steps=3, progress=False)
    >>> [round(float(h.snapshots[3, 0]), 6) for h in runs.values()]
    [-0.125, -0.125]
    """
    if not isinstance(methods, (dict, list, tuple)):
        raise TypeError(f"methods must be a dict {{label: method}} or a list of methods, got {type(methods).__name__}")
    if not methods:
        raise ValueError("methods is empty: pass at least one method to compare")
    if isinstance(methods, dict):
        items = list(methods.items())
    else:
        items = [(getattr(m, "label", repr(m)), m) for m in methods]
        seen = set()
        for label, _ in items:
            if label in seen:
                raise ValueError(f"methods: two methods have the label {label!r}; pass a dict to name them apart")
            seen.add(label)
    for label, method in items:
        if not isinstance(method, Method):
            raise TypeError(f"methods[{label!r}] must be an eoslab Method, got {type(method).__name__}")
    kwargs.setdefault("progress", False)
    return {label: run(problem, method, steps, save_every=save_every, **kwargs) for label, method in items}
