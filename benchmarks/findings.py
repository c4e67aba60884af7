"""Findings of issue 17, written from the results JSON by code (no sentence claims more than its numbers).

Reads, for each learned form, ``learn_isr-<profile>-<form>.json`` (Table 2 and Fig. 6:
the learned scales from one start on every distribution, and the fixed-ISR sweep) and
``init-<profile>-<form>.json`` (Table 3: the learned scales from every start), and
``parameterisation-<profile>.json`` (Table 4) when present. Table 3 may be split over
several folders (``--init-dirs``: e.g. every start on [1, 8] in one run, two starts on
[1, 2.83] in another); their distributions are merged. For every form it writes:

- the spread of the final ISR across starts and across distributions, each as the ratio
  of the largest to the smallest mean final ISR;
- learned minus best-fixed test error per distribution, paired by seed, with its
  standard error (the best fixed ISR chosen on validation error);
- whether the target of issue 17 holds: (1) on [1, 8] the final ISRs from the starts
  ISR 1.5 and 6 (every sigma_basis start) within a factor 1.4 of each other; (2) from
  either start, the ISR learned on [1, 8] at least 1.5 x the one learned on the narrowest
  distribution; (3) on all three distributions the learned error not worse than the best
  fixed by more than one paired standard error.

    python -m benchmarks.findings --profile cpu --forms isr authors log
    python -m benchmarks.findings --profile cpu --forms isr authors log \
        --init-dirs benchmarks/results benchmarks/results/narrow
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from benchmarks import harness, stats

NAME = "findings"
# The target of issue 17.
START_FACTOR = 1.4
WIDTH_FACTOR = 1.5
N_DISTRIBUTIONS = 3


def ratio(values):
    """Largest over smallest of positive ``values`` (1 for one value)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.max() / values.min())


def _widest(keys):
    return max(keys, key=float)


def _narrowest(keys):
    return min(keys, key=float)


def spread_across_distributions(learn):
    """``(ratio, {distribution: mean final ISR})`` of a learn_isr result (one start)."""
    means = {key: float(np.mean(entry["isr"])) for key, entry in learn["learned"].items()}
    return ratio(list(means.values())), means


def spread_across_starts(init):
    """``(ratio, {start: mean final ISR})`` over every start of an init result, on its widest distribution."""
    key = _widest(init)
    means = {start: float(np.mean(record["isr"])) for start, record in init[key].items()}
    return ratio(list(means.values())), means


def paired_errors(learn):
    """Per distribution: ``(best fixed ISR, mean difference, SE, n)`` of learned - best fixed.

    The differences are paired by seed.
    """
    rows = {}
    for key, entry in learn["learned"].items():
        sweep = learn["sweep"][key]
        if list(entry["seeds"]) != list(sweep["seeds"]):
            raise ValueError(
                f"[1, {key}]: the learned and fixed runs must share their seeds, got {entry['seeds']} and "
                f"{sweep['seeds']}."
            )
        best = harness.best_fixed(sweep)
        rows[key] = (best.isr, *stats.paired_difference(entry["errors"], best.errors))
    return rows


def _start_pairs(init):
    """``{sigma_basis: (record from the smallest ISR start, from the largest)}`` on each distribution."""
    pairs = {}
    for key, records in init.items():
        by_sigma = {}
        for record in records.values():
            sigma, isr = record["start"]
            by_sigma.setdefault(sigma, {})[isr] = record
        pairs[key] = {sigma: (starts[min(starts)], starts[max(starts)]) for sigma, starts in by_sigma.items()}
    return pairs


