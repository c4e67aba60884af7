"""Scale scikit-learn searches out and report their progress: the public import.

``skscale.model_selection`` gathers, under the name the README documents, what two modules
hold: :mod:`skscale.search_backends` (where the fits run: loky processes or a Dask
cluster, torch threads per worker) and :mod:`skscale.progress` (progress channels, the
progress reporter and :class:`ScaleScorer`).
"""

from .progress import DaskProgressChannel, FileProgressChannel, ProgressReporter, ScaleScorer, format_duration
from .search_backends import (
    BACKENDS,
    SearchBackend,
    search_backend,
    set_torch_threads,
    torch_threads_in_this_process,
)

__all__ = [
    "BACKENDS",
    "DaskProgressChannel",
    "FileProgressChannel",
    "ProgressReporter",
    "ScaleScorer",
    "SearchBackend",
    "format_duration",
    "search_backend",
    "set_torch_threads",
    "torch_threads_in_this_process",
]
