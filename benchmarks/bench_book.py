#!/usr/bin/env python
"""How long the book takes to execute, chapter by chapter, and how fast its sliders answer.

Executes every chapter notebook of ``chapters/`` in a fresh kernel (nothing is
written back), ``--jobs`` chapters at a time, each kernel limited to
``--threads`` threads, and reports:

* the wall time of the whole book and of each chapter, and each chapter's
  slowest cells;
* every slider answer: the time of one call of a live panel's experiment plus
  its figure, drawn, for each grid value a static panel computes (with
  ``--static``, the default, as the book build does) or for the value each
  live panel starts at (``--live``, as a reader's kernel and the tests do).

A slider's time is measured by wrapping ``eoslab.widgets.slider_panel`` before
the chapter imports it; a value a panel has already run (its experiment caches
runs) counts as what the reader waits for, a cache hit.

Run from the repository root::

    python benchmarks/bench_book.py                     # 2 chapters at a time, 1 thread each, static panels
    python benchmarks/bench_book.py --jobs 1 --threads 2 --live
    python benchmarks/bench_book.py --out benchmarks/results/book.json

A benchmark, not a test: it prints what it measures and fails only if a chapter does.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Injected before a chapter's first cell: time every call of a slider panel's experiment and figure.
TIMING_CELL = """
import json as _json, time as _time
import eoslab.widgets as _widgets
import matplotlib.pyplot as _plt
_slider_times, _slider_panel = [], _widgets.slider_panel
def _timed_panel(experiment, *, plot=None, **kwargs):
    panel = len({entry["panel"] for entry in _slider_times}) if _slider_times else 0
    def timed_experiment(**values):
        start = _time.perf_counter()
        result = experiment(**values)
        _slider_times.append({"panel": panel, "values": repr(values), "experiment": _time.perf_counter() - start,
                              "plot": 0.0})
        return result
    def timed_plot(result, values):
        start = _time.perf_counter()
        out = plot(result, values)
        _plt.gcf().canvas.draw()  # the figure rendered, as the page or the notebook shows it
        if _slider_times:
            _slider_times[-1]["plot"] += _time.perf_counter() - start
        return out
    return _slider_panel(timed_experiment, plot=None if plot is None else timed_plot, **kwargs)
_widgets.slider_panel = _timed_panel
"""
SAVE_CELL = "_json.dump(_slider_times, open({path!r}, 'w'))"


def run_chapter(path, threads, static, timeout):
    """Execute one chapter; return its wall time, its cells' times and its slider calls."""
    import nbformat
    from dateutil.parser import isoparse
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        sliders = Path(tmp) / "sliders.json"
        nb.cells.insert(0, nbformat.v4.new_code_cell(TIMING_CELL))
        nb.cells.append(nbformat.v4.new_code_cell(SAVE_CELL.format(path=str(sliders))))
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                   EOSLAB_STATIC_PANELS="1" if static else "0")
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        start = time.perf_counter()
        client.execute(env=env)  # the kernel's own environment: its threads, and whether panels are static
        wall = time.perf_counter() - start
        calls = json.loads(sliders.read_text()) if sliders.exists() else []
    cells = []
    for index, cell in enumerate(nb.cells[1:-1]):
        timing = cell.metadata.get("execution", {})
        if cell.cell_type == "code" and "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            seconds = (isoparse(timing["shell.execute_reply"])
                       - isoparse(timing["iopub.execute_input"])).total_seconds()
            cells.append({"cell": index, "seconds": seconds, "first_line": cell.source.splitlines()[0][:60]})
    cells.sort(key=lambda c: -c["seconds"])
    return {"chapter": path.stem, "wall": wall, "cells": cells, "sliders": calls}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="chapters executed at a time (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="threads per kernel (default 1)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--static", dest="static", action="store_true", default=True,
                      help="compute the static panels' grids, as the book build does (default)")
    mode.add_argument("--live", dest="static", action="store_false",
                      help="live panels only, as a reader's kernel and the tests run them")
    parser.add_argument("--chapters", nargs="*",
                        help="chapter names, taken in this order (default: every chapters/*.ipynb, largest first)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--top", type=int, default=3, help="slowest cells listed per chapter")
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    if args.jobs < 1 or args.threads < 1:
        parser.error(f"--jobs and --threads must be at least 1, got {args.jobs} and {args.threads}")
    paths = sorted((ROOT / "chapters").glob("*.ipynb"))
    if args.chapters:  # in the order given: the jobs take them in turn
        by_name = {name: p for p in paths for name in (p.stem, p.name)}
        missing = [c for c in args.chapters if c not in by_name]
        if missing:
            parser.error(f"--chapters: {missing} not in chapters/ (there: {[p.stem for p in paths]})")
        order = [by_name[c] for c in args.chapters]
    else:  # the largest notebooks first, so that the jobs finish together
        order = sorted(paths, key=lambda p: -p.stat().st_size)
    import torch

    print(f"torch {torch.__version__}, python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; {args.jobs} chapter(s) at a time, {args.threads} thread(s) each, "
          f"{'static panels computed' if args.static else 'live panels only'}", flush=True)
    start = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda p: run_chapter(p, args.threads, args.static, args.timeout), order))
    total = time.perf_counter() - start
    results.sort(key=lambda r: r["chapter"])
    print(f"\nthe whole book: {total:.0f} s wall ({sum(r['wall'] for r in results):.0f} s summed over chapters)")
    for r in results:
        slow = "; ".join(f"cell {c['cell']} {c['seconds']:.1f} s ({c['first_line']})" for c in r["cells"][:args.top])
        print(f"  {r['chapter']:<24} {r['wall']:6.1f} s   slowest: {slow}")
    print("\nslider answers (one experiment call plus its figure; a cached value counts as answered):")
    for r in results:
        by_panel = {}
        for call in r["sliders"]:
            by_panel.setdefault(call["panel"], []).append(call["experiment"] + call["plot"])
        for panel, times in by_panel.items():
            median = sorted(times)[len(times) // 2]
            print(f"  {r['chapter']:<24} panel {panel}: {len(times):3d} calls, median {median:.2f} s, "
                  f"slowest {max(times):.2f} s")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"total": total, "jobs": args.jobs, "threads": args.threads,
                                        "static": args.static, "torch": torch.__version__,
                                        "chapters": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
