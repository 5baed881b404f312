"""The one exception type the metrics package raises for bad input."""

from __future__ import annotations


class MetricsInputError(ValueError):
    """Ground truth or predictions handed to an evaluator are malformed.

    The message names the image (by its position in the input list), the field and what to do.
    """
