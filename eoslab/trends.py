"""Whether a measured series has levelled off: the one trend test that summaries quote."""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = ["Trend", "trend"]


class Trend(NamedTuple):
    """``(change, levelled_off)``: see :func:`trend`."""

    change: float
    levelled_off: bool


def trend(series, *, rtol=0.05):
    r"""How much the mean of ``series`` moves from its first half to its second, and whether that is noise.

    ``change`` is the difference of the two halves' means relative to the
    mean of the whole; the series has ``levelled_off`` when the difference is
    within two standard errors of it (the halves' scatter, as if independent)
    or within ``rtol`` of the level. Fewer than four points cannot tell a
    trend from scatter: ``(nan, True)``.

    Examples
    --------
    >>> trend([1.0, 1.1, 0.9, 1.0, 1.1, 0.9]).levelled_off
    True
    >>> t = trend([0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    >>> round(t.change, 3), t.levelled_off
    (0.4, False)
    """
    series = np.asarray(series, dtype=float).ravel()
    n = len(series)
    if n < 4 or not np.isfinite(series).all():
        return Trend(math.nan, n < 4)
    first, second = series[: n // 2], series[n - n // 2:]
    level = abs(float(series.mean())) or 1.0
    change = float(second.mean() - first.mean())
    noise = float(np.sqrt(first.var(ddof=1) / len(first) + second.var(ddof=1) / len(second)))
    return Trend(change / level, abs(change) <= max(2 * noise, rtol * level))
