"""The main job (``python -m skscale demo``): learned versus fixed internal scale range.

On MNIST-Scale (digits shrunk by a factor drawn uniformly from [0.3, 1]), or on
Fashion-MNIST rescaled the same way (``dataset="fashion"``), the demo

1. fits a :class:`~skscale.ToleranceModel` to the scales of the training images and
   reads off its recommended internal scale range (ISR);
2. runs a :class:`~sklearn.model_selection.GridSearchCV` over a
   :class:`~sklearn.pipeline.Pipeline` (:class:`~skscale.preprocessing.ImageStandardizer` then
   :class:`~skscale.ScaleEquivariantClassifier`, the paper's Table-1 network) that
   compares fixed internal scales (the SESN baseline) with learned ones (σ_basis and
   ISR trained, Eq. 5) from several initial ISRs, the tolerance model's among them,
   printing each finished fit with the elapsed and the remaining time;
3. prints the results table and refits the best fixed and the best learned
   configuration on all training images to report their test error, per data scale
   too, beside one fit of the default classifier (the scale hyper-parameters the grid
   searches left at their defaults), with what each cost in fits and in fitting time;
4. writes ``tolerance.png`` (paper Fig. 2), ``isr_trajectory.png`` (Fig. 6),
   ``error_per_scale.png`` (Fig. 4), ``results.csv`` and ``error_per_scale.csv``.

Every step is a function, so the job can be rerun piece by piece from Python:
:func:`compute_demo` computes (steps 1 to 3), :func:`format_report` writes up its result
and :func:`write_files` saves it (step 4); :func:`run_demo` chains them as the command
line does.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import inspect
import math
import os
import sys
import time
import warnings

import joblib
import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline

from .classifier import ScaleEquivariantClassifier
from .datasets import DATASET_SOURCES, FASHION_MNIST_CLASSES, DatasetSizeWarning, make_mnist_scale
from .metrics import error_per_scale
from .nn import PARAMETERISATIONS
from .preprocessing import ImageStandardizer
from .progress import ProgressReporter, ScaleScorer, format_duration
from .search_backends import BACKENDS, search_backend, torch_threads_in_this_process
from .tolerance import ToleranceModel
from .utils.validation import Options

__all__ = [
    "COMPARED_PARAMETERISATIONS",
    "DEFAULT_PARAMS",
    "DATASET_SOURCES",
    "FULL",
    "QUICK",
    "DemoConfig",
    "DemoResult",
    "compute_demo",
    "fit_tolerance_model",
    "format_report",
    "load_demo_data",
    "make_figures",
    "make_param_grid",
    "make_pipeline",
    "refit_best",
    "results_table",
    "run_demo",
    "run_search",
    "write_files",
]

#: The parameterisations the demo compares, chosen from :data:`skscale.nn.PARAMETERISATIONS`:
#: fixed internal scales (the SESN baseline) and the learned ISR of Eq. 5.
COMPARED_PARAMETERISATIONS = tuple(name for name in PARAMETERISATIONS if name in ("fixed", "isr"))
FIGURES = ("tolerance.png", "isr_trajectory.png", "error_per_scale.png")
# How the report and the figures name the rescaled data set, and what they call its images.
_TITLES = {"mnist": "MNIST-Scale", "fashion": "Fashion-MNIST-Scale"}
_NOUNS = {"mnist": "digits", "fashion": "images"}
_DATASET = Options(tuple(DATASET_SOURCES))


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Sizes of one run of the demo.

    Parameters
    ----------
    n_train, n_test : int
        Training images (searched by cross-validation, then refitted on) and test
        images of MNIST-Scale. :data:`FULL`'s ``2000 + 3000`` uses every one of the
        5,000 bundled digits, so no source is too small and the run time does not
        depend on the source or the data set.
    cv : int
        Folds of the stratified cross-validation.
    max_epochs : int
        Training epochs of every fit.
    init_isr : tuple of float
        Initial ISRs searched besides the tolerance model's recommendation.
    init_sigma_basis : float, optional
        Initial smallest internal scale, in pixels (28 x 28 digits); None (the default):
        the classifier's default.
    n_scales, n_filters, lr, batch_size
        Classifier hyper-parameters (``n_scales`` also sizes the tolerance model); ``lr``
        None (the default): the classifier's default.
    error_bins : int
        Bins (log-spaced) of the test error per scale.
    """

    n_train: int
    n_test: int
    cv: int
    max_epochs: int
    init_isr: tuple = (1.5, 4.0)
    init_sigma_basis: float = None
    n_scales: int = 3
    n_filters: int = 16
    lr: float = None
    batch_size: int = 32
    error_bins: int = 7


