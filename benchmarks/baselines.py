"""MNIST-Scale and Fashion-MNIST-Scale with and without scale augmentation (paper Tables 5 and 6).

The paper's architectures (CNN, SESN, DSS, SI-ConvNet, DISCO, as registered in
:data:`skscale.nn.ARCHITECTURES`) are trained on one realisation per seed of
:func:`skscale.datasets.make_mnist_scale` (images shrunk by a factor drawn uniformly from
[0.3, 1] on 28 x 28 images; ``--dataset fashion`` takes Fashion-MNIST's images, offline
from Debian's ``dataset-fashion-mnist``) and, on the same realisation, with the "+"
protocol: every training image rescaled by a factor drawn uniformly from [0.5, 2] with
bicubic resampling, as the SESN authors' ``RandomAffine(0, scale=(0.5, 2), resample=3)``
(the classifier's ``scale_augmentation``, ``scale_augmentation_draw="uniform"``,
``scale_augmentation_interpolation="bicubic"``). The SESN network runs with fixed scales (the SESN baseline, 4
scales 1.5 * 2^(i/3)) and learns them with the profile's forms (the paper's "Ours" rows);
the learned scales form Table 6. Every fit restores its best-validation checkpoint when the
profile has a validation split. Errors come with the binomial standard error of one test
error and each row's difference to SESN with fixed scales, paired by realisation.

Every fit is appended to ``<results>.fits.jsonl`` beside the results file as soon as it
finishes (its test error, per-epoch validation errors ``val_history``, scales, times),
keyed by row, setting, realisation and a digest of the protocol; running the same command
again skips the fits the journal holds, so a long run can be stopped and continued.

    python -m benchmarks.baselines --profile cpu --dataset fashion --n-jobs 2
    python -m benchmarks.baselines --profile paper --dataset mnist --device cuda
"""

from __future__ import annotations

import inspect
import json
import math
import re
import shutil
import time
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from benchmarks import harness, stats
from benchmarks.config import TABLE5_ARCHITECTURES as EXPECTED
from benchmarks.config import TABLE5_SCALE_OVERRIDES as SCALE_OVERRIDES
from benchmarks.config import TABLE5_SCALES as SESN_SCALES
from benchmarks.config import table5_scales

NAME = "baselines"
# Every row's test error is compared with this one, paired by realisation.
REFERENCE = "sesn/fixed"
K_SE = 2.0  # a difference is "better" or "worse" (larger, smaller) only beyond K_SE standard errors
# The "+" protocol: training images rescaled by factors in [0.5, 2], drawn uniformly and
# resampled bicubically (the SESN authors' torchvision RandomAffine(0, scale=(0.5, 2), resample=3)).
AUGMENTATION = (0.5, 2.0)
AUGMENTATION_DRAW = "uniform"
AUGMENTATION_INTERPOLATION = "bicubic"
# Every decay of the weights' learning rate divides it by ten (the authors' schedule).
WEIGHT_GAMMA = 0.1
DATASETS = {"mnist": "MNIST-Scale", "fashion": "Fashion-MNIST-Scale"}
# Which of the paper's "Ours" rows a learned form stands for.
ROLES = {
    "isr": "Learn ISR",
    "authors": "Learn ISR",
    "log": "Learn ISR",
    "spacing": "Learn Spacings",
    "ratios": "Learn Spacings",
    "direct": "Learn Scales Directly",
}
# (architecture, role) -> the paper's Table 5 row: (name, MNIST-Scale, MNIST-Scale+, params).
PAPER_TABLE5 = {
    ("cnn", "fixed"): ("CNN", "2.02 ± 0.07", "1.60 ± 0.09", "495k"),
    ("sicnn", "fixed"): ("SiCNN", "2.02 ± 0.14", "1.59 ± 0.03", "497k"),
    ("siconvnet", "fixed"): ("SI-ConvNet", "1.82 ± 0.11", "1.59 ± 0.10", "495k"),
    ("sevf", "fixed"): ("SEVF", "2.12 ± 0.13", "1.81 ± 0.09", "495k"),
    ("dss", "fixed"): ("DSS", "1.97 ± 0.08", "1.57 ± 0.09", "475k"),
    ("sscnn", "fixed"): ("SS-CNN", "1.84 ± 0.10", "1.76 ± 0.07", "494k"),
    ("sesn", "fixed"): ("SESN (Hermite)", "1.68 ± 0.06", "1.42 ± 0.07", "495k"),
    ("disco", "fixed"): ("DISCO", "1.52 ± 0.06", "1.35 ± 0.05", "495k"),
    ("sesn", "Learn ISR"): ("Ours (Learn ISR)", "1.72 ± 0.05", "1.44 ± 0.09", "495k"),
    ("sesn", "Learn Spacings"): ("Ours (Learn Spacings)", "1.70 ± 0.10", "1.50 ± 0.08", "495k"),
    ("sesn", "Learn Scales Directly"): ("Ours (Learn Scales Directly)", "1.74 ± 0.06", "1.50 ± 0.08", "495k"),
}
# The paper's Table 6 (learned scales of the SESN network), without and with augmentation.
PAPER_TABLE6 = {
    ("fixed", False): "1.5, 1.89, 2.38, 3",
    ("fixed", True): "1.5, 1.89, 2.38, 3",
    ("Learn ISR", False): "1.390, 1.890, 2.572, 3.503",
    ("Learn ISR", True): "1.381, 2.066, 3.092, 4.627",
    ("Learn Spacings", False): "1.390, 1.930, 2.614, 3.776",
    ("Learn Spacings", True): "1.373, 1.859, 2.847, 4.646",
    ("Learn Scales Directly", False): "1.375, 1.889, 2.383, 3.297",
    ("Learn Scales Directly", True): "1.360, 1.741, 2.485, 3.775",
}
KINDS = ("plain", "augmented")
# (height, width) of MNIST-Scale's one-channel images.
IMAGE_SHAPE = (28, 28)


