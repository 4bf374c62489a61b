"""How the chapters' cells are checked: which outputs nbval compares exactly, which are claims.

nbval re-executes every chapter and compares each cell's stored text output with the new one.
That comparison is only meaningful where the output is deterministic: after a catapult, a
spike or an SGD run, float32 rounding and the torch version change a trajectory. Such cells
carry the tag ``nbval-ignore-output``, and the numbers the prose takes from them are checked
by the hidden ``claim`` cell that follows, with tolerances derived from the argument. These
tests read the stored notebooks (no execution) and hold the chapters to that rule.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("0*.ipynb"))
PAGES = CHAPTERS + sorted((ROOT / "chapters").glob("appendix_*.ipynb"))  # every executed page
IGNORE, CLAIM, SOLUTION = "nbval-ignore-output", "claim", "solution"


def cells(path):
    return nbformat.read(path, as_version=4).cells


def tags(cell):
    return cell.metadata.get("tags", [])


def printed_text(cell):
    """The text a code cell printed or displayed (streams and text/plain), without the reprs of
    figures, HTML objects and widgets."""
    out = []
    for o in cell.get("outputs", []):
        if o.output_type == "stream":
            out.append(o.text)
        elif o.output_type in ("execute_result", "display_data"):
            if "application/vnd.jupyter.widget-view+json" in o.get("data", {}):
                continue  # a live panel: its text is the widget's repr
            text = o.get("data", {}).get("text/plain", "")
            if not re.fullmatch(r"<[^<>]*>|(VBox|HBox|Box|Tab|Output|interactive)\(.*\)", text.strip(), re.S):
                out.append(text)
    return "".join(out)


def test_the_book_has_seven_chapters():
    assert [p.name[:2] for p in CHAPTERS] == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_checker_directives_are_tags_not_comments(path):
    visible = [c.source.splitlines()[0] for c in cells(path) if c.cell_type == "code" and "NBVAL" in c.source.upper()]
    assert not visible, f"checker directives written in code: {visible}"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_every_code_cell_was_executed_without_error(path):
    for k, cell in enumerate(cells(path)):
        if cell.cell_type == "code":
            assert cell.execution_count is not None, f"cell {k} was not executed: {cell.source[:60]!r}"
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert not errors, f"cell {k} stored an error: {errors[0].ename}"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_ignored_numbers_are_checked_by_a_claim_cell(path):
    """A cell whose printed numbers nbval does not compare is followed by a hidden claim cell."""
    nb = cells(path)
    for k, cell in enumerate(nb):
        if cell.cell_type != "code" or IGNORE not in tags(cell) or not re.search(r"\d", printed_text(cell)):
            continue
        following = next((c for c in nb[k + 1:] if c.cell_type == "code"), None)
        assert following is not None and CLAIM in tags(following), (
            f"cell {k} prints numbers that nbval ignores, with no claim cell after it: {cell.source[:80]!r}")


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_claim_cells_are_hidden_silent_and_assert(path):
    for k, cell in enumerate(cells(path)):
        if CLAIM in tags(cell):
            assert cell.cell_type == "code" and "remove-cell" in tags(cell), f"claim cell {k} is shown on the page"
            assert "assert " in cell.source, f"claim cell {k} checks nothing"
            assert not printed_text(cell).strip(), f"claim cell {k} prints: {printed_text(cell)[:80]!r}"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_solutions_are_gated_blocks_of_executed_cells(path):
    """Solution code runs with the chapter: it sits in cells tagged ``solution`` between
    ``{solution-start}`` and ``{solution-end}``, never as fenced text inside a ``{solution}``."""
    inside, blocks, code = False, 0, 0
    for k, cell in enumerate(cells(path)):
        starts, ends = "{solution-start}" in cell.source, "{solution-end}" in cell.source
        if starts:
            assert not inside, f"cell {k}: a solution starts inside another"
            inside = True
        if inside:
            assert SOLUTION in tags(cell), f"cell {k} is inside a solution but not tagged {SOLUTION!r}"
            code += cell.cell_type == "code"
        else:
            assert SOLUTION not in tags(cell), f"cell {k} is tagged {SOLUTION!r} outside a solution block"
            if cell.cell_type == "markdown" and "{solution}" in cell.source:
                assert "```python" not in cell.source, f"cell {k}: solution code as fenced text, not executed"
        if ends:
            assert inside, f"cell {k}: a solution ends that did not start"
            inside, blocks = False, blocks + 1
    assert not inside, "the last solution block is not closed"
    exercises = sum(c.source.count("{exercise}") for c in cells(path) if c.cell_type == "markdown")
    assert blocks == exercises and code >= blocks, f"{blocks} gated solutions with {code} code cells for {exercises} exercises"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_code_fits_the_code_box(path):
    """Code lines of at most 88 characters: the page's code boxes show 88 without scrolling sideways."""
    long = [(k, line) for k, cell in enumerate(cells(path)) if cell.cell_type == "code"
            for line in cell.source.splitlines() if len(line) > 88]
    assert not long, f"{len(long)} code lines over 88 characters, e.g. cell {long[0][0]}: {long[0][1]!r}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_live_panels_carry_what_the_web_page_shows(path):
    """Each live panel's stored output has an HTML form for the page (its precomputed twin, or a line saying
    it needs a kernel), and the notebook stores no widget state for the page to render as dead sliders."""
    nb = nbformat.read(path, as_version=4)
    assert "widgets" not in nb.metadata, "stored widget state (run _ext/store_outputs.py)"
    panels = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert panels, "no live panel"
    for o in panels:
        page = o.data.get("text/html", "")
        assert "eoslab-static-panel" in page or "eoslab-live-only" in page, page[:200]
    assert any("eoslab-static-panel" in o.data["text/html"] for o in panels), "no precomputed twin"