#: The full demo: 6 configurations x 3 folds of 20 epochs on 2,000 digits (about 5
#: minutes on 2 idle cores).
FULL = DemoConfig(n_train=2000, n_test=3000, cv=3, max_epochs=20)
# The fields of DemoConfig that are hyper-parameters of the classifier, under its names.
_CLASSIFIER_SIZES = ("n_scales", "init_sigma_basis", "n_filters", "lr", "max_epochs", "batch_size")

#: ``--quick``: 4 configurations x 2 folds of 8 epochs on fewer digits (well under 2 minutes).
QUICK = DemoConfig(n_train=400, n_test=1000, cv=2, max_epochs=8, init_isr=(4.0,), error_bins=5)


@dataclasses.dataclass
class DemoResult:
    """What :func:`compute_demo` computed (and :func:`run_demo` wrote).

    Attributes
    ----------
    config : DemoConfig
    dataset : str
        ``"mnist"`` or ``"fashion"``.
    data : sklearn.utils.Bunch
        The MNIST-Scale realisation, as :func:`load_demo_data` returns it.
    target_names : ndarray of shape (10,)
        Name of each class (the digits, or Fashion-MNIST's articles).
    tolerance : ToleranceModel
        Fitted on the training scales.
    search : GridSearchCV
        The fitted search (``refit=False``: the best configurations are refitted by
        :func:`refit_best`).
    rows : list of dict
        The results table (see :func:`results_table`), best first.
    param_grid : dict
        The searched grid (:func:`make_param_grid`).
    best_params : dict
        Parameters of the best configuration (``classifier__parameterisation``,
        ``classifier__init_isr``).
    refit_params : dict
        Parameters of each entry of ``refitted`` (as :func:`refit_best` returns them).
    labels : dict
        How the report and the figures name each entry of ``refitted``.
    refitted : dict
        ``{"fixed": pipeline, "isr": pipeline, "default": pipeline}``: the best
        configuration of each parameterisation refitted on all training digits, and the
        default classifier (:data:`DEFAULT_PARAMS`) fitted once on them.
    n_fits : dict
        Fits each entry of ``refitted`` cost: its half of the grid search (``cv`` times
        the initial ISRs) plus its refit, and 1 for ``"default"``.
    fit_seconds : dict
        Fitting time each entry of ``refitted`` cost, in seconds: its fits' times as
        measured in the process that ran each (the grid's half and the refit).
    test_error : dict
        Test error of each refitted pipeline.
    per_scale : dict
        ``error_per_scale`` result of each refitted pipeline on the test digits.
    records : list of dict
        One progress record per cross-validation fit (with its ISR history).
    files : list of str
        Paths written (empty until :func:`write_files` ran).
    backend : str
        Description of the joblib backend used.
    elapsed : float
        Seconds the whole run took (:func:`compute_demo`: the computation).
    """

    config: DemoConfig
    dataset: str
    data: object
    target_names: np.ndarray
    tolerance: ToleranceModel
    search: GridSearchCV
    rows: list
    param_grid: dict
    best_params: dict
    refit_params: dict
    labels: dict
    refitted: dict
    test_error: dict
    n_fits: dict
    fit_seconds: dict
    per_scale: dict
    records: list
    files: list
    backend: str
    elapsed: float


def _print(stream, *lines):
    stream = stream if stream is not None else sys.stdout
    for line in lines:
        print(line, file=stream, flush=True)