def paper_key(name):
    """``"sesn/authors"`` -> ``("sesn", "Learn ISR")``: the paper row a run stands for."""
    architecture, parameterisation = name.split("/")
    return architecture, ROLES.get(parameterisation, parameterisation)


def paper_mean(cell):
    """The mean of a paper cell ``"1.72 ± 0.05"``."""
    return float(cell.split("±")[0])


def configurations(learned):
    """``(architecture, parameterisation)`` pairs to run, and the expected architectures that are missing.

    Every expected architecture that is registered runs with fixed scales; the SESN
    network also learns its scales with each form of ``learned``.
    """
    from skscale.nn import ARCHITECTURES

    runs = [(name, "fixed") for name in EXPECTED if name in ARCHITECTURES]
    if "sesn" in ARCHITECTURES:
        runs += [("sesn", form) for form in learned]
    missing = [name for name in EXPECTED if name not in ARCHITECTURES]
    return runs, missing


def fit_plan(settings):
    """Every fit of a run in task order: ``(seed, augmented, architecture, parameterisation)``."""
    runs, _ = configurations(settings["learned"])
    return [
        (seed, augmented, architecture, parameterisation)
        for seed in settings["seeds"]
        for augmented in (False, True)
        for architecture, parameterisation in runs
    ]


def scale_split(settings, dataset, seed):
    """One realisation of MNIST-Scale (or Fashion-MNIST-Scale), the last one cached per
    process: the fits of one realisation share it (with and without augmentation alike)."""
    source = settings["source"] if dataset == "mnist" else "auto"
    return _split(dataset, seed, settings["n_train"], settings["n_val"], settings["n_test"], source)


@lru_cache(maxsize=1)
def _split(dataset, seed, n_train, n_val, n_test, source):
    from skscale.datasets import make_mnist_scale

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DatasetSizeWarning: the sizes are in the results file
        return make_mnist_scale(
            n_train=n_train, n_val=n_val, n_test=n_test, random_state=seed, source=source, dataset=dataset
        )


def make_classifier(settings, seed, augmented, architecture, parameterisation, device="cpu", **kwargs):
    """The classifier of one Table-5 row (``kwargs``: further classifier parameters)."""
    from skscale import ScaleEquivariantClassifier

    return ScaleEquivariantClassifier(
        architecture=architecture,
        parameterisation=parameterisation,
        **table5_scales(architecture),
        kernel_extent=settings["kernel_extent"],
        max_epochs=settings["max_epochs"],
        batch_size=settings["batch_size"],
        lr=settings["lr"],
        scale_lr=settings["scale_lr"],
        scale_warmup_epochs=settings["scale_warmup_epochs"],
        scale_augmentation=AUGMENTATION if augmented else None,
        scale_augmentation_draw=AUGMENTATION_DRAW,
        scale_augmentation_interpolation=AUGMENTATION_INTERPOLATION,
        device=device,
        random_state=seed,
        **kwargs,
    )


