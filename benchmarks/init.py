"""Initialisation of the learnable scales: the profile's sigma_basis x ISR starts (paper Table 3).

The Table-1 network learns its internal scales (``--form``) from every start of the
profile's ``init_sigma_grid`` x ``init_isr_grid`` (paper: {1, 2, 4} x {1.5, 3, 6}; cpu:
{2, 4} x {1.5, 3, 6} paper units, i.e. 1 and 2 pixels of its half-size digits). The
``paper`` profile runs the three log-uniform data scale distributions of the paper; the
``cpu`` profile runs the narrowest and the widest, [1, 2.83] and [1, 8] (the target of
issue 17 compares them; pass ``--distributions 2.83 4.76 8`` for all three). ``--starts
SIGMA,ISR ...`` runs only the given starts (paper units). Results go to
``init-<profile>-<form>.*``.

    python -m benchmarks.init --profile cpu --form authors
    python -m benchmarks.init --profile paper --device cuda
    python -m benchmarks.init --profile cpu --form log --distributions 2.83 --starts 2,1.5 2,6
"""

from __future__ import annotations

import dataclasses

import numpy as np

from benchmarks import harness
from benchmarks.config import DISTRIBUTIONS
from skscale.utils import Real

NAME = "init"
# The paper's Table 3 for [1, 8]: (learned sigma_basis, learned ISR, test error %).
PAPER_TABLE3_WIDEST = {
    (1.0, 1.5): ("1.450 ± 0.130", "3.767 ± 0.171", "3.087 ± 0.173"),
    (1.0, 3.0): ("1.275 ± 0.076", "4.158 ± 0.123", "3.131 ± 0.179"),
    (1.0, 6.0): ("1.331 ± 0.097", "5.423 ± 0.529", "3.087 ± 0.178"),
    (2.0, 1.5): ("1.755 ± 0.156", "3.444 ± 0.025", "3.010 ± 0.198"),
    (2.0, 3.0): ("1.982 ± 0.068", "4.095 ± 0.078", "2.921 ± 0.082"),
    (2.0, 6.0): ("2.079 ± 0.061", "5.053 ± 0.375", "2.745 ± 0.012"),
    (4.0, 1.5): ("2.453 ± 0.151", "3.466 ± 0.216", "2.935 ± 0.036"),
    (4.0, 3.0): ("2.607 ± 0.078", "4.401 ± 0.343", "2.803 ± 0.085"),
    (4.0, 6.0): ("2.655 ± 0.044", "5.268 ± 1.071", "2.957 ± 0.140"),
}


def fit_start(profile, scale_range, seed, start, device="cpu"):
    """One fit of Table 3: learn the scales with ``profile.form`` from ``start`` on one realisation."""
    data = harness.last_dynamic_split(profile, seed, scale_range)
    sigma_basis, isr = start
    clf = harness.fit_table1(
        data, profile, seed, device, sigma_basis=sigma_basis, isr=isr, parameterisation=profile.form
    )
    record = {key: [] for key in ("sigma_basis", "isr", "errors", "val_errors", "best_epoch", "isr_history")}
    harness.record_learned(record, clf, profile, data, initial_isr=isr)
    return {key: values[0] for key, values in record.items()}


_SIGMA_START, _ISR_START = Real(low=0, closed="neither"), Real(low=1, closed="neither")