def load_demo_data(config, random_state=0, *, source="auto", data_home=None, dataset="mnist", stream=None):
    """One MNIST-Scale realisation of the sizes in ``config``, of MNIST or Fashion-MNIST.

    A :class:`~skscale.datasets.DatasetSizeWarning` (a source with fewer images than
    asked for) is printed as a one-line note instead of a warning.

    Parameters
    ----------
    config : DemoConfig
    random_state : int, default=0
        Realisation (split and scale factors).
    source, data_home
        See :func:`skscale.datasets.load_mnist` (MNIST) and
        :func:`skscale.datasets.load_fashion_mnist` (Fashion-MNIST); ``"auto"`` works
        offline when the data is on this machine.
    dataset : {"mnist", "fashion"}, default="mnist"
        The images rescaled, see :func:`~skscale.datasets.make_mnist_scale`.
    stream : file-like, optional
        Where to print the note; ``sys.stdout`` when None.

    Returns
    -------
    data : sklearn.utils.Bunch
        As :func:`~skscale.datasets.make_mnist_scale` returns it (``n_val=0``: the
        cross-validation takes the place of a validation split), with the class names
        in ``target_names``.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DatasetSizeWarning)
        data = make_mnist_scale(
            n_train=config.n_train,
            n_val=0,
            n_test=config.n_test,
            random_state=random_state,
            source=source,
            data_home=data_home,
            dataset=dataset,
        )
    noun = _NOUNS[data.dataset]
    for warning in caught:
        if issubclass(warning.category, DatasetSizeWarning):
            _print(
                stream,
                f"note: source {data.source!r} holds fewer {noun} than requested; using "
                f"{len(data.y_train)} training and {len(data.y_test)} test {noun}.",
            )
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if "target_names" not in data:
        # make_mnist_scale's Bunch may not pass on its source's class names: name them here.
        names = FASHION_MNIST_CLASSES if data.dataset == "fashion" else [str(digit) for digit in range(10)]
        data["target_names"] = np.asarray(names)
    return data


def fit_tolerance_model(scales, n_scales=3):
    """Tolerance model of the training scales, whose ``isr_`` seeds the search.

    MNIST-Scale draws the scale factors *uniformly* from [0.3, 1]. The tolerance model
    works in log2 scale (octaves), where that density is not flat but grows like
    ``2**u`` towards the large scales (half of the digits are larger than 0.65, which
    lies 64 % of the way up the log2 range), so a log-uniform density would spread the
    internal scales too wide: the kernel density (``density="kde"``) follows the
    actual distribution and recommends an ISR of about 2.3 on the demo's digits,
    where a log-uniform density gives 3.2. ``tau`` keeps the paper's jointly fitted
    0.459 octaves, since one distribution determines it poorly.

    Parameters
    ----------
    scales : array-like of shape (n_samples,)
        Scale factor of every training image.
    n_scales : int, default=3
        Internal scales of the classifier.

    Returns
    -------
    model : ToleranceModel
        Fitted.
    """
    return ToleranceModel(n_scales=n_scales, density="kde").fit(scales)


def make_pipeline(config, random_state=0):
    """``Pipeline([("standardize", ImageStandardizer()), ("classifier", ...)])``.

    The classifier is the Table-1 network with the sizes of ``config`` (its defaults
    where ``config`` holds None); the search sets its ``parameterisation`` and ``init_isr``.
    """
    sizes = {name: getattr(config, name) for name in _CLASSIFIER_SIZES if getattr(config, name) is not None}
    classifier = ScaleEquivariantClassifier(architecture="table1", random_state=random_state, **sizes)
    return Pipeline([("standardize", ImageStandardizer()), ("classifier", classifier)])


def make_param_grid(config, tolerance_isr):
    """Fixed versus learned ISR, from ``config.init_isr`` and the tolerance model's ISR.

    The tolerance model's ISR is rounded to two decimals (it is an initial value).
    """
    init_isr = sorted({float(value) for value in config.init_isr} | {round(float(tolerance_isr), 2)})
    return {
        "classifier__parameterisation": list(COMPARED_PARAMETERISATIONS),
        "classifier__init_isr": init_isr,
    }


def _describe_record(record):
    text = (
        f"{record['parameterisation']:<5} init ISR {record['init_isr']:.2f}: "
        f"fold accuracy {record['accuracy']:.3f}"
    )
    if record["parameterisation"] != "fixed" and math.isfinite(record["isr"]):
        text += f", learned ISR {record['isr']:.2f}, sigma_basis {record['sigma_basis']:.2f}"
    return text


def run_search(pipeline, param_grid, X, y, *, cv=3, random_state=0, workers=None, stream=None):
    """Cross-validate every configuration of ``param_grid``, printing progress.

    Parameters
    ----------
    pipeline : estimator
        Usually :func:`make_pipeline`'s.
    param_grid : dict
        Usually :func:`make_param_grid`'s.
    X, y : array-like
        Training images and labels.
    cv : int, default=3
        Folds of a shuffled :class:`~sklearn.model_selection.StratifiedKFold`.
    random_state : int, default=0
        Seeds the folds.
    workers : SearchBackend, optional
        What an enclosing ``with skscale.search_backends.search_backend(...) as workers:``
        set up; the search runs on its backend and reports progress through its
        channel. When None, the search runs on the default
        :func:`~skscale.search_backends.search_backend` (loky, all cores).
    stream : file-like, optional
        Where to print; ``sys.stdout`` when None.

    Returns
    -------
    search : GridSearchCV
        Fitted with :class:`~skscale.progress.ScaleScorer` (``refit=False``).
    records : list of dict
        One progress record per fit.
    """
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=random_state)
    n_candidates = int(np.prod([len(values) for values in param_grid.values()]))
    total = n_candidates * cv
    with contextlib.ExitStack() as stack:
        if workers is None:
            workers = stack.enter_context(search_backend())
        search = GridSearchCV(
            pipeline,
            param_grid,
            scoring=ScaleScorer(workers.channel),
            refit=False,
            cv=folds,
            error_score="raise",
        )
        _print(
            stream,
            f"   {cv} folds x {n_candidates} configurations = {total} fits on {workers.description}",
        )
        with ProgressReporter(
            workers.channel,
            total,
            n_workers=workers.n_workers,
            describe=_describe_record,
            stream=stream,
            prefix="   ",
        ) as progress:
            search.fit(X, y)
    return search, progress.records


def results_table(search):
    """Rows of the results table of a search scored by :class:`~skscale.progress.ScaleScorer`.

    Best first.

    Returns
    -------
    rows : list of dict
        Keys ``rank``, ``parameterisation``, ``init_isr``, ``cv_accuracy``,
        ``cv_accuracy_std``, ``fit_time_s``, ``sigma_basis``, ``sigma_basis_std``,
        ``isr``, ``isr_std`` (learned values: mean and standard deviation over the folds).
    """
    results = search.cv_results_
    rows = []
    for index, params in enumerate(results["params"]):
        rows.append(
            {
                "rank": int(results["rank_test_accuracy"][index]),
                "parameterisation": params["classifier__parameterisation"],
                "init_isr": float(params["classifier__init_isr"]),
                "cv_accuracy": float(results["mean_test_accuracy"][index]),
                "cv_accuracy_std": float(results["std_test_accuracy"][index]),
                "fit_time_s": float(results["mean_fit_time"][index]),
                "sigma_basis": float(results["mean_test_sigma_basis"][index]),
                "sigma_basis_std": float(results["std_test_sigma_basis"][index]),
                "isr": float(results["mean_test_isr"][index]),
                "isr_std": float(results["std_test_isr"][index]),
            }
        )
    # Ties keep the grid order, as GridSearchCV's best_index_ does.
    return sorted(rows, key=lambda row: row["rank"])


def _format_table(rows):
    """The results table as text lines; learned scales with their spread over the folds."""
    header = ("rank", "scales", "init ISR", "CV accuracy", "fit time", "sigma_basis", "ISR")
    lines = []
    for row in rows:
        learned = row["parameterisation"] != "fixed"

        def spread(key, row=row, learned=learned):
            text = f"{row[key]:.2f}"
            return f"{text} +/- {row[key + '_std']:.2f}" if learned else text

        lines.append(
            (
                str(row["rank"]),
                "learned" if learned else "fixed",
                f"{row['init_isr']:.2f}",
                f"{row['cv_accuracy']:.3f} +/- {row['cv_accuracy_std']:.3f}",
                f"{row['fit_time_s']:.1f} s",
                spread("sigma_basis"),
                spread("isr"),
            )
        )
    widths = [max(len(cell) for cell in column) for column in zip(header, *lines)]
    return [
        "   "
        + "  ".join(
            cell.ljust(width) if column == 1 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(line, widths))
        )
        for line in [header, *lines]
    ]


#: Significant digits of the floats written to the CSV files: float32 values such as
#: 2.3 would otherwise be written as 2.299999952316284.
CSV_DIGITS = 6


def _csv_value(value):
    """``value`` as written to a CSV file: floats rounded to :data:`CSV_DIGITS` significant digits."""
    if isinstance(value, float | np.floating) and math.isfinite(value):
        return float(f"{value:.{CSV_DIGITS}g}")
    return value


def _write_csv(path, fieldnames, rows):
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows({key: _csv_value(value) for key, value in row.items()} for row in rows)


def _fit(pipeline, X, y):
    start = time.perf_counter()
    pipeline.fit(X, y)
    return pipeline, time.perf_counter() - start


#: The one fit beside the grid: the classifier with its own defaults for everything the
#: grid searches (parameterisation and initial ISR) and for its scale selection.
DEFAULT_PARAMS = {}


def refit_best(search, pipeline, X, y, *, default=False):
    """Refit the best configuration of each parameterisation on all of ``X, y``.

    The fits run at the same time on the active joblib backend (inside
    :func:`skscale.search_backends.search_backend`, its workers).

    Parameters
    ----------
    search : GridSearchCV
        Fitted by :func:`run_search`.
    pipeline : estimator
        The searched pipeline.
    X, y : array-like
        All training images and labels.
    default : bool, default=False
        Also fit the default classifier (:data:`DEFAULT_PARAMS`, no search), under the key
        ``"default"``.

    Returns
    -------
    refitted : dict
        ``{parameterisation: fitted pipeline}`` for ``"fixed"`` and ``"isr"`` (and ``"default"``).
    best_params : dict
        ``{parameterisation: params}``, and for ``"default"`` the parameterisation and the
        initial ISR the default classifier was built with.
    seconds : dict
        The time each refit took, in the process that ran it.
    """
    results = search.cv_results_
    best = {}
    for index in np.argsort(results["rank_test_accuracy"], kind="stable"):
        params = results["params"][index]
        best.setdefault(params["classifier__parameterisation"], params)
    names = [name for name in COMPARED_PARAMETERISATIONS if name in best]
    if default:
        best["default"] = dict(DEFAULT_PARAMS)
        names.append("default")
    fitted = joblib.Parallel()(
        joblib.delayed(_fit)(clone(pipeline).set_params(**best[name]), X, y) for name in names
    )
    refitted = {name: pipeline for name, (pipeline, _) in zip(names, fitted)}
    if default:
        spec = refitted["default"][-1].scale_spec_
        best["default"] = {
            "classifier__parameterisation": spec.parameterisation,
            "classifier__init_isr": spec.init_isr,
        }
    return refitted, best, {name: seconds for name, (_, seconds) in zip(names, fitted)}


def _label(parameterisation, init_isr):
    if parameterisation == "fixed":
        return f"fixed ISR {init_isr:.2f}"
    return f"learned ISR from {init_isr:.2f}"


def _default_label(classifier):
    """How the report names the default classifier's fit: what its defaults are."""
    spec = classifier.scale_spec_
    scales = "fixed" if spec.parameterisation == "fixed" else f"{classifier.scale_selection!r}"
    return f"default classifier ({scales}, ISR from {spec.init_isr:.2f})"


