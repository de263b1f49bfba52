"""torchmetrics internals chatft reads, each behind a name of chatft's own.

* ``Metric._is_synced`` -> :func:`synced_states`: read a metric's states summed over processes outside
  ``compute`` (per-type slot rows, the reliability diagram), with the same sync rule ``compute`` applies.
* ``MulticlassCalibrationError`` state names ``confidences``/``accuracies`` -> :func:`calibration_states`.

``tests/test_compat.py`` checks both against the installed torchmetrics; ``pyproject.toml``'s torchmetrics
pin names them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def synced_states(metric: Any) -> Iterator[None]:
    """Inside the block the metric's states are reduced over processes (a no-op on one process), as in
    ``compute``; they are restored to the local ones on exit. Every rank must enter it."""
    should_sync = metric.sync_on_compute and not metric._is_synced
    with metric.sync_context(dist_sync_fn=metric.dist_sync_fn, should_sync=should_sync, should_unsync=True):
        yield


def calibration_states(metric: Any) -> tuple[Any, Any]:
    """``(confidences, hits)`` a ``MulticlassCalibrationError`` has gathered: lists of tensors before a
    sync, one tensor each after."""
    return metric.confidences, metric.accuracies