def fit_one(
    settings, dataset, seed, augmented, architecture, parameterisation, device="cpu", checkpoints=None
):
    """Train one network of Table 5 and measure it on the test split.

    With ``settings["lr_decays"]`` (not None) the fit trains until its validation error has
    converged, decaying both learning rates that many times at the plateaus
    (:class:`benchmarks.harness.UntilConverged`), at most ``max_epochs`` epochs, and saves
    every epoch in a folder of ``checkpoints`` (a temporary one if None) named after the
    fit, so that a run stopped in the middle of it continues from its last epoch
    (:func:`benchmarks.harness.resumable_fit`); :func:`run` removes it once the fit's record
    is in the journal.
    Otherwise it follows the profile's fixed schedule for ``max_epochs`` epochs.

    Returns a record: test error (%), validation error and epoch of the restored
    checkpoint, the validation error (%) after every epoch, ``val_history`` (None without
    a validation split), the epochs trained, whether the validation error had converged
    (:func:`benchmarks.stats.converged`), the decays made, seconds of training (the
    epochs' durations, validation included, over every session of a resumed fit) and of
    prediction, the sorted internal scales (None for networks without them) and the
    parameter count.
    """
    import tempfile

    from skscale.nn import count_parameters

    data = scale_split(settings, dataset, seed)
    epochs = settings["max_epochs"]
    decays = settings.get("lr_decays")
    callbacks, train_split = [], None
    if decays is not None:
        train_split = harness.validation(data.X_val, data.y_val, "valid_acc", epochs)[0]
        stop = harness.UntilConverged(decays, WEIGHT_GAMMA, settings["scale_lr_gamma"])
        callbacks.append(("until_converged", stop))
    elif settings["n_val"]:
        train_split, callbacks = harness.validation(data.X_val, data.y_val, "valid_acc", epochs)
    schedule = harness.lr_schedule(
        settings["lr_step"],
        WEIGHT_GAMMA,
        settings["scale_lr_milestones"],
        settings["scale_lr_gamma"],
        learned=parameterisation != "fixed",
    )
    if schedule is not None:
        callbacks.append(("lr_schedule", schedule))
    clf = make_classifier(
        settings,
        seed,
        augmented,
        architecture,
        parameterisation,
        device,
        train_split=train_split,
        callbacks=callbacks or None,
    )
    if decays is None:
        clf.fit(data.X_train, data.y_train)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            key = fit_key(settings, dataset, seed, augmented, architecture, parameterisation)
            folder = checkpoint_folder(checkpoints or scratch, key)
            harness.resumable_fit(clf, data.X_train, data.y_train, folder, epochs)
    fit_s = float(sum(clf.history[:, "dur"]))
    start = time.perf_counter()
    error = harness.error_rate(clf, data.X_test, data.y_test)
    predict_s = time.perf_counter() - start
    val_error, best_epoch, val_history = None, None, None
    if settings["n_val"]:
        best_epoch, val_error = harness.best_epoch(clf)
        val_history = harness.val_history(clf)
    harness.log(
        f"{dataset} seed {seed} {'+' if augmented else ' '} {architecture}/{parameterisation}: error "
        f"{error:.2f} % after {len(clf.history)} epochs (fit {fit_s / 60:.1f} min, predict {predict_s:.0f} s)"
    )
    return {
        "error": error,
        "val_error": val_error,
        "best_epoch": best_epoch,
        "val_history": val_history,
        "epochs": len(clf.history),
        "converged": None if val_history is None else stats.converged(val_history),
        "lr_decays": clf.history[-1].get("lr_decays"),
        "fit_s": fit_s,
        "predict_s": predict_s,
        "scales": None if clf.scales_ is None else np.sort(clf.scales_).tolist(),
        "parameters": count_parameters(clf.module_),
        "n_test": len(data.y_test),
    }


