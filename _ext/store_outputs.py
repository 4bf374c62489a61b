"""Tidy executed chapter notebooks before they are stored: ``python _ext/store_outputs.py NOTEBOOK...``.

Drops each cell's timing metadata (re-runs then give clean diffs) and the
notebook's widget state (the web pages show the live panels' precomputed
twins, and a notebook's widgets belong to its kernel).
"""
from __future__ import annotations

import sys

import nbformat


def tidy(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)


if __name__ == "__main__":
    for path in sys.argv[1:]:
        tidy(path)
