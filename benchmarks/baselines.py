"""MNIST-Scale with and without scale augmentation for every architecture (paper Tables 5 and 6).

Every network registered in :data:`skscale.nn.ARCHITECTURES` when the script runs is
trained on MNIST-Scale (:func:`skscale.datasets.make_mnist_scale`: digits shrunk by a
factor drawn uniformly from [0.3, 1] on 28 x 28 images) and on its "+" variant (training
images further rescaled by a factor in [0.5, 2], SESN's protocol). The SESN network runs
with fixed scales (the SESN baseline, 4 scales 1.5 * 2^(i/3)) and with the three
learnable parameterisations started from those scales (the paper's "Ours" rows); the
learned scales form Table 6. Architectures of the paper that are not registered are
listed as missing.

    python -m benchmarks.baselines --profile cpu
    python -m benchmarks.baselines --profile paper --device cuda
"""

from __future__ import annotations

import warnings

import numpy as np

from benchmarks import harness, stats

NAME = "baselines"
# SESN's internal scales on MNIST-Scale: 1.5 * 2 ** (i / 3), i = 0..3.
SESN_SCALES = dict(n_scales=4, init_sigma_basis=1.5, init_isr=2.0)
# Scale settings of the baselines whose own papers use other ones: DISCO's MNIST scales
# 1.8 * 2^(i/3); DSS with two dilation levels (1 and 2: a 7-tap kernel dilated 4 or 8
# times would span the whole 28-pixel image).
SCALE_OVERRIDES = {"disco": dict(init_sigma_basis=1.8), "dss": dict(n_scales=2)}
# The architectures compared in the paper's Table 5 that skscale provides or plans.
EXPECTED = ("cnn", "sesn", "dss", "siconvnet", "disco")
# (architecture, parameterisation) -> the paper's Table 5 row: (name, MNIST-Scale, MNIST-Scale+, params).
PAPER_TABLE5 = {
    ("cnn", "fixed"): ("CNN", "2.02 ± 0.07", "1.60 ± 0.09", "495k"),
    ("siconvnet", "fixed"): ("SI-ConvNet", "1.82 ± 0.11", "1.59 ± 0.10", "495k"),
    ("dss", "fixed"): ("DSS", "1.97 ± 0.08", "1.57 ± 0.09", "475k"),
    ("sesn", "fixed"): ("SESN (Hermite)", "1.68 ± 0.06", "1.42 ± 0.07", "495k"),
    ("disco", "fixed"): ("DISCO", "1.52 ± 0.06", "1.35 ± 0.05", "495k"),
    ("sesn", "isr"): ("Ours (Learn ISR)", "1.72 ± 0.05", "1.44 ± 0.09", "495k"),
    ("sesn", "spacing"): ("Ours (Learn Spacings)", "1.70 ± 0.10", "1.50 ± 0.08", "495k"),
    ("sesn", "direct"): ("Ours (Learn Scales Directly)", "1.74 ± 0.06", "1.50 ± 0.08", "495k"),
}
# The paper's Table 6 (learned scales of the SESN network), without and with augmentation.
PAPER_TABLE6 = {
    ("fixed", False): "1.5, 1.89, 2.38, 3",
    ("fixed", True): "1.5, 1.89, 2.38, 3",
    ("isr", False): "1.390, 1.890, 2.572, 3.503",
    ("isr", True): "1.381, 2.066, 3.092, 4.627",
    ("spacing", False): "1.390, 1.930, 2.614, 3.776",
    ("spacing", True): "1.373, 1.859, 2.847, 4.646",
    ("direct", False): "1.375, 1.889, 2.383, 3.297",
    ("direct", True): "1.360, 1.741, 2.485, 3.775",
}


def configurations():
    """``(architecture, parameterisation)`` pairs to run, and the expected architectures that are missing."""
    from skscale.nn import ARCHITECTURES

    runs = []
    for name in sorted(ARCHITECTURES):
        if name == "sesn":
            runs += [("sesn", p) for p in ("fixed", "isr", "spacing", "direct")]
        else:
            runs.append((name, "fixed"))
    missing = [name for name in EXPECTED if name not in ARCHITECTURES]
    return runs, missing


def mnist_scale(settings, seed, augment):
    from skscale.datasets import make_mnist_scale

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DatasetSizeWarning: the sizes are in the results file
        return make_mnist_scale(
            n_train=settings["n_train"],
            n_val=settings["n_val"],
            n_test=settings["n_test"],
            extra_scaling=0.5 if augment else None,
            random_state=seed,
            source=settings["source"],
        )


def fit(architecture, parameterisation, data, settings, seed, device):
    from skscale import ScaleEquivariantClassifier

    schedule = harness.lr_schedule(
        settings["lr_step"],
        0.1,
        settings["scale_lr_milestones"],
        settings["scale_lr_gamma"],
        learned=parameterisation != "fixed",
    )
    callbacks = None if schedule is None else [("lr_schedule", schedule)]
    scales = {**SESN_SCALES, **SCALE_OVERRIDES.get(architecture, {})}
    clf = ScaleEquivariantClassifier(
        architecture=architecture,
        parameterisation=parameterisation,
        **scales,
        kernel_extent=settings["kernel_extent"],
        max_epochs=settings["max_epochs"],
        batch_size=settings["batch_size"],
        lr=settings["lr"],
        scale_lr=settings["scale_lr"],
        scale_warmup_epochs=settings["scale_warmup_epochs"],
        callbacks=callbacks,
        device=device,
        random_state=seed,
    )
    return clf.fit(data.X_train, data.y_train)


