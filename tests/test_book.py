"""The whole book builds with every Sphinx warning treated as an error.

nbval (run by the same test command) already re-executes every chapter and
checks its stored outputs, so this build renders those stored outputs rather
than executing the chapters a second time: the configuration is the book's
own `_config.yml` with notebook execution turned off. `make book` executes
them (with the cache). Deselect it with ``-m "not book"``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "_ext"))
import student_edition  # noqa: E402  (the book's build helpers, beside its Sphinx extension)
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
    "chapters/appendix_own_network.html",
    "chapters/appendix_phase_diagrams.html",
    "chapters/glossary.html",
    "chapters/instructors.html",
    "chapters/references.html",
]


def find_jupyter_book() -> str | None:
    """The jupyter-book next to this interpreter, else the one on PATH."""
    candidate = Path(sys.executable).parent / "jupyter-book"
    if candidate.exists():
        return str(candidate)
    return shutil.which("jupyter-book")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the book once (execution off): (html folder, exit code, command, last lines of output)."""
    built = os.environ.get("EOSLAB_BUILT_SITE")  # check a site built elsewhere (its html folder), e.g. an older one
    if built:
        return Path(built), 0, f"(the site in {built})", ""
    jupyter_book = find_jupyter_book()
    if jupyter_book is None:
        pytest.skip("jupyter-book is not installed (pip install -e '.[book]')")
    tmp_path = tmp_path_factory.mktemp("book")
    result = student_edition.build_site(tmp_path, jupyter_book, student=False)
    tail = "\n".join((result.stdout + result.stderr).splitlines()[-80:])
    return tmp_path / "_build" / "html", result.returncode, " ".join(result.args), tail


@pytest.mark.book
@pytest.mark.slow
def test_book_builds_without_warnings(site):
    html, returncode, command, tail = site
    assert returncode == 0, f"`{command}` exited with {returncode}; last lines:\n{tail}"
    missing = [page for page in EXPECTED_PAGES if not (html / page).is_file()]
    assert not missing, f"pages missing from {html}: {missing}; last lines:\n{tail}"


# --- the built site in a real browser -------------------------------------------------------------------------

CHAPTERS = [page for page in EXPECTED_PAGES if page.startswith("chapters/0") and page != "chapters/00_introduction.html"]
SCREENSHOTS = ROOT / "_build" / "screenshots"
WIDTH = 1200  # the window width of every browser check (a laptop browser: both sidebars are open)
PAGE_LIMIT = 5_000_000  # bytes of HTML per page (the shared _vendor scripts are fetched once for the site)
# Messages from the theme's own scripts, on every page of any Jupyter Book 1 site, that change nothing a
# reader sees: sphinx-thebe's script runs twice (Thebe is not used here: the launch buttons go to
# Binder and Colab), and the theme resets an unset light/dark preference.
HARMLESS = ("Identifier 'THEBE_JS_URL' has already been declared", "Got invalid theme mode")


