"""Run scikit-learn searches on several processes or a Dask cluster, and report their progress.

Three pieces make a :class:`~sklearn.model_selection.GridSearchCV` over
:class:`~skscale.ScaleEquivariantClassifier` scale out without surprises:

- :func:`search_backend` selects joblib's backend (``"loky"`` processes on this
  machine, or ``"dask"`` workers of a ``distributed`` cluster) and limits every
  worker to a few torch threads, so that ``n`` workers on ``n`` cores do not each
  start ``n`` threads (oversubscription makes small convolutions many times slower);
- a *progress channel* (:class:`FileProgressChannel` on one machine,
  :class:`DaskProgressChannel` on a cluster) carries one small record per finished
  fit from the workers back to this process, where :class:`ProgressReporter` prints
  which fit of how many has finished, the elapsed time and an estimate of the time
  left;
- :class:`ScaleScorer`, the search's ``scoring``, returns the accuracy and the learned
  σ_basis and ISR of every fit and posts its record to the channel, so the search itself
  stays an unmodified scikit-learn object.

``dask.distributed`` is imported only when the Dask backend is used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import math
import os
import sys
import tempfile
import threading
import time
import uuid

import joblib
import numpy as np

from .callbacks import scale_history
from .utils.validation import Integer, Options, Real

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

#: joblib backends accepted by :func:`search_backend`.
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


def format_duration(seconds):
    """``m:ss`` (or ``h:mm:ss``) for a number of seconds; ``"?"`` when unknown.

    Examples
    --------
    >>> format_duration(83.4), format_duration(3725), format_duration(float("nan"))
    ('1:23', '1:02:05', '?')
    """
    if seconds is None or not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(round(max(seconds, 0.0))), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _time_left(elapsed, done, total, n_workers):
    """Seconds left when ``done`` of ``total`` fits took ``elapsed`` on ``n_workers``.

    The fits are taken to run in waves of ``n_workers`` (fewer if there are fewer
    fits) that last equally long.
    """
    workers = min(n_workers, total)
    wave = elapsed / math.ceil(done / workers)
    return wave * (total - done) / workers


# --------------------------------------------------------------------------- channels
class FileProgressChannel:
    """Progress records from worker processes on this machine, through a file.

    :meth:`post` appends one JSON line with a single ``write`` to a file opened in
    append mode, which POSIX keeps whole when several processes append at once.
    The object is small and picklable, so it travels inside a scorer to loky (or
    local Dask) workers; :meth:`read_new` in the main process returns the records
    that arrived since its last call.

    Parameters
    ----------
    path : str or path-like
        File to append to; created on the first :meth:`post`.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "progress.jsonl")
    >>> channel = FileProgressChannel(path)
    >>> channel.post({"accuracy": 0.9})
    >>> channel.read_new(), channel.read_new()
    ([{'accuracy': 0.9}], [])
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._offset = 0

    def post(self, record):
        """Append ``record`` (a JSON-serialisable dict) as one line."""
        line = (json.dumps(record) + "\n").encode("utf-8")
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, line)
        finally:
            os.close(descriptor)

    def read_new(self):
        """Records posted since the last call (complete lines only), oldest first."""
        try:
            with open(self.path, "rb") as file:
                file.seek(self._offset)
                content = file.read()
        except FileNotFoundError:
            return []
        complete = content.rfind(b"\n") + 1
        self._offset += complete
        return [json.loads(line) for line in content[:complete].splitlines() if line.strip()]

    def __getstate__(self):
        return {"path": self.path, "_offset": 0}


class DaskProgressChannel:
    """Progress records from the workers of a Dask cluster, through its event log.

    Workers call ``log_event(topic, record)`` (structured events of
    ``distributed``), so the records reach the scheduler wherever the workers run;
    :meth:`read_new` fetches them with ``client.get_events(topic)``.

    Parameters
    ----------
    topic : str, optional
        Event topic; a unique one by default.
    client : distributed.Client, optional
        Client of the main process, used by :meth:`read_new`; the default client
        when None. Not pickled: workers post through their own connection.
    """

    def __init__(self, topic=None, client=None):
        self.topic = topic if topic is not None else f"skscale-progress-{uuid.uuid4().hex}"
        self.client = client
        self._seen = 0

    def post(self, record):
        """Log ``record`` (a msgpack-serialisable dict) under :attr:`topic`."""
        from distributed import get_client, get_worker

        try:
            get_worker().log_event(self.topic, record)
        except ValueError:  # not inside a worker: the search ran in the client process
            get_client().log_event(self.topic, record)

    def read_new(self):
        """Records logged since the last call, oldest first."""
        from distributed import get_client

        client = self.client if self.client is not None else get_client()
        events = client.get_events(self.topic)
        new = [dict(message) for _, message in events[self._seen :]]
        self._seen = len(events)
        for record in new:
            record.pop("worker", None)  # added by Worker.log_event
        return new

    def __getstate__(self):
        return {"topic": self.topic, "client": None, "_seen": 0}


