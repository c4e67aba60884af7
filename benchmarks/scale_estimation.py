"""Object scales from the images alone: ``estimate_scales`` and ``init_isr="auto"`` (issue 18).

Part 1, the estimates against the true scales. MNIST digits (10 px) rescaled by a
log-uniform factor in each Dynamic Scale MNIST range ([1, 2.83], [1, 4.76], [1, 8]; 8-px
digits for [1, 8] so that they fit) at random positions of a 64-pixel canvas, on six
backgrounds: *clean* (a black canvas), *cluttered* (a random contrast in [0.5, 1], a
random offset, a smooth random background of Gaussian-filtered noise, sigma 10 px and
standard deviation 0.3, and pixel noise of standard deviation 0.1), and four that
``estimate_scales`` was not tuned on: *bright* (dark digits on a white canvas, pixel
noise 0.05), *gradient* (a linear ramp of height 1.5 in a random direction, pixel noise
0.05), *noisy* (Gaussian pixel noise of standard deviation 0.15) and *distractors* (three
8-px crops of other digits at half contrast and pixel noise 0.05). For each: the
Spearman rank correlation of the estimates (with the labels) with the true factors, and
the ISR that ``ToleranceModel(n_scales=3)`` recommends from the estimates against the one
it recommends from the true factors. Also MNIST-Scale and Fashion-MNIST-Scale (28-px
images shrunk by a factor uniform in [0.3, 1], centred on a black background; see
:func:`skscale.datasets.make_mnist_scale`). Target (issue 18): Spearman >= 0.85 and the
ISR within 15 %.

Part 2, what a user gets. On Dynamic Scale MNIST (the profile's digits, canvas and
training, fewer digits, see ``SETTINGS``), per seed: the Table-1 network with fixed
internal scales at each ISR of a small grid (:func:`benchmarks.harness.fit_table1`, which
keeps each fit's best validation epoch), the grid's best chosen on the validation digits;
against the same network with ``init_isr="auto"`` (fixed scales at the ISR estimated from
the training digits, one fit). Test errors with their binomial standard errors, the
per-seed paired difference with its standard error, and the number of fits each needed.

Part 3 (``--network``, issue 29's target), the network's own scale estimates. On cluttered
[1, 8] canvases of part 1, per seed: the Table-1 network with five fixed internal scales
from 0.5 to 4 px (kernels of +-2 sigma) trained on 1,000 canvases, early-stopped on 300
validation canvases (patience 3, at most 30 epochs); the Spearman correlation of
``clf.estimate_scales`` on 300 test canvases with their true factors, against that of
``skscale.estimate_scales`` on the same canvases (both without labels). Target: the
network ranks at least as well.

    python -m benchmarks.scale_estimation --profile cpu
    python -m benchmarks.scale_estimation --profile cpu --estimation-only   # part 1 only
    python -m benchmarks.scale_estimation --profile cpu --network --n-jobs 2   # part 3 only
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from scipy import ndimage
from scipy.stats import spearmanr

from benchmarks import harness, stats

NAME = "scale_estimation"
_DATA_NAMES = {"mnist": "MNIST-Scale", "fashion": "Fashion-MNIST-Scale"}
CANVAS = 64
SPEARMAN_TARGET, ISR_TARGET, AUTO_ISR_TARGET = 0.85, 0.15, 0.20
BACKGROUNDS = ("clean", "cluttered", "bright", "gradient", "noisy", "distractors")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes of this benchmark (kept here, apart from the shared profiles).

    Attributes
    ----------
    n_images : int
        Canvases per (range, background) of part 1.
    n_train, n_val, n_test : int
        Training, validation (they choose the grid's best ISR and every fit's best epoch)
        and test digits of part 2 per seed.
    isr_grid : tuple of float
        Fixed ISRs of the grid.
    mnist_scale : tuple of str
        ``"mnist"`` and/or ``"fashion"``: MNIST-Scale data sets of part 1.
    classifier_ranges : tuple of float
        Upper bounds of the Dynamic Scale MNIST distributions of part 2.
    """

    n_images: int
    n_train: int
    n_val: int
    n_test: int
    isr_grid: tuple
    classifier_ranges: tuple
    mnist_scale: tuple