def _format_test_errors(result):
    labels = result.labels
    width = max(len(label) for label in labels.values())
    lines = []
    for name, fitted in result.refitted.items():
        n_fits = result.n_fits[name]
        text = (
            f"   {labels[name]:<{width}}  test error {100 * result.test_error[name]:5.2f}%  "
            f"{n_fits:>3} fit{'s' if n_fits > 1 else ' '} {format_duration(result.fit_seconds[name]):>7}"
        )
        classifier = fitted[-1]
        if classifier.scale_spec_.parameterisation != "fixed":
            text += f"  (learned sigma_basis {classifier.sigma_basis_:.2f} px, ISR {classifier.isr_:.2f})"
        if name == result.best_params["classifier__parameterisation"]:
            text += "  <- best of the search"
        lines.append(text)
    bin_scales = next(iter(result.per_scale.values()))[0]
    lines.append("   test error [%] per data scale:")
    lines.append("   " + "scale".ljust(width) + "".join(f"{scale:>7.2f}" for scale in bin_scales))
    for name in result.refitted:
        errors = "".join(f"{100 * error:>7.1f}" for error in result.per_scale[name][1])
        lines.append("   " + labels[name].ljust(width) + errors)
    return lines


def make_figures(result):
    """The three figures of a run, ``{file name: Figure}``, titled with its data set's name.

    Parameters
    ----------
    result : DemoResult
        The run to draw (from :func:`compute_demo`): its grid records and trajectories.

    Returns
    -------
    figures : dict
        ``{name: matplotlib.figure.Figure}`` for every name in :data:`FIGURES`.
    """
    from matplotlib.figure import Figure

    from .plotting import plot_error_per_scale, plot_isr_trajectory, plot_tolerance

    title, tolerance = _TITLES[result.dataset], result.tolerance
    figures = {}
    figure = figures["tolerance.png"] = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = figure.add_subplot()
    plot_tolerance(tolerance, ax=ax, X=result.data.scales_train)
    ax.set_title(f"{title} training scales: {ax.get_title()}")

    learned = sorted(
        (
            record
            for record in result.records
            if record["parameterisation"] != "fixed" and record["isr_history"]
        ),
        key=lambda record: record["init_isr"],
    )
    figure = figures["isr_trajectory.png"] = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = figure.add_subplot()
    if learned:
        plot_isr_trajectory(
            [[record["init_isr"], *record["isr_history"]] for record in learned],
            first_epoch=0,
            ax=ax,
            labels=[f"init ISR {record['init_isr']:.2f}" for record in learned],
            reference_isr={"tolerance model": float(tolerance.isr_[0])},
        )
    ax.set_title(f"{title}: learned ISR per epoch, one line per fit")

    figure = figures["error_per_scale.png"] = Figure(figsize=(6.4, 4.2), layout="constrained")
    curves = {
        f"{result.labels[name]} (test error {100 * result.test_error[name]:.1f}%)": curve
        for name, curve in result.per_scale.items()
    }
    ax = figure.add_subplot()
    plot_error_per_scale(curves, ax=ax)
    ax.set_title(f"{title}: {ax.get_title().lower()}")
    return figures


