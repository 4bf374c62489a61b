r"""The Edge of Stochastic Stability (Chapter 7): batch sharpness along an SGD run, its plateau, momentum's levels.

Mini-batch steps feel the curvature of their own batch along their own
direction. :func:`batch_sharpness` measures it at one point;
:func:`eoss_run` trains with SGD (with or without heavy-ball momentum) and
measures it, with the full-batch :math:`\lambda_{\max}`, along the way;
:meth:`EossRun.plateau` reads off the level it settles at, and
:func:`eoss_levels` gives the levels that linear stability suggests:

==========================  =========================
regime                      batch sharpness settles at
==========================  =========================
SGD (``beta = 0``)          :math:`2/\eta`
momentum, small batches     :math:`2(1-\beta)/\eta`
momentum, large batches     :math:`2(1+\beta)/\eta`
==========================  =========================

The two momentum levels are the limits of one exact threshold in a model
where every batch has its own sharp direction, orthogonal to the others',
which comes back every ``period`` steps: :func:`revisit_level` gives it in
closed form, and :func:`rank_one_batches` builds the model as a problem
that :func:`eoslab.run` trains like any other.

One file each: :mod:`~eoslab.stochastic.batch_sharpness`,
:mod:`~eoslab.stochastic.levels`, :mod:`~eoslab.stochastic.eoss`.
"""
from .batch_sharpness import BatchSharpness, batch_sharpness
from .eoss import EossRun, Plateau, eoss_run, plateau_table
from .levels import EossLevels, RankOneBatches, eoss_levels, rank_one_batches, revisit_level

__all__ = ["BatchSharpness", "EossLevels", "EossRun", "Plateau", "RankOneBatches", "batch_sharpness",
           "eoss_levels", "eoss_run", "plateau_table", "rank_one_batches", "revisit_level"]