SETTINGS = {
    "smoke": Settings(
        n_images=24,
        n_train=60,
        n_val=20,
        n_test=40,
        isr_grid=(1.5, 4.0),
        classifier_ranges=(4.76,),
        mnist_scale=("mnist",),
    ),
    "cpu": Settings(
        n_images=300,
        n_train=600,
        n_val=200,
        n_test=1000,
        isr_grid=(1.5, 3.0, 6.0),
        classifier_ranges=(4.76,),
        mnist_scale=("mnist", "fashion"),
    ),
}


# ---------------------------------------------------------------------------- part 1
def make_canvases(n_images, high, seed, background):
    """Canvases of rescaled digits: ``(images, labels, true factors)``."""
    from skscale.datasets import load_mnist, rescale_images

    rng = np.random.default_rng(seed)
    digits, labels = load_mnist(source="bundled", return_X_y=True)
    chosen = rng.choice(len(digits), n_images, replace=False)
    width = 10.0 if high * 10.0 <= 0.8 * CANVAS else 8.0
    factors = np.exp(rng.uniform(0.0, np.log(high), n_images))
    # MNIST digits fill a 20-pixel box of their 28-pixel image.
    centred = rescale_images(digits[chosen], factors * width / 20.0, output_size=CANVAS, antialias=True)
    images = np.empty_like(centred)
    for i, digit in enumerate(centred):
        rows = np.flatnonzero(digit.max(axis=1) > 0.05)
        cols = np.flatnonzero(digit.max(axis=0) > 0.05)
        shift = (rng.integers(-rows[0], CANVAS - rows[-1]), rng.integers(-cols[0], CANVAS - cols[-1]))
        placed = np.roll(digit, shift, axis=(0, 1))
        if background == "clean":
            images[i] = placed
            continue
        if background in ("bright", "gradient", "noisy", "distractors"):
            images[i] = _other_background(placed, background, digits, rng)
            continue
        clutter = ndimage.gaussian_filter(rng.standard_normal((CANVAS, CANVAS)), 10.0, mode="wrap")
        images[i] = (
            rng.uniform(0.5, 1.0) * placed
            + 0.3 * clutter / clutter.std()
            + rng.uniform(-0.5, 0.5)
            + 0.1 * rng.standard_normal((CANVAS, CANVAS))
        )
    return images, labels[chosen], factors


def _other_background(placed, background, digits, rng):
    """One canvas of the conditions ``estimate_scales`` was not tuned on (see the module docstring)."""
    noise = rng.standard_normal((CANVAS, CANVAS))
    if background == "bright":
        return 1.0 - placed + 0.05 * noise
    if background == "noisy":
        return placed + 0.15 * noise
    if background == "gradient":
        angle = rng.uniform(0.0, 2.0 * np.pi)
        grid = np.arange(CANVAS) / (CANVAS - 1) - 0.5
        ramp = np.cos(angle) * grid[:, None] + np.sin(angle) * grid[None, :]
        return placed + 1.5 * ramp + 0.05 * noise
    canvas = placed.copy()
    for _ in range(3):
        # An 8-px crop of another digit's stroke area, at half contrast, anywhere.
        crop = digits[rng.integers(len(digits))][10:18, 10:18]
        row, col = rng.integers(0, CANVAS - 8, size=2)
        canvas[row : row + 8, col : col + 8] += 0.5 * crop
    return canvas + 0.05 * noise


def mnist_scale_images(n_images, seed, dataset):
    """MNIST-Scale (or Fashion-MNIST-Scale) training images: ``(images, labels, true factors)``."""
    from skscale.datasets import make_mnist_scale

    data = make_mnist_scale(n_train=n_images, n_val=0, n_test=10, random_state=seed, dataset=dataset)
    return data.X_train, data.y_train, data.scales_train