def _check_dataset_and_source(dataset, source):
    """``dataset`` and ``source`` checked: a data set of :data:`DATASET_SOURCES` and one of its sources."""
    dataset = _DATASET.check(dataset, "dataset")
    source = Options(DATASET_SOURCES[dataset]).check(source, f"source (dataset={dataset!r})")
    return dataset, source


def _data_lines(data, noun):
    """What the demo prints about its data, once loaded."""
    return [
        f"data: {len(data.y_train)} training and {len(data.y_test)} test {noun} (28 x 28) from "
        f"source {data.source!r}, each shrunk by a factor in "
        f"[{data.scales_train.min():.2f}, {data.scales_train.max():.2f}]",
        f"      {len(data.target_names)} classes: {', '.join(map(str, data.target_names))}",
        "",
    ]


def _tolerance_lines(tolerance, noun):
    """Step 1 of the report: the tolerance model's recommendation."""
    return [
        f"1. Tolerance model of the training scales (kernel density, tau = {tolerance.tau_:.3f} octaves):",
        f"   recommended ISR = {tolerance.isr_[0]:.2f}, internal scales "
        f"{', '.join(f'{value:.2f}' for value in tolerance.internal_scales_[0])} (x {noun[:-1]} size)",
        "",
    ]


def _score_on_test(refitted, data, bins):
    """Test error, overall and per data scale, of every refitted pipeline."""
    test_error, per_scale = {}, {}
    with torch_threads_in_this_process(1):
        for name, fitted in refitted.items():
            per_scale[name] = error_per_scale(fitted, data.X_test, data.y_test, data.scales_test, bins=bins)
            # The bins span every test digit, so their weighted mean is the test error.
            test_error[name] = float(np.average(per_scale[name][1], weights=per_scale[name][2]))
    return test_error, per_scale