def parse_start(text):
    """``"SIGMA,ISR"`` -> ``(sigma_basis, isr)``: sigma_basis > 0 (paper units), ISR > 1."""
    import argparse

    parts = text.split(",")
    try:
        sigma_basis, isr = (float(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--starts takes SIGMA,ISR pairs such as 2,1.5, got {text!r}"
        ) from None
    if not (_SIGMA_START.is_valid(sigma_basis) and _ISR_START.is_valid(isr)):
        raise argparse.ArgumentTypeError(f"--starts needs sigma_basis > 0 and ISR > 1, got {text!r}")
    return sigma_basis, isr


def run(profile, device, n_jobs=1, starts=None):
    """Every (distribution, seed, start) fit, spread over ``n_jobs`` processes.

    ``starts`` (``(sigma_basis, isr)`` pairs in paper units) defaults to the profile's
    ``init_sigma_grid`` x ``init_isr_grid``. Returns ``{high: {"sigma,isr": record}}``,
    each record with per-seed lists.
    """
    if starts is None:
        starts = [(s, i) for s in profile.init_sigma_grid for i in profile.init_isr_grid]
    tasks = [
        (profile, (low, high), seed, start, device)
        for low, high in profile.distributions
        for seed in profile.seeds
        for start in starts
    ]
    fits = iter(harness.run_fits(fit_start, tasks, n_jobs))
    results = {}
    for low, high in profile.distributions:
        entry = {
            f"{s:g},{i:g}": {"form": profile.form, "start": [s, i], "seeds": [], "n_test": profile.n_test}
            for s, i in starts
        }
        for seed in profile.seeds:
            for sigma_basis, isr in starts:
                fit = next(fits)
                record = entry[f"{sigma_basis:g},{isr:g}"]
                record["seeds"].append(seed)
                for key, value in fit.items():
                    record.setdefault(key, []).append(value)
                harness.log(
                    f"[{low:g}, {high:g}] seed {seed} init ({sigma_basis:g}, {isr:g}): sigma_basis "
                    f"{fit['sigma_basis']:.3f}, ISR {fit['isr']:.3f}, error {fit['errors']:.2f} %"
                )
        results[f"{high:g}"] = entry
    return results


def main(argv=None):
    parser = harness.make_parser(__doc__.splitlines()[0], learned=True)
    parser.add_argument(
        "--starts",
        nargs="+",
        type=parse_start,
        default=None,
        metavar="SIGMA,ISR",
        help="only these starts, sigma_basis in paper units (default: the profile's grid)",
    )
    args, profile = harness.setup(parser, argv)
    if args.distributions is None and profile.name == "cpu":
        profile = dataclasses.replace(profile, distributions=(DISTRIBUTIONS[0], DISTRIBUTIONS[-1]))
        print(f"  init.py: distributions = {profile.distributions}   (paper: {DISTRIBUTIONS})", flush=True)
    report = harness.Report(
        NAME,
        f"Initialisation of the learnable scales, form {profile.form!r} (paper Table 3)",
        args,
        profile,
        variant=profile.form,
    )
    results = run(profile, args.device, args.n_jobs or 1, starts=args.starts)
    blocks = []
    for key, entry in results.items():
        rows = []
        for name, record in entry.items():
            sigma_basis, isr = (float(v) for v in name.split(","))
            paper = (
                PAPER_TABLE3_WIDEST.get((sigma_basis, isr), ("–",) * 3) if float(key) == 8.0 else ("–",) * 3
            )
            rows.append(
                [
                    f"{sigma_basis:g}",
                    f"{isr:g}",
                    *harness.learned_cells(record),
                    *paper,
                ]
            )
        blocks.append(
            f"Data scale distribution: log-uniform [1, {key}]\n\n"
            + harness.markdown_table(
                [
                    "init sigma_basis",
                    "init ISR",
                    "learned sigma_basis",
                    "learned ISR",
                    "test error %",
                    "learned sigma_basis (paper)",
                    "learned ISR (paper)",
                    "test error % (paper)",
                ],
                rows,
            )
        )
    report.add(
        "Learned scales and test error by initialisation (Table 3)",
        f"Form {profile.form!r}; sigma_basis in paper units; mean ± sample std over "
        f"{len(profile.seeds)} realisation(s); the last three "
        "columns are the paper's numbers.\n\n" + "\n\n".join(blocks),
    )
    report.raw = results

    plt = harness.pyplot()
    fig, axes = plt.subplots(1, len(results), figsize=(4.8 * len(results), 4.0), squeeze=False)
    for ax, (key, entry) in zip(axes[0], results.items()):
        for index, (name, record) in enumerate(entry.items()):
            sigma_basis, isr = (float(v) for v in name.split(","))
            color = f"C{index}"
            ax.scatter([sigma_basis], [isr], marker="x", color=color)
            ax.scatter(record["sigma_basis"], record["isr"], color=color, s=18)
            for learned_sigma, learned_isr in zip(record["sigma_basis"], record["isr"]):
                ax.plot(
                    [sigma_basis, learned_sigma], [isr, learned_isr], color=color, linewidth=0.7, alpha=0.6
                )
            ax.annotate(
                f"{np.mean(record['errors']):.1f}%",
                (np.mean(record["sigma_basis"]), np.mean(record["isr"])),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        ax.set(
            xlabel="sigma_basis (paper units)", ylabel="ISR", title=f"[1, {key}]: init (x) -> learned (dots)"
        )
        run_starts = [record["start"] for record in entry.values()]
        harness.log_axis(ax, sorted({s for s, _ in run_starts}))
        harness.log_axis(ax, sorted({i for _, i in run_starts}), axis="y")
    fig.tight_layout()
    report.write(fig)
    return results


if __name__ == "__main__":
    main()
