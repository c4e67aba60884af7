"""Run scikit-learn searches on several processes or a Dask cluster, torch threads limited.

:func:`search_backend` selects joblib's backend (``"loky"`` processes on this machine, or
``"dask"`` workers of a ``distributed`` cluster) and limits every worker to a few torch
threads, so that ``n`` workers on ``n`` cores do not each start ``n`` threads
(oversubscription makes small convolutions many times slower). It sets up the progress
channel of :mod:`skscale.progress` that suits the backend.

``dask.distributed`` is imported only when the Dask backend is used.

Torch's CPU convolutions sum in an order that depends on the number of intra-op
threads, and training amplifies those last-digit differences into different scores and
flipped predictions. Inside :func:`search_backend` every fit runs with ``torch_threads``
threads, in workers and (with one worker) in this process alike, so a search gives the
same results for any ``n_jobs``. A scikit-learn function called with ``n_jobs`` outside
the context (``cross_val_score(clf, X, y, n_jobs=2)``) runs the fits of ``n_jobs=1`` with
this process's thread count and those of ``n_jobs=2`` with joblib's limit in its workers
(``cpu_count // n_jobs``), which can differ: wrap such calls in :func:`search_backend`
or :func:`torch_threads_in_this_process`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import tempfile

import joblib

from .progress import DaskProgressChannel, FileProgressChannel
from .utils.validation import Integer, Options

__all__ = [
    "BACKENDS",
    "SearchBackend",
    "search_backend",
    "set_torch_threads",
    "torch_threads_in_this_process",
]

#: joblib backends accepted by :func:`search_backend`, the default first.
BACKENDS = ("loky", "dask")

_DASK_HINT = "the dask backend needs dask.distributed: pip install 'skscale[dask]'"
_MALLOC_TRIM_KEY = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
_POSITIVE = Integer(low=1)


def set_torch_threads(n_threads):
    """Set the number of intra-op threads of torch in this process.

    Run on every worker (``client.run(set_torch_threads, 1)`` on a Dask cluster) so
    that parallel fits do not oversubscribe the cores.

    Parameters
    ----------
    n_threads : int
        Positive number of threads.

    Returns
    -------
    n_threads : int
        The number of threads torch reports afterwards.

    Examples
    --------
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> set_torch_threads(1)
    1
    >>> _ = set_torch_threads(before)
    """
    import torch

    n_threads = _POSITIVE.check(n_threads, "n_threads")
    torch.set_num_threads(n_threads)
    return torch.get_num_threads()


@contextlib.contextmanager
def torch_threads_in_this_process(n_threads):
    """Context in which torch uses ``n_threads`` intra-op threads in this process.

    The previous count is restored on exit. For small convolutions one thread loses
    little, and it keeps a busy machine from stalling torch: a second thread that
    shares its core with another process holds up every parallel region.

    Examples
    --------
    >>> import torch
    >>> with torch_threads_in_this_process(1):
    ...     torch.get_num_threads()
    1
    """
    import torch

    before = torch.get_num_threads()
    set_torch_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclasses.dataclass(frozen=True, repr=False)
class SearchBackend:
    """What :func:`search_backend` set up (returned by its context manager).

    Attributes
    ----------
    name : {"loky", "dask"}
        The joblib backend in use.
    n_workers : int
        Worker processes that run fits at the same time.
    torch_threads : int
        Torch threads per worker (or in this process when it runs the fits).
    channel : FileProgressChannel or DaskProgressChannel
        Progress channel suited to the backend.
    client : distributed.Client or None
        The Dask client (``"dask"`` only).
    description : str
        One line for logs, e.g. ``"loky: 2 worker processes x 1 torch thread"``.
    """

    name: str
    n_workers: int
    torch_threads: int
    channel: object
    client: object = None
    description: str = ""

    def __repr__(self):
        return f"SearchBackend({self.description!r})"


def _threads(n):
    return f"{n} torch thread{'s' if n != 1 else ''}"


@contextlib.contextmanager
def search_backend(backend=BACKENDS[0], *, n_jobs=None, scheduler=None, torch_threads=1):
    """Context in which joblib, and so every scikit-learn search, runs on ``backend``.

    Inside the context, estimators created with ``n_jobs=None`` (the default of
    :class:`~sklearn.model_selection.GridSearchCV`) use the selected backend and
    number of workers, and each worker runs torch with ``torch_threads`` threads.

    - ``"loky"``: ``n_jobs`` worker processes on this machine (joblib's default
      backend). Worker threads are limited through joblib's
      ``inner_max_num_threads``, which sets ``OMP_NUM_THREADS`` (read by torch) and
      the BLAS variables in the workers. ``n_jobs=1`` runs the fits in this process,
      whose torch thread count is set for the duration of the context.
    - ``"dask"``: a ``distributed`` cluster. With ``scheduler`` (an address such as
      ``"tcp://10.0.0.5:8786"``) the search joins that cluster; without it, a
      :class:`distributed.LocalCluster` of ``n_jobs`` single-threaded worker
      processes is started here and closed afterwards. A worker plugin calls
      :func:`set_torch_threads` on every worker, including workers that join later.

    Parameters
    ----------
    backend : {"loky", "dask"}, default="loky"
        The joblib backend.
    n_jobs : int, optional
        Worker processes: all cores (``joblib.cpu_count()``) when None. Ignored with
        ``scheduler`` (the cluster has its own workers).
    scheduler : str, optional
        Address of a running Dask scheduler; only with ``backend="dask"``.
    torch_threads : int, default=1
        Torch threads per worker process.

    Yields
    ------
    backend : SearchBackend
        The workers and the progress channel suited to them.

    Raises
    ------
    ValueError
        For an unknown backend, a non-positive ``n_jobs`` or ``torch_threads``, or
        ``scheduler`` without ``backend="dask"``.
    ImportError
        For ``backend="dask"`` without ``dask.distributed`` installed.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> with search_backend("loky", n_jobs=1) as backend:
    ...     search = GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.1, 1.0]}).fit(X, y)
    >>> backend.description
    'loky: this process x 1 torch thread'
    """
    backend = Options(BACKENDS).check(backend, "backend")
    n_jobs = Integer(low=1, allow_none=True).check(n_jobs, "n_jobs")
    torch_threads = _POSITIVE.check(torch_threads, "torch_threads")
    if scheduler is not None and backend != "dask":
        raise ValueError(f"scheduler is only used by backend='dask', got backend={backend!r}.")
    if backend == "loky":
        with _loky_backend(n_jobs, torch_threads) as result:
            yield result
    else:
        with _dask_backend(n_jobs, scheduler, torch_threads) as result:
            yield result


@contextlib.contextmanager
def _loky_backend(n_jobs, torch_threads):
    n_workers = n_jobs if n_jobs is not None else joblib.cpu_count()
    with tempfile.TemporaryDirectory(prefix="skscale-progress-") as folder:
        channel = FileProgressChannel(os.path.join(folder, "fits.jsonl"))
        with contextlib.ExitStack() as stack:
            if n_workers == 1:
                description = f"loky: this process x {_threads(torch_threads)}"
                stack.enter_context(joblib.parallel_config(backend="loky", n_jobs=1))
                stack.enter_context(torch_threads_in_this_process(torch_threads))
            else:
                description = f"loky: {n_workers} worker processes x {_threads(torch_threads)}"
                stack.enter_context(
                    joblib.parallel_config(
                        backend="loky", n_jobs=n_workers, inner_max_num_threads=torch_threads
                    )
                )
            yield SearchBackend("loky", n_workers, torch_threads, channel, description=description)


# --------------------------------------------------------------------------- dask helpers
@functools.cache
def _torch_threads_plugin_class():
    """The worker plugin class, defined on first use so that only the Dask backend imports distributed."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class TorchThreadsPlugin(WorkerPlugin):
        """Set torch's thread count on every worker of a cluster, present and future.

        The scheduler runs :meth:`setup` on each worker connected now and on each worker
        that joins later, so single-threaded workers do not oversubscribe their cores.
        """

        def __init__(self, n_threads):
            self.n_threads = n_threads

        def setup(self, worker):
            set_torch_threads(self.n_threads)

        def __reduce__(self):
            # Pickled by reference to the module-level factory: workers rebuild the class.
            return _torch_threads_plugin, (self.n_threads,)

    return TorchThreadsPlugin


