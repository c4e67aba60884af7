"""The classifier's defaults: learning rate, initial sigma_basis and kernel extent (issue 29).

A user who writes ``ScaleEquivariantClassifier()`` gets the Table-1 network with learned
scales (``scale_selection="gradient"``) and the defaults ``lr``, ``init_sigma_basis`` and
``kernel_extent``. This script fits that classifier with every combination of
:data:`GRID` on each of :data:`DATASETS` (3 seeds), everything else at its default, and
reports which combination the validation data choose:

- ``mnist_scale``: MNIST-Scale as in the README (28-pixel digits shrunk by a factor in
  [0.3, 1], :func:`skscale.datasets.make_mnist_scale`);
- ``dynamic8``: Dynamic Scale MNIST [1, 8] of the profile (digits up to 8 times their
  size on a large canvas, :func:`benchmarks.harness.dynamic_split`).

Every fit validates on the profile's ``n_val`` held-out images after each epoch and stops
after :data:`PATIENCE` epochs without a better validation accuracy (best epoch restored),
at most :data:`EPOCH_CAP` times the profile's epochs, at the classifier's constant learning rate; whether its
validation error had converged is recorded (:func:`benchmarks.stats.converged`). The
recommended combination has the lowest validation error averaged over the data sets and
seeds; test errors are compared with the current defaults per seed (paired SE, "better"
or "worse" only beyond 2 SE). Results go to ``defaults-<profile>.*`` with a resumable fit
journal beside them.

    python -m benchmarks.defaults --profile cpu --n-jobs 2
    python -m benchmarks.defaults --profile smoke
"""

from __future__ import annotations

import itertools
import time

import numpy as np

from benchmarks import harness, stats

NAME = "defaults"
# The values compared: the defaults before issue 29 and those every README example used.
GRID = {"lr": (1e-3, 1e-2), "init_sigma_basis": (1.0, 2.0), "kernel_extent": (2.0, 4.0)}
DATASETS = ("mnist_scale", "dynamic8")
PATIENCE = 3
# At most this many times the profile's epochs: a cap that early stopping should reach first.
EPOCH_CAP = 5
K_SE = 2.0


def combinations():
    """Every combination of :data:`GRID`, as dicts, in a fixed order."""
    return [dict(zip(GRID, values)) for values in itertools.product(*GRID.values())]


def split(profile, dataset, seed):
    """``(X_train, y_train, X_val, y_val, X_test, y_test)`` of one realisation of ``dataset``."""
    if dataset == "mnist_scale":
        from skscale.datasets import make_mnist_scale

        data = make_mnist_scale(
            n_train=profile.n_train, n_val=profile.n_val, n_test=profile.n_test, random_state=seed
        )
        return data.X_train, data.y_train, data.X_val, data.y_val, data.X_test, data.y_test
    if dataset == "dynamic8":
        data = harness.last_dynamic_split(profile, seed, (1.0, 8.0))
        return tuple(data[f"{axis}_{part}"] for part in ("train", "val", "test") for axis in ("X", "y"))
    raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}.")


def fit_one(profile, dataset, seed, params, device="cpu"):
    """Fit the default classifier with ``params`` (a combination of :data:`GRID`); its record."""
    from skscale import ScaleEquivariantClassifier

    X_train, y_train, X_val, y_val, X_test, y_test = split(profile, dataset, seed)
    max_epochs = EPOCH_CAP * profile.max_epochs
    train_split, callbacks = harness.validation(X_val, y_val, "valid_acc", max_epochs, PATIENCE)
    clf = ScaleEquivariantClassifier(
        **params,
        max_epochs=max_epochs,
        train_split=train_split,
        callbacks=callbacks,
        device=device,
        random_state=seed,
    )
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    wall = time.perf_counter() - start
    val_history = harness.val_history(clf)
    record = {
        "error": harness.error_rate(clf, X_test, y_test),
        "val_error": harness.best_epoch(clf)[1],
        "val_history": val_history,
        "converged": stats.converged(val_history),
        "epochs": len(clf.history),
        "isr": float(clf.isr_),
        "sigma_basis": float(clf.sigma_basis_),
        "wall_s": wall,
    }
    harness.log(
        f"{dataset} seed {seed} {params}: test error {record['error']:.2f} %, {record['epochs']} epochs, "
        f"ISR {record['isr']:.2f}, {wall:.0f} s"
    )
    return record


