"""Learned vs fixed ISR on the widest distribution as training grows (not in the paper).

This script asks whether a gap between the learned and the best fixed ISR on the widest
distribution is a training-budget effect: it trains the Table-1 network on the last
(widest) distribution of the profile for 1, 2 and 3 times the profile's epochs
(:meth:`benchmarks.config.Profile.stretched`: the weights' and the scales' decays are
stretched alike), once learning the scales with the profile's form (``--form``; from 2
and 3, as ``learn_isr``) and once for every fixed ISR of the profile's grid from 3 up.
The best fixed ISR is chosen on validation error; the learned-minus-best-fixed test error
is paired by seed, with its standard error. Every other setting is the profile's. The
shortest length is the profile itself, so its row repeats the numbers of ``isr_sweep`` and
``learn_isr`` (same data, seeds and settings).

The fits are independent and run on ``--n-jobs`` worker processes with one torch thread
each (default: every core on the CPU, one process on a GPU).

    python -m benchmarks.training_length --profile cpu
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks import harness, stats

NAME = "training_length"
LENGTH_FACTORS = (1, 2, 3)
LEARNED = "learned"


def fixed_isrs(profile):
    """Fixed ISRs of the profile's grid at or above the learned run's initial ISR."""
    return tuple(isr for isr in profile.isr_grid if isr >= harness.INIT_ISR)


def fit_one(base, factor, seed, variant, device):
    """Train one network for ``factor`` times the epochs of ``base`` and return its numbers.

    ``variant`` is ``LEARNED`` or a fixed ISR; the data is the one of ``base``.
    """
    start = time.perf_counter()
    data = harness.last_dynamic_split(base, seed)
    profile = base.stretched(factor)
    if variant == LEARNED:
        clf = harness.fit_table1(
            data,
            profile,
            seed,
            device,
            sigma_basis=harness.INIT_SIGMA_BASIS,
            isr=harness.INIT_ISR,
            parameterisation=profile.form,
        )
        history = [harness.INIT_ISR] + harness.isr_history(clf)
    else:
        clf = harness.fit_table1(
            data,
            profile,
            seed,
            device,
            sigma_basis=harness.SWEEP_SIGMA_BASIS,
            isr=variant,
            parameterisation="fixed",
        )
        history = []
    error = harness.error_rate(clf, data["X_test"], data["y_test"])
    return {
        "val_error": harness.best_epoch(clf)[1],
        "epochs": profile.max_epochs,
        "seed": seed,
        "variant": variant,
        "error": error,
        "isr": float(clf.isr_),
        "sigma_basis": float(clf.sigma_basis_) / profile.shrink,
        "isr_history": history,
        "seconds": time.perf_counter() - start,
    }


def run(profile, device, n_jobs):
    """Every (length, seed, variant) fit, spread over ``n_jobs`` processes.

    Returns
    -------
    results : dict
        Keyed by ``str(epochs)``: ``{variant: [fit record per seed]}`` with the variants
        ``"learned"`` and ``f"{isr:g}"`` for each fixed ISR.
    """
    import joblib

    from skscale.search_backends import search_backend

    variants = [LEARNED, *fixed_isrs(profile)]
    # Longest runs first so that the last ones to finish are short; one seed after the
    # other so that a worker reuses the data it rendered.
    tasks = [
        (factor, seed, variant)
        for factor in sorted(LENGTH_FACTORS, reverse=True)
        for seed in profile.seeds
        for variant in variants
    ]
    with search_backend("loky", n_jobs=n_jobs, torch_threads=1) as backend:
        harness.log(f"{len(tasks)} fits on {backend.description}")
        records = joblib.Parallel(verbose=10)(
            joblib.delayed(fit_one)(profile, factor, seed, variant, device) for factor, seed, variant in tasks
        )
    results = {f"{profile.max_epochs * factor}": {} for factor in LENGTH_FACTORS}
    for record in records:
        key = record["variant"] if record["variant"] == LEARNED else f"{record['variant']:g}"
        results[f"{record['epochs']}"].setdefault(key, []).append(record)
    return results


def summary(results):
    """Rows of the results table and one finding per training length."""
    rows, findings = [], []
    for epochs, by_variant in results.items():
        learned = by_variant[LEARNED]
        fixed = {key: [r["error"] for r in records] for key, records in by_variant.items() if key != LEARNED}
        validation = {
            key: [r["val_error"] for r in records] for key, records in by_variant.items() if key != LEARNED
        }
        best = min(validation, key=lambda key: np.mean(validation[key]))  # chosen on validation
        learned_errors = [r["error"] for r in learned]
        gap, se, n = stats.paired_difference(learned_errors, fixed[best])
        rows.append(
            [
                epochs,
                harness.mean_std([r["sigma_basis"] for r in learned], 3),
                harness.mean_std([r["isr"] for r in learned], 3),
                harness.mean_std(learned_errors),
                *(harness.mean_std(errors) for errors in fixed.values()),
                best,
                f"{gap:+.2f}",
            ]
        )
        verdict = "within" if stats.within_k_se(gap, se) else "not within"
        findings.append(
            f"{epochs} epochs: learned ISR {np.mean([r['isr'] for r in learned]):.2f}, "
            f"learned - best fixed (ISR {best}, chosen on validation) = {gap:+.2f} points, paired SE "
            f"{se:.2f} over {n} seed(s) ({verdict} one paired SE)"
        )
    return rows, findings


def figure(results, fixed_keys):
    plt = harness.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = [int(e) for e in results]
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(fixed_keys)))
    for color, key in zip(colors, fixed_keys):
        errors = [[r["error"] for r in results[f"{e}"][key]] for e in epochs]
        left.errorbar(
            epochs,
            np.mean(errors, axis=1),
            yerr=[np.nan_to_num(stats.sample_std(e)) for e in errors],
            color=color,
            marker="o",
            capsize=3,
            linestyle="--",
            label=f"fixed ISR {key}",
        )
    errors = [[r["error"] for r in results[f"{e}"][LEARNED]] for e in epochs]
    left.errorbar(
        epochs,
        np.mean(errors, axis=1),
        yerr=[np.nan_to_num(stats.sample_std(e)) for e in errors],
        color="crimson",
        marker="s",
        capsize=3,
        linewidth=2,
        label=f"learned (init ISR {harness.INIT_ISR:g})",
    )
    left.set(xlabel="training epochs", ylabel="test error %", xticks=epochs, title="Test error (mean ± std)")
    left.legend(fontsize=8)
    line_colors = plt.cm.plasma(np.linspace(0, 0.8, len(epochs)))
    for color, e in zip(line_colors, epochs):
        histories = np.array([r["isr_history"] for r in results[f"{e}"][LEARNED]])
        right.plot(np.arange(histories.shape[1]), histories.mean(axis=0), color=color, label=f"{e} epochs")
    right.set(
        xlabel="epoch", ylabel="learned ISR (mean over realisations)", title="Learned ISR during training"
    )
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def main(argv=None):
    import joblib

    parser = harness.make_parser(__doc__.splitlines()[0], learned=True)
    args, profile = harness.setup(parser, argv)
    n_jobs = args.n_jobs or (joblib.cpu_count() if args.device == "cpu" else 1)
    low, high = profile.distributions[-1]
    report = harness.Report(
        NAME,
        f"Learned ({profile.form}) vs fixed ISR on [{low:g}, {high:g}] by training length",
        args,
        profile,
        variant=profile.form,
    )
    results = run(profile, args.device, n_jobs)
    rows, findings = summary(results)
    fixed_keys = [key for key in results[next(iter(results))] if key != LEARNED]
    header = [
        "epochs",
        "learned sigma_basis",
        "learned ISR",
        "learned test error %",
        *(f"fixed ISR {key}: test error %" for key in fixed_keys),
        "best fixed ISR",
        "learned - best fixed",
    ]
    schedule = (
        "constant"
        if profile.lr_step is None
        else f"divided by ten every {profile.lr_step} x (epochs / {profile.max_epochs}) epochs"
    )
    report.add(
        "Test error by training length",
        f"Log-uniform [{low:g}, {high:g}]; mean ± std over {len(profile.seeds)} realisation(s); "
        f"{n_jobs} worker process(es). Learned: init sigma_basis = {harness.INIT_SIGMA_BASIS:g} (paper "
        f"units), ISR = {harness.INIT_ISR:g}. Fixed: sigma_basis = {harness.SWEEP_SIGMA_BASIS:g}. "
        "The weights' "
        f"learning rate is {schedule}; the profile below is the shortest length.\n\n"
        + harness.markdown_table(header, rows),
    )
    report.add("Findings", "\n".join(f"- {line}" for line in findings))
    report.raw = results
    report.write(figure(results, fixed_keys))
    return results


if __name__ == "__main__":
    main()