def _torch_threads_plugin(n_threads):
    """A ``distributed`` worker plugin that calls :func:`set_torch_threads` on every worker."""
    return _torch_threads_plugin_class()(n_threads)


def _silence_distributed_logs():
    logging.getLogger("distributed").setLevel(logging.CRITICAL)


def _silence_shutdown(client):
    """Silence ``distributed``'s logs here and on the workers before a local cluster closes.

    Workers that imported torch often outlive the nanny's grace period, so a clean
    shutdown logs "Worker process still alive ... killing" and heartbeat errors that are
    noise to the user. Used only on clusters this process started; the caller restores
    the level of the ``"distributed"`` logger once the cluster is closed.
    """
    with contextlib.suppress(Exception):
        client.run(_silence_distributed_logs)
    logging.getLogger("distributed").setLevel(logging.CRITICAL)


@contextlib.contextmanager
def _dask_backend(n_jobs, scheduler, torch_threads):
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ImportError(_DASK_HINT) from exc

    with contextlib.ExitStack() as stack:
        if scheduler is None:
            n_workers = n_jobs if n_jobs is not None else joblib.cpu_count()
            logger = logging.getLogger("distributed")
            stack.callback(logger.setLevel, logger.level)  # runs last, after the cluster closed
            # The nanny sets MALLOC_TRIM_THRESHOLD_=65536 in new workers to hand memory
            # back to the OS early; torch's allocation pattern then spends most of a fit
            # in page faults (4-5x slower fits). None unsets it for these workers.
            stack.enter_context(dask.config.set({_MALLOC_TRIM_KEY: None}))
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                )
            )
            client = stack.enter_context(Client(cluster))
            stack.callback(_silence_shutdown, client)  # runs first, before the cluster closes
            where = f"local cluster at {cluster.scheduler_address}"
        else:
            client = stack.enter_context(Client(scheduler))
            where = f"scheduler {scheduler}"
        client.register_plugin(_torch_threads_plugin(torch_threads), name="skscale-torch-threads")
        n_workers = len(client.scheduler_info()["workers"])
        description = (
            f"dask: {where}, {n_workers} worker{'s' if n_workers != 1 else ''} x {_threads(torch_threads)}"
        )
        channel = DaskProgressChannel(client=client)
        with joblib.parallel_config(backend="dask"):
            yield SearchBackend(
                "dask", n_workers, torch_threads, channel, client=client, description=description
            )
