"""Parameterisations of learnable internal scales: ISR vs individual spacing vs direct (paper Table 4).

The Table-1 network starts from the same internal scales, [2.0, 3.46, 6.0] (paper units:
sigma_basis = 2, ISR = 3), and learns them as sigma_basis and ISR = 1 + gamma^2
(the profile's ``form``, or ``--form``: the authors' learn mode 6 on ``cpu`` and
``paper``), as sigma_basis and individual steps between scales (the profile's
``spacing_form``: the authors' multiplicative ``"ratios"``) or as free scales
(``"direct"``), on each log-uniform data scale distribution; every fit restores its
best-validation checkpoint.

    python -m benchmarks.parameterisation --profile cpu
    python -m benchmarks.parameterisation --profile paper --device cuda
"""

from __future__ import annotations

import numpy as np

from benchmarks import harness

NAME = "parameterisation"
INIT_SIGMA_BASIS, INIT_ISR = harness.INIT_SIGMA_BASIS, harness.INIT_ISR
# The paper's three rows (roles); the profile names the form of each (spacing_form, form).
ROLES = ("direct", "spacing", "isr")
LABELS = {"direct": "Direct", "spacing": "Individual Spacing", "isr": "ISR"}


def forms(profile):
    """``{role: parameterisation}`` of the three rows of Table 4 for ``profile``."""
    return {"direct": "direct", "spacing": profile.spacing_form, "isr": profile.form}


# The paper's Table 4 test errors (%), for comparison.
PAPER_ERRORS = {
    2.83: {"direct": "2.321 ± 0.095", "spacing": "2.285 ± 0.038", "isr": "2.291 ± 0.067"},
    4.76: {"direct": "2.554 ± 0.093", "spacing": "2.565 ± 0.061", "isr": "2.510 ± 0.084"},
    8.0: {"direct": "3.057 ± 0.015", "spacing": "3.007 ± 0.049", "isr": "2.872 ± 0.070"},
}


def fit_form(profile, scale_range, seed, form, device="cpu"):
    """One fit of Table 4: learn the scales as ``form`` from the common start on one realisation."""
    data = harness.last_dynamic_split(profile, seed, scale_range)
    clf = harness.fit_table1(
        data, profile, seed, device, sigma_basis=INIT_SIGMA_BASIS, isr=INIT_ISR, parameterisation=form
    )
    return {
        "scales": (np.sort(clf.scales_) / profile.shrink).tolist(),
        "errors": harness.error_rate(clf, data["X_test"], data["y_test"]),
        "val_errors": harness.best_epoch(clf)[1],
    }


def run(profile, device, n_jobs=1):
    """Every (distribution, seed, form) fit, spread over ``n_jobs`` processes."""
    roles = forms(profile)
    tasks = [
        (profile, (low, high), seed, name, device)
        for low, high in profile.distributions
        for seed in profile.seeds
        for name in roles.values()
    ]
    fits = iter(harness.run_fits(fit_form, tasks, n_jobs))
    results = {}
    for low, high in profile.distributions:
        entry = {role: {"form": name, "seeds": []} for role, name in roles.items()}
        for seed in profile.seeds:
            for role, name in roles.items():
                fit = next(fits)
                record = entry[role]
                record["seeds"].append(seed)
                for key, value in fit.items():
                    record.setdefault(key, []).append(value)
                harness.log(
                    f"[{low:g}, {high:g}] seed {seed} {name}: scales "
                    f"{np.round(fit['scales'], 3).tolist()}, error {fit['errors']:.2f} %"
                )
        results[f"{high:g}"] = entry
    return results


def main(argv=None):
    args, profile = harness.setup(harness.make_parser(__doc__.splitlines()[0], learned=True), argv)
    report = harness.Report(NAME, "Parameterisation of the learnable scales (paper Table 4)", args, profile)
    results = run(profile, args.device, args.n_jobs or 1)
    rows = []
    for key, entry in results.items():
        for role in ROLES:
            scales = np.array(entry[role]["scales"])
            rows.append(
                [f"[1, {key}]", f"{LABELS[role]} ({entry[role]['form']})"]
                + [harness.mean_std(scales[:, i], 3) for i in range(scales.shape[1])]
                + [harness.mean_std(entry[role]["errors"]), PAPER_ERRORS.get(float(key), {}).get(role, "–")]
            )
    init = INIT_SIGMA_BASIS * INIT_ISR ** (np.arange(3) / 2)
    report.add(
        "Learned internal scales and test error (Table 4)",
        f"All start from the internal scales {', '.join(f'{v:.2f}' for v in init)} (paper units; the paper "
        f"writes [2.0, 3.46, 6.0]); scales sorted, in paper units; test error of each fit's best-validation checkpoint; "
        "mean ± sample std over {len(profile.seeds)} "
        "realisation(s). Last column: the paper's numbers.\n\n"
        + harness.markdown_table(
            [
                "distribution",
                "parameterisation",
                "scale 1",
                "scale 2",
                "scale 3",
                "test error %",
                "test error % (paper)",
            ],
            rows,
        ),
    )
    report.raw = results

    plt = harness.pyplot()
    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.4), sharey=True)
    for ax, (key, entry) in zip(np.atleast_1d(axes), results.items()):
        for offset, name in enumerate(ROLES):
            scales = np.array(entry[name]["scales"])
            for i in range(scales.shape[1]):
                ax.scatter(np.full(len(scales), offset), scales[:, i], color=f"C{i}", s=18)
            ax.text(offset, 0.85, f"{np.mean(entry[name]['errors']):.1f}%", ha="center", fontsize=8)
        for value in init:
            ax.axhline(value, color="0.6", linestyle=":", linewidth=1)
        ax.axhline(float(key) * 2, color="red", linestyle="--", linewidth=0.8)
        ax.set(
            xticks=range(len(ROLES)),
            xticklabels=[LABELS[n] for n in ROLES],
            ylim=(0.7, None),
            title=f"data scales [1, {key}]",
        )
        harness.log_axis(ax, [1, 2, 4, 8, 16], axis="y")
    np.atleast_1d(axes)[0].set_ylabel(
        "learned internal scale (paper units)\ndotted: init; red: 2 x largest data scale"
    )
    fig.tight_layout()
    report.write(fig)
    return results


if __name__ == "__main__":
    main()