def run(profile, device):
    from skscale.nn import count_parameters

    settings = profile.mnist_scale
    runs, missing = configurations()
    results = {
        f"{a}/{p}": {"errors": {"plain": [], "augmented": []}, "scales": {"plain": [], "augmented": []}}
        for a, p in runs
    }
    for seed in settings["seeds"]:
        for augment in (False, True):
            data = mnist_scale(settings, seed, augment)
            key = "augmented" if augment else "plain"
            for architecture, parameterisation in runs:
                clf = fit(architecture, parameterisation, data, settings, seed, device)
                entry = results[f"{architecture}/{parameterisation}"]
                entry["parameters"] = count_parameters(clf.module_)
                entry["errors"][key].append(harness.error_rate(clf, data.X_test, data.y_test))
                if clf.scales_ is not None:
                    entry["scales"][key].append(np.sort(clf.scales_).tolist())
                harness.log(
                    f"seed {seed} {key} {architecture}/{parameterisation}: "
                    f"error {entry['errors'][key][-1]:.2f} %"
                )
    return results, missing


def table6_rows(results):
    """Rows of Table 6: the internal scales each SESN run ended with (mean ± std over
    realisations, without and with augmentation), next to the paper's."""
    rows = []
    for name, entry in results.items():
        architecture, parameterisation = name.split("/")
        if architecture != "sesn" or not entry["scales"]["plain"]:
            continue
        cells = [name]
        for augmented in (False, True):
            scales = np.array(entry["scales"]["augmented" if augmented else "plain"])
            cells.append(", ".join(harness.mean_std(scales[:, i], 3) for i in range(scales.shape[1])))
            cells.append(PAPER_TABLE6.get((parameterisation, augmented), "–"))
        rows.append(cells)
    return rows


def main(argv=None):
    args, profile = harness.setup(harness.make_parser(__doc__.splitlines()[0]), argv)
    report = harness.Report(NAME, "MNIST-Scale baselines (paper Tables 5 and 6)", args, profile)
    results, missing = run(profile, args.device)
    rows = []
    for name, entry in results.items():
        architecture, parameterisation = name.split("/")
        paper = PAPER_TABLE5.get((architecture, parameterisation), ("–",) * 4)
        rows.append(
            [
                name,
                f"{entry['parameters']:,}",
                harness.mean_std(entry["errors"]["plain"]),
                harness.mean_std(entry["errors"]["augmented"]),
                paper[0],
                paper[1],
                paper[2],
                paper[3],
            ]
        )
    settings = profile.mnist_scale
    text = (
        f"Test error (%) on MNIST-Scale (plain) and MNIST-Scale+ (training images further rescaled by a "
        f"factor in [0.5, 2]); mean ± std over realisations {list(settings['seeds'])}. Scale networks "
        f"start from SESN's scales ({', '.join(f'{key}={value:g}' for key, value in SESN_SCALES.items())}); "
        "`/fixed` keeps them. The last four columns are the paper's numbers.\n\n"
        + harness.markdown_table(
            [
                "architecture/scales",
                "# params (ours)",
                "MNIST-Scale",
                "MNIST-Scale+",
                "paper row",
                "MNIST-Scale (paper)",
                "MNIST-Scale+ (paper)",
                "# params (paper)",
            ],
            rows,
        )
    )
    if missing:
        text += (
            "\n\nNot registered in `skscale.nn.ARCHITECTURES` when this ran, so not measured: "
            + ", ".join(f"`{name}`" for name in missing)
            + ". SS-CNN, SiCNN and SEVF are not implemented."
        )
    report.add("Classification error (Table 5)", text)
    report.add(
        "Learned internal scales (Table 6)",
        "Sorted internal scales in pixels of the 28 x 28 images, mean ± std over realisations "
        "(`sesn/fixed`: the scales every SESN run starts from).\n\n"
        + harness.markdown_table(
            ["network", "scales (ours)", "paper", "scales, + (ours)", "paper, +"], table6_rows(results)
        ),
    )
    report.raw = {"results": results, "missing": missing}

    plt = harness.pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(results)), 3.8))
    positions = np.arange(len(results))
    for offset, key, label in ((-0.18, "plain", "MNIST-Scale"), (0.18, "augmented", "MNIST-Scale+")):
        means = [np.mean(entry["errors"][key]) for entry in results.values()]
        stds = [np.nan_to_num(stats.sample_std(entry["errors"][key])) for entry in results.values()]
        ax.bar(positions + offset, means, width=0.36, yerr=stds, capsize=3, label=label)
    ax.set_xticks(positions, list(results), rotation=30, ha="right")
    ax.set(ylabel="test error (%)", title="Table 5: MNIST-Scale")
    ax.legend()
    fig.tight_layout()
    report.write(fig)
    return results


if __name__ == "__main__":
    main()