def target(learn, init):
    """The three conditions of issue 17's target, each ``(holds, sentence)``; ``holds`` is
    None where the results do not measure the condition."""
    checks = {}
    pairs = _start_pairs(init)
    wide = _widest(init)
    parts, holds = [], []
    for sigma, (low, high) in sorted(pairs[wide].items()):
        factor = ratio([np.mean(low["isr"]), np.mean(high["isr"])])
        holds.append(factor <= START_FACTOR)
        parts.append(
            f"sigma_basis {sigma:g}: ISR {np.mean(low['isr']):.2f} from {low['start'][1]:g} and "
            f"{np.mean(high['isr']):.2f} from {high['start'][1]:g}, a factor {factor:.2f}"
        )
    sentence = (
        f"final ISRs on [1, {wide}] from the lowest and highest starts within a factor {START_FACTOR:g}: "
        f"{'yes' if all(holds) else 'no'} ({'; '.join(parts)})"
    )
    checks["starts"] = (all(holds), sentence)
    narrow = _narrowest(init)
    if narrow == wide:
        checks["width"] = (
            None,
            f"ISR on [1, {wide}] vs the narrowest distribution: not measured (init ran one distribution)",
        )
    else:
        parts, holds = [], []
        for sigma, (low, high) in sorted(pairs[wide].items()):
            for index, record in enumerate((low, high)):
                other = pairs[narrow].get(sigma, (None, None))[index]
                if other is None or other["start"] != record["start"]:
                    continue  # this start did not run on the narrow distribution
                factor = float(np.mean(record["isr"]) / np.mean(other["isr"]))
                holds.append(factor >= WIDTH_FACTOR)
                parts.append(f"start ({sigma:g}, {record['start'][1]:g}): x{factor:.2f}")
        if holds:
            sentence = (
                f"ISR learned on [1, {wide}] at least {WIDTH_FACTOR:g} x the one on [1, {narrow}] from every "
                f"start run on both: {'yes' if all(holds) else 'no'} ({', '.join(parts)})"
            )
            checks["width"] = (all(holds), sentence)
        else:
            checks["width"] = (
                None,
                f"ISR on [1, {wide}] vs [1, {narrow}]: not measured (no lowest or highest start ran on both)",
            )
    rows = paired_errors(learn)
    measured = len(rows) >= N_DISTRIBUTIONS and all(math.isfinite(se) for _, _, se, _ in rows.values())
    worse = [
        key
        for key, (_, gap, se, _) in rows.items()
        if math.isfinite(se) and not stats.within_k_se(gap, se) and gap > 0
    ]
    if not measured:
        checks["error"] = (
            None if not worse else False,
            f"learned error not worse than the best fixed by more than one paired SE on all "
            f"{N_DISTRIBUTIONS} distributions: not established ({len(rows)} distribution(s), SE needs two "
            "or more seeds)" + (f"; worse on {', '.join(f'[1, {k}]' for k in worse)}" if worse else ""),
        )
    else:
        checks["error"] = (
            not worse,
            f"learned error not worse than the best fixed by more than one paired SE on all "
            f"{len(rows)} distributions: {'yes' if not worse else 'no'}"
            + (f" (worse on {', '.join(f'[1, {k}]' for k in worse)})" if worse else ""),
        )
    return checks


def relation(gap, se):
    """How a paired difference compares with its SE, in words."""
    if not math.isfinite(se):
        return "one seed: no standard error, no claim"
    if stats.within_k_se(gap, se, 2.0):
        return "within two paired SE"
    return f"{'worse' if gap > 0 else 'better'} than the best fixed by more than two paired SE"


def form_findings(form, learn, init):
    """Markdown bullets of one form's findings and the numbers behind them."""
    across_distributions, by_distribution = spread_across_distributions(learn)
    across_starts, by_start = spread_across_starts(init)
    rows = paired_errors(learn)
    checks = target(learn, init)
    verdicts = [holds for holds, _ in checks.values()]
    if all(v is True for v in verdicts):
        overall = "met"
    elif any(v is False for v in verdicts):
        overall = "not met"
    else:
        overall = "not established"
    lines = [
        f"**{form}**: target {overall}.",
        "- final ISR across distributions (one start): "
        + ", ".join(f"[1, {k}] {v:.2f}" for k, v in by_distribution.items())
        + f", a spread of x{across_distributions:.2f}",
        f"- final ISR across starts on [1, {_widest(init)}]: "
        + ", ".join(f"({s}) {v:.2f}" for s, v in by_start.items())
        + f", a spread of x{across_starts:.2f}; "
        + (
            "the start moves the final ISR more than the data distribution does"
            if across_starts > across_distributions
            else "the data distribution moves the final ISR at least as much as the start does"
        ),
    ]
    for key, (isr, gap, se, n) in rows.items():
        lines.append(
            f"- [1, {key}]: learned - best fixed (ISR {isr:.3g}, chosen on validation) = {gap:+.2f} points, "
            f"paired SE {se:.2f} over {n} seed(s): {relation(gap, se)}"
        )
    lines += [f"- target: {sentence}" for _, sentence in checks.values()]
    numbers = {
        "spread_across_distributions": across_distributions,
        "spread_across_starts": across_starts,
        "isr_by_distribution": by_distribution,
        "isr_by_start": by_start,
        "paired": {key: dict(zip(("best_isr", "difference", "se", "n"), row)) for key, row in rows.items()},
        "target": {name: holds for name, (holds, _) in checks.items()},
        "overall": overall,
    }
    return lines, numbers


def table4_lines(parameterisation):
    """Per distribution: each Table-4 row's error minus the ISR form's, paired by seed, with its SE."""
    lines = []
    for key, entry in parameterisation.items():
        reference = entry["isr"]
        parts = []
        for role, record in entry.items():
            if role == "isr":
                continue
            gap, se, _ = stats.paired_difference(record["errors"], reference["errors"])
            parts.append(
                f"{record['form']} - {reference['form']} = {gap:+.2f} "
                f"(paired SE {se:.2f}, {relation(gap, se).split(' than')[0]})"
            )
        lines.append(f"- Table 4, [1, {key}]: " + "; ".join(parts))
    return lines