def estimation_row(n_images, high, seed, background):
    """Part 1 on one data set: ``high`` is a Dynamic Scale MNIST range's upper bound, or
    ``"mnist"`` / ``"fashion"`` for MNIST-Scale / Fashion-MNIST-Scale."""
    from skscale import estimate_scales

    if isinstance(high, str):
        images, labels, factors = mnist_scale_images(n_images, seed, high)
    else:
        images, labels, factors = make_canvases(n_images, high, seed, background)
    start = time.perf_counter()
    scales = estimate_scales(images, labels)
    seconds = time.perf_counter() - start
    kept = np.isfinite(scales)
    isr_true = harness.recommended_isr(factors)
    isr_estimated = harness.recommended_isr(scales[kept])
    return {
        "data": _DATA_NAMES[high] if isinstance(high, str) else f"[1, {high:g}]",
        "range": [float(factors.min()), float(factors.max())] if isinstance(high, str) else [1.0, high],
        "background": background,
        "n_images": n_images,
        "spearman": float(spearmanr(scales[kept], factors[kept])[0]),
        "isr_true": isr_true,
        "isr_estimated": isr_estimated,
        "isr_error": isr_estimated / isr_true - 1.0,
        "std_log2_estimated": float(np.std(np.log2(scales[kept]))),
        "std_log2_true": float(np.std(np.log2(factors))),
        "left_out": int((~kept).sum()),
        "seconds": seconds,
    }


def meets_target(row):
    return row["spearman"] >= SPEARMAN_TARGET and abs(row["isr_error"]) <= ISR_TARGET


# ---------------------------------------------------------------------------- part 3
NETWORK_SIZES = {"n_train": 1000, "n_val": 300, "n_test": 300, "max_epochs": 30, "patience": 3}
NETWORK_SCALES = {"n_scales": 5, "init_sigma_basis": 0.5, "init_isr": 8.0, "kernel_extent": 2.0}


def network_entry(seed, device="cpu"):
    """Part 3 for one seed: the Spearman correlations of both estimates with the true factors."""
    from skscale import ScaleEquivariantClassifier, estimate_scales

    sizes = NETWORK_SIZES
    n_train, n_val = sizes["n_train"], sizes["n_val"]
    images, labels, factors = make_canvases(n_train + n_val + sizes["n_test"], 8.0, seed, "cluttered")
    train, val, test = slice(0, n_train), slice(n_train, n_train + n_val), slice(n_train + n_val, None)
    train_split, callbacks = harness.validation(
        images[val], labels[val], "valid_acc", sizes["max_epochs"], sizes["patience"]
    )
    clf = ScaleEquivariantClassifier(
        parameterisation="fixed",
        **NETWORK_SCALES,
        lr=0.01,
        batch_size=32,
        max_epochs=sizes["max_epochs"],
        train_split=train_split,
        callbacks=callbacks,
        device=device,
        random_state=seed,
    ).fit(images[train], labels[train])
    network = clf.estimate_scales(images[test])
    estimated = estimate_scales(images[test])
    kept = np.isfinite(estimated)
    history = harness.val_history(clf)

    def spearman(values, truth):
        # Estimates that do not vary rank nothing: a correlation of 0.
        return 0.0 if np.ptp(values) == 0 else float(spearmanr(values, truth)[0])

    entry = {
        "seed": seed,
        "accuracy": float(clf.score(images[test], labels[test])),
        "epochs": len(clf.history),
        "converged": stats.converged(history),
        "network_spearman": spearman(network, factors[test]),
        "estimate_scales_spearman": spearman(estimated[kept], factors[test][kept]),
    }
    harness.log(
        f"network estimates, seed {seed}: Spearman {entry['network_spearman']:.3f} against "
        f"{entry['estimate_scales_spearman']:.3f} (estimate_scales), test accuracy {entry['accuracy']:.3f}"
    )
    return entry


