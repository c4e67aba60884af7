"""Peak memory per image of ``predict_proba`` and of one training step (issue 16).

For every image size of the profile (28, 64, 128 and 256 pixels) a fresh process
(``spawn``, one torch thread) builds a ``ScaleEquivariantClassifier`` with its default
settings (the Table-1 network), fits it for one epoch on two images of that size, and
then runs, for each of two batch sizes, ``predict_proba`` on one batch and one training
step (``partial_fit`` for one epoch on one batch). Memory is the operating system's
count: the peak resident set size (``VmHWM`` of ``/proc/self/status``, reset just before
each call by writing 5 to ``/proc/self/clear_refs``) minus the resident set size just
before it (``VmRSS``). The process starts with ``MALLOC_MMAP_THRESHOLD_`` at 64 KiB, so
that glibc hands every block of a tensor back to the system when it is freed and one
call's memory is not reused, unseen, by the next. Where the peak cannot be reset, each
call runs in a process of its own and its lifetime peak (``ru_maxrss``) is used; the
results say which.

The memory per image is the slope between the two batch sizes,
``(peak(b2) - peak(b1)) / (b2 - b1)``: what one more image in a batch costs, without the
fixed part (weights, basis, allocator pools). The peak of the larger batch divided by
its size is reported next to it.

    python -m benchmarks.memory --profile cpu       # about 3 minutes on 2 CPU cores
"""

from __future__ import annotations

import concurrent.futures
import gc
import multiprocessing
import os
import resource
import sys

import numpy as np

from benchmarks import harness

NAME = "memory"
MODES = ("predict_proba", "training step")
MIB = 2.0**20
CLEAR_REFS = "/proc/self/clear_refs"
STATUS = "/proc/self/status"
MMAP_THRESHOLD = 64 * 1024
# Classifier defaults that set the memory, named in the results.
DESCRIBED_PARAMS = (
    "architecture",
    "n_scales",
    "init_sigma_basis",
    "init_isr",
    "kernel_extent",
    "n_filters",
    "batch_size",
)