def compute_demo(
    config=FULL,
    *,
    n_jobs=None,
    random_state=0,
    backend=BACKENDS[0],
    scheduler=None,
    source="auto",
    data_home=None,
    dataset="mnist",
    stream=None,
):
    """Load the data, search, refit and test: the demo's computation, without its report or files.

    Prints the data, the tolerance model and the search's progress as it goes;
    :func:`format_report` writes up the result and :func:`write_files` saves it.

    Parameters
    ----------
    config, n_jobs, random_state, backend, scheduler, source, data_home, dataset, stream
        See :func:`run_demo`.

    Returns
    -------
    result : DemoResult
        With no ``files`` yet; ``elapsed`` is the time this computation took.
    """
    start = time.perf_counter()
    dataset, source = _check_dataset_and_source(dataset, source)
    noun = _NOUNS[dataset]
    data = load_demo_data(
        config, random_state, source=source, data_home=data_home, dataset=dataset, stream=stream
    )
    _print(stream, *_data_lines(data, noun))
    tolerance = fit_tolerance_model(data.scales_train, config.n_scales)
    _print(stream, *_tolerance_lines(tolerance, noun))

    pipeline = make_pipeline(config, random_state)
    grid = make_param_grid(config, tolerance.isr_[0])
    _print(
        stream,
        "2. Grid search: internal scales fixed or learned, initial ISR in "
        f"{{{', '.join(f'{value:g}' for value in grid['classifier__init_isr'])}}} "
        f"(sigma_basis {pipeline[-1]._scale_spec().init_sigma_basis:g} px, lr {pipeline[-1].lr:g}, "
        f"{config.max_epochs} epochs per fit)",
    )
    with search_backend(backend, n_jobs=n_jobs, scheduler=scheduler) as workers:
        search, records = run_search(
            pipeline,
            grid,
            data.X_train,
            data.y_train,
            cv=config.cv,
            random_state=random_state,
            workers=workers,
            stream=stream,
        )
        refitted, refit_params, refit_seconds = refit_best(
            search, pipeline, data.X_train, data.y_train, default=True
        )
    test_error, per_scale = _score_on_test(refitted, data, config.error_bins)

    rows = results_table(search)
    for row in rows:
        name = row["parameterisation"]
        refit = name in refit_params and refit_params[name]["classifier__init_isr"] == row["init_isr"]
        row["test_error"] = test_error[name] if refit else ""
    labels = {
        name: _label(
            refit_params[name]["classifier__parameterisation"], refit_params[name]["classifier__init_isr"]
        )
        for name in COMPARED_PARAMETERISATIONS
    }
    labels["default"] = _default_label(refitted["default"][-1])
    # The grid's fits that chose a parameterisation's best initial ISR, plus its refit.
    per_half = config.cv * len(grid["classifier__init_isr"])
    results = search.cv_results_
    grid_seconds = {
        name: config.cv
        * sum(
            seconds
            for seconds, params in zip(results["mean_fit_time"], results["params"])
            if params["classifier__parameterisation"] == name
        )
        for name in COMPARED_PARAMETERISATIONS
    }
    return DemoResult(
        config=config,
        dataset=dataset,
        data=data,
        target_names=data.target_names,
        tolerance=tolerance,
        search=search,
        rows=rows,
        param_grid=grid,
        best_params={
            "classifier__parameterisation": rows[0]["parameterisation"],
            "classifier__init_isr": rows[0]["init_isr"],
        },
        refit_params=refit_params,
        labels=labels,
        refitted=refitted,
        test_error=test_error,
        n_fits={name: 1 if name == "default" else per_half + 1 for name in refitted},
        fit_seconds={name: grid_seconds.get(name, 0.0) + refit_seconds[name] for name in refitted},
        per_scale=per_scale,
        records=records,
        files=[],
        backend=workers.description,
        elapsed=time.perf_counter() - start,
    )


