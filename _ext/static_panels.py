"""Book builds compute the precomputed twins of the chapters' live slider panels.

A live panel (:func:`eoslab.widgets.slider_panel` with a ``grid``) computes
its kernel-free twin only when ``$EOSLAB_STATIC_PANELS`` is set, so that a
reader's live session does not pay for it. The notebook kernels that a book
build starts inherit this process's environment, so setting it here makes
every executing build (``make book``, a plain ``jupyter-book build .``)
store the twins that the web pages show.
"""
from __future__ import annotations

import os


def setup(app):
    os.environ.setdefault("EOSLAB_STATIC_PANELS", "1")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
