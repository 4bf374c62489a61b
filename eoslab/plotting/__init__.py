"""The book's figures and its figure style.

:mod:`~eoslab.plotting.style` holds the style (Okabe-Ito colours, text of
10 pt or more, figures at most the page width, PNGs that record their
smallest text); :mod:`~eoslab.plotting.figures` the standard figures, which
read histories and records by their attributes and import no chapter module;
:mod:`~eoslab.plotting.phase` phase diagrams from sweep tables (a quantity
over a plane of two parameters, several seeds per cell).
"""
from .figures import plot_contour_paths, plot_eoss, plot_eoss_phase, plot_history, plot_lockstep, plot_two_variable
from .phase import phase_cells, plot_phase_plane
from .style import COLORS, PAGE_WIDTH, STAGE_COLORS, STYLE, figure_png, smallest_font, use_book_style

__all__ = ["COLORS", "PAGE_WIDTH", "STAGE_COLORS", "STYLE", "figure_png", "plot_contour_paths", "plot_eoss",
           "plot_eoss_phase", "plot_history", "plot_lockstep", "phase_cells", "plot_phase_plane", "plot_two_variable",
           "smallest_font", "use_book_style"]
