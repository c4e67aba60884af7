"""Segmentation of rescaled objects: S-ResNets, a learned-scale encoder-decoder, ResNets (issue 31).

Offline set (``--data scaled``, the default): :func:`skscale.datasets.make_scaled_segmentation`,
canvases with one to three MNIST digits (``--dataset fashion``: Fashion-MNIST items) of
three classes, each rescaled by a factor drawn log-uniformly from the profile's range,
with clutter fragments and pixel noise; masks 0 (background) and 1..3. For every seed
(its own realisation of the data and of the weights) each network of
:data:`skscale.nn.SEGMENTATION_ARCHITECTURES` is trained by
:class:`skscale.ScaleEquivariantSegmenter` with the same settings, and measured on the
test canvases:

- mean IoU (the segmenter's ``score``), its mean over seeds with the standard error;
- IoU per object scale: for every test object, the IoU of its visible pixels with the
  pixels predicted as its class inside its bounding box, averaged per bin of scale;
- rescaling agreement: the mean IoU between the masks predicted on the test canvases
  rescaled by 2 (bicubic, :func:`skscale.metrics.rescale`) and the predicted masks
  rescaled by 2 (nearest): 1 for a network whose masks commute with rescaling.

The network with the best mean IoU is the segmenter's default ``architecture`` (a test
reads it from the committed JSON).

Cityscapes and Patch Camelyon (the paper's Table 1) need their files (see
:func:`skscale.datasets.load_cityscapes` and :func:`skscale.datasets.load_pcam`) and a GPU::

    python -m benchmarks.segmentation --profile cpu
    python -m benchmarks.segmentation --profile gpu --data cityscapes --root PATH --device cuda
    python -m benchmarks.segmentation --profile gpu --data pcam --data-home PATH --device cuda

Cityscapes trains the segmentation networks on ``train`` (resized to the profile's
``cityscapes_size``) and reports the mean IoU over the 19 classes on ``val``; PCam trains
the classifiers ``"s_densenet"`` and ``"densenet"`` on ``train`` and reports the accuracy on
``test``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import harness, stats

NAME = "segmentation"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
# The paper's Table 1 (Worrall and Welling, 2019), quoted beside our rows.
PAPER_CITYSCAPES = {
    "resnet": ("ResNet, matched parameters", 45.66),
    "resnet_wide": ("ResNet, matched channels", 49.99),
    "dss": ("S-ResNet, multiscale", 63.53),
    "dss_independent": ("S-ResNet, no interaction", 64.78),
}
PAPER_PCAM = {"densenet": ("DenseNet baseline", 87.0), "s_densenet": ("S-DenseNet", 88.1)}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes of one profile of this benchmark.

    Attributes
    ----------
    n_train, n_test : int
        Canvases per seed.
    canvas_size : int
    scale_range : (float, float)
        Object scales (relative to 28-pixel sources), log-uniform.
    n_objects : (int, int)
    clutter : int
        Clutter fragments per canvas.
    noise : float
    n_filters : int
        Width of every network.
    max_epochs, batch_size : int
    lr : float
    seeds : tuple of int
    scale_bins : int
        Bins of the IoU per object scale (evenly spaced in log scale).
    cityscapes_size : (int, int)
        Images resized to this for ``--data cityscapes``.
    pcam_train : int
        PCam training patches read for ``--data pcam`` (None: all).
    """

    n_train: int
    n_test: int
    canvas_size: int
    scale_range: tuple
    n_objects: tuple
    clutter: int
    noise: float
    n_filters: int
    max_epochs: int
    batch_size: int
    lr: float
    seeds: tuple
    scale_bins: int
    cityscapes_size: tuple
    pcam_train: int | None