def step_seconds(settings, architecture, parameterisation, batch=16, repeats=3):
    """Median time of one training step of a row's network on ``batch`` random images.

    The expected cost of the row's fit and predictions, relative to the other rows (they
    scale with the work of one step): :func:`run` starts the costliest fits first.
    """
    import torch

    clf = make_classifier(settings, 0, False, architecture, parameterisation)
    clf.set_params(image_shape=IMAGE_SHAPE, classes=np.arange(10)).initialize()
    module = clf.module_.train()
    images = torch.rand((batch, 1, *IMAGE_SHAPE), generator=torch.Generator().manual_seed(0))
    labels = torch.arange(batch) % 10
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        module.zero_grad()
        torch.nn.functional.cross_entropy(module(images), labels).backward()
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def protocol_settings(settings, dataset):
    """Everything besides the row, setting and realisation that determines a fit's result."""
    from skscale.nn.baselines import SIConvNet

    chosen = {key: value for key, value in settings.items() if key not in ("seeds", "learned")}
    return {
        **chosen,
        "dataset": dataset,
        "sesn_scales": SESN_SCALES,
        "scale_overrides": SCALE_OVERRIDES,
        "augmentation": [*AUGMENTATION, AUGMENTATION_DRAW, AUGMENTATION_INTERPOLATION],
        # The SI-ConvNet rows' image pyramid (its default changed to "same" in issue 30).
        "siconvnet_pyramid": inspect.signature(SIConvNet).parameters["pyramid"].default,
    }


def fit_key(settings, dataset, seed, augmented, architecture, parameterisation):
    """The journal key of one fit: row, setting, realisation and the protocol's digest."""
    return harness.fit_key(
        row=f"{architecture}/{parameterisation}",
        setting=KINDS[int(bool(augmented))],
        seed=int(seed),
        dataset=dataset,
        protocol=harness.protocol_digest(protocol_settings(settings, dataset)),
    )


def checkpoint_folder(checkpoints, key):
    """The folder in ``checkpoints`` of the epochs of the fit with journal key ``key``."""
    return Path(checkpoints) / harness.protocol_digest({"key": key})


def run(settings, dataset, device="cpu", n_jobs=1, journal=None):
    """Every (seed, plain or augmented, configuration) fit; returns ``(results, missing)``.

    ``results[name][kind][field]`` lists one value per seed (``kind``: ``"plain"`` or
    ``"augmented"``; ``field``: the keys of :func:`fit_one`'s record). With ``journal``
    (a JSONL path) every fit is stored there as it finishes and the fits it already holds
    are read back instead of run (:func:`benchmarks.harness.run_fits_resumable`, keys
    from :func:`fit_key`); a fit that trains until converged saves its epochs in the
    folder :func:`benchmarks.harness.checkpoints_path` names, so that even a fit cut short
    continues where it stopped.
    """
    runs, missing = configurations(settings["learned"])
    # Fits that train until converged save every epoch beside the journal, to continue there.
    checkpoints = None if journal is None else harness.checkpoints_path(journal)
    tasks = [(settings, dataset, *fit, device, checkpoints) for fit in fit_plan(settings)]
    costs = None
    # The costs order the fits still to run; there are none once the journal holds every fit.
    if n_jobs > 1 and (journal is None or stored_fits(settings, dataset, journal) < len(tasks)):
        step = {(a, p): step_seconds(settings, a, p) for a, p in runs}
        costs = [
            step[architecture, parameterisation] for _, _, _, _, architecture, parameterisation, *_ in tasks
        ]
        if checkpoints is not None:  # the fits cut short in an earlier run continue first, the furthest first
            first = max(costs) + 1.0
            for index, task in enumerate(tasks):
                saved = harness.saved_epochs(checkpoint_folder(checkpoints, fit_key(*task[:6])))
                if saved:
                    costs[index] = first * (1 + len(saved))
        harness.log("one training step (s): " + ", ".join(f"{a}/{p} {s:.3f}" for (a, p), s in step.items()))
    if journal is None:
        fits = iter(harness.run_fits(fit_one, tasks, n_jobs, costs=costs))
    else:
        keys = [fit_key(*task[:6]) for task in tasks]
        fits = iter(harness.run_fits_resumable(fit_one, tasks, keys, journal, n_jobs, costs=costs))
        for key in keys:  # every record is in the journal now: the epochs saved for it can go
            shutil.rmtree(checkpoint_folder(checkpoints, key), ignore_errors=True)
    results = {
        f"{a}/{p}": {"architecture": a, "parameterisation": p, "seeds": list(settings["seeds"])}
        for a, p in runs
    }
    for _seed in settings["seeds"]:
        for kind in KINDS:
            for architecture, parameterisation in runs:
                record = next(fits)
                entry = results[f"{architecture}/{parameterisation}"]
                entry["parameters"] = record.pop("parameters")
                for field, value in record.items():
                    entry.setdefault(kind, {}).setdefault(field, []).append(value)
    return results, missing