def format_report(result):
    """Steps 3 and 4 of the demo's report: the search's table and the test errors.

    Parameters
    ----------
    result : DemoResult
        As :func:`compute_demo` returns it.

    Returns
    -------
    lines : list of str
    """
    data, noun, best = result.data, _NOUNS[result.dataset], result.rows[0]
    n_train, n_test = len(data.y_train), len(data.y_test)
    per_half = result.config.cv * len(result.param_grid["classifier__init_isr"])
    return [
        "",
        f"3. Results ({result.config.cv}-fold cross-validation on {n_train} training {noun}; "
        "sigma_basis [px] and ISR after training)",
        *_format_table(result.rows),
        f"   best: {_label(best['parameterisation'], best['init_isr'])}, CV accuracy "
        f"{best['cv_accuracy']:.3f} +/- {best['cv_accuracy_std']:.3f}",
        "",
        f"4. Test error on {n_test} {noun} of the best fixed and the best learned "
        f"configuration, refitted on all {n_train} training {noun}, and of one fit of the "
        "default classifier (no search)",
        f"   cost: the grid search chose the best fixed and the best learned ISR with {2 * per_half} "
        f"cross-validation fits ({per_half} each) and 2 refits; the default classifier needed 1 fit;",
        "   fitting time as measured in the process that ran each fit",
        *_format_test_errors(result),
    ]