def merged_init(paths):
    """Table-3 results of several runs, their distributions merged into one dict.

    A distribution measured by two runs is refused: which one counts would be a choice.
    """
    merged = {}
    for path in paths:
        for key, entry in json.loads(Path(path).read_text())["results"].items():
            if key in merged:
                raise ValueError(f"[1, {key}] is in two init results ({path} and an earlier one); keep one.")
            merged[key] = entry
    return merged


def ranking(numbers):
    """Forms from best to worst measured, and a sentence saying why.

    Ordered by the number of target conditions met, then by the mean over distributions
    of learned - best fixed error (paired by seed), then by the spread of the final ISR
    across starts (smaller: the start matters less).
    """

    def key(form):
        entry = numbers[form]
        met = sum(holds is True for holds in entry["target"].values())
        gap = float(np.mean([row["difference"] for row in entry["paired"].values()]))
        return -met, gap, entry["spread_across_starts"]

    order = sorted(numbers, key=key)
    parts = []
    for form in order:
        met, gap, spread = key(form)
        parts.append(
            f"{form} (target conditions met: {-met} of 3; mean learned - best fixed {gap:+.2f} points; "
            f"start spread x{spread:.2f})"
        )
    return order, "Forms from best to worst measured: " + "; ".join(parts) + "."


def summary(numbers):
    """One sentence over every form: which meet the target, and whether the start or the
    data moves the final ISR more."""
    met = [form for form, entry in numbers.items() if entry["overall"] == "met"]
    if met:
        sentence = f"Forms that meet the target of issue 17: {', '.join(met)}"
    else:
        sentence = f"No form meets the target of issue 17 ({len(numbers)} measured)"
    start_led = [
        f for f, e in numbers.items() if e["spread_across_starts"] > e["spread_across_distributions"]
    ]
    if len(start_led) == len(numbers):
        sentence += "; for every form the start moves the final ISR more than the data distribution does"
    elif start_led:
        sentence += (
            f"; the start moves the final ISR more than the data distribution for {', '.join(start_led)}"
        )
    return sentence + "."


def findings(results_dir, profile_name, forms, init_dirs=None):
    """Markdown and numbers of every form whose learn_isr results are in ``results_dir`` and
    init results in ``init_dirs`` (default: ``results_dir``)."""
    results_dir = Path(results_dir)
    init_dirs = [results_dir] if not init_dirs else [Path(folder) for folder in init_dirs]
    blocks, numbers, missing = [], {}, []
    for form in forms:
        learn_path = results_dir / f"learn_isr-{profile_name}-{form}.json"
        init_paths = [folder / f"init-{profile_name}-{form}.json" for folder in init_dirs]
        init_paths = [path for path in init_paths if path.exists()]
        absent = [learn_path.name] if not learn_path.exists() else []
        if not init_paths:
            absent.append(f"init-{profile_name}-{form}.json")
        if absent:
            missing += absent
            continue
        learn = json.loads(learn_path.read_text())["results"]
        lines, numbers[form] = form_findings(form, learn, merged_init(init_paths))
        blocks.append("\n".join(lines))
    if numbers:
        order, sentence = ranking(numbers)
        blocks.append(summary(numbers) + " " + sentence)
        numbers["ranking"] = order
    table4 = results_dir / f"parameterisation-{profile_name}.json"
    if table4.exists():
        blocks.append("\n".join(table4_lines(json.loads(table4.read_text())["results"])))
    if missing:
        blocks.append("Not run (no results): " + ", ".join(missing))
    return "\n\n".join(blocks), numbers


def main(argv=None):
    parser = harness.make_parser(__doc__.splitlines()[0], training=False)
    parser.add_argument(
        "--forms",
        nargs="+",
        choices=harness.LEARNED_FORMS,
        default=["isr", "authors", "log"],
        help="learned forms to report (default: isr authors log)",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        help="where the learn_isr and init results are (default: --output-dir)",
    )
    parser.add_argument(
        "--init-dirs",
        nargs="+",
        type=Path,
        default=None,
        help="folders whose init results are merged (default: the results folder)",
    )
    args, profile = harness.setup(parser, argv)
    results_dir = args.results_dir or args.output_dir
    text, numbers = findings(results_dir, profile.name, args.forms, args.init_dirs)
    report = harness.Report(NAME, f"Findings of issue 17 ({profile.name} profile)", args, profile)
    report.add("Findings", text)
    report.raw = numbers
    report.write()
    print(text)
    return text, numbers


if __name__ == "__main__":
    main()