def label(params):
    """``"lr 0.01, sigma 1, k 4"``."""
    return f"lr {params['lr']:g}, sigma {params['init_sigma_basis']:g}, k {params['kernel_extent']:g}"


def current_defaults():
    """The classifier's defaults of the :data:`GRID` settings, read from the code."""
    from skscale import ScaleEquivariantClassifier
    from skscale.nn.models import Table1Net

    spec = Table1Net.scale_defaults
    return {
        "lr": ScaleEquivariantClassifier().lr,
        "init_sigma_basis": spec.init_sigma_basis,
        "kernel_extent": spec.kernel_extent,
    }


def recommended(results):
    """The combination (its label) with the lowest validation error over data sets and seeds."""
    return min(
        results,
        key=lambda name: np.mean([r["val_error"] for runs in results[name].values() for r in runs]),
    )


def findings(results, reference):
    """One line per data set and combination against ``reference`` (a label), then the choice."""
    lines = []
    best = recommended(results)
    for dataset in DATASETS:
        reference_errors = [r["error"] for r in results[reference][dataset]]
        for name, runs in results.items():
            if name == reference:
                continue
            gap, se, n = stats.paired_difference([r["error"] for r in runs[dataset]], reference_errors)
            lines.append(
                f"{dataset}: {name} - {reference} = {gap:+.2f} points, paired SE {se:.2f} over {n} seeds "
                f"({stats.verdict(gap, se, K_SE)})"
            )
    mean_val = np.mean([r["val_error"] for runs in results[best].values() for r in runs])
    lines.append(f"lowest mean validation error: {best} ({mean_val:.2f} %); the recommended defaults")
    return lines


def main(argv=None):
    args, profile = harness.setup(harness.make_parser(__doc__.splitlines()[0]), argv)
    report = harness.Report(NAME, "The classifier's defaults", args, profile)
    journal = harness.journal_path(report.paths()[0])
    settings = harness.profile_dict(profile)
    digest = harness.protocol_digest({**settings, "epoch_cap": EPOCH_CAP, "patience": PATIENCE})
    grid = combinations()
    runs = [(dataset, seed, params) for dataset in DATASETS for seed in profile.seeds for params in grid]
    keys = [
        harness.fit_key(dataset=dataset, seed=seed, protocol=digest, **params)
        for dataset, seed, params in runs
    ]
    tasks = [(profile, dataset, seed, params, args.device) for dataset, seed, params in runs]
    records = harness.run_fits_resumable(fit_one, tasks, keys, journal, args.n_jobs or 1)
    results = {}
    for (dataset, _seed, params), record in zip(runs, records):
        results.setdefault(label(params), {}).setdefault(dataset, []).append(record)
    reference = label(current_defaults())
    rows, n_fits = [], len(DATASETS) * len(profile.seeds)
    for name, by_dataset in results.items():
        rows.append(
            [name]
            + [stats.mean_sd([r["val_error"] for r in by_dataset[d]]) for d in DATASETS]
            + [stats.mean_sd([r["error"] for r in by_dataset[d]]) for d in DATASETS]
            + [f"{sum(r['converged'] for d in DATASETS for r in by_dataset[d])} / {n_fits}"]
            + [f"{np.mean([r['epochs'] for d in DATASETS for r in by_dataset[d]]):.1f}"]
        )
    header = (
        ["combination"]
        + [f"val error % {d}" for d in DATASETS]
        + [f"test error % {d}" for d in DATASETS]
        + ["converged", "epochs"]
    )
    report.add(
        "Validation and test errors",
        f"Mean ± sample std over {len(profile.seeds)} seeds; {profile.n_train} training, {profile.n_val} "
        f"validation and {profile.n_test} test images; early stopping with patience {PATIENCE} (at most "
        f"{EPOCH_CAP * profile.max_epochs} epochs). The defaults at the time of the run: {reference}.\n\n"
        + harness.markdown_table(header, rows),
    )
    report.add("Findings", "\n".join(f"- {line}" for line in findings(results, reference)))
    report.raw = {"reference": reference, "recommended": recommended(results), "results": results}
    report.write()
    return results


if __name__ == "__main__":
    main()
