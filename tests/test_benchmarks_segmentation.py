"""Tests of benchmarks/segmentation.py: the tiny profile end to end, and the committed result."""

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import segmentation
from skscale.segmentation import DEFAULT_SEGMENTATION_ARCHITECTURE

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def test_tiny_profile_runs_end_to_end(tmp_path):
    raw = segmentation.main(["--profile", "tiny", "--output-dir", str(tmp_path)])
    assert set(raw["runs"]) == {"dss", "dss_independent", "resnet", "resnet_wide", "sesn"}
    for runs in raw["runs"].values():
        (run,) = runs
        assert 0 <= run["mean_iou"] <= 1 and 0 <= run["rescaling_agreement"] <= 1
        assert len(run["iou_per_scale"]) == 2 and run["parameters"] > 0
    assert raw["best"] in raw["runs"]
    text = (tmp_path / "segmentation-tiny.md").read_text()
    assert "- command: `python -m benchmarks.segmentation --profile tiny --output-dir PATH`" in text
    assert json.loads((tmp_path / "segmentation-tiny.json").read_text())["best"] == raw["best"]


def test_tiny_profile_reads_cityscapes_and_pcam_files(tmp_path):
    from .test_datasets_segmentation import _write_cityscapes, _write_pcam

    root = tmp_path / "cityscapes"
    for split in ("train", "val"):
        _write_cityscapes(root, split, size=(8, 16))
    argv = ["--profile", "tiny", "--output-dir", str(tmp_path), "--architectures", "resnet"]
    raw = segmentation.main([*argv, "--data", "cityscapes", "--root", str(root)])
    assert 0 <= raw["runs"]["resnet"][0]["mean_iou"] <= 1
    assert (tmp_path / "segmentation-tiny-cityscapes.md").is_file()
    pytest.importorskip("h5py")
    for split in ("train", "test"):
        _write_pcam(tmp_path / "pcam", split=split, n=4)
    raw = segmentation.main([*argv, "--data", "pcam", "--data-home", str(tmp_path / "pcam")])
    assert set(raw["runs"]) == {"densenet", "s_densenet"}


def test_object_iou_and_scale_bins():
    from sklearn.utils import Bunch

    instances = np.zeros((1, 4, 4), dtype=np.int16)
    instances[0, :2, :2] = 1
    data = Bunch(scales=np.array([[0.6, np.nan]]), object_labels=np.array([[2, 0]]), instances=instances)
    predicted = np.zeros((1, 4, 4), dtype=int)
    predicted[0, 0, :2] = 2
    scales, ious = segmentation.object_ious(predicted, data)
    assert scales.tolist() == [0.6] and ious.tolist() == [0.5]
    assert segmentation.iou_per_scale(
        np.array([0.6, 1.4]), np.array([0.5, 1.0]), np.array([0.5, 1.0, 1.5])
    ) == [
        0.5,
        1.0,
    ]


def test_default_architecture_is_the_committed_best():
    raw = json.loads((RESULTS / "segmentation-cpu.json").read_text())
    means = {name: np.mean([run["mean_iou"] for run in runs]) for name, runs in raw["runs"].items()}
    assert raw["best"] == max(means, key=means.get) == DEFAULT_SEGMENTATION_ARCHITECTURE
    assert set(raw["runs"]) == {"dss", "dss_independent", "resnet", "resnet_wide", "sesn"}
    assert len(raw["seeds"]) == 3
