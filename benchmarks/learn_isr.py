"""Learned sigma_basis and ISR vs the best fixed ISR (paper Table 2) and ISR over epochs (Fig. 6).

The Table-1 network learns its internal scales (``--form``, default the profile's: the
authors' learn mode 6 on ``cpu`` and ``paper``) from sigma_basis = 2 (paper units) and
ISR = 3 on each log-uniform data scale distribution; every fit restores its
best-validation checkpoint. The best fixed ISR comes from ``isr_sweep`` (chosen on
validation error, reported on test): its JSON results for the same profile and seeds are
reused when present in the output folder, otherwise the sweep is run here. Results go to
``learn_isr-<profile>-<form>.*``.

    python -m benchmarks.learn_isr --profile cpu --form authors
    python -m benchmarks.learn_isr --profile paper --device cuda
"""

from __future__ import annotations

import json

import numpy as np

from benchmarks import harness, stats

NAME = "learn_isr"
SWEEP_NAME = "isr_sweep"
# Profile settings that cannot change a fixed-scale run (nothing there learns scales).
IRRELEVANT_TO_SWEEP = (
    "mnist_scale",
    "scale_lr",
    "scale_warmup_epochs",
    "scale_lr_milestones",
    "scale_lr_gamma",
    "form",
    "spacing_form",
    "init_sigma_grid",
    "init_isr_grid",
    "speed",
    "memory",
)
# The paper's Table 2: (learned sigma_basis, learned ISR, test error) and (best fixed ISR, its error).
PAPER_TABLE2 = {
    2.83: ("1.96 ± 0.081", "3.390 ± 0.545", "2.291 ± 0.067", "2.34", "2.239 ± 0.060"),
    4.76: ("2.001 ± 0.063", "3.321 ± 0.024", "2.510 ± 0.084", "4.76", "2.503 ± 0.045"),
    8.0: ("1.943 ± 0.064", "4.196 ± 0.159", "2.872 ± 0.070", "5.35", "2.805 ± 0.028"),
}


def sweep_results(profile, args):
    """The isr_sweep results for this profile: read from its JSON or computed now."""
    path = isr_sweep_json(args, profile)
    if path.exists():
        stored = json.loads(path.read_text())
        current = json.loads(json.dumps(harness.profile_dict(profile)))
        if {k: v for k, v in stored["profile"].items() if k not in IRRELEVANT_TO_SWEEP} == {
            k: v for k, v in current.items() if k not in IRRELEVANT_TO_SWEEP
        }:
            harness.log(f"using the fixed-ISR sweep of {path}")
            return stored["results"], f"read from `{path.name}`"
        harness.log(f"{path} was produced with another profile; running the sweep here")
    return harness.run_sweep(profile, args.device, args.n_jobs or 1), "computed by this run"


def isr_sweep_json(args, profile):
    from pathlib import Path

    return Path(args.output_dir) / f"{SWEEP_NAME}-{profile.name}.json"


def paired_sentence(key, learned, sweep_entry):
    """The learned-minus-best-fixed test error on one distribution, paired by seed, with its SE."""
    best = harness.best_fixed(sweep_entry)
    if list(learned["seeds"]) != list(sweep_entry["seeds"]):
        raise ValueError(
            f"the learned and fixed runs must share their seeds, got {learned['seeds']} and "
            f"{sweep_entry['seeds']}."
        )
    gap, se, n = stats.paired_difference(learned["errors"], best.errors)
    binomial = stats.binomial_se(best.mean, int(sweep_entry["n_test"]))
    if np.isnan(se):
        verdict = "one seed: no standard error, no claim"
    elif stats.within_k_se(gap, se):
        verdict = "within one paired SE"
    else:
        verdict = f"{'worse' if gap > 0 else 'better'} than the best fixed by more than one paired SE"
    return (
        f"[1, {key}]: learned - best fixed (ISR {best.isr:.3g}, chosen on validation) = {gap:+.2f} "
        f"points, paired SE {se:.2f} over {n} seed(s) ({verdict}); binomial SE of one test error "
        f"{binomial:.2f}"
    )


def isr_trend(means):
    """How the mean learned ISR moves across distributions ordered by width (a phrase)."""
    if len(means) < 2:
        return "one distribution: no trend to read"
    if all(b > a for a, b in zip(means, means[1:])):
        return "grows with the width"
    return "does not grow monotonically with the width"


def main(argv=None):
    args, profile = harness.setup(harness.make_parser(__doc__.splitlines()[0], learned=True), argv)
    report = harness.Report(
        NAME,
        f"Learning sigma_basis and the ISR, form {profile.form!r} (paper Table 2 and Fig. 6)",
        args,
        profile,
        variant=profile.form,
    )
    learned = harness.run_learning(profile, args.device)
    sweep, provenance = sweep_results(profile, args)
    rows, findings = [], []
    for key, entry in learned.items():
        best = harness.best_fixed(sweep[key])
        paper = PAPER_TABLE2.get(float(key), ("–",) * 5)
        rows.append(
            [
                f"[1, {key}]",
                f"learned ({profile.form})",
                *harness.learned_cells(entry),
                paper[0],
                paper[1],
                paper[2],
            ]
        )
        rows.append(
            [
                "",
                "best fixed (on validation)",
                f"{harness.SWEEP_SIGMA_BASIS:g}",
                f"{best.isr:.3g}",
                harness.mean_std(best.errors),
                "2",
                paper[3],
                paper[4],
            ]
        )
        findings.append(paired_sentence(key, entry, sweep[key]))
    means = [np.mean(entry["isr"]) for entry in learned.values()]
    trend = isr_trend(means)
    table = harness.markdown_table(
        [
            "distribution",
            "scales",
            "sigma_basis",
            "ISR",
            "test error %",
            "sigma_basis (paper)",
            "ISR (paper)",
            "test error % (paper)",
        ],
        rows,
    )
    report.add(
        "Learned vs best fixed internal scales (Table 2)",
        f"Init sigma_basis = {harness.INIT_SIGMA_BASIS:g} (paper units), ISR = {harness.INIT_ISR:g}; "
        "mean ± sample std over "
        f"{len(profile.seeds)} realisation(s), test error of the best-validation checkpoint. Best "
        f"fixed ISR chosen on validation error, {provenance} (grid "
        f"{', '.join(f'{v:.3g}' for v in profile.isr_grid)}). The paper's columns are the paper's "
        "numbers.\n\n" + table,
    )
    report.add(
        "Findings",
        f"- learned ISR by distribution: {', '.join(f'{m:.3f}' for m in means)} "
        f"({trend})\n" + "\n".join(f"- {line}" for line in findings),
    )
    report.raw = {"form": profile.form, "learned": learned, "sweep": sweep}

    plt = harness.pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(learned)))
    for color, (key, entry) in zip(colors, learned.items()):
        histories = np.array(entry["isr_history"])
        epochs = np.arange(histories.shape[1])
        for history in histories:
            ax.plot(epochs, history, color=color, alpha=0.3, linewidth=1)
        ax.plot(epochs, histories.mean(axis=0), color=color, linewidth=2, label=f"[1, {key}] learned")
        ax.axhline(harness.best_fixed(sweep[key]).isr, color=color, linestyle="--", linewidth=1)
    ax.set(xlabel="epoch", ylabel="ISR", title="Fig. 6: ISR during training (dashed: best fixed ISR)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    report.write(fig)
    return learned


if __name__ == "__main__":
    main()