def progress_lines(settings, dataset, journal):
    """One line per fit of a run: finished (its test error), in progress (its epochs, last
    validation errors and decays, from its checkpoint) or not started."""
    finished = harness.read_journal(journal)
    checkpoints = harness.checkpoints_path(journal)
    lines = []
    for seed, augmented, architecture, parameterisation in fit_plan(settings):
        key = fit_key(settings, dataset, seed, augmented, architecture, parameterisation)
        label = f"seed {seed} {'+' if augmented else ' '} {architecture}/{parameterisation}"
        if key in finished:
            error, epochs = finished[key]["error"], finished[key].get("epochs", "?")
            state = f"finished: test error {error:.2f} % after {epochs} epochs"
        elif rows := harness.saved_epochs(checkpoint_folder(checkpoints, key)):
            errors = ", ".join(f"{100.0 * (1.0 - row['valid_acc']):.1f}" for row in rows[-4:])
            state = (
                f"in progress: {len(rows)} epochs, validation error (last 4) {errors} %, "
                f"{rows[-1].get('lr_decays', 0)} decays"
            )
        else:
            state = "not started"
        lines.append(f"{label}: {state}")
    return lines


def stored_fits(settings, dataset, journal):
    """How many of a run's fits ``journal`` already holds."""
    finished = harness.read_journal(journal)
    return sum(fit_key(settings, dataset, *fit) in finished for fit in fit_plan(settings))


def resumed_sentence(results, n_stored):
    """What an earlier run of the command contributed (with a leading space; empty when nothing).

    The wall time under "Run" is the last run's alone, so the fits' own times are summed here.
    """
    if not n_stored:
        return ""
    fits = [entry[kind] for entry in results.values() for kind in KINDS]
    n_fits = sum(len(fit["error"]) for fit in fits)
    hours = sum(sum(fit["fit_s"]) + sum(fit["predict_s"]) for fit in fits) / 3600
    return (
        f" {n_stored} of the {n_fits} fits were read from the fit journal of earlier runs of this "
        f"command; training and testing took {hours:.1f} h summed over the fits (the date and wall "
        "time under Run are the last run's)."
    )


def n_test(results):
    """The test-set size of the runs (every row is tested on the same images)."""
    return next(iter(results.values()))["plain"]["n_test"][0]


def reference_differences(results, kind):
    """``{name: (mean difference, paired SE, n)}`` of each row's test error minus SESN's
    with fixed scales, paired by realisation (None when SESN did not run)."""
    if REFERENCE not in results:
        return {}
    reference = results[REFERENCE][kind]["error"]
    return {
        name: stats.paired_difference(entry[kind]["error"], reference)
        for name, entry in results.items()
        if name != REFERENCE
    }


def error_cell(errors, n_test):
    """``mean ± std (SE s)``: the sample std over realisations and the binomial SE of one test error."""
    return f"{stats.mean_sd(errors)} (SE {stats.binomial_se(float(np.mean(errors)), n_test):.2f})"


def difference_cell(row):
    if row is None:
        return "(reference)"
    gap, se, _ = row
    return f"{gap:+.2f}" + ("" if not math.isfinite(se) else f" ± {se:.2f}")


def training_sentence(settings):
    """How long every fit trained, from the protocol settings (with a leading space)."""
    decays = settings.get("lr_decays")
    if decays is None:
        return f" Every fit trained {settings['max_epochs']} epochs on the profile's fixed schedule."
    return (
        f" Every fit trained until its validation error had converged: at each of the first {decays} "
        f"plateaus both learning rates were multiplied by {WEIGHT_GAMMA:g} (the scales' by "
        f"{settings['scale_lr_gamma']:g}), the next plateau ended the fit, at most {settings['max_epochs']} "
        "epochs."
    )


def epochs_cell(fits):
    """The epochs each realisation trained, ``*`` marking a fit whose validation error had not
    converged (``–`` for records from before the epochs were recorded)."""
    if "epochs" not in fits:
        return "–"
    return ", ".join(f"{n}{'' if done else '*'}" for n, done in zip(fits["epochs"], fits["converged"]))