SETTINGS = {
    "tiny": Settings(
        n_train=8,
        n_test=4,
        canvas_size=36,
        scale_range=(0.5, 1.25),
        n_objects=(1, 2),
        clutter=1,
        noise=0.05,
        n_filters=2,
        max_epochs=1,
        batch_size=4,
        lr=1e-2,
        seeds=(0,),
        scale_bins=2,
        cityscapes_size=(8, 16),
        pcam_train=4,
    ),
    "cpu": Settings(
        n_train=128,
        n_test=64,
        canvas_size=48,
        scale_range=(0.5, 1.5),
        n_objects=(1, 3),
        clutter=2,
        noise=0.05,
        n_filters=8,
        max_epochs=12,
        batch_size=16,
        lr=1e-2,
        seeds=(0, 1, 2),
        scale_bins=3,
        cityscapes_size=(128, 256),
        pcam_train=2048,
    ),
    "gpu": Settings(
        n_train=4000,
        n_test=1000,
        canvas_size=96,
        scale_range=(0.5, 3.0),
        n_objects=(1, 4),
        clutter=4,
        noise=0.05,
        n_filters=32,
        max_epochs=40,
        batch_size=32,
        lr=1e-2,
        seeds=(0, 1, 2),
        scale_bins=5,
        cityscapes_size=(256, 512),
        pcam_train=None,
    ),
}


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--profile", choices=sorted(SETTINGS), default="cpu", help="problem size (default: cpu)"
    )
    parser.add_argument("--data", choices=("scaled", "cityscapes", "pcam"), default="scaled")
    parser.add_argument(
        "--dataset", choices=("mnist", "fashion"), default="mnist", help="objects of --data scaled"
    )
    parser.add_argument("--root", type=Path, default=None, help="Cityscapes folder (leftImg8bit, gtFine)")
    parser.add_argument("--data-home", type=Path, default=None, help="folder of the PCam .h5 files")
    parser.add_argument("--architectures", nargs="+", default=None, help="networks to run (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.data == "cityscapes" and args.root is None:
        parser.error("--data cityscapes needs --root (the folder holding leftImg8bit and gtFine)")
    return args


def segmenter(architecture, settings, seed, device):
    from skscale import ScaleEquivariantSegmenter

    return ScaleEquivariantSegmenter(
        architecture,
        n_filters=settings.n_filters,
        max_epochs=settings.max_epochs,
        batch_size=settings.batch_size,
        lr=settings.lr,
        random_state=seed,
        device=device,
    )


def object_ious(predicted, data):
    """IoU of every object of ``data`` (visible pixels against predicted ones of its class, in its box)."""
    scales, ious = [], []
    for index, position in zip(*np.nonzero(~np.isnan(data.scales))):
        pixels = data.instances[index] == position + 1
        if not pixels.any():
            continue  # covered by later objects
        rows, columns = np.nonzero(pixels)
        box = (slice(rows.min(), rows.max() + 1), slice(columns.min(), columns.max() + 1))
        truth = pixels[box]
        guess = predicted[index][box] == data.object_labels[index, position]
        ious.append((truth & guess).sum() / (truth | guess).sum())
        scales.append(data.scales[index, position])
    return np.asarray(scales), np.asarray(ious)


def iou_per_scale(scales, ious, edges):
    """Mean object IoU in each bin of ``edges`` (NaN for an empty bin)."""
    index = np.clip(np.searchsorted(edges, scales, side="right") - 1, 0, len(edges) - 2)
    return [float(ious[index == b].mean()) if (index == b).any() else math.nan for b in range(len(edges) - 1)]


def rescaling_agreement(model, images):
    """Mean IoU between masks predicted on images rescaled by 2 and predicted masks rescaled by 2."""
    import torch

    from skscale.metrics import mean_intersection_over_union, rescale

    with torch.no_grad():
        larger = rescale(torch.as_tensor(images[:, None]), 2.0).numpy()
    predicted = model.predict(images)
    upsampled = predicted.repeat(2, axis=1).repeat(2, axis=2)
    return mean_intersection_over_union(upsampled, model.predict(larger))


def run_scaled(settings, architectures, seeds, dataset, device):
    from skscale.datasets import make_scaled_segmentation
    from skscale.nn import count_parameters

    edges = np.geomspace(*settings.scale_range, settings.scale_bins + 1)
    runs = {name: [] for name in architectures}
    for seed in seeds:
        data = make_scaled_segmentation(
            settings.n_train + settings.n_test,
            canvas_size=settings.canvas_size,
            n_objects=settings.n_objects,
            scale_range=settings.scale_range,
            dataset=dataset,
            clutter=settings.clutter,
            noise=settings.noise,
            random_state=seed,
        )
        train, test = slice(0, settings.n_train), slice(settings.n_train, None)
        test_data = {key: data[key][test] for key in ("scales", "instances", "object_labels")}
        test_data = type(data)(**test_data)
        for name in architectures:
            start = time.perf_counter()
            model = segmenter(name, settings, seed, device).fit(data.X[train], data.y[train])
            fit_seconds = time.perf_counter() - start
            predicted = model.predict(data.X[test])
            scales, ious = object_ious(predicted, test_data)
            run = {
                "seed": seed,
                "mean_iou": float(model.score(data.X[test], data.y[test])),
                "iou_per_scale": iou_per_scale(scales, ious, edges),
                "rescaling_agreement": float(rescaling_agreement(model, data.X[test])),
                "parameters": count_parameters(model.module_),
                "fit_seconds": fit_seconds,
            }
            runs[name].append(run)
            harness.log(
                f"seed {seed} {name}: mean IoU {run['mean_iou']:.3f}, 2x agreement "
                f"{run['rescaling_agreement']:.3f} ({fit_seconds:.0f} s)"
            )
    return runs, edges


def mean_se(values):
    values = [value for value in values if not math.isnan(value)]
    if not values:
        return "–"
    se = stats.standard_error(values)
    return f"{np.mean(values):.3f}" + ("" if math.isnan(se) else f" ± {se:.3f}")


def scaled_report(runs, edges, settings, dataset):
    bins = [f"IoU at scale {low:.2f}–{high:.2f}" for low, high in zip(edges[:-1], edges[1:])]
    header = ["architecture", "parameters", "mean IoU", *bins, "2× rescaling agreement", "fit (s)"]
    rows = []
    for name, name_runs in runs.items():
        per_scale = np.asarray([run["iou_per_scale"] for run in name_runs])
        rows.append(
            [
                f"`{name}`",
                f"{name_runs[0]['parameters']:,}",
                mean_se([run["mean_iou"] for run in name_runs]),
                *(mean_se(per_scale[:, b].tolist()) for b in range(per_scale.shape[1])),
                mean_se([run["rescaling_agreement"] for run in name_runs]),
                f"{np.mean([run['fit_seconds'] for run in name_runs]):.0f}",
            ]
        )
    means = {name: float(np.mean([run["mean_iou"] for run in name_runs])) for name, name_runs in runs.items()}
    best = max(means, key=means.get)
    seeds = ", ".join(str(run["seed"]) for run in next(iter(runs.values())))
    text = (
        f"{settings.n_train} training / {settings.n_test} test canvases of {settings.canvas_size} px per "
        f"seed ({dataset}, {settings.n_objects[0]}–{settings.n_objects[1]} objects of 3 classes, scales "
        f"{settings.scale_range[0]:g}–{settings.scale_range[1]:g} log-uniform, {settings.clutter} clutter "
        f"fragments, noise {settings.noise:g}); seeds {seeds}; every network {settings.n_filters} filters "
        f"wide, Adam lr {settings.lr:g}, {settings.max_epochs} epochs, batch {settings.batch_size}. Mean ± "
        "standard error over seeds. Object IoU: its visible pixels against the pixels predicted as its "
        "class inside its bounding box. The 2× agreement is 1 for any network whose masks commute with "
        "rescaling, a constant one included: read it with the mean IoU.\n\n"
        + harness.markdown_table(header, rows)
        + f"\n\nBest mean IoU: `{best}` ({means[best]:.3f}), the segmenter's default architecture."
    )
    return text, best


def run_cityscapes(settings, architectures, seeds, root, device):
    from skscale.datasets import load_cityscapes

    train = load_cityscapes(root, "train", size=settings.cityscapes_size)
    val = load_cityscapes(root, "val", size=settings.cityscapes_size)
    runs = {name: [] for name in architectures}
    for seed in seeds:
        for name in architectures:
            model = segmenter(name, settings, seed, device).set_params(classes=list(range(19)))
            model.fit(train.X, train.y)
            runs[name].append({"seed": seed, "mean_iou": float(model.score(val.X, val.y))})
            harness.log(f"seed {seed} {name}: val mean IoU {runs[name][-1]['mean_iou']:.3f}")
    header = ["architecture", "val mean IoU", "paper (mAP)"]
    rows = [
        [
            f"`{name}`",
            mean_se([run["mean_iou"] for run in name_runs]),
            PAPER_CITYSCAPES.get(name, ("", "–"))[1],
        ]
        for name, name_runs in runs.items()
    ]
    return runs, harness.markdown_table(header, rows)


def run_pcam(settings, seeds, data_home, device):
    from skscale import ScaleEquivariantClassifier
    from skscale.datasets import load_pcam

    train = load_pcam(data_home, "train", n_samples=settings.pcam_train)
    test = load_pcam(data_home, "test")
    runs = {name: [] for name in PAPER_PCAM}
    for seed in seeds:
        for name in PAPER_PCAM:
            model = ScaleEquivariantClassifier(
                name,
                max_epochs=settings.max_epochs,
                batch_size=settings.batch_size,
                lr=1e-3,
                random_state=seed,
                device=device,
            ).fit(train.X, train.y)
            runs[name].append({"seed": seed, "accuracy": float(model.score(test.X, test.y))})
            harness.log(f"seed {seed} {name}: test accuracy {runs[name][-1]['accuracy']:.3f}")
    header = ["architecture", "test accuracy", "paper (%)"]
    rows = [
        [f"`{name}`", mean_se([run["accuracy"] for run in name_runs]), PAPER_PCAM[name][1]]
        for name, name_runs in runs.items()
    ]
    return runs, harness.markdown_table(header, rows)


def main(argv=None):
    import torch

    from skscale.nn import SEGMENTATION_ARCHITECTURES

    args = parse_arguments(argv)
    if args.device == "cpu":
        torch.set_num_threads(1)
    settings = SETTINGS[args.profile]
    seeds = tuple(args.seeds) if args.seeds else settings.seeds
    architectures = args.architectures or sorted(SEGMENTATION_ARCHITECTURES)
    start = time.perf_counter()
    raw = {"settings": dataclasses.asdict(settings), "seeds": list(seeds), "data": args.data}
    if args.data == "scaled":
        runs, edges = run_scaled(settings, architectures, seeds, args.dataset, args.device)
        text, best = scaled_report(runs, edges, settings, args.dataset)
        raw.update(dataset=args.dataset, scale_edges=edges.tolist(), best=best)
        title = "Segmentation of rescaled objects: S-ResNets, learned-scale encoder-decoder, ResNets"
    elif args.data == "cityscapes":
        runs, text = run_cityscapes(settings, architectures, seeds, args.root, args.device)
        title = "Cityscapes: S-ResNets against matched ResNets (Worrall and Welling, 2019, Table 1)"
    else:
        runs, text = run_pcam(settings, seeds, args.data_home, args.device)
        title = "Patch Camelyon: S-DenseNet against DenseNet (Worrall and Welling, 2019, Table 1)"
    raw["runs"] = runs
    wall = time.perf_counter() - start
    raw["wall_time_s"] = wall
    stem = f"{NAME}-{args.profile}" + ("" if args.data == "scaled" else f"-{args.data}")
    lines = [
        f"# {title}",
        "",
        text,
        "",
        "## Run",
        "",
        f"- command: `{harness.command_line(NAME, args.argv)}`",
        *harness.provenance_lines(),
        f"- device: {args.device}",
        f"- wall time: {wall / 60:.1f} min ({wall:.0f} s)",
        "",
    ]
    args.output_dir.mkdir(parents=True, exist_ok=True)
    markdown = args.output_dir / f"{stem}.md"
    markdown.write_text("\n".join(lines))
    (args.output_dir / f"{stem}.json").write_text(json.dumps(raw, indent=1))
    print(f"wrote {markdown} ({wall / 60:.1f} min)", flush=True)
    return raw


if __name__ == "__main__":
    main()
