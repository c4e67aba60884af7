"""Choosing the internal scales: "response" and "sweep" vs gradient learning and a validated grid (issue 29).

On every data scale distribution and seed, the Table-1 network is fitted with

- ``fixed``: each ISR of the profile's grid (sigma_basis 2, paper units); the grid's best
  ISR is chosen on the mean validation error over seeds (the "validated grid");
- ``gradient``: the paper's learning (the profile's form), from each start ISR of
  ``init_isr_grid`` (sigma_basis 2);
- ``response``: ``scale_selection="response"`` from the same starts;
- ``sweep``: ``scale_selection="sweep"`` (no start: it sweeps ISR 1.25-12 from sigma_basis 2).

Every fit validates on the profile's held-out digits after each epoch and stops early
after ``PATIENCE`` epochs without a better validation accuracy, restoring its best epoch;
a sweep fit keeps its last epoch instead (an earlier one ran at a random ISR). Test errors
are compared per seed: each mechanism minus the validated grid and minus gradient learning
from the same start, with the standard error of the mean paired difference; a difference is
called better or worse only beyond two standard errors. Every fit records its validation
error after each epoch and whether it had converged (:func:`benchmarks.stats.converged`);
the report states issue 29's targets with their numbers. Cost: fits per choice and their
wall time. Results go to ``scale_selection-<profile>.*`` (``--dataset fashion``:
``scale_selection-<profile>-fashion.*``, Fashion-MNIST's items instead of digits).

Each fit is written to the journal ``<results>.fits.jsonl`` when it finishes and a rerun of
the same command skips the fits it holds, so a long run can be stopped and continued;
``--stored-only`` reports what the journal holds without fitting.

    python -m benchmarks.scale_selection --profile cpu --distributions 2.83 4.76 8 --epoch-factor 2 --n-jobs 2
    python -m benchmarks.scale_selection --profile cpu --dataset fashion --distributions 8 \
        --shapes loguniform lognormal --epoch-factor 2 --n-jobs 2
    python -m benchmarks.scale_selection --profile smoke
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks import harness, stats

NAME = "scale_selection"
MECHANISMS = ("gradient", "response", "sweep")
SIGMA_BASIS = harness.INIT_SIGMA_BASIS  # paper units, the start of every fit
PATIENCE = 3  # epochs without a better validation accuracy before a fit stops
K_SE = 2.0  # a difference is "better" or "worse" only beyond K_SE paired standard errors
# Issue 29's targets: selected ISRs from the starts 1.5 and 6 within this factor of each
# other; [1, 8] at least this many times [1, 2.83]; one fit at most this many fixed fits.
START_SPREAD_TARGET = 1.4
DISTRIBUTION_RATIO_TARGET = 1.5
COST_TARGET = 2.0
# Shapes of the data scale distributions (skscale.datasets.make_dynamic_split).
SHAPES = ("loguniform", "lognormal")


def fit_one(profile, scale_range, seed, choice, isr, device="cpu", dataset="mnist", shape="loguniform"):
    """One fit: ``choice`` is ``"fixed"`` (at ``isr``) or a ``scale_selection`` (from ``isr``), on
    objects of ``dataset`` at scales drawn from ``shape`` over ``scale_range``.

    Returns
    -------
    record : dict
        ``error`` (test, %), ``val_error`` (%, of the kept epoch), ``sigma_basis`` (paper
        units), ``isr``, ``isr_history``, ``epochs`` (trained), ``wall_s`` and, for a sweep,
        ``candidates`` and ``candidate_errors`` (validation error rates).
    """
    data = harness.last_dynamic_split(profile, seed, scale_range, dataset=dataset, distribution=shape)
    sweep = choice == "sweep"
    parameterisation = "fixed" if choice == "fixed" else profile.form
    # fit_table1 validates on data["X_val"]; these callbacks replace its checkpoint.
    stopping = harness.checkpoint(profile.checkpoint_monitor, profile.max_epochs, PATIENCE)
    callbacks = [] if sweep else [("checkpoint", stopping)]
    harness.add_profile_lr_schedule(callbacks, profile, parameterisation)
    selection = "gradient" if choice == "fixed" else choice
    start = time.perf_counter()
    clf = harness.fit_table1(
        data,
        profile,
        seed,
        device,
        sigma_basis=SIGMA_BASIS,
        isr=isr,
        parameterisation=parameterisation,
        scale_selection=selection,
        callbacks=callbacks,
    )
    wall = time.perf_counter() - start
    if sweep:
        val_error = float(100 * clf.isr_validation_errors_.min())
    else:
        val_error = harness.best_epoch(clf)[1]
    val_history = harness.val_history(clf)
    record = {
        "error": harness.error_rate(clf, data["X_test"], data["y_test"]),
        "val_error": val_error,
        "val_history": val_history,
        "last_epochs_gain": stats.last_epochs_gain(val_history),
        "converged": stats.converged(val_history),
        "sigma_basis": float(clf.sigma_basis_) / profile.shrink,
        "isr": float(clf.isr_),
        "isr_history": harness.isr_history(clf),
        "epochs": len(clf.history),
        "max_epochs": clf.max_epochs,
        "steps": len(clf.history) * -(-profile.n_train // profile.batch_size),
        "wall_s": wall,
    }
    if sweep:
        record["candidates"] = clf.isr_candidates_.tolist()
        record["candidate_errors"] = (100 * clf.isr_validation_errors_).tolist()
    harness.log(
        f"{dataset} {shape} [{scale_range[0]:g}, {scale_range[1]:g}] seed {seed} {choice} (ISR {isr:g}): "
        "final ISR "
        f"{record['isr']:.3g}, test error {record['error']:.2f} %, {record['epochs']} epochs, {wall:.0f} s"
    )
    return record


def distribution_label(high, shape="loguniform"):
    """The results' key of a data scale distribution: its upper bound, and its shape unless
    log-uniform (``"8"``, ``"8 lognormal"``)."""
    return f"{high:g}" if shape == "loguniform" else f"{high:g} {shape}"


def tasks_of(profile, device, dataset="mnist", shapes=("loguniform",)):
    """Every fit of the benchmark: ``(key, task)`` with key ``(distribution, choice, isr, seed)``.

    In three phases, so that a run stopped early has whole comparisons: the fixed grid and
    gradient learning on every distribution first, then the sweeps, then ``"response"``.
    """
    phases = (
        [("fixed", isr) for isr in profile.isr_grid] + [("gradient", isr) for isr in profile.init_isr_grid],
        [("sweep", harness.INIT_ISR)],
        [("response", isr) for isr in profile.init_isr_grid],
    )
    tasks = []
    for runs in phases:
        for shape in shapes:
            for low, high in profile.distributions:
                for seed in profile.seeds:
                    for choice, isr in runs:
                        task = (profile, (low, high), seed, choice, isr, device, dataset, shape)
                        tasks.append(((distribution_label(high, shape), choice, isr, seed), task))
    return tasks


def journal_key(profile, key, dataset="mnist"):
    """The fit journal's key of one fit: its ``(distribution, choice, isr, seed)``, its dataset
    (unless MNIST) and a digest of every profile setting that shapes it (the seeds and
    distributions run are in the key)."""
    distribution, choice, isr, seed = key
    settings = harness.profile_dict(profile)
    settings.pop("seeds")
    settings.pop("distributions")
    fields = {} if dataset == "mnist" else {"dataset": dataset}
    return harness.fit_key(
        distribution=distribution,
        choice=choice,
        isr=isr,
        seed=seed,
        patience=PATIENCE,
        protocol=harness.protocol_digest(settings),
        **fields,
    )


def collect(profile, keys, records):
    """Results by distribution: ``{high: {"fixed": {isr: [records by seed]}, "gradient": {...}, ...}}``.

    ``records`` holds None for a fit not run yet; a ``(distribution, choice, isr)`` group
    enters the results only when every seed of it has finished (comparisons pair seeds).
    """
    groups = {}
    for (distribution, choice, isr, _seed), record in zip(keys, records):
        groups.setdefault((distribution, choice, f"{isr:g}"), []).append(record)
    results = {}
    for (distribution, choice, isr), group in groups.items():
        if any(record is None for record in group):
            continue
        high, _, shape = distribution.partition(" ")
        entry = results.setdefault(
            distribution,
            {
                "seeds": list(profile.seeds),
                "n_test": profile.n_test,
                "high": float(high),
                "shape": shape or "loguniform",
            },
        )
        entry.setdefault(choice, {})[isr] = group
    n_grid = len(profile.isr_grid)
    return {high: entry for high, entry in results.items() if len(entry.get("fixed", ())) == n_grid}


def validated_grid(entry):
    """``(isr, records)`` of the fixed ISR with the lowest mean validation error over seeds."""
    grid = entry["fixed"]
    best = min(grid, key=lambda isr: (np.mean([r["val_error"] for r in grid[isr]]), float(isr)))
    return float(best), grid[best]


def comparison(name, errors, reference_name, reference_errors):
    """One sentence: ``name`` minus ``reference_name`` test error, paired by seed."""
    gap, se, n = stats.paired_difference(errors, reference_errors)
    return (
        f"{name} - {reference_name} = {gap:+.2f} points, paired SE {se:.2f} over {n} seed(s) "
        f"({stats.verdict(gap, se, K_SE)})"
    )


def findings(results):
    """The findings, one line each, from the results alone."""
    lines = []
    for entry in results.values():
        best_isr, best = validated_grid(entry)
        best_errors = [r["error"] for r in best]
        prefix = describe(entry)
        for records in entry.get("sweep", {}).values():
            errors = [r["error"] for r in records]
            chosen = ", ".join(f"{r['isr']:.3g}" for r in records)
            lines.append(
                f"{prefix} sweep (ISR chosen {chosen}): "
                + comparison("sweep", errors, f"validated grid (ISR {best_isr:.3g})", best_errors)
            )
        for mechanism in ("response", "gradient"):
            for start, records in entry.get(mechanism, {}).items():
                errors = [r["error"] for r in records]
                final = np.mean([r["isr"] for r in records])
                line = f"{prefix} {mechanism} from ISR {start} (final ISR {final:.3g}): " + comparison(
                    mechanism, errors, "validated grid", best_errors
                )
                if mechanism == "response" and start in entry.get("gradient", {}):
                    gradient = [r["error"] for r in entry["gradient"][start]]
                    line += "; " + comparison("response", errors, "gradient from the same start", gradient)
                lines.append(line)
        for mechanism in ("response", "gradient"):
            if mechanism not in entry:
                continue
            finals = [np.mean([r["isr"] for r in records]) for records in entry[mechanism].values()]
            spread = max(finals) / min(finals)
            lines.append(
                f"{prefix} {mechanism}: final ISR over the starts {', '.join(entry[mechanism])}: "
                f"{', '.join(f'{v:.3g}' for v in finals)} (largest / smallest {spread:.2f})"
            )
    return lines + target_lines(results) + [default_line(results)]


def against_gradient(results, mechanism):
    """``(better, worse)``: the distributions (descriptions) where ``mechanism`` has a lower / higher
    test error than gradient learning from the same start beyond :data:`K_SE` paired SE."""
    better, worse = [], []
    for entry in results.values():
        for start, records in entry.get(mechanism, {}).items():
            reference = entry.get("gradient", {}).get(start)
            if reference is None:
                continue
            errors, reference_errors = ([r["error"] for r in runs] for runs in (records, reference))
            verdict = stats.verdict(*stats.paired_difference(errors, reference_errors)[:2], K_SE)
            if verdict in ("better", "worse"):
                (better if verdict == "better" else worse).append(f"{describe(entry)} from ISR {start}")
    return better, worse


def recommended_selection(results):
    """The ``scale_selection`` the results support as the default.

    A mechanism replaces gradient learning (the paper's) only where it dominates it: better
    beyond :data:`K_SE` paired SE from some start on some distribution and worse from
    none; of several, the one of lowest mean test error.
    """
    dominating = []
    for mechanism in MECHANISMS[1:]:
        better, worse = against_gradient(results, mechanism)
        if better and not worse:
            errors = [r["error"] for entry in results.values() for r in fits_of(entry, mechanism)]
            dominating.append((float(np.mean(errors)), mechanism))
    return min(dominating)[1] if dominating else "gradient"


def default_line(results):
    """The finding that chooses the default ``scale_selection``, with its reasons."""
    reasons = []
    for mechanism in MECHANISMS[1:]:
        better, worse = against_gradient(results, mechanism)
        if better or worse:
            reasons.append(
                f"{mechanism} is better than gradient learning from the same start on "
                f"{', '.join(better) or 'none'} and worse on {', '.join(worse) or 'none'}"
            )
        elif any(mechanism in entry for entry in results.values()):
            reasons.append(f"{mechanism} is within {K_SE:g} paired SE of it everywhere")
    return (
        f"default scale_selection supported by these results: {recommended_selection(results)!r} "
        f"(a mechanism replaces gradient learning only where it is better from some start and "
        f"worse from none): " + "; ".join(reasons)
    )


def fits_of(entry, choice):
    """Every fit record of ``choice`` in a results entry, over its starts and seeds."""
    return [record for records in entry.get(choice, {}).values() for record in records]


def describe(entry):
    """``"[1, 8]"``, or ``"[1, 8] lognormal"`` for a distribution that is not log-uniform."""
    shape = "" if entry["shape"] == "loguniform" else f" {entry['shape']}"
    return f"[1, {entry['high']:g}]{shape}"


def chosen_isrs(entry, mechanism):
    """``{start: mean final ISR over seeds}`` of a mechanism (the sweep's one entry: ``"sweep"``)."""
    return {
        "sweep" if mechanism == "sweep" else start: float(np.mean([r["isr"] for r in records]))
        for start, records in entry.get(mechanism, {}).items()
    }


def target_lines(results):
    """Issue 29's targets, each stated with its number and whether it is met."""
    lines = []
    loguniform = {key: entry["high"] for key, entry in results.items() if entry["shape"] == "loguniform"}
    widest = max(loguniform, key=loguniform.get, default=None)
    narrowest = min(loguniform, key=loguniform.get, default=None)
    for mechanism in MECHANISMS:
        if widest is None:
            break
        finals = chosen_isrs(results[widest], mechanism)
        ends = [finals[start] for start in ("1.5", "6") if start in finals]
        if len(ends) == 2:
            spread = max(ends) / min(ends)
            met = "met" if spread <= START_SPREAD_TARGET else "not met"
            lines.append(
                f"target, {mechanism}: the ISRs selected on [1, {widest}] from starts 1.5 and 6 "
                f"differ by a factor {spread:.2f} (target <= {START_SPREAD_TARGET:g}: {met})"
            )
        narrow = chosen_isrs(results[narrowest], mechanism) if narrowest != widest else {}
        shared = [start for start in finals if start in narrow]
        if shared:
            ratios = [finals[start] / narrow[start] for start in shared]
            met = "met" if min(ratios) >= DISTRIBUTION_RATIO_TARGET else "not met"
            lines.append(
                f"target, {mechanism}: ISR selected on [1, {widest}] / on [1, {narrowest}], by start "
                f"{', '.join(shared)}: {', '.join(f'{r:.2f}' for r in ratios)} "
                f"(target >= {DISTRIBUTION_RATIO_TARGET:g} from every start: {met})"
            )
    for mechanism in MECHANISMS:
        gaps = []
        for entry in results.values():
            best = [r["error"] for r in validated_grid(entry)[1]]
            for records in entry.get(mechanism, {}).values():
                gap, se, _ = stats.paired_difference([r["error"] for r in records], best)
                gaps.append(stats.within_k_se(gap, se, 1.0))
        if gaps:
            lines.append(
                f"target, {mechanism}: within one paired SE of the validated grid in {sum(gaps)} of "
                f"{len(gaps)} (distribution, start) cases ({'met' if all(gaps) else 'not met'})"
            )
    for mechanism in MECHANISMS:
        costs = [
            np.mean([r["wall_s"] for r in fits_of(entry, mechanism)])
            / np.mean([r["wall_s"] for r in fits_of(entry, "fixed")])
            for entry in results.values()
            if entry.get(mechanism)
        ]
        if costs:
            met = "met" if max(costs) <= COST_TARGET else "not met"
            lines.append(
                f"target, {mechanism}: wall time of one fit / one fixed fit: "
                f"{', '.join(f'{c:.2f}' for c in costs)} by distribution (target <= {COST_TARGET:g}: {met})"
            )
    return lines


def convergence_lines(results):
    """How the fits ended: converged (:func:`benchmarks.stats.converged`), stopped early, steps."""
    lines = []
    for entry in results.values():
        for choice in ("fixed", *MECHANISMS):
            records = fits_of(entry, choice)
            if not records:
                continue
            gains = [r["last_epochs_gain"] for r in records if np.isfinite(r["last_epochs_gain"])]
            most = f"{max(gains):+.2f} points at most" if gains else "an unknown amount (too few epochs)"
            n_converged = sum(r["converged"] for r in records)
            lines.append(
                f"{describe(entry)} {choice}: {n_converged} of {len(records)} fits converged, "
                f"{sum(r['epochs'] < r['max_epochs'] for r in records)} stopped early; "
                f"{np.mean([r['steps'] for r in records]):.0f} steps on average; the last "
                f"{stats.CONVERGENCE_WINDOW} epochs lowered the best validation error by {most}"
            )
    return lines


def cost_rows(results):
    """Per distribution and choice: fits needed for one chosen network and their wall time."""
    rows = []
    for entry in results.values():
        n_seeds = len(entry["seeds"])
        grid_wall = sum(r["wall_s"] for r in fits_of(entry, "fixed")) / n_seeds
        rows.append([describe(entry), "validated grid", len(entry["fixed"]), f"{grid_wall:.0f}"])
        for mechanism in (m for m in MECHANISMS if m in entry):
            walls = [r["wall_s"] for r in fits_of(entry, mechanism)]
            label = "sweep (no start)" if mechanism == "sweep" else f"{mechanism} (one start)"
            rows.append(["", label, 1, f"{np.mean(walls):.0f}"])
    return rows


def result_rows(results):
    """Table rows: distribution, choice, start, sigma_basis, ISR, test error (mean ± sd)."""
    rows = []
    for entry in results.values():
        best_isr, _ = validated_grid(entry)
        for isr, records in entry["fixed"].items():
            mark = " (validated best)" if float(isr) == best_isr else ""
            rows.append(
                [
                    describe(entry),
                    f"fixed{mark}",
                    isr,
                    f"{SIGMA_BASIS:g}",
                    isr,
                    stats.mean_sd([r["error"] for r in records]),
                ]
            )
        for mechanism in MECHANISMS:
            for start, records in entry.get(mechanism, {}).items():
                rows.append(
                    [
                        "",
                        mechanism,
                        "–" if mechanism == "sweep" else start,
                        stats.mean_sd([r["sigma_basis"] for r in records], 3),
                        stats.mean_sd([r["isr"] for r in records], 3),
                        stats.mean_sd([r["error"] for r in records]),
                    ]
                )
    return rows


def main(argv=None):
    parser = harness.make_parser(__doc__.splitlines()[0], learned=True)
    parser.add_argument(
        "--stored-only",
        action="store_true",
        help="fit nothing: report the fits the journal holds (groups missing a seed are left out)",
    )
    parser.add_argument(
        "--dataset",
        choices=harness.OBJECT_DATASETS,
        default="mnist",
        help="objects to rescale: MNIST's digits or Fashion-MNIST's items (default: mnist; "
        "results of fashion go to scale_selection-<profile>-fashion.*)",
    )
    parser.add_argument(
        "--shapes",
        choices=SHAPES,
        nargs="+",
        default=["loguniform"],
        help="shapes of the data scale distributions over [1, HIGH] (default: loguniform)",
    )
    args, profile = harness.setup(parser, argv)
    report = harness.Report(
        NAME,
        "Choosing the internal scales: response, sweep, gradient, validated grid",
        args,
        profile,
        variant=None if args.dataset == "mnist" else args.dataset,
    )
    journal = harness.journal_path(report.paths()[0])
    harness.log(f"fits journal: {journal} (delete it to fit everything again)")
    keyed = tasks_of(profile, args.device, args.dataset, tuple(args.shapes))
    keys = [key for key, _ in keyed]
    journal_keys = [journal_key(profile, key, args.dataset) for key in keys]
    if args.stored_only:
        stored = harness.read_journal(journal)
        records = [stored.get(key) for key in journal_keys]
    else:
        tasks = [task for _, task in keyed]
        records = harness.run_fits_resumable(fit_one, tasks, journal_keys, journal, args.n_jobs or 1)
    results = collect(profile, keys, records)
    missing = sum(record is None for record in records)
    provenance = ""
    if args.stored_only:
        # The command that ran the fits; this report was written from their journal.
        report.command = harness.command_line(NAME, [a for a in args.argv if a != "--stored-only"])
        fit_hours = sum(record["wall_s"] for record in records if record is not None) / 3600
        provenance = (
            f" Written from the fit journal (`--stored-only`): the fits took {fit_hours:.1f} h of "
            "one-thread wall time in all; the date, machine and wall time below are the report's."
        )
    noun = "digits" if args.dataset == "mnist" else "items"
    report.add(
        "Final scales and test errors",
        f"{'MNIST' if args.dataset == 'mnist' else 'Fashion-MNIST'} {noun} rescaled onto "
        f"{profile.canvas_size}-pixel canvases. "
        f"Start sigma_basis = {SIGMA_BASIS:g} (paper units); the form learned by gradient is "
        f"{profile.form!r}. Mean ± sample std over {len(profile.seeds)} seed(s). Early stopping on "
        f"{profile.n_val} held-out validation {noun}, patience {PATIENCE} epochs (best epoch restored; "
        "a sweep keeps its last, fine-tuned epoch). The validated grid's ISR is chosen on the mean "
        "validation error."
        + (f" {missing} of {len(records)} fits have not run yet: their rows are missing." if missing else "")
        + provenance
        + "\n\n"
        + harness.markdown_table(
            ["distribution", "choice", "start ISR", "sigma_basis", "ISR", "test error %"],
            result_rows(results),
        ),
    )
    report.add(
        "Convergence",
        f"A fit has converged when the best validation error of its last {stats.CONVERGENCE_WINDOW} "
        f"epochs is no more than {stats.CONVERGENCE_TOLERANCE:g} points below its best before them. "
        "A sweep validates at the middle of its ISR range until it selects and at the selected ISR "
        "after, so its last epochs' gain includes that move.\n\n"
        + "\n".join(f"- {line}" for line in convergence_lines(results)),
    )
    report.add(
        "Cost",
        "Fits needed to obtain one network, and their wall time per seed (seconds, this machine, "
        "one torch thread per fit).\n\n"
        + harness.markdown_table(["distribution", "choice", "fits", "wall s"], cost_rows(results)),
    )
    report.add("Findings", "\n".join(f"- {line}" for line in findings(results)))
    report.raw = {
        "form": profile.form,
        "patience": PATIENCE,
        "k_se": K_SE,
        "dataset": args.dataset,
        "results": results,
    }
    report.write()
    return results


if __name__ == "__main__":
    main()