def convergence_line(results):
    """How many fits had converged (:func:`benchmarks.stats.converged`), naming the others."""
    fits = [
        (f"{name} {'+' if kind == 'augmented' else 'plain'}", done)
        for name, entry in results.items()
        for kind in KINDS
        for done in entry[kind].get("converged", [None])
    ]
    if any(done is None for _, done in fits):
        return "- convergence was not recorded for every fit (records of an earlier protocol)"
    open_fits = [label for label, done in fits if not done]
    return (
        f"- {len(fits) - len(open_fits)} of {len(fits)} fits had converged (no more than "
        f"{stats.CONVERGENCE_TOLERANCE:g} points of validation error gained in their last "
        f"{stats.CONVERGENCE_WINDOW} epochs)" + (f"; not: {', '.join(open_fits)}" if open_fits else "")
    )


def table5_rows(results, dataset):
    differences = {kind: reference_differences(results, kind) for kind in KINDS}
    rows = []
    for name, entry in results.items():
        paper = PAPER_TABLE5.get(paper_key(name), ("–",) * 4)
        n_test = entry["plain"]["n_test"][0]
        rows.append(
            [
                name,
                f"{entry['parameters']:,}",
                *(error_cell(entry[kind]["error"], n_test) for kind in KINDS),
                *(difference_cell(differences[kind].get(name)) for kind in KINDS),
                " / ".join(epochs_cell(entry[kind]) for kind in KINDS),
                f"{np.mean(entry['plain']['fit_s'] + entry['augmented']['fit_s']) / 60:.1f}",
                f"{np.mean(entry['plain']['predict_s'] + entry['augmented']['predict_s']):.0f}",
                paper[0],
                paper[1],
                paper[2],
            ]
        )
    return rows


def table6_rows(results):
    """Rows of Table 6: the internal scales each SESN run ended with (mean ± std over
    realisations, without and with augmentation), next to the paper's."""
    rows = []
    for name, entry in results.items():
        if entry["architecture"] != "sesn" or not entry["plain"]["scales"][0]:
            continue
        cells = [name]
        for augmented, kind in zip((False, True), KINDS):
            scales = np.array(entry[kind]["scales"])
            cells.append(", ".join(harness.mean_std(scales[:, i], 3) for i in range(scales.shape[1])))
            cells.append(PAPER_TABLE6.get((paper_key(name)[1], augmented), "–"))
        rows.append(cells)
    return rows


def claim_difference(errors, reference_errors, n_test):
    """``(difference, se, basis)`` of two rows' test errors (``errors - reference_errors``).

    Over several realisations: the mean of the per-realisation differences and its paired
    SE (``basis="paired"``). With one realisation: the one difference and the SE of two
    independent binomial test errors, ``sqrt(SE_a^2 + SE_b^2)`` (``basis="test-set"``),
    which leaves out the noise between realisations and, on a shared test set, errs large.
    """
    gap, se, n = stats.paired_difference(errors, reference_errors)
    if n > 1:
        return gap, se, "paired"
    combined = math.hypot(
        stats.binomial_se(errors[0], n_test), stats.binomial_se(reference_errors[0], n_test)
    )
    return gap, combined, "test-set"


