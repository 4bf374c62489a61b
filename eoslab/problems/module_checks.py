"""What :func:`~eoslab.problems.from_module` checks before any long work: which parameters ``theta`` holds, a
module that ``torch.func.functional_call`` can evaluate, a loss that is a mean over examples, and a deterministic
Hessian-vector product."""
from __future__ import annotations

import math
import warnings

import torch

__all__ = []


def select_parameters(model, params):
    """The (canonical) names of the trainable parameters that ``params`` selects (all when ``None``).

    Names and prefixes may use any name a tied parameter goes by; ``theta`` holds it once, under the first.
    """
    canonical = {}  # every name a parameter is registered under -> the name named_parameters() gives it
    first = {}
    for alias, p in model.named_parameters(remove_duplicate=False):
        first.setdefault(id(p), alias)
        canonical[alias] = first[id(p)]
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("the module has no trainable parameter (all have requires_grad=False)")
    if params is None:
        return trainable
    if callable(params):
        chosen = [n for n, p in model.named_parameters() if p.requires_grad and params(n, p)]
    else:
        wanted = [params] if isinstance(params, str) else list(params)
        aliases = [a for a in canonical if canonical[a] in trainable]
        unknown = [w for w in wanted if not any(a == w or a.startswith(w + ".") for a in aliases)]
        if unknown:
            raise ValueError(f"params names no trainable parameter or module: {unknown}; the module has "
                             f"{trainable[:8]}{' ...' if len(trainable) > 8 else ''}")
        hit = {canonical[a] for a in aliases if any(a == w or a.startswith(w + ".") for w in wanted)}
        chosen = [n for n in trainable if n in hit]
    if not chosen:
        raise ValueError("params selects no trainable parameter of the module")
    return chosen


def check_structure(model):
    """Refuse what torch.func.functional_call cannot evaluate faithfully: a submodule with parameters or
    buffers registered under two names (its parameters would be left replaced after a call)."""
    seen = {}
    for name, module in model.named_modules(remove_duplicate=False):
        if module._parameters or module._buffers:
            if id(module) in seen and seen[id(module)] != name:
                raise ValueError(
                    f"the submodule {seen[id(module)]!r} is registered again as {name!r}: "
                    "torch.func.functional_call cannot evaluate a module whose parametrized submodule appears "
                    "twice. Register it once and call it twice in forward() (tied parameters, "
                    "`b.weight = a.weight`, are fine)")
            seen.setdefault(id(module), name)


def check_loss_fn(loss_fn, targets):
    """Refuse the torch losses whose batch value is not the plain mean of per-example values."""
    if isinstance(loss_fn, torch.nn.modules.loss._Loss) and getattr(loss_fn, "reduction", "mean") != "mean":
        raise ValueError(f"loss_fn has reduction={loss_fn.reduction!r}: it must average over the examples "
                         "(reduction='mean'), since chunks and mini-batches are weighted by their share of examples")
    if isinstance(loss_fn, (torch.nn.CrossEntropyLoss, torch.nn.NLLLoss)):
        if loss_fn.weight is not None:
            raise ValueError("loss_fn has class weights: its batch value is a mean weighted by the classes in the "
                             "batch, not a mean over examples, so chunks would be weighted wrongly; write the "
                             "weighting into a per-example loss averaged over the batch")
        if isinstance(targets, torch.Tensor) and not targets.is_floating_point() and bool(
                (targets == loss_fn.ignore_index).any()):
            raise ValueError(f"some targets equal loss_fn.ignore_index ({loss_fn.ignore_index}): the batch value is "
                             "then a mean over the other examples only, and chunks would be weighted wrongly")


def check_mean_and_determinism(problem):
    """Before any long work: the loss is finite at theta0; a Hessian-vector product applied twice agrees with
    itself (else a warning: dropout?); and the loss is a mean over examples, at theta0 and at a point nearby, for
    examples spread over the data (else an error: BatchNorm in training mode, a summed or weighted loss)."""
    from ..curvature import HessianOperator

    theta = problem.theta0
    generator = torch.Generator().manual_seed(0)
    first_chunk = torch.arange(min(problem.num_examples, problem.chunk_size, 16))
    value = float(problem._chunk_loss(theta, first_chunk).detach())
    if not math.isfinite(value):
        raise ValueError(f"the loss is not finite at the module's parameters ({value}): check the data, the "
                         "initialization and loss_fn")
    op_loss = problem.loss_chunks(first_chunk)[0][1]
    v = torch.randn(theta.numel(), generator=generator, dtype=torch.float64).to(theta)
    first = HessianOperator(op_loss, theta).matvec(v)
    second = HessianOperator(op_loss, theta).matvec(v)
    gap = float((first - second).norm()) / (float(first.norm()) or 1.0)
    eps = torch.finfo(theta.dtype).eps
    if not math.isfinite(gap) or gap > 1000 * eps:
        warnings.warn(f"the Hessian-vector product differs when applied twice (relative difference {gap:.1e}): the "
                      "module is not deterministic (dropout in training mode?), so curvature is not well defined; "
                      "build with train=False", RuntimeWarning, stacklevel=3)
        return  # a random loss cannot be checked for being a mean
    n = problem.num_examples
    if n < 2:
        return
    idx = torch.tensor(sorted({0, n // 3, (2 * n) // 3, n - 1}))
    nearby = theta + 0.1 * theta.abs().mean() * torch.randn(theta.numel(), generator=generator,
                                                              dtype=torch.float64).to(theta)
    for point in (theta, nearby):  # at a second point too: a loss that is zero at theta0 hides a sum
        try:
            joint = float(problem._chunk_loss(point, idx).detach())
            alone = sum(float(problem._chunk_loss(point, idx[i:i + 1]).detach()) for i in range(len(idx))) / len(idx)
        except (ValueError, RuntimeError) as error:  # e.g. BatchNorm in training mode on one example
            raise ValueError(f"the loss of a single example could not be evaluated ({error}): the module must treat "
                             "examples independently; BatchNorm in training mode does not (build with "
                             "train=False, which uses its running statistics)") from error
        if not math.isclose(joint, alone, rel_tol=1000 * eps, abs_tol=0.0):
            raise ValueError(
                f"the loss of {len(idx)} examples together ({joint:.6g}) is not the mean of their losses "
                f"({alone:.6g}): loss_fn must average over the examples of its batch (reduction='mean', no class "
                "weights), and the module must treat examples independently (BatchNorm in training mode does not: "
                "build with train=False, which uses its running statistics). Chunks and mini-batches assume a mean.")