def network_findings(entries):
    """The paired difference of the two correlations and issue 29's target, as lines."""
    gap, se, n = stats.paired_difference(
        [e["network_spearman"] for e in entries], [e["estimate_scales_spearman"] for e in entries]
    )
    met = "met" if gap >= 0 else "not met"
    network, reference = (
        np.mean([e[key] for e in entries]) for key in ("network_spearman", "estimate_scales_spearman")
    )
    return [
        f"network - estimate_scales Spearman = {gap:+.3f}, paired SE {se:.3f} over {n} seeds "
        # verdict reads a lower value as better; a higher correlation is: negated.
        f"({stats.verdict(-gap, se)})",
        "target: clf.estimate_scales ranks the known scales of cluttered [1, 8] canvases at least as "
        f"well as skscale.estimate_scales ({met}: {network:.3f} against {reference:.3f})",
    ]


# ---------------------------------------------------------------------------- part 2
def classifier_entry(profile, settings, high, seed, device):
    """Grid of fixed ISRs chosen on a validation split against ``init_isr="auto"``, one seed."""
    data = harness.dynamic_split(profile, (1.0, high), seed)
    X_val, y_val = data["X_val"], data["y_val"]
    grid = []
    for isr in settings.isr_grid:
        clf = harness.fit_table1(data, profile, seed, device, isr=isr, parameterisation="fixed")
        grid.append(
            {
                "isr": isr,
                "validation_error": harness.error_rate(clf, X_val, y_val),
                "test_error": harness.error_rate(clf, data["X_test"], data["y_test"]),
            }
        )
        harness.log(
            f"[1, {high:g}] seed {seed} fixed ISR {isr:g}: "
            f"validation error {grid[-1]['validation_error']:.2f} %"
        )
    best = min(grid, key=lambda entry: entry["validation_error"])
    start = time.perf_counter()
    auto = harness.fit_table1(data, profile, seed, device, isr="auto", parameterisation="fixed")
    auto_seconds = time.perf_counter() - start
    entry = {
        "seed": seed,
        "n_fit": len(data["y_train"]),
        "n_validation": len(y_val),
        "n_test": len(data["y_test"]),
        "grid": grid,
        "best_isr": best["isr"],
        "best_error": best["test_error"],
        "recommended_isr_true_scales": harness.recommended_isr(data["s_train"]),
        "auto_isr": auto.init_isr_,
        "auto_error": harness.error_rate(auto, data["X_test"], data["y_test"]),
        "auto_seconds": auto_seconds,
        "grid_fits": len(grid),
        "auto_fits": 1,
    }
    harness.log(
        f"[1, {high:g}] seed {seed}: grid best ISR {best['isr']:g} test {best['test_error']:.2f} %, auto ISR "
        f"{entry['auto_isr']:.2f} test {entry['auto_error']:.2f} %"
    )
    return entry


def paired(entries):
    """Mean and standard error (over seeds) of the paired difference auto - grid, in points."""
    mean, se, _ = stats.paired_difference(
        [entry["auto_error"] for entry in entries], [entry["best_error"] for entry in entries]
    )
    return mean, se


