"""Learned sigma_basis and ISR vs the best fixed ISR (paper Table 2) and ISR over epochs (Fig. 6).

The Table-1 network learns its internal scales (``parameterisation="isr"``, Eq. 5) from
sigma_basis = 2 (paper units) and ISR = 3 on each log-uniform data scale distribution.
The best fixed ISR comes from ``isr_sweep``: its JSON results for the same profile and
seeds are reused when present in the output folder, otherwise the sweep is run here.

    python benchmarks/learn_isr.py --profile cpu
    python benchmarks/learn_isr.py --profile paper --device cuda
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

import _common as common
import isr_sweep

NAME = "learn_isr"
INIT_SIGMA_BASIS, INIT_ISR = 2.0, 3.0
# Profile settings that cannot change a fixed-scale run (nothing there learns scales).
IRRELEVANT_TO_SWEEP = ("mnist_scale", "scale_lr", "scale_warmup_epochs")
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
        current = json.loads(json.dumps(dataclasses.asdict(profile)))
        if {k: v for k, v in stored["profile"].items() if k not in IRRELEVANT_TO_SWEEP} == {
            k: v for k, v in current.items() if k not in IRRELEVANT_TO_SWEEP
        }:
            common.log(f"using the fixed-ISR sweep of {path}")
            return stored["results"], f"read from `{path.name}`"
        common.log(f"{path} was produced with another profile; running the sweep here")
    return isr_sweep.run_sweep(profile, args.device), "computed by this run"


def isr_sweep_json(args, profile):
    from pathlib import Path

    return Path(args.output_dir) / f"{isr_sweep.NAME}-{profile.name}.json"


def within_one_std(gap, std):
    """Whether an error gap is at most one standard deviation (percent values, so exact
    decimals such as 8.20 - 8.05 = 0.15 must not fail on floating-point rounding)."""
    return abs(gap) <= std + 1e-9


def run_learning(profile, device):
    results = {}
    for low, high in profile.distributions:
        entry = {"sigma_basis": [], "isr": [], "errors": [], "isr_history": []}
        for seed in profile.seeds:
            data = common.dynamic_split(profile, (low, high), seed)
            clf = common.fit_table1(data, profile, seed, device, sigma_basis=INIT_SIGMA_BASIS, isr=INIT_ISR,
                                    parameterisation="isr")
            entry["sigma_basis"].append(clf.sigma_basis_ / profile.shrink)
            entry["isr"].append(clf.isr_)
            entry["errors"].append(common.error_rate(clf, data["X_test"], data["y_test"]))
            entry["isr_history"].append([INIT_ISR] + common.isr_history(clf))
            common.log(f"[{low:g}, {high:g}] seed {seed}: sigma_basis {entry['sigma_basis'][-1]:.3f}, "
                       f"ISR {clf.isr_:.3f}, test error {entry['errors'][-1]:.2f} %")
        results[f"{high:g}"] = entry
    return results


def main(argv=None):
    args, profile = common.setup(common.make_parser(__doc__.splitlines()[0]), argv)
    report = common.Report(NAME, "Learning sigma_basis and the ISR (paper Table 2 and Fig. 6)", args, profile)
    learned = run_learning(profile, args.device)
    sweep, provenance = sweep_results(profile, args)
    rows, findings = [], []
    for key, entry in learned.items():
        best_isr, best_mean, best_std = isr_sweep.best_fixed(sweep[key])
        paper = PAPER_TABLE2.get(float(key), ("–",) * 5)
        rows.append([f"[1, {key}]", "learned", common.mean_std(entry["sigma_basis"], 3),
                     common.mean_std(entry["isr"], 3), common.mean_std(entry["errors"]),
                     paper[0], paper[1], paper[2]])
        rows.append(["", "best fixed", f"{isr_sweep.SIGMA_BASIS:g}", f"{best_isr:.3g}",
                     f"{best_mean:.2f} ± {best_std:.2f}", "2", paper[3], paper[4]])
        gap = np.mean(entry["errors"]) - best_mean
        findings.append(f"[1, {key}]: learned - best fixed = {gap:+.2f} points; one std of the best fixed is "
                        f"{best_std:.2f}, of the learned {np.std(entry['errors']):.2f} "
                        f"({'within' if within_one_std(gap, best_std) else 'outside'} one std of the best fixed)")
    means = [np.mean(entry["isr"]) for entry in learned.values()]
    if len(means) < 2:
        trend = "one distribution: no trend to read"
    elif all(b > a for a, b in zip(means, means[1:])):
        trend = "grows with the width"
    else:
        trend = "does not grow monotonically with the width"
    table = common.markdown_table(
        ["distribution", "scales", "sigma_basis", "ISR", "test error %", "sigma_basis (paper)", "ISR (paper)",
         "test error % (paper)"], rows)
    report.add("Learned vs best fixed internal scales (Table 2)",
               f"Init sigma_basis = {INIT_SIGMA_BASIS:g} (paper units), ISR = {INIT_ISR:g}; mean ± std over "
               f"{len(profile.seeds)} realisation(s). Best fixed ISR {provenance} (grid "
               f"{', '.join(f'{v:.3g}' for v in profile.isr_grid)}). The paper's columns are the paper's numbers.\n\n"
               + table)
    report.add("Findings",
               f"- learned ISR by distribution: {', '.join(f'{m:.3f}' for m in means)} "
               f"({trend})\n"
               + "\n".join(f"- {line}" for line in findings))
    report.raw = {"learned": learned, "sweep": sweep}

    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(learned)))
    for color, (key, entry) in zip(colors, learned.items()):
        histories = np.array(entry["isr_history"])
        epochs = np.arange(histories.shape[1])
        for history in histories:
            ax.plot(epochs, history, color=color, alpha=0.3, linewidth=1)
        ax.plot(epochs, histories.mean(axis=0), color=color, linewidth=2, label=f"[1, {key}] learned")
        ax.axhline(isr_sweep.best_fixed(sweep[key])[0], color=color, linestyle="--", linewidth=1)
    ax.set(xlabel="epoch", ylabel="ISR", title="Fig. 6: ISR during training (dashed: best fixed ISR)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    report.write(fig)
    return learned


if __name__ == "__main__":
    main()
