"""Reports: matplotlib plots of values and a self-contained HTML review page.

The plots (:mod:`dataworth.report.plots`) need matplotlib (``pip install "dataworth[report]"``),
imported only when a plot is drawn; the HTML page (:mod:`dataworth.report.html`) needs nothing
beyond the core dependencies: its plots are hand-written SVG.

Examples
--------
>>> import numpy as np
>>> from dataworth.data import Dataset
>>> from dataworth.report import build_report
>>> data = Dataset.from_arrays(np.eye(3), [0, 1, 1])
>>> build_report(data, np.array([0.2, -0.1, 0.4])).startswith("<!DOCTYPE html>")
True
"""

from dataworth.report.html import build_report, image_shape_of, write_report
from dataworth.report.plots import (
    plot_learning_curves,
    plot_payouts,
    plot_removal_curves,
    plot_value_distribution,
    plot_value_vs_feature,
)

__all__ = [
    "build_report",
    "image_shape_of",
    "plot_learning_curves",
    "plot_payouts",
    "plot_removal_curves",
    "plot_value_distribution",
    "plot_value_vs_feature",
    "write_report",
]
