"""Build the student edition: the site and the notebooks with every exercise solution removed.

    python _ext/student_edition.py            # or: make student

writes

* ``_build/student/notebooks/``: the chapters with every solution taken out
  (the cells tagged ``solution``, which hold the gated ``{solution-start}`` ...
  ``{solution-end}`` blocks and their executed code, and any fenced
  ``{solution}`` block left in a markdown cell), to hand out as coursework;
* ``_build/student/_build/html/``: the site built from those notebooks, with the
  stored outputs (no execution) and sphinx-exercise's ``hide_solutions``.

The instructor edition, with solutions, is the default ``make book``.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
# a fenced {solution} directive, with three or more backticks or colons, up to its closing fence
SOLUTION = re.compile(r"^(?P<fence>`{3,}|:{3,})\{solution\}.*?^(?P=fence)[ \t]*$\n?", re.M | re.S)


def strip_solutions(text: str) -> str:
    """``text`` without its ``{solution}`` blocks."""
    return SOLUTION.sub("", text)


def student_notebook(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    cells = []
    for cell in nb.cells:
        if "solution" in cell.get("metadata", {}).get("tags", []):
            continue
        if cell.cell_type == "markdown":
            cell.source = strip_solutions(cell.source).rstrip("\n")
            if not cell.source.strip():
                continue
        cells.append(cell)
    nb.cells = cells
    return nb


def write_notebooks(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted((ROOT / "chapters").iterdir()):
        target = out / path.name
        if path.suffix == ".ipynb":
            nbformat.write(student_notebook(path), target)
        elif path.suffix == ".md":
            target.write_text(strip_solutions(path.read_text()))
        elif path.is_dir():
            shutil.copytree(path, target, dirs_exist_ok=True)
            continue
        else:
            continue
        written.append(target)
    return written


# what a build of the book reads besides the chapters
BOOK_FILES = ("_config.yml", "_toc.yml", "references.bib")


def student_source(out: Path) -> Path:
    """A copy of the book's sources in ``out`` with the student notebooks as its chapters."""
    out.mkdir(parents=True, exist_ok=True)
    for name in BOOK_FILES:
        shutil.copy(ROOT / name, out / name)
    shutil.copytree(ROOT / "_static", out / "_static", dirs_exist_ok=True)  # the site's style sheet
    if (out / "chapters").exists():
        shutil.rmtree(out / "chapters")
    write_notebooks(out / "chapters")
    return out


def build_site(out: Path, jupyter_book: str, *, student: bool = True) -> subprocess.CompletedProcess:
    """Build the book into ``out`` from the stored outputs (no execution), warnings as errors.

    The student edition is built from a copy of the sources whose chapters have their
    solutions removed (``student_source``), so that no solution text or solution output
    can reach its pages; ``student=False`` builds the instructor edition from the
    repository itself (the test suite's build).
    """
    source = student_source(out / "source") if student else ROOT
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    sphinx = config.setdefault("sphinx", {})
    if student:
        config["title"] = config.get("title", "") + " (student edition)"
        sphinx.setdefault("config", {})["hide_solutions"] = True
    # local extensions are found relative to the configuration file, which moves to ``out``
    sphinx["local_extensions"] = {name: str(ROOT / p) for name, p in sphinx.get("local_extensions", {}).items()}
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / "_config.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    command = [jupyter_book, "build", str(source), "--path-output", str(out), "--config", str(config_path),
               "--warningiserror", "--nitpick", "--keep-going"]
    # one download of the vendored scripts serves both editions
    env = {**os.environ, "EOSLAB_VENDOR_CACHE": os.environ.get("EOSLAB_VENDOR_CACHE", str(ROOT / "_build" / ".vendor-cache"))}
    return subprocess.run(command, cwd=source, capture_output=True, text=True, timeout=3600, env=env)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "_build" / "student"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    notebooks = write_notebooks(out / "notebooks")
    jupyter_book = str(Path(sys.executable).parent / "jupyter-book")
    result = build_site(out, jupyter_book if Path(jupyter_book).exists() else "jupyter-book")
    if result.returncode:
        print(result.stdout[-3000:] + result.stderr[-3000:])
        return result.returncode
    print(f"student notebooks: {out / 'notebooks'} ({len(notebooks)} files)")
    print(f"student site: {out / '_build' / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