class ProgressReporter:
    """Print one line per finished fit while a search runs (a context manager).

    A background thread polls ``channel.read_new()`` every ``interval`` seconds and
    prints ``[done/total  elapsed m:ss  left ~m:ss] description``. The time left
    assumes the fits run in waves of ``n_workers`` that take equally long: after
    ``done`` fits, ``ceil(done / n_workers)`` waves took the elapsed time, and
    ``(total - done) / n_workers`` waves remain. Leaving the context reads the records
    that are still pending.

    Parameters
    ----------
    channel : FileProgressChannel or DaskProgressChannel
        Where the records arrive.
    total : int
        Number of fits expected.
    describe : callable, optional
        ``describe(record) -> str``: the text after the counter; ``str(record)`` by
        default.
    stream : file-like, optional
        Where to print; ``sys.stdout`` when None (looked up when printing, so pytest's
        capture sees it).
    n_workers : int, default=1
        Fits that run at the same time.
    interval : float, default=0.5
        Seconds between polls.
    prefix : str, default=""
        Printed before each line (e.g. an indent).

    Attributes
    ----------
    records : list of dict
        Every record received, in arrival order.

    Examples
    --------
    >>> import io, os, tempfile
    >>> channel = FileProgressChannel(os.path.join(tempfile.mkdtemp(), "fits.jsonl"))
    >>> out = io.StringIO()
    >>> with ProgressReporter(channel, total=2, describe=lambda r: r["name"], stream=out) as progress:
    ...     channel.post({"name": "first fit"})
    ...     channel.post({"name": "second fit"})
    >>> len(progress.records), out.getvalue().splitlines()[-1].startswith("[2/2")
    (2, True)
    """

    def __init__(self, channel, total, *, n_workers=1, describe=None, stream=None, interval=0.5, prefix=""):
        self.channel = channel
        self.total = _POSITIVE.check(total, "total")
        self.n_workers = _POSITIVE.check(n_workers, "n_workers")
        self.describe = describe if describe is not None else str
        self.stream = stream
        self.interval = Real(low=0, closed="neither").check(interval, "interval")
        self.prefix = prefix
        self.records = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = None
        self._start = None

    def __enter__(self):
        self._start = time.perf_counter()
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="skscale-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()
        self._drain()
        return False

    @property
    def elapsed(self):
        """Seconds since the context was entered."""
        return time.perf_counter() - self._start

    def _poll(self):
        while not self._stop.wait(self.interval):
            try:
                self._drain()
            except Exception:  # a flaky read must not kill the search; the final drain retries
                pass

    def _drain(self):
        with self._lock:
            for record in self.channel.read_new():
                self.records.append(record)
                self._print(record)

    def _print(self, record):
        done = len(self.records)
        elapsed = self.elapsed
        left = _time_left(elapsed, done, self.total, self.n_workers)
        width = len(str(self.total))
        counter = (
            f"[{done:>{width}}/{self.total}  elapsed {format_duration(elapsed)}  "
            f"left ~{format_duration(left)}]"
        )
        stream = self.stream if self.stream is not None else sys.stdout
        print(f"{self.prefix}{counter} {self.describe(record)}", file=stream, flush=True)


# --------------------------------------------------------------------------- scoring
class ScaleScorer:
    """Scorer of a search over scale-equivariant classifiers: accuracy and the learned scales.

    Called by a search such as :class:`~sklearn.model_selection.GridSearchCV` once per
    fit, on the held-out fold, it returns ``{"accuracy", "sigma_basis", "isr"}``, so that
    ``cv_results_`` holds the mean and the spread over the folds of the learned
    σ_basis and ISR next to the accuracy (``refit`` must then name ``"accuracy"`` or be
    False). Estimators without internal scales score NaN for both. With a ``channel``
    it also posts one record per fit, which :class:`ProgressReporter` prints in the main
    process: the parameters named in ``params``, the three scores and the ISR and
    σ_basis after every epoch (``isr_history``, ``sigma_basis_history``; empty without
    a recorded history).

    Parameters
    ----------
    channel : FileProgressChannel or DaskProgressChannel, optional
        Where to post the records (:attr:`SearchBackend.channel`); nothing is posted
        when None.
    params : tuple of str, default=("parameterisation", "init_isr")
        Parameters of the classifier (the last step of a pipeline) copied into each
        record; their values must be JSON- and msgpack-serialisable. Scale
        hyper-parameters are recorded as the network was built (``scale_spec_``).

    Examples
    --------
    >>> import numpy as np
    >>> from skscale import ScaleEquivariantClassifier
    >>> X = np.random.RandomState(0).rand(8, 8, 8).astype(np.float32)
    >>> y = np.arange(8) % 2
    >>> classifier = ScaleEquivariantClassifier(n_filters=2, init_sigma_basis=0.7, max_epochs=1,
    ...                                         random_state=0).fit(X, y)
    >>> sorted(ScaleScorer()(classifier, X, y))
    ['accuracy', 'isr', 'sigma_basis']
    """

    def __init__(self, channel=None, params=("parameterisation", "init_isr")):
        self.channel = channel
        self.params = params

    def __call__(self, estimator, X, y):
        classifier = estimator[-1] if hasattr(estimator, "steps") else estimator
        scores = {
            "accuracy": float(estimator.score(X, y)),
            "sigma_basis": float(getattr(classifier, "sigma_basis_", np.nan)),
            "isr": float(getattr(classifier, "isr_", np.nan)),
        }
        if self.channel is not None:
            record = {name: _used_value(classifier, name) for name in self.params}
            record.update(scores)
            record["isr_history"] = _recorded(classifier, "isr")
            record["sigma_basis_history"] = _recorded(classifier, "sigma_basis")
            self.channel.post(record)
        return scores


def _used_value(classifier, name):
    """The value the fit used: a scale hyper-parameter from ``scale_spec_`` (a None argument
    means the architecture's own), any other parameter as given."""
    spec = getattr(classifier, "scale_spec_", None)
    if spec is not None and name in spec.names():
        return getattr(spec, name)
    return getattr(classifier, name)


def _recorded(classifier, key):
    """The per-epoch values of ``key`` in the classifier's history; [] when none were recorded."""
    if getattr(classifier, "history", None) is None:
        return []
    try:
        return scale_history(classifier, key).tolist()
    except ValueError:  # a network without internal scales records no scale columns
        return []


# --------------------------------------------------------------------------- backends
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
def search_backend(backend="loky", *, n_jobs=None, scheduler=None, torch_threads=1):
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
