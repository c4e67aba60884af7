"""Benchmarks of skscale: the paper's tables and figures, speed and memory.

Run a script from the repository root as a module, e.g.
``python -m benchmarks.isr_sweep --profile cpu``. :mod:`benchmarks.config` holds the one
configuration object (a :class:`~benchmarks.config.Profile` per problem size),
:mod:`benchmarks.harness` the runner and report every script uses; the scripts do not
import each other. Results go to ``benchmarks/results/<name>-<profile>.{md,json,png}``.
"""