def find_chromium() -> str | None:
    """Debian's Chromium (or $EOSLAB_CHROMIUM)."""
    return os.environ.get("EOSLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser(site):
    """A headless Chromium driven by Playwright; skipped where neither is installed, unless $EOSLAB_REQUIRE_BROWSER."""
    html, returncode, _, tail = site
    assert returncode == 0, f"the book did not build; last lines:\n{tail}"
    chromium = find_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if chromium is None or sync_playwright is None:
        missing = "Chromium (apt-get install chromium)" if chromium is None else "Playwright (pip install playwright)"
        if os.environ.get("EOSLAB_REQUIRE_BROWSER"):
            pytest.fail(f"the browser test needs {missing}")
        pytest.skip(f"the browser test needs {missing}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def open_page(browser, path):
    """Open a built page; return it with the JavaScript errors it raised."""
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    errors = []
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on("requestfailed", lambda request: errors.append(f"failed to load {request.url}"))
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_function("() => !window.MathJax || (MathJax.startup && MathJax.startup.promise)")
    page.evaluate("() => window.MathJax && MathJax.startup.promise")
    page.wait_for_timeout(300)  # let the precomputed panels' scripts and any widget views run
    return page, errors


# What a reader needs from every page, checked in the browser (each check collects every problem it finds):
# - every slider changes a figure (a live widget's slider cannot, without a kernel: it must not be shown);
# - no tooling text (checker directives, linter pragmas) in what the page shows;
# - figure text at least as large as the smallest text of the page around it, at the displayed size;
# - no code box that scrolls sideways;
# - one search box in the header area.
TOOLING = re.compile(r"nbval|noqa|type:\s*ignore|pragma|doctest:", re.IGNORECASE)


def _figure_fonts(src):
    """(smallest text size in points, dots per inch) that a book figure records in its PNG, or None.

    ``src`` is the image's resolved address: a PNG in the page (a precomputed panel's frame) or a file of the
    site (the build writes a cell's figure to ``_images/``)."""
    import base64
    import io
    from urllib.parse import unquote, urlparse

    from PIL import Image

    if src.startswith("data:image/png;base64,"):
        data = base64.b64decode(src.split(",", 1)[1])
    elif src.startswith("file://") and src.lower().endswith(".png"):
        data = Path(unquote(urlparse(src).path)).read_bytes()
    else:
        return None
    image = Image.open(io.BytesIO(data))
    text = getattr(image, "text", {}) or {}
    if "eoslab:smallest-font-pt" not in text or "eoslab:dpi" not in text:
        return None
    return float(text["eoslab:smallest-font-pt"]), float(text["eoslab:dpi"])


def figure_text_problems(page):
    """Figures whose smallest text, at the size the page shows it, is below the page's smallest body text."""
    body = page.evaluate("""() => Math.min(...[...document.querySelectorAll(
        'article p, article li, article .cell_input pre, article .cell_output pre')]
        .filter(e => e.offsetParent && e.textContent.trim()).map(e => parseFloat(getComputedStyle(e).fontSize)))""")
    images = page.evaluate("""() => [...document.querySelectorAll('article img')]
        .filter(i => i.offsetParent && i.naturalWidth)
        .map(i => [i.src, i.naturalWidth, i.getBoundingClientRect().width])""")
    problems = []
    for k, (src, natural, shown) in enumerate(images):
        fonts = _figure_fonts(src)
        if fonts is None:
            problems.append(f"figure {k}: no record of its text size (not drawn through eoslab.plotting's book style)")
            continue
        points, dpi = fonts
        pixels = points * dpi / 72 * shown / natural
        if pixels < body - 0.25:
            problems.append(f"figure {k}: smallest text {pixels:.1f} px as shown ({points:g} pt at {dpi:g} dpi, "
                            f"{natural} px drawn at {shown:.0f} px), body text down to {body:g} px")
    return problems


def slider_problems(page):
    """Sliders that do not change a figure: the kernel-free ones and, if shown, live widgets' ones."""
    problems = []
    panels = page.locator(".eoslab-static-panel")
    for k in range(panels.count()):
        panel = panels.nth(k)
        sliders = panel.locator("input[type=range]")
        for j in range(sliders.count()):
            before = (panel.locator("img").get_attribute("src"), panel.locator(".eoslab-status").inner_text())
            slider = sliders.nth(j)
            value, top = int(slider.get_attribute("value")), int(slider.get_attribute("max"))
            slider.evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }",
                            str(0 if value > 0 else top))
            after = (panel.locator("img").get_attribute("src"), panel.locator(".eoslab-status").inner_text())
            if after == before:
                problems.append(f"slider {j} of precomputed panel {k} does not change its figure")
    stray = page.evaluate("() => [...document.querySelectorAll('input[type=range]')]"
                          ".filter(e => e.offsetParent && !e.closest('.eoslab-static-panel')).length")
    if stray:
        problems.append(f"{stray} range inputs outside a precomputed panel")
    widgets = page.locator(".widget-slider, .widget-hslider")
    for k in range(widgets.count()):
        box = widgets.nth(k).locator("xpath=ancestor::div[contains(@class, 'widget-vbox')][1]")
        if not box.count() or not widgets.nth(k).is_visible():
            continue
        pictures = lambda: box.evaluate("b => [...b.querySelectorAll('img')].map(i => i.src).join()")
        before = pictures()
        handle = widgets.nth(k).locator(".noUi-handle")
        if handle.count():
            handle.first.focus()
            page.keyboard.press("ArrowRight")
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(200)
        if pictures() == before:
            problems.append(f"live widget slider {k} moves, but no figure changes (no kernel on a web page)")
    return problems


def code_box_problems(page):
    """Code and output boxes that need sideways scrolling."""
    wide = page.evaluate("""() => [...document.querySelectorAll('article .cell_input pre, article .cell_output pre')]
        .filter(e => e.offsetParent && e.scrollWidth > e.clientWidth + 1)
        .map(e => (e.closest('.cell_output') ? 'output' : 'code') + ' box ' + e.scrollWidth + ' px in ' + e.clientWidth
                  + ' px: ' + e.textContent.split('\\n').reduce((a, b) => b.length > a.length ? b : a, '').slice(0, 70))""")
    return wide


def search_box_problems(page):
    shown = page.evaluate("""() => [...document.querySelectorAll('.search-button-field, .bd-search')]
        .filter(e => { const r = e.getBoundingClientRect(); return e.offsetParent && r.width > 0 && r.height > 0; }).length""")
    return [] if shown == 1 else [f"{shown} search boxes shown at {WIDTH} px"]


