"""PNG plots of evaluation results (matplotlib Agg; each function returns the written path)."""

from dfseg.metrics.plots.confusion import plot_confusion_matrix
from dfseg.metrics.plots.curves import plot_confidence_curve, plot_pr_curves
from dfseg.metrics.plots.grid import plot_prediction_grid
from dfseg.metrics.plots.labels import plot_label_distribution

__all__ = [
    "plot_confidence_curve",
    "plot_confusion_matrix",
    "plot_label_distribution",
    "plot_pr_curves",
    "plot_prediction_grid",
]
