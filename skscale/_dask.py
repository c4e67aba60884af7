"""Dask worker plugin of :mod:`skscale.parallel` (imported only with ``dask.distributed``)."""

import contextlib
import logging

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["TorchThreadsPlugin", "silence_shutdown"]


class TorchThreadsPlugin(WorkerPlugin):
    """Set torch's thread count on every worker of a cluster, present and future.

    Register it with ``client.register_plugin(TorchThreadsPlugin(1))``; the scheduler
    runs :meth:`setup` on each worker that is connected now and on each worker that
    joins later, so single-threaded workers do not oversubscribe their cores.

    Parameters
    ----------
    n_threads : int
        Torch intra-op threads per worker process.
    """

    def __init__(self, n_threads):
        self.n_threads = n_threads

    def setup(self, worker):
        from .parallel import set_torch_threads

        set_torch_threads(self.n_threads)


def _silence_distributed_logs():
    logging.getLogger("distributed").setLevel(logging.CRITICAL)


def silence_shutdown(client):
    """Silence ``distributed``'s logs here and on the workers before a local cluster closes.

    Workers that imported torch often outlive the nanny's grace period, so a clean
    shutdown logs "Worker process still alive ... killing" and heartbeat errors that
    are noise to the user. Use only on clusters this process started, and restore the
    level of the ``"distributed"`` logger once the cluster is closed.
    """
    with contextlib.suppress(Exception):
        client.run(_silence_distributed_logs)
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
