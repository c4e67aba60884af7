"""Progress of a scikit-learn search whose fits run in other processes.

- a *progress channel* (:class:`FileProgressChannel` on one machine,
  :class:`DaskProgressChannel` on a cluster) carries one small record per finished
  fit from the workers back to this process, where :class:`ProgressReporter` prints
  which fit of how many has finished, the elapsed time and an estimate of the time
  left;
- :class:`ScaleScorer`, the search's ``scoring``, returns the accuracy and the learned
  σ_basis and ISR of every fit and posts its record to the channel, so the search itself
  stays an unmodified scikit-learn object.

:func:`skscale.search_backends.search_backend` picks the channel that suits its backend.
``dask.distributed`` is imported only when a :class:`DaskProgressChannel` is used.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
import uuid

import numpy as np

from .callbacks import scale_history
from .utils.validation import Integer, Real

__all__ = [
    "DaskProgressChannel",
    "FileProgressChannel",
    "ProgressReporter",
    "ScaleScorer",
    "format_duration",
]

_POSITIVE = Integer(low=1)


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