# ---------------------------------------------------------------------------- report
def estimation_table(rows):
    lines = [
        f"| {row['data']} | {row['background']} | {row['spearman']:.3f} | {row['isr_true']:.2f} | "
        f"{row['isr_estimated']:.2f} | {row['isr_error']:+.0%} | {row['std_log2_estimated']:.2f} / "
        f"{row['std_log2_true']:.2f} | {'yes' if meets_target(row) else 'no'} | {row['left_out']} | "
        f"{row['seconds']:.0f} |"
        for row in rows
    ]
    header = (
        "| data | background | Spearman | ISR (true scales) | ISR (estimated) | ISR error | "
        "sd log2 estimated / true | target met | no object | s |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    return "\n".join([header, *lines])


def estimation_findings(rows):
    met = [row for row in rows if meets_target(row)]
    spearman = [row["spearman"] for row in rows]
    errors = [abs(row["isr_error"]) for row in rows]
    worst = max(rows, key=lambda row: abs(row["isr_error"]))
    sentences = [
        f"The target (Spearman >= {SPEARMAN_TARGET}, ISR within {ISR_TARGET:.0%}) is met in {len(met)} of "
        f"{len(rows)} settings.",
        f"Spearman ranges from {min(spearman):.2f} to {max(spearman):.2f}; the ISR error from "
        f"{min(errors):.0%} to {max(errors):.0%} in absolute value, the largest on "
        f"{worst['data']} "
        f"({worst['background']}: {worst['isr_estimated']:.2f} instead of {worst['isr_true']:.2f}).",
    ]
    for background in BACKGROUNDS:
        chosen = [row for row in rows if row["background"] == background]
        if chosen:
            sentences.append(
                f"On {background} backgrounds the mean Spearman is "
                f"{np.mean([r['spearman'] for r in chosen]):.2f} and the mean absolute ISR error "
                f"{np.mean([abs(r['isr_error']) for r in chosen]):.0%}."
            )
    return " ".join(sentences)


def classifier_table(results):
    lines = [
        "| range | seed | grid ISRs (validation error %) | grid's best ISR | its test error % | "
        "auto ISR (true-scale ISR) | auto test error % | auto - grid (points) | fits grid / auto |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, entries in results.items():
        for entry in entries:
            grid = ", ".join(f"{g['isr']:g} ({g['validation_error']:.1f})" for g in entry["grid"])
            best_se = stats.binomial_se(entry["best_error"], entry["n_test"])
            auto_se = stats.binomial_se(entry["auto_error"], entry["n_test"])
            lines.append(
                f"| [1, {key}] | {entry['seed']} | {grid} | {entry['best_isr']:g} | "
                f"{entry['best_error']:.2f} ± {best_se:.2f} | "
                f"{entry['auto_isr']:.2f} ({entry['recommended_isr_true_scales']:.2f}) | "
                f"{entry['auto_error']:.2f} ± {auto_se:.2f} | "
                f"{entry['auto_error'] - entry['best_error']:+.2f} | "
                f"{entry['grid_fits']} / {entry['auto_fits']} |"
            )
    return "\n".join(lines)


def classifier_findings(results):
    sentences = []
    for key, entries in results.items():
        mean, se = paired(entries)
        grid_mean = np.mean([entry["best_error"] for entry in entries])
        auto_mean = np.mean([entry["auto_error"] for entry in entries])
        fits = entries[0]["grid_fits"]
        seeds = len(entries)
        text = (
            f"On [1, {key}], init_isr='auto' reached a mean test error of {auto_mean:.2f} % with 1 fit per "
            "seed, "
            f"against {grid_mean:.2f} % for the grid's best fixed ISR, which needed {fits} fits and a "
            f"validation split; the paired difference (auto - grid) is {mean:+.2f}"
        )
        if np.isfinite(se):
            within = stats.within_k_se(mean, se, k=2.0)
            text += (
                f" ± {se:.2f} points over {seeds} seeds, {'within' if within else 'outside'} two standard "
                f"errors of zero."
            )
        else:
            text += f" points on {seeds} seed (no standard error from one seed)."
        auto_isr = np.mean([entry["auto_isr"] for entry in entries])
        true_isr = np.mean([entry["recommended_isr_true_scales"] for entry in entries])
        gap = auto_isr / true_isr - 1.0
        text += (
            f" The estimated ISR averaged {auto_isr:.2f}, against {true_isr:.2f} from the true training "
            f"scales ({gap:+.0%}; target: within {AUTO_ISR_TARGET:.0%}, "
            f"{'met' if abs(gap) <= AUTO_ISR_TARGET else 'not met'})."
        )
        sentences.append(text)
    return " ".join(sentences)


def main(argv=None):
    parser = harness.make_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--estimation-only",
        action="store_true",
        help="run part 1 only (the estimates against the true scales); writes <name>-<profile>-estimation",
    )
    parser.add_argument(
        "--network",
        action="store_true",
        help="run part 3 only (the network's own scale estimates); writes <name>-<profile>-network",
    )
    args, profile = harness.setup(parser, argv)
    if args.profile not in SETTINGS:
        parser.error(f"--profile {args.profile!r}: this benchmark has the profiles {', '.join(SETTINGS)}")
    settings = SETTINGS[args.profile]
    ranges = tuple(high for _, high in profile.distributions)
    classifier_ranges = settings.classifier_ranges if args.distributions is None else ranges
    # The profile's digits, canvas and training; this script's sizes and grid.
    local = dataclasses.replace(
        profile,
        n_train=settings.n_train,
        n_val=settings.n_val,
        n_test=settings.n_test,
        isr_grid=settings.isr_grid,
    )
    variant = "estimation" if args.estimation_only else "network" if args.network else None
    report = harness.Report(
        NAME, "Object scales from the images alone (issues 18, 28)", args, local, variant=variant
    )
    if args.network:
        tasks = [(seed, args.device) for seed in profile.seeds]
        entries = harness.run_fits(network_entry, tasks, args.n_jobs or 1)
        rows = [
            [e["seed"], f"{e['accuracy']:.3f}", e["epochs"], "yes" if e["converged"] else "no"]
            + [f"{e['network_spearman']:.3f}", f"{e['estimate_scales_spearman']:.3f}"]
            for e in entries
        ]
        header = ["seed", "test accuracy", "epochs", "converged", "Spearman network"]
        header.append("Spearman estimate_scales")
        report.add(
            "3. The network's own scale estimates (issue 29)",
            f"Cluttered [1, 8] canvases; {NETWORK_SCALES}; sizes {NETWORK_SIZES}.\n\n"
            + harness.markdown_table(header, rows)
            + "\n\n"
            + "\n".join(f"- {line}" for line in network_findings(entries)),
        )
        report.raw = {"network_sizes": NETWORK_SIZES, "network_scales": NETWORK_SCALES, "network": entries}
        report.write()
        return report.raw

    rows, skipped = [], []
    datasets = [(high, background) for high in ranges for background in BACKGROUNDS]
    datasets += [(name, "clean") for name in settings.mnist_scale]
    for index, (high, background) in enumerate(datasets):
        # All backgrounds of a range share a seed: the same digits, factors and positions.
        seed = profile.seeds[0] + index // len(BACKGROUNDS)
        try:
            rows.append(estimation_row(settings.n_images, high, seed, background))
        except FileNotFoundError as exc:  # Fashion-MNIST is not bundled
            harness.log(f"{_DATA_NAMES.get(high, high)} skipped: {str(exc).splitlines()[0][:120]}")
            skipped.append(_DATA_NAMES.get(high, high))
            continue
        harness.log(
            f"{rows[-1]['data']} {background}: Spearman {rows[-1]['spearman']:.3f}, ISR "
            f"{rows[-1]['isr_estimated']:.2f} (true scales {rows[-1]['isr_true']:.2f})"
        )
    report.add(
        "1. Estimated against true scales",
        f"{settings.n_images} images per row ({CANVAS}-px canvases; MNIST-Scale: 28 px), estimated with the "
        "labels; ISRs of "
        "`ToleranceModel(n_scales=3)` (log-uniform density, tau 0.459).\n\n"
        + estimation_table(rows)
        + "\n\n"
        + estimation_findings(rows)
        + "".join(f" {name} was not found on this machine: its row is missing." for name in skipped),
    )

    if args.estimation_only:
        report.raw = {"settings": dataclasses.asdict(settings), "estimation": rows}
        report.write()
        return report.raw
    results = {}
    for high in classifier_ranges:
        results[f"{high:g}"] = [
            classifier_entry(local, settings, high, seed, args.device) for seed in profile.seeds
        ]
    report.add(
        "2. init_isr='auto' against a grid of fixed ISRs",
        f"Table-1 network with fixed internal scales ({local.max_epochs} epochs, sigma_basis "
        f"{2.0 * local.shrink:.3g} px), per seed {settings.n_train} training digits, {settings.n_val} "
        f"validation digits (they choose the grid's best ISR) and {settings.n_test} test digits; "
        "± is the binomial standard error of a test error.\n\n"
        + classifier_table(results)
        + "\n\n"
        + classifier_findings(results),
    )
    report.raw = {"settings": dataclasses.asdict(settings), "estimation": rows, "classifier": results}
    report.write()
    return report.raw


if __name__ == "__main__":
    main()