def status_bytes(field):
    """``field`` (``"VmRSS"`` or ``"VmHWM"``) of this process, in bytes (None off Linux)."""
    try:
        with open(STATUS) as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak():
    """Reset the peak resident set size of this process; whether that was possible."""
    try:
        with open(CLEAR_REFS, "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return status_bytes("VmHWM") is not None


def measure_points(image_size, calls, seed=0):
    """Peak memory of each call of ``calls`` in this process (meant to be a fresh one).

    Parameters
    ----------
    image_size : int
        Side of the square one-channel images.
    calls : sequence of (str, int)
        ``(mode, batch)`` pairs, mode ``"predict_proba"`` or ``"training step"``.
    seed : int
        Seeds the images and the network.

    Returns
    -------
    points : list of dict
        Per call: ``baseline_mib`` (resident set size before the call), ``peak_mib`` (peak
        during it), ``increase_mib`` (their difference), ``method`` and ``seconds``.
    """
    import time

    import torch

    from skscale import ScaleEquivariantClassifier

    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    largest = max(batch for _, batch in calls)
    X = rng.standard_normal((largest, 1, image_size, image_size)).astype(np.float32)
    y = np.arange(largest) % 2
    clf = ScaleEquivariantClassifier(max_epochs=1, batch_size=2, random_state=seed).fit(X[:2], y[:2])
    points = []
    for mode, batch in calls:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
        clf.set_params(batch_size=batch)
        images, labels = X[:batch], y[:batch]
        gc.collect()
        baseline = status_bytes("VmRSS")
        resettable = baseline is not None and reset_peak()
        if not resettable and len(calls) > 1:
            raise RuntimeError(
                "the peak resident set size cannot be reset here; measure one call per process."
            )
        start = time.perf_counter()
        if mode == "predict_proba":
            clf.predict_proba(images)
        else:
            clf.partial_fit(images, labels)
        seconds = time.perf_counter() - start
        if resettable:
            peak, method = status_bytes("VmHWM"), "VmHWM after clear_refs"
        else:
            # ru_maxrss is in KiB on Linux and in bytes on macOS.
            unit = 1 if sys.platform == "darwin" else 1024
            peak, method = (
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit,
                "ru_maxrss (lifetime peak)",
            )
            baseline = baseline or 0
        points.append(
            {
                "mode": mode,
                "batch": batch,
                "baseline_mib": baseline / MIB,
                "peak_mib": peak / MIB,
                "increase_mib": (peak - baseline) / MIB,
                "method": method,
                "seconds": seconds,
            }
        )
    return points


def in_fresh_process(image_size, calls):
    """:func:`measure_points` in a new ``spawn`` process that ends after it.

    One process for all ``calls`` where the peak can be reset; one per call otherwise.
    """
    context = multiprocessing.get_context("spawn")
    # Fixed mmap threshold: freed tensors go back to the system (see the module docstring).
    previous = os.environ.get("MALLOC_MMAP_THRESHOLD_")
    os.environ["MALLOC_MMAP_THRESHOLD_"] = str(MMAP_THRESHOLD)
    try:
        groups = [list(calls)] if os.path.exists(CLEAR_REFS) else [[call] for call in calls]
        points = []
        for group in groups:
            with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                points += pool.submit(measure_points, image_size, group).result()
        return points
    finally:
        if previous is None:
            del os.environ["MALLOC_MMAP_THRESHOLD_"]
        else:
            os.environ["MALLOC_MMAP_THRESHOLD_"] = previous


def per_image(small, large, batches):
    """Memory per image (MiB): the slope of the peak increase between the two batch sizes."""
    return (large["increase_mib"] - small["increase_mib"]) / (batches[1] - batches[0])


def run(settings):
    """Every (mode, image size, batch) point of ``settings``, a fresh process per image size.

    Returns
    -------
    results : dict
        Keyed by mode, then by ``str(image_size)``: ``batches``, ``points`` (one
        :func:`measure_point` result per batch), ``per_image_mib`` (slope) and
        ``peak_per_image_mib`` (peak increase of the larger batch over its size).
    """
    batches = {
        "predict_proba": tuple(settings.predict_batches),
        "training step": tuple(settings.train_batches),
    }
    results = {mode: {} for mode in MODES}
    for size in settings.image_sizes:
        calls = [(mode, batch) for mode in MODES for batch in batches[mode]]
        points = in_fresh_process(size, calls)
        for mode in MODES:
            small, large = (point for point in points if point["mode"] == mode)
            entry = {
                "batches": list(batches[mode]),
                "points": [small, large],
                "per_image_mib": per_image(small, large, batches[mode]),
                "peak_per_image_mib": large["increase_mib"] / batches[mode][1],
            }
            results[mode][str(size)] = entry
            harness.log(
                f"{mode}, {size} x {size}: {entry['per_image_mib']:.2f} MiB per image "
                f"(peak increase {large['increase_mib']:.0f} MiB for {batches[mode][1]} images)"
            )
    return results


def proportion(growth, pixels):
    """Whether a growth is within a factor of two of the growth of the pixels (a phrase)."""
    return "about in proportion" if 0.5 <= growth / pixels <= 2 else "not in proportion"


def findings(results, default_batch):
    """Sentences read off the numbers: the cost per image at the largest size, how it grows
    with the number of pixels, and what a batch of ``default_batch`` images then needs."""
    lines = []
    for mode, by_size in results.items():
        sizes = [int(size) for size in by_size]
        values = [by_size[str(size)]["per_image_mib"] for size in sizes]
        largest = sizes[-1]
        text = f"- {mode}: {values[-1]:.1f} MiB per image at {largest} x {largest}"
        if len(sizes) > 1 and values[0] > 0 and values[-1] > 0:
            pixels = (sizes[-1] / sizes[0]) ** 2
            growth = values[-1] / values[0]
            text += (
                f"; from {sizes[0]} to {largest} pixels the pixels grow {pixels:.0f}-fold and the memory "
                f"per image {growth:.0f}-fold ({proportion(growth, pixels)} to the pixels)"
            )
        text += (
            f"; a batch of {default_batch} (the classifier's default `batch_size`) then needs about "
            f"{values[-1] * default_batch / 1024:.2f} GiB at {largest} pixels."
        )
        lines.append(text)
    methods = {
        point["method"]
        for by_size in results.values()
        for entry in by_size.values()
        for point in entry["points"]
    }
    lines.append(f"- measured with: {', '.join(sorted(methods))}.")
    return "\n".join(lines)


def main(argv=None):
    args, profile = harness.setup(
        harness.make_parser(__doc__.splitlines()[0], training=False), argv, sections=("memory",)
    )
    report = harness.Report(
        NAME, "Peak memory per image (issue 16)", args, profile, profile_sections=("memory",)
    )
    results = run(profile.memory)
    rows = []
    for mode, by_size in results.items():
        for size, entry in by_size.items():
            small, large = entry["points"]
            rows.append(
                [
                    mode,
                    f"{size} x {size}",
                    " / ".join(str(b) for b in entry["batches"]),
                    f"{small['increase_mib']:.1f} / {large['increase_mib']:.1f}",
                    f"{entry['per_image_mib']:.2f}",
                    f"{entry['peak_per_image_mib']:.2f}",
                    f"{small['baseline_mib']:.0f}",
                    f"{large['seconds']:.2f}",
                ]
            )
    from skscale import ScaleEquivariantClassifier

    defaults = ScaleEquivariantClassifier().get_params()
    settings = ", ".join(f"{key}={defaults[key]!r}" for key in DESCRIBED_PARAMS)
    report.add(
        "Memory per image",
        f"`ScaleEquivariantClassifier()` with its defaults ({settings}), float32 images with one "
        "channel, one fresh process per image size. Peak resident set size during the call minus the "
        "resident set size before it. *Per image*: slope between the two batch sizes; *peak / "
        "image*: the larger batch's increase over its size (includes the fixed part).\n\n"
        + harness.markdown_table(
            [
                "call",
                "image",
                "batches",
                "peak increase (MiB)",
                "per image (MiB)",
                "peak / image (MiB)",
                "RSS before (MiB)",
                "seconds (larger batch)",
            ],
            rows,
        ),
    )
    report.add("Findings", findings(results, defaults["batch_size"]))
    report.raw = results
    report.write()
    return results


if __name__ == "__main__":
    main()