@pytest.mark.book
@pytest.mark.slow
@pytest.mark.parametrize("name", [page for page in EXPECTED_PAGES if page.startswith("chapters/")])
def test_page_works_in_a_browser(site, browser, name):
    html = site[0]
    path = html / name
    assert path.stat().st_size < PAGE_LIMIT, f"{name} is {path.stat().st_size / 1e6:.1f} MB"
    page, errors = open_page(browser, path)
    try:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        stem = name.replace("chapters/", "").replace(".html", "")
        page.screenshot(path=str(SCREENSHOTS / f"{stem}.png"), full_page=False)
        errors = [e for e in errors if not any(h in e for h in HARMLESS)]
        assert not errors, f"{name}: {errors[:5]}"
        text = page.inner_text("main")
        assert "\\(" not in text and "$$" not in text, f"{name}: raw LaTeX left untypeset"
        problems = {
            "tooling text": sorted(set(m.group(0) for m in TOOLING.finditer(text))),
            "figure text too small": figure_text_problems(page),
            "code boxes scroll sideways": code_box_problems(page),
            "search boxes": search_box_problems(page),
        }
        if name in CHAPTERS:
            assert page.locator("mjx-container").count() > 0, f"{name}: no typeset maths"
            panels = page.locator(".eoslab-static-panel")
            assert panels.count() >= 1, f"{name}: no kernel-free slider"
            (SCREENSHOTS / "panels").mkdir(exist_ok=True)
            panels.first.scroll_into_view_if_needed()
            panels.first.screenshot(path=str(SCREENSHOTS / "panels" / f"{stem}.png"))
            problems["sliders that change nothing"] = slider_problems(page)
        problems = {k: v for k, v in problems.items() if v}
        report = "\n".join(f"  {k} ({len(v)}): " + "; ".join(v[:4]) + (" ..." if len(v) > 4 else "")
                           for k, v in problems.items())
        assert not problems, f"{name}:\n{report}"
    finally:
        page.close()


# --- the student edition ---------------------------------------------------------------------------------------

def _solution_texts(html_folder):
    """Sentences of at least 40 characters from the rendered solutions of every chapter."""
    from bs4 import BeautifulSoup

    texts = {}
    for page in sorted((html_folder / "chapters").glob("0*.html")):
        soup = BeautifulSoup(page.read_text(), "html.parser")
        for block in soup.select("div.solution"):
            sentences = [s.strip() for s in re.split(r"(?<=[.:;])\s", block.get_text(" ", strip=True)) if len(s.strip()) >= 40]
            texts.setdefault(page.name, []).extend(sentences)
    return texts


@pytest.mark.book
@pytest.mark.slow
def test_student_edition_has_no_solutions(site, tmp_path):
    import nbformat

    html, returncode, _, tail = site
    assert returncode == 0, tail
    chapters = sorted((ROOT / "chapters").glob("*.ipynb"))
    solutions = [text for p in chapters for text in solution_texts(p)]
    instructor = _solution_texts(html)
    assert len(solutions) >= 36 and sum(len(v) for v in instructor.values()) > len(solutions)  # shown to instructors

    assert student_edition.main(["--out", str(tmp_path)]) == 0
    student_html = tmp_path / "_build" / "html"
    assert _solution_texts(student_html) == {}
    student_text = {p.name: page_text(p) for p in (student_html / "chapters").glob("0*.html")}
    leaked = [(page, s) for page, sentences in instructor.items() for s in sentences if s in student_text[page]]
    assert not leaked, f"solution text in the student site: {leaked[:3]}"
    assert all("Exercise" in text for name, text in student_text.items() if name != "00_introduction.html")

    notebooks = {p.name: source_of(p) for p in (tmp_path / "notebooks").glob("*.ipynb")}
    assert sorted(notebooks) == [p.name for p in chapters]
    for name, text in notebooks.items():
        assert "{solution" not in text and ("{exercise}" in text or name.startswith("appendix_")), name
        tagged = [c for c in nbformat.read(tmp_path / "notebooks" / name, 4).cells if "solution" in c.metadata.get("tags", [])]
        assert not tagged, f"{name}: {len(tagged)} solution cells handed out"
    everything = "\n".join(notebooks.values())
    body = [line for solution in solutions for line in solution.splitlines()
            if len(line.strip()) >= 40 and "{solution" not in line]
    assert body and not [line for line in body if line in everything]


def page_text(path):
    """The visible text of an HTML page."""
    from bs4 import BeautifulSoup

    return BeautifulSoup(path.read_text(), "html.parser").get_text(" ", strip=True)


def source_of(path):
    """The source of every cell of a notebook, joined."""
    import nbformat

    return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)


def solution_texts(path):
    """The prose of a notebook's solutions: each gated block (its markdown cells tagged ``solution``)
    and each fenced ``{solution}`` block left in a markdown cell."""
    import nbformat

    texts, block = [], []
    for cell in nbformat.read(path, as_version=4).cells:
        if "solution" in cell.metadata.get("tags", []):
            if cell.cell_type == "markdown":
                block.append(cell.source)
            if "{solution-end}" in cell.source:
                texts.append("\n".join(block))
                block = []
        elif cell.cell_type == "markdown":
            texts += [m.group(0) for m in student_edition.SOLUTION.finditer(cell.source)]
    return texts