def comparison(results, dataset):
    """Sentences comparing these results with the paper's Tables 5 and 6, written from the numbers."""
    lines = []
    label = DATASETS[dataset]
    tested = n_test(results)
    for kind, column in zip(KINDS, (1, 2)):
        ours = sorted(results, key=lambda name: np.mean(results[name][kind]["error"]))
        paper = sorted(
            (name for name in results if paper_key(name) in PAPER_TABLE5),
            key=lambda name: paper_mean(PAPER_TABLE5[paper_key(name)][column]),
        )
        lines.append(
            f"- {label}{'+' if kind == 'augmented' else ''}, lowest to highest mean test error: "
            + " < ".join(f"{name} {np.mean(results[name][kind]['error']):.2f}" for name in ours)
            + "; the paper's MNIST-Scale{}: ".format("+" if kind == "augmented" else "")
            + " < ".join(f"{name} {paper_mean(PAPER_TABLE5[paper_key(name)][column]):.2f}" for name in paper)
        )
        names = [name for name in results if name != REFERENCE] if REFERENCE in results else []
        for name in names:
            errors = results[name][kind]["error"]
            gap, se, basis = claim_difference(errors, results[REFERENCE][kind]["error"], tested)
            paper_gap = None
            if paper_key(name) in PAPER_TABLE5 and paper_key(REFERENCE) in PAPER_TABLE5:
                paper_gap = paper_mean(PAPER_TABLE5[paper_key(name)][column]) - paper_mean(
                    PAPER_TABLE5[paper_key(REFERENCE)][column]
                )
            if stats.within_k_se(gap, se, K_SE):
                verdict = f"within two {basis} SE ({se:.2f}) of SESN"
            else:
                verdict = (
                    f"{'worse' if gap > 0 else 'better'} than SESN by more than two {basis} SE ({se:.2f})"
                )
            lines.append(
                f"  - {name} - {REFERENCE}: {gap:+.2f} points over {len(errors)} realisation(s), {verdict}"
                + ("" if paper_gap is None else f" (paper, MNIST-Scale: {paper_gap:+.2f})")
            )
    lines.append(convergence_line(results))
    gains, bases = [], set()
    for name, entry in results.items():
        gap, se, basis = claim_difference(entry["augmented"]["error"], entry["plain"]["error"], tested)
        bases.add(basis)
        if gap < 0 and not stats.within_k_se(gap, se, K_SE):
            gains.append(name)
    lines.append(
        f"- scale augmentation lowers the test error by more than two {'/'.join(sorted(bases))} SE for "
        f"{len(gains)} of {len(results)} rows"
        + (f" ({', '.join(gains)})" if gains else "")
        + "; in the paper's Table 5 it lowers every row"
    )
    if "test-set" in bases:
        lines.append(
            "- one realisation: its SEs are those of the test set alone (two binomial errors); "
            "the spread between realisations, which the paper's ± holds, is not measured"
        )
    for name, entry in results.items():
        if entry["architecture"] != "sesn" or entry["parameterisation"] == "fixed":
            continue
        largest = {kind: np.array(entry[kind]["scales"])[:, -1] for kind in KINDS}
        plain, augmented = (float(np.mean(largest[kind])) for kind in KINDS)
        gap, se, n = stats.paired_difference(largest["augmented"], largest["plain"])
        if n < 2:
            verdict = f"{gap:+.2f} with it, one realisation: no SE, no claim"
        elif stats.within_k_se(gap, se, K_SE):
            verdict = f"{gap:+.2f} with it, within two paired SE ({se:.2f})"
        else:
            verdict = f"{'larger' if gap > 0 else 'smaller'} with it by more than two paired SE ({se:.2f})"
        paper = [float(PAPER_TABLE6[(paper_key(name)[1], a)].split(", ")[-1]) for a in (False, True)]
        lines.append(
            f"- Table 6, {name}: largest learned scale {plain:.2f} without and {augmented:.2f} with "
            f"augmentation ({verdict}; paper {paper[0]:.2f} and {paper[1]:.2f})"
        )
    return "\n".join(lines)


COMPARISON_HEADING = "Comparison with the paper (generated from the results)"


def regenerate_comparison(markdown):
    """Rewrite the comparison section of a results file from the JSON beside it.

    The sentences are :func:`comparison` of the JSON's results, so a change in how they
    are worded reaches a committed result without fitting again. Returns the text.
    """
    markdown = Path(markdown)
    raw = json.loads(markdown.with_suffix(".json").read_text())["results"]
    text = comparison(raw["results"], raw["dataset"])
    pattern = re.compile(rf"(## {re.escape(COMPARISON_HEADING)}\n\n).*?(\n\n## )", re.S)
    old = markdown.read_text()
    if not pattern.search(old):
        raise ValueError(f"{markdown} has no section '## {COMPARISON_HEADING}'.")
    markdown.write_text(pattern.sub(lambda match: match.group(1) + text + match.group(2), old, count=1))
    return text


