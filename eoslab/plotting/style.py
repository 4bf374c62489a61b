"""The book's figure style: colours, sizes, and PNGs that record their smallest text."""
from __future__ import annotations

import io

import matplotlib.pyplot as plt
from cycler import cycler
from matplotlib.figure import Figure
from matplotlib.text import Text

__all__ = ["COLORS", "PAGE_WIDTH", "STAGE_COLORS", "STYLE", "figure_png", "smallest_font", "use_book_style"]

#: Okabe and Ito's palette ("Color Universal Design", 2008), told apart with the common colour-vision
#: deficiencies; the order in which runs are drawn (yellow, too pale on white, is left out).
COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]

#: Width in inches of a figure that fills the book's figure column (at 100 dpi) without being scaled down.
PAGE_WIDTH = 7.5

#: The book's matplotlib settings (:func:`use_book_style`): at 100 dpi and at most :data:`PAGE_WIDTH` wide,
#: a figure shows its smallest text (10 pt, 13.9 px) at least as large as the page's code (13.6 px).
STYLE = {
    "axes.prop_cycle": cycler(color=COLORS),
    "figure.figsize": (PAGE_WIDTH, 3.4),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.size": 11,
    "axes.titlesize": 11,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "figure.titlesize": 12,
    "lines.linewidth": 1.6,
}

#: Background colours of the four stages of self-stabilization (see :mod:`eoslab.self_stabilization`).
STAGE_COLORS = {1: "#dce8f7", 2: "#fbe0cc", 3: "#d9efd5", 4: "#eadcf2"}


def _check_figure(fig):
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")


def smallest_font(fig):
    """The size in points of the smallest visible text in a figure (tick labels, legends, titles...)."""
    _check_figure(fig)
    fig.canvas.draw()  # tick labels exist once drawn
    return _smallest_drawn_font(fig)


def _smallest_drawn_font(fig):
    def shown(t):
        return t.get_visible() and t.get_text().strip() and (t.axes is None or t.axes.get_visible())

    sizes = [t.get_fontsize() for t in fig.findobj(Text) if shown(t)]
    return min(sizes) if sizes else float("inf")


def figure_png(fig, *, dpi=None):
    """A figure as PNG bytes, cropped to its content, recording its smallest text size and its resolution.

    The picture is stored with a palette of 256 colours (median cut, no
    dithering): for line plots it looks the same and takes about a third of
    the bytes, which matters for pages that store many figures. The PNG's text
    fields ``eoslab:smallest-font-pt`` and ``eoslab:dpi`` let a page check how
    large the figure's text appears where it is shown (the book's browser
    test does).
    """
    _check_figure(fig)
    from PIL import Image, PngImagePlugin

    if dpi is None:
        dpi = plt.rcParams["savefig.dpi"]
        dpi = fig.dpi if dpi == "figure" else dpi
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    smallest = _smallest_drawn_font(fig)  # saving drew it
    image = Image.open(buffer).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT,
                                                        dither=Image.Dither.NONE)
    info = PngImagePlugin.PngInfo()
    info.add_text("eoslab:smallest-font-pt", f"{smallest:g}")
    info.add_text("eoslab:dpi", f"{float(dpi):g}")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True, pnginfo=info, dpi=(float(dpi), float(dpi)))
    return out.getvalue()


def use_book_style():
    """Draw with the book's style: :data:`STYLE`, and (in IPython) figures shown through :func:`figure_png`.

    Every chapter calls it once, after importing pyplot.
    """
    plt.rcParams.update(STYLE)
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        # pyplot loads its backend with the first figure, and the inline backend then registers its own PNG
        # formatter; load it now, so that ours is the one that stays
        plt.close(plt.figure())
        shell.display_formatter.formatters["image/png"].for_type(Figure, figure_png)
