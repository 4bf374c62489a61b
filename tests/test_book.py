"""The whole book builds with every Sphinx warning treated as an error.

nbval (run by the same test command) already re-executes every chapter and
checks its stored outputs, so this build renders those stored outputs rather
than executing the chapters a second time: the configuration is the book's
own `_config.yml` with notebook execution turned off. `make book` executes
them (with the cache). Deselect it with ``-m "not book"``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
# Pages that must come out of the build (paths relative to _build/html).
EXPECTED_PAGES = [
    "index.html",
    "chapters/00_introduction.html",
    "chapters/01_quadratic_gd.html",
    "chapters/02_edge_of_stability.html",
    "chapters/03_self_stabilization.html",
    "chapters/04_principal_flow.html",
    "chapters/05_edge_flow.html",
    "chapters/06_minimizer_manifold.html",
    "chapters/07_momentum_eoss.html",
    "chapters/references.html",
]


def find_jupyter_book() -> str | None:
    """The jupyter-book next to this interpreter, else the one on PATH."""
    candidate = Path(sys.executable).parent / "jupyter-book"
    if candidate.exists():
        return str(candidate)
    return shutil.which("jupyter-book")


@pytest.mark.book
@pytest.mark.slow
def test_book_builds_without_warnings(tmp_path):
    jupyter_book = find_jupyter_book()
    if jupyter_book is None:
        pytest.skip("jupyter-book is not installed (pip install -e '.[book]')")

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    config_path = tmp_path / "_config.yml"
    config_path.write_text(yaml.safe_dump(config))
    command = [
        jupyter_book, "build", str(ROOT),
        "--path-output", str(tmp_path),
        "--config", str(config_path),
        "--warningiserror", "--nitpick", "--keep-going",
    ]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=3600
    )
    output = result.stdout + result.stderr
    tail = "\n".join(output.splitlines()[-80:])

    assert result.returncode == 0, (
        f"`{' '.join(command)}` exited with {result.returncode}; last lines:\n{tail}"
    )
    html = tmp_path / "_build" / "html"
    missing = [page for page in EXPECTED_PAGES if not (html / page).is_file()]
    assert not missing, f"pages missing from {html}: {missing}; last lines:\n{tail}"
