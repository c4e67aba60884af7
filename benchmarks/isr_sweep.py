"""Test error vs a fixed Internal Scale Range (paper Fig. 3) and per data scale (Fig. 4).

For each log-uniform data scale distribution ([1, 2.83], [1, 4.76], [1, 8]) the Table-1
network is trained with fixed internal scales ``sigma_basis = 2`` (paper units) and
every ISR of the profile's grid (the authors' 1.68-6.73); every fit restores its
best-validation checkpoint, the best fixed ISR is the one with the lowest mean
validation error, and the test error is averaged over the realisations. The ISR recommended by :class:`skscale.ToleranceModel`
(tau = 0.459, fitted on the training scales) is marked on each curve.

    python -m benchmarks.isr_sweep --profile cpu
    python -m benchmarks.isr_sweep --profile paper --device cuda
"""

from __future__ import annotations

import numpy as np

from benchmarks import harness, stats

NAME = "isr_sweep"
# Best fixed ISR per distribution read off the paper's Fig. 3 / Table 2 (paper's numbers).
PAPER_BEST_ISR = {2.83: 2.34, 4.76: 4.76, 8.0: 5.35}


def summary_tables(results):
    header = ["ISR"] + [f"[1, {key}]" for key in results]
    isr_grid = next(iter(results.values()))["isr_grid"]
    rows = []
    for index, isr in enumerate(isr_grid):
        row = [f"{isr:.3g}"]
        for entry in results.values():
            cell = harness.mean_std(entry["errors"][index])
            row.append(f"**{cell}**" if index == harness.best_fixed(entry).index else cell)
        rows.append(row)
    sweep = harness.markdown_table(header, rows)
    rows = []
    for key, entry in results.items():
        best = harness.best_fixed(entry)
        rows.append(
            [
                f"[1, {key}]",
                f"{best.isr:.3g}",
                f"{best.val_error:.2f}",
                harness.mean_std(best.errors),
                f"{np.mean(entry['recommended_isr']):.2f}",
                PAPER_BEST_ISR.get(float(key), "–"),
            ]
        )
    best = harness.markdown_table(
        [
            "distribution",
            "best fixed ISR on validation (ours)",
            "its validation error % (ours)",
            "its test error % (ours)",
            "ToleranceModel ISR_hyp (ours)",
            "best ISR (paper, Table 2)",
        ],
        rows,
    )
    return sweep, best


def per_scale_table(results):
    blocks = []
    for key, entry in results.items():
        header = ["ISR \\ data scale"] + [f"{s:.2f}" for s in entry["grid_scales"]]
        rows = []
        for index, isr in enumerate(entry["isr_grid"]):
            mean = np.mean(entry["grid_errors"][index], axis=0)
            rows.append([f"{isr:.3g}"] + [f"{v:.1f}" for v in mean])
        blocks.append(f"Trained on log-uniform [1, {key}]:\n\n" + harness.markdown_table(header, rows))
    return "\n\n".join(blocks)


def figure(results):
    plt = harness.pyplot()
    n = len(results)
    fig, axes = plt.subplots(1, n + 1, figsize=(4.2 * (n + 1), 3.6))
    colors = plt.cm.viridis(np.linspace(0, 0.85, n))
    ax = axes[0]
    for color, (key, entry) in zip(colors, results.items()):
        means = [np.mean(e) for e in entry["errors"]]
        stds = [np.nan_to_num(stats.sample_std(e)) for e in entry["errors"]]
        ax.errorbar(
            entry["isr_grid"], means, yerr=stds, marker="o", capsize=3, color=color, label=f"[1, {key}]"
        )
        ax.axvline(np.mean(entry["recommended_isr"]), color=color, linestyle="--", linewidth=1)
    ax.set(
        xlabel="ISR (fixed)",
        ylabel="test error (%)",
        title="Fig. 3: error vs ISR\n(dashed: ToleranceModel ISR_hyp)",
    )
    harness.log_axis(ax, next(iter(results.values()))["isr_grid"])
    ax.legend(title="data scales")
    isr_colors = plt.cm.plasma(np.linspace(0, 0.85, len(next(iter(results.values()))["isr_grid"])))
    for ax, (key, entry) in zip(axes[1:], results.items()):
        for color, isr, errors in zip(isr_colors, entry["isr_grid"], entry["grid_errors"]):
            ax.plot(
                entry["grid_scales"], np.mean(errors, axis=0), marker=".", color=color, label=f"ISR {isr:.3g}"
            )
        ax.axvspan(1.0, float(key), color="0.9", zorder=0)
        ax.set(xlabel="data scale", ylabel="test error (%)", title=f"Fig. 4: trained on [1, {key}]")
        harness.log_axis(ax, entry["grid_scales"])
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def main(argv=None):
    args, profile = harness.setup(harness.make_parser(__doc__.splitlines()[0]), argv)
    report = harness.Report(NAME, "Fixed-ISR sweep (paper Fig. 3 and Fig. 4)", args, profile)
    results = harness.run_sweep(profile, args.device, args.n_jobs or 1)
    report.raw = results
    sweep, best = summary_tables(results)
    report.add(
        "Test error (%) vs fixed ISR (Fig. 3)",
        f"Table-1 network, fixed internal scales, sigma_basis = {harness.SWEEP_SIGMA_BASIS:g} (paper units); "
        f"mean ± sample std of the test error over {len(profile.seeds)} realisation(s), each fit's "
        "best-validation checkpoint; in bold the ISR with the lowest mean validation error.\n\n" + sweep,
    )
    report.add("Best fixed ISR and the tolerance model", best)
    report.add(
        "Test error (%) per data scale (Fig. 4), mean over realisations",
        "The grey band of the figure is the training range; scales beyond it are extrapolation.\n\n"
        + per_scale_table(results),
    )
    report.write(figure(results))
    return results


if __name__ == "__main__":
    main()