def main(argv=None):
    parser = harness.make_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset",
        choices=sorted(DATASETS),
        default=None,
        help="mnist (MNIST-Scale) or fashion (Fashion-MNIST-Scale); default: the profile's",
    )
    parser.add_argument(
        "--regenerate",
        type=Path,
        default=None,
        metavar="MARKDOWN",
        help="fit nothing: rewrite the comparison section of this results file from the JSON beside it",
    )
    parser.add_argument(
        "--progress",
        action="store_true",
        help="fit nothing: print every fit's state from the journal and the epoch checkpoints",
    )
    args, profile = harness.setup(parser, argv)
    if args.regenerate is not None:
        print(regenerate_comparison(args.regenerate))
        return None
    settings = profile.mnist_scale
    dataset = args.dataset or settings["dataset"]
    report = harness.Report(
        NAME,
        f"{DATASETS[dataset]}: every architecture, with and without augmentation (paper Tables 5 and 6)",
        args,
        profile,
        variant=dataset,
    )
    journal = harness.journal_path(report.paths()[0])
    if args.progress:
        print("\n".join(progress_lines(settings, dataset, journal)))
        return None
    harness.log(f"fits journal: {journal} (delete it to fit everything again)")
    n_stored = stored_fits(settings, dataset, journal)
    results, missing = run(settings, dataset, args.device, args.n_jobs or 1, journal=journal)
    checkpoint = (
        f"the best-validation checkpoint ({settings['n_val']:,} validation images)"
        if settings["n_val"]
        else "the last epoch (no validation split)"
    )
    text = (
        f"Test error (%) of {checkpoint} on {DATASETS[dataset]} ({settings['n_train']:,} training, "
        f"{settings['n_test']:,} test images) without and with the '+' augmentation (training images "
        f"rescaled by factors drawn {AUGMENTATION_DRAW} from [{AUGMENTATION[0]:g}, {AUGMENTATION[1]:g}], "
        f"{AUGMENTATION_INTERPOLATION}): mean ± sample std over "
        f"realisations {list(settings['seeds'])} with the binomial SE of one test error, and the "
        f"difference to `{REFERENCE}` paired by realisation (± its SE). Scale networks start from SESN's "
        f"scales ({', '.join(f'{key}={value:g}' for key, value in SESN_SCALES.items())}); `/fixed` keeps "
        "them. Epochs: per realisation, plain / '+' (* not converged). Fit times are the wall times of "
        "a fit's epochs (validation included) summed over every session it ran in, the time the run "
        "was paused or shared the cores included; predict times are the wall time of the test "
        "predictions. "
        "The last three columns are the paper's (MNIST-Scale)."
        + training_sentence(settings)
        + resumed_sentence(results, n_stored)
        + "\n\n"
        + harness.markdown_table(
            [
                "architecture/scales",
                "# params",
                "plain",
                "+",
                f"plain - {REFERENCE}",
                f"+ - {REFERENCE}",
                "epochs (plain / +)",
                "fit (min)",
                "predict (s)",
                "paper row",
                "MNIST-Scale (paper)",
                "MNIST-Scale+ (paper)",
            ],
            table5_rows(results, dataset),
        )
    )
    if missing:
        text += (
            "\n\nNot registered in `skscale.nn.ARCHITECTURES` when this ran, so not measured: "
            + ", ".join(f"`{name}`" for name in missing)
            + "."
        )
    report.add("Classification error (Table 5)", text)
    report.add(
        "Learned internal scales (Table 6)",
        "Sorted internal scales in pixels of the 28 x 28 images, mean ± std over realisations "
        "(`sesn/fixed`: the scales every SESN run starts from).\n\n"
        + harness.markdown_table(
            ["network", "scales (ours)", "paper", "scales, + (ours)", "paper, +"], table6_rows(results)
        ),
    )
    report.add(COMPARISON_HEADING, comparison(results, dataset))
    report.raw = {"dataset": dataset, "results": results, "missing": missing}

    plt = harness.pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(results)), 3.8))
    positions = np.arange(len(results))
    for offset, kind, label in (
        (-0.18, "plain", DATASETS[dataset]),
        (0.18, "augmented", f"{DATASETS[dataset]}+"),
    ):
        means = [np.mean(entry[kind]["error"]) for entry in results.values()]
        stds = [np.nan_to_num(stats.sample_std(entry[kind]["error"])) for entry in results.values()]
        ax.bar(positions + offset, means, width=0.36, yerr=stds, capsize=3, label=label)
    ax.set_xticks(positions, list(results), rotation=30, ha="right")
    ax.set(ylabel="test error (%)", title=f"Table 5: {DATASETS[dataset]}")
    ax.legend()
    fig.tight_layout()
    report.write(fig)
    return results


if __name__ == "__main__":
    main()
