"""Argument checks shared by every public entry point.

Each check raises ``ValueError`` (or ``TypeError`` for the wrong kind of
object) with a message naming the argument, the value received and the range
allowed, in the manner of scikit-learn.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
import torch

_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    torch.float32: torch.float32,
    torch.float64: torch.float64,
}


def check_real(name, value, *, low=None, high=None, low_open=False, high_open=False):
    """Return ``value`` as a float after checking it is a finite real in range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        else:
            raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    ok = True
    if low is not None:
        ok &= value > low if low_open else value >= low
    if high is not None:
        ok &= value < high if high_open else value <= high
    if not ok:
        lb = "(" if low_open else "["
        rb = ")" if high_open else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ValueError(f"{name} must be in {lb}{lo}, {hi}{rb}, got {value!r}")
    return value


def check_positive(name, value):
    """A finite real strictly greater than zero (learning rates, scales)."""
    return check_real(name, value, low=0.0, low_open=True)


def check_beta(name, value):
    """A momentum coefficient in [0, 1)."""
    return check_real(name, value, low=0.0, high=1.0, high_open=True)


def check_int(name, value, *, low=None, high=None):
    """Return ``value`` as an int after checking it is an integer in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else str(low)
        hi = "inf" if high is None else str(high)
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def check_choice(name, value, choices):
    """``value`` must be one of ``choices`` (strings compared case-insensitively)."""
    key = value.lower() if isinstance(value, str) else value
    if key not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return key


def resolve_dtype(dtype, like=None):
    """Accept ``None`` (float32, or float64 when ``like`` is a float64 tensor or array), ``"float32"``/``"float64"``
    or the torch dtypes."""
    if dtype is None:
        if getattr(like, "dtype", None) in (torch.float64, np.float64):
            return torch.float64
        return torch.float32
    try:
        return _DTYPES[dtype]
    except (KeyError, TypeError):
        raise ValueError(
            f"dtype must be one of 'float32', 'float64' (or the torch dtypes), got {dtype!r}"
        ) from None


def resolve_device(device):
    """Accept ``None`` (CPU), a string such as ``"cuda"`` or a ``torch.device``."""
    if device is None:
        return torch.device("cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda', got {device!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} was requested but CUDA is not available on this machine")
    return device


def check_finite_vector(name, theta, size=None):
    """:func:`check_vector`, and every entry finite (a start point, a point to evaluate at)."""
    check_vector(name, theta, size)
    if not bool(torch.isfinite(theta).all()):
        raise ValueError(f"{name} must be finite: it has {int((~torch.isfinite(theta)).sum())} NaN or infinite entries")
    return theta


def check_like(name, theta, problem):
    """``theta`` a flat vector with the problem's size and dtype, when the loss is a problem (anything else passes)."""
    size = getattr(problem, "num_params", None)
    check_vector(name, theta, size=size if isinstance(size, int) else None)
    dtype = getattr(problem, "dtype", None)
    if isinstance(dtype, torch.dtype) and theta.dtype != dtype:
        raise ValueError(f"{name} has dtype {theta.dtype} but the problem is in {dtype}: "
                         f"pass {name}.to({dtype}) or the problem's .to(dtype=...)")
    return theta


def check_vector(name, theta, size=None):
    """A 1-D floating tensor (a flat parameter vector), optionally of a given size."""
    if not isinstance(theta, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(theta).__name__}")
    if theta.ndim != 1:
        raise ValueError(f"{name} must be a flat 1-D parameter vector, got shape {tuple(theta.shape)}")
    if not theta.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {theta.dtype}")
    if size is not None and theta.numel() != size:
        raise ValueError(f"{name} must have {size} entries, got {theta.numel()}")
    return theta


def renamed(kwargs, old, new, where, *, value=None, default=False):
    """Take a keyword that was renamed: ``kwargs[old]`` with a ``DeprecationWarning`` naming ``new``.

    Returns ``value`` (the new keyword's) when ``old`` was not passed. Passing
    both is an error, unless the new keyword has a ``default`` value (then it
    cannot be told from one passed). The old names are kept for one release.
    """
    import warnings

    if old not in kwargs:
        return value
    if value is not None and not default:
        raise TypeError(f"{where} got both {new}= and its old name {old}=; pass {new}= only")
    warnings.warn(f"{where}: the keyword {old}= is renamed {new}= and will be removed in the next release",
                  DeprecationWarning, stacklevel=3)
    return kwargs.pop(old)


def no_other_keywords(kwargs, where):
    """Raise ``TypeError`` for keywords left in ``kwargs`` (after the renamed ones were taken)."""
    if kwargs:
        raise TypeError(f"{where} got an unexpected keyword argument {next(iter(kwargs))!r}")