def write_files(result, output):
    """Write the figures (:data:`FIGURES`), ``results.csv`` and ``error_per_scale.csv``.

    Parameters
    ----------
    result : DemoResult
        As :func:`compute_demo` returns it.
    output : str or path-like
        Folder of the files; created if needed.

    Returns
    -------
    files : list of str
        The paths written, in the order above.
    """
    output = os.fspath(output)
    os.makedirs(output, exist_ok=True)
    files = []
    for name, figure in make_figures(result).items():
        files.append(os.path.join(output, name))
        figure.savefig(files[-1], dpi=100)
    files.append(os.path.join(output, "results.csv"))
    _write_csv(files[-1], list(result.rows[0]), result.rows)
    files.append(os.path.join(output, "error_per_scale.csv"))
    _write_csv(
        files[-1],
        ["fit", "parameterisation", "init_isr", "scale", "test_error", "n_digits"],
        [
            {
                "fit": name,
                "parameterisation": result.refit_params[name]["classifier__parameterisation"],
                "init_isr": result.refit_params[name]["classifier__init_isr"],
                "scale": float(scale),
                "test_error": float(error),
                "n_digits": int(count),
            }
            for name in result.refitted
            for scale, error, count in zip(*result.per_scale[name])
        ],
    )
    return files


def run_demo(config=FULL, *, output="skscale-demo", **options):
    """Run the whole demo, printing as it goes, and write the figures and tables.

    :func:`compute_demo`, then :func:`format_report` printed and :func:`write_files`.

    Parameters
    ----------
    config : DemoConfig, default=FULL
        :data:`FULL` or :data:`QUICK` (or your own sizes).
    output : str or path-like, default="skscale-demo"
        Folder for the figures and CSV files; created if needed.
    **options
        The keyword arguments of :func:`compute_demo` (``n_jobs``, ``random_state``,
        ``backend``, ``scheduler``, ``source``, ``data_home``, ``dataset``, ``stream``).

    Returns
    -------
    result : DemoResult

    Raises
    ------
    ValueError
        If ``dataset`` is unknown or ``source`` is not one of its sources (before any
        work).
    TypeError
        For an option :func:`compute_demo` does not take.
    """
    start = time.perf_counter()
    unknown = sorted(set(options) - set(inspect.signature(compute_demo).parameters) - {"config"})
    if unknown:
        raise TypeError(f"run_demo() got an unexpected keyword argument {unknown[0]!r}")
    stream = options.get("stream")
    options["dataset"], options["source"] = _check_dataset_and_source(
        options.get("dataset", "mnist"), options.get("source", "auto")
    )
    import matplotlib  # noqa: F401  (fail before the long search when the plot extra is missing)

    title = _TITLES[options["dataset"]]
    _print(stream, f"skscale demo: learned versus fixed internal scale range (ISR) on {title}")
    output = os.fspath(output)
    os.makedirs(output, exist_ok=True)  # a folder that cannot be made fails before the search
    result = compute_demo(config, **options)
    _print(stream, *format_report(result))
    result.files = write_files(result, output)
    result.elapsed = time.perf_counter() - start
    _print(
        stream,
        "",
        f"5. Wrote {', '.join(os.path.basename(path) for path in result.files)} to {output}{os.sep}",
        f"Done in {format_duration(result.elapsed)}.",
    )
    return result
