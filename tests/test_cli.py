import gzip
import re
import subprocess
import sys

import numpy as np
import pytest

import skscale.demo
from skscale import ToleranceModel, __version__, estimate_scales
from skscale.__main__ import build_parser, main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def usage_error(capsys, argv):
    """Run ``main(argv)``, expect argparse's usage error, return its stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ") and "Traceback" not in err
    return err


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "tolerance", "info"):
        assert re.search(rf"^\s+{command}\s", out, flags=re.MULTILINE), command


def test_demo_help_lists_its_options(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    for option in (
        "--quick",
        "--n-jobs",
        "--output",
        "--random-state",
        "--backend",
        "--scheduler",
        "--dataset",
        "--source",
        "--data-home",
    ):
        assert option in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"skscale {__version__}"


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "the following arguments are required: COMMAND"),
        (["train"], "invalid choice: 'train'"),
        (["demo", "--n-jobs", "0"], "argument --n-jobs: must be an integer >= 1 or -1 (all cores), got '0'"),
        (["demo", "--n-jobs", "two"], "argument --n-jobs: must be an integer >= 1 or -1"),
        (["demo", "--random-state", "-3"], "argument --random-state: must be an integer >= 0, got '-3'"),
        (["demo", "--backend", "spark"], "argument --backend: invalid choice: 'spark'"),
        (["demo", "--scheduler", "tcp://127.0.0.1:8786"], "--scheduler needs --backend dask"),
        (["demo", "--epochs", "3"], "unrecognized arguments: --epochs 3"),
        (["demo", "--dataset", "cifar10"], "argument --dataset: invalid choice: 'cifar10'"),
        (["demo", "--source", "torchvision"], "argument --source: invalid choice: 'torchvision'"),
        (["tolerance", "--range", "8", "1"], "--range needs LOW < HIGH, got 8 1"),
        (["tolerance", "--range", "1"], "argument --range: expected 2 arguments"),
        (["tolerance", "--range", "0", "8"], "argument --range: must be a finite number > 0, got '0'"),
        (["tolerance", "--n-scales", "0"], "argument --n-scales: must be an integer >= 1, got '0'"),
        (["tolerance", "--tau", "nan"], "argument --tau: must be a finite number > 0, got 'nan'"),
        (["tolerance", "--plot", "figure.xyz"], "--plot 'figure.xyz': the file name must end in one of"),
        (
            ["tolerance", "--range", "1", "8", "--images", "x.npy"],
            "argument --images: not allowed with argument --range",
        ),
        (["tolerance", "--labels", "y.npy"], "--labels needs --images"),
    ],
)
def test_bad_options_are_usage_errors(capsys, argv, message):
    assert message in usage_error(capsys, argv)


def test_output_that_is_a_file_is_a_usage_error(capsys, tmp_path):
    existing = tmp_path / "results.txt"
    existing.write_text("not a folder")
    assert "exists and is not a folder" in usage_error(capsys, ["demo", "--output", str(existing)])


def quick_idx_demo(data_home, output):
    """Arguments of a quick demo on the IDX files in ``data_home``."""
    return ["demo", "--quick", "--source", "idx", "--data-home", str(data_home), "--output", str(output)]


def test_failures_while_running_print_one_line_and_exit_1(capsys, tmp_path):
    empty = tmp_path / "no-mnist-here"
    empty.mkdir()
    argv = quick_idx_demo(empty, tmp_path / "out")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("python -m skscale demo: error: MNIST IDX files for subset='all' not found")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_module_entry_point_exits_with_the_usage_status():
    completed = subprocess.run(
        [sys.executable, "-m", "skscale", "tolerance", "--n-scales", "zero"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith("usage: python -m skscale tolerance")
    assert "Traceback" not in completed.stderr


def test_tolerance_prints_the_fitted_model_and_plots_it(capsys, tmp_path):
    figure = tmp_path / "tolerance.png"
    assert main(["tolerance", "--range", "1", "8", "--n-scales", "3", "--plot", str(figure)]) == 0
    out = capsys.readouterr().out
    expected = ToleranceModel(n_scales=3).fit(np.geomspace(1.0, 8.0, 50))
    assert out.startswith("Tolerance model of data scales log-uniform in [1, 8] (3 octaves)")
    isr = float(re.search(r"^\s+ISR\s+([\d.]+)$", out, flags=re.MULTILINE).group(1))
    assert isr == pytest.approx(expected.isr_[0], abs=2e-3)
    internal = re.search(r"^\s+internal scales\s+([\d., ]+)$", out, flags=re.MULTILINE).group(1)
    np.testing.assert_allclose(
        [float(v) for v in internal.split(",")], expected.internal_scales_[0], atol=2e-3
    )
    assert f"wrote {figure}" in out
    assert figure.read_bytes().startswith(PNG_SIGNATURE)


def test_tolerance_isr_grows_with_the_range(capsys):
    isrs = []
    for high in ("2.83", "4.76", "8"):
        main(["tolerance", "--range", "1", high])
        isrs.append(float(re.search(r"ISR\s+([\d.]+)", capsys.readouterr().out).group(1)))
    assert isrs == sorted(isrs) and isrs[0] > 1.0


def write_blobs(tmp_path, n=48, side=48, octaves=(1.0, 2.5), seed=0):
    """Gaussian blobs (sigma log-uniform in 2**octaves px) on pixel noise, as images.npy and
    labels.npy; the last image is blank. Returns the paths, the images, labels and sigmas."""
    rng = np.random.default_rng(seed)
    sigma = 2.0 ** rng.uniform(*octaves, size=n)
    grid = np.arange(side) - (side - 1) / 2
    images = np.exp(-(grid[:, None] ** 2 + grid[None, :] ** 2) / (2 * sigma[:, None, None] ** 2))
    images += 0.02 * rng.standard_normal(images.shape)
    images[-1] = 0.0
    labels = np.where(np.arange(n) % 2 == 0, "even", "odd")
    np.save(tmp_path / "images.npy", images.astype(np.float32))
    np.save(tmp_path / "labels.npy", labels)
    return tmp_path / "images.npy", tmp_path / "labels.npy", images.astype(np.float32), labels, sigma


def _value(out, name):
    return re.search(rf"^\s+{name}\s+(.+)$", out, flags=re.MULTILINE).group(1)


def test_tolerance_of_images_prints_the_estimated_distribution_and_the_isr(capsys, tmp_path):
    images_path, labels_path, images, labels, sigma = write_blobs(tmp_path)
    figure = tmp_path / "estimated.png"
    argv = ["tolerance", "--images", str(images_path), "--labels", str(labels_path), "--plot", str(figure)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("note: 1 of 48 images hold no object")
    assert f"Object scales estimated from 48 images in {images_path} (each class's median set to 1)" in out
    assert _value(out, "images with an object") == "47 of 48"
    assert float(_value(out, "median scale").split()[0]) == pytest.approx(1.0, abs=0.05)
    low, high, octaves = (
        float(value)
        for value in re.fullmatch(
            r"([\d.]+) to ([\d.]+)  \(([\d.]+) octaves\)", _value(out, "5-95 % range")
        ).groups()
    )
    with pytest.warns(UserWarning):
        scales = estimate_scales(images, labels)
    kept = scales[np.isfinite(scales)]
    np.testing.assert_allclose([low, high], np.percentile(kept, [5, 95]), atol=6e-4)
    assert octaves == pytest.approx(np.log2(high / low), abs=0.01) and octaves > 0.2
    expected = ToleranceModel(n_scales=3).fit(kept)
    assert float(_value(out, "ISR")) == pytest.approx(expected.isr_[0], abs=2e-3)
    assert f"wrote {figure}" in out and figure.read_bytes().startswith(PNG_SIGNATURE)


def test_tolerance_isr_of_images_grows_with_the_spread_of_their_sizes(capsys, tmp_path):
    isrs = []
    for octaves in ((1.4, 1.7), (0.8, 2.6)):
        folder = tmp_path / f"{octaves[1]}"
        folder.mkdir()
        images_path, *_ = write_blobs(folder, octaves=octaves, seed=1)
        assert main(["tolerance", "--images", str(images_path), "--n-scales", "3"]) == 0
        out = capsys.readouterr().out
        assert "(each class's median" not in out
        isrs.append(float(_value(out, "ISR")))
    assert 1.0 <= isrs[0] < isrs[1]


@pytest.mark.parametrize(
    "images, labels, message",
    [
        (
            np.ones(10),
            None,
            r"--images '.*bad\.npy' must hold images of shape \(n, height, width\), "
            r"\(n, channels, height, width\), \(n, height, width, channels\) or \(n, side \* side\) "
            r"\(flattened square images\), got an array of shape \(10,\)",
        ),
        (np.ones((2, 3, 4, 5, 6)), None, r"got an array of shape \(2, 3, 4, 5, 6\)"),
        (np.array([["a"]] * 3), None, r"must hold numbers, got dtype <U1"),
        (np.zeros((3, 15)), None, r"X has 15 features per row, which is not a square single-channel image"),
        (np.zeros((4, 0, 8)), None, r"got an array of shape \(4, 0, 8\)"),
        (
            np.random.rand(4, 16, 16),
            np.arange(3),
            r"--labels '.*labels\.npy' must hold one label per image, shape \(4,\), got shape \(3,\)",
        ),
        ("not an array", None, r"--images '.*bad\.npy' is not a NumPy \.npy file of numbers"),
        (
            np.zeros((5, 28, 28)),
            None,
            r"--images '.*bad\.npy': found no object in any of the 5 images \(they look blank, constant or "
            r"noise only\); the tolerance model needs the object scales of at least 2 images",
        ),
        (
            np.random.default_rng(0).standard_normal((6, 28, 28, 3)),
            None,
            r"found no object in any of the 6 images",
        ),
    ],
)
def test_tolerance_of_bad_image_files_is_one_line(capsys, tmp_path, images, labels, message):
    path = tmp_path / "bad.npy"
    if isinstance(images, str):
        path.write_text(images)
    else:
        np.save(path, images)
    argv = ["tolerance", "--images", str(path)]
    if labels is not None:
        np.save(tmp_path / "labels.npy", labels)
        argv += ["--labels", str(tmp_path / "labels.npy")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("python -m skscale tolerance: error: ") and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err


def test_tolerance_of_images_never_speaks_of_samples(capsys, tmp_path):
    np.save(tmp_path / "blank.npy", np.zeros((5, 28, 28)))
    assert main(["tolerance", "--images", str(tmp_path / "blank.npy")]) == 1
    captured = capsys.readouterr()
    assert "sample" not in captured.err and "images" in captured.err


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_tolerance_reads_channels_last_images_as_such(capsys, tmp_path, channels):
    images_path, _, images, _, _ = write_blobs(tmp_path)
    assert main(["tolerance", "--images", str(images_path)]) == 0
    gray = capsys.readouterr().out
    np.save(tmp_path / "last.npy", np.repeat(images[..., None], channels, axis=3))
    assert main(["tolerance", "--images", str(tmp_path / "last.npy")]) == 0
    last = capsys.readouterr().out
    assert _value(last, "ISR") == _value(gray, "ISR")
    assert _value(last, "images with an object") == _value(gray, "images with an object")
    np.save(tmp_path / "first.npy", np.repeat(images[:, None], channels, axis=1))
    assert main(["tolerance", "--images", str(tmp_path / "first.npy"), "--layout", "channels_first"]) == 0
    assert _value(capsys.readouterr().out, "ISR") == _value(gray, "ISR")


def test_tolerance_of_dark_objects_with_polarity(capsys, tmp_path):
    images_path, _, images, _, _ = write_blobs(tmp_path)
    assert main(["tolerance", "--images", str(images_path)]) == 0
    bright = capsys.readouterr().out
    np.save(tmp_path / "dark.npy", 1.0 - images)
    assert main(["tolerance", "--images", str(tmp_path / "dark.npy"), "--polarity", "dark"]) == 0
    assert _value(capsys.readouterr().out, "ISR") == _value(bright, "ISR")
    assert main(["tolerance", "--images", str(tmp_path / "dark.npy")]) == 0
    assert "note: the objects look darker than their background" in capsys.readouterr().out


@pytest.mark.parametrize("flag", [["--layout", "channels_last"], ["--polarity", "dark"]])
def test_image_options_need_images(capsys, flag):
    with pytest.raises(SystemExit):
        main(["tolerance", *flag])
    assert f"{flag[0]} needs --images" in capsys.readouterr().err


def test_tolerance_of_a_missing_image_file_is_one_line(capsys, tmp_path):
    assert main(["tolerance", "--images", str(tmp_path / "missing.npy")]) == 1
    err = capsys.readouterr().err
    assert "No such file or directory" in err and len(err.strip().splitlines()) == 1


def test_info_reports_versions_device_and_data(capsys, tmp_path):
    assert main(["info", "--data-home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"skscale {__version__} (") and "(python " in out.splitlines()[0]
    for package in ("torch", "skorch", "scikit-learn", "numpy"):
        assert re.search(rf"^\s+{package}\s+\d", out, flags=re.MULTILINE), package
    assert re.search(r"^\s+torch threads\s+\d+$", out, flags=re.MULTILINE)
    assert re.search(r"^\s+accelerator\s+", out, flags=re.MULTILINE)
    assert out.count("torch threads") == 1  # one report of the device, from show_versions
    assert f"data home             {tmp_path}" in out
    assert "MNIST IDX files       not found" in out
    assert "bundled digits" in out and "source='auto' uses" in out


def test_info_finds_idx_files(capsys, tmp_path):
    folder = tmp_path / "MNIST" / "raw"
    folder.mkdir(parents=True)
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (folder / name).write_bytes(b"")
    main(["info", "--data-home", str(tmp_path)])
    out = capsys.readouterr().out
    assert f"MNIST IDX files       found in {folder}" in out
    assert "source='auto' uses    idx" in out


def test_parser_is_reusable_for_documentation():
    parser = build_parser()
    args = parser.parse_args(["demo", "--quick", "--backend", "dask"])
    assert args.quick and args.backend == "dask" and args.n_jobs == -1 and args.output == "skscale-demo"
    assert args.dataset == "mnist" and args.source == "auto"


def test_demo_parses_the_dataset_and_every_source_of_it():
    parser = build_parser()
    for dataset, sources in skscale.demo.DATASET_SOURCES.items():
        for source in sources:
            args = parser.parse_args(["demo", "--dataset", dataset, "--source", source])
            assert (args.dataset, args.source) == (dataset, source)


@pytest.mark.parametrize(
    "dataset, source, sources",
    [
        ("fashion", "bundled", "'auto', 'debian', 'idx', 'openml'"),
        ("mnist", "debian", "'auto', 'idx', 'openml', 'bundled'"),
    ],
)
def test_a_source_the_dataset_lacks_is_one_line_before_any_work(capsys, tmp_path, dataset, source, sources):
    output = tmp_path / "out"
    err = one_line_failure(
        capsys, ["demo", "--dataset", dataset, "--source", source, "--output", str(output)]
    )
    assert err == (
        f"python -m skscale demo: error: source (dataset={dataset!r}) must be one of "
        f"{sources}, got {source!r}."
    )
    assert not output.exists()


def test_demo_on_a_tiny_fashion_mnist_from_idx_files(capsys, monkeypatch, tmp_path):
    # Fashion-MNIST's folder below data_home only: MNIST's files are nowhere, so the run
    # can only succeed by reading these.
    data_home = tmp_path / "data"
    write_idx_files(data_home / "fashion-mnist", n_train=60, n_test=20)
    tiny = skscale.demo.DemoConfig(
        n_train=40, n_test=20, cv=2, max_epochs=2, init_isr=(4.0,), n_filters=4, error_bins=3
    )
    monkeypatch.setattr(skscale.demo, "QUICK", tiny)
    figures = {}
    draw = skscale.demo.make_figures

    def keep_figures(*args, **kwargs):
        figures.update(draw(*args, **kwargs))
        return figures

    monkeypatch.setattr(skscale.demo, "make_figures", keep_figures)
    output = tmp_path / "out"
    argv = [
        "demo",
        "--quick",
        "--dataset",
        "fashion",
        "--source",
        "idx",
        "--data-home",
        str(data_home),
        "--n-jobs",
        "1",
        "--output",
        str(output),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].endswith("on Fashion-MNIST-Scale")
    assert lines[1].startswith("data: 40 training and 20 test images (28 x 28) from source 'idx'")
    classes = "T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot"
    assert lines[2] == f"      10 classes: {classes}"
    assert "on 40 training images" in out and "Test error on 20 images" in out and "digit" not in out
    for name in skscale.demo.FIGURES:
        assert (output / name).read_bytes().startswith(PNG_SIGNATURE), name
        assert figures[name].axes[0].get_title().startswith("Fashion-MNIST-Scale"), name
    with open(output / "results.csv") as file:
        assert len(file.read().splitlines()) == 1 + 2 * 2  # fixed and learned, ISR 4 and the tolerance's


# --------------------------------------------------------------------------- failures while running
def idx_bytes(array, magic):
    """An IDX file: the magic number, one big-endian 32-bit size per axis, then unsigned bytes."""
    header = magic.to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_files(folder, n_train=60, n_test=20):
    """The four files of MNIST's format (Fashion-MNIST's too), gzipped, with random images and
    balanced labels, in ``folder`` (created); returns their paths by name."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    paths = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        for kind, magic, array in (
            ("images-idx3-ubyte", 0x00000803, rng.randint(0, 256, size=(n, 28, 28))),
            ("labels-idx1-ubyte", 0x00000801, np.arange(n) % 10),
        ):
            path = folder / f"{prefix}-{kind}.gz"
            path.write_bytes(gzip.compress(idx_bytes(array, magic)))
            paths[f"{prefix}-{kind}"] = path
    return paths


def one_line_failure(capsys, argv, status=1):
    assert main(argv) == status
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in captured.err + captured.out, captured.err
    return err


def damage_truncate(path):
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])


def damage_corrupt(path):
    content = bytearray(path.read_bytes())
    content[10:] = bytes(255 - value for value in content[10:])  # keep the gzip header, spoil the stream
    path.write_bytes(bytes(content))


def test_the_idx_files_written_here_are_read(tmp_path):
    from skscale.datasets import load_mnist

    write_idx_files(tmp_path)
    images, labels = load_mnist(source="idx", data_home=tmp_path, return_X_y=True)
    assert images.shape == (80, 28, 28)
    np.testing.assert_array_equal(labels, np.concatenate([np.arange(60), np.arange(20)]) % 10)


@pytest.mark.parametrize("damage", [damage_truncate, damage_corrupt])
def test_a_damaged_gzip_idx_file_is_one_line_not_a_traceback(capsys, tmp_path, damage):
    data_home = tmp_path / "data"
    data_home.mkdir()
    damage(write_idx_files(data_home)["train-images-idx3-ubyte"])
    argv = quick_idx_demo(data_home, tmp_path / "out")
    err = one_line_failure(capsys, argv)
    assert err.startswith("python -m skscale demo: error: ")
    assert "internal error" not in err
    with pytest.raises((EOFError, OSError, ValueError, __import__("zlib").error)):
        main([*argv, "--debug"])  # --debug: the exception itself, with its traceback


@pytest.mark.parametrize(
    "exception, expected",
    [
        (TypeError("n_filters must be an int"), "error: TypeError: n_filters must be an int"),
        (MemoryError(), "error: out of memory (MemoryError)"),
        (EOFError("Compressed file ended"), "error: EOFError: Compressed file ended"),
        (ValueError("bad\nvalue"), "error: bad value"),
        (
            ZeroDivisionError("division by zero"),
            "internal error: ZeroDivisionError: division by zero (a bug in skscale; rerun with --debug",
        ),
    ],
)
def test_failures_of_the_job_are_one_line(capsys, monkeypatch, tmp_path, exception, expected):
    def fail(*args, **kwargs):
        raise exception

    monkeypatch.setattr(skscale.demo, "run_demo", fail)
    argv = ["demo", "--output", str(tmp_path / "out")]
    assert expected in one_line_failure(capsys, argv)
    with pytest.raises(type(exception)):
        main(["--debug", *argv])


def test_an_interruption_exits_130_with_one_line(capsys, monkeypatch, tmp_path):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(skscale.demo, "run_demo", interrupt)
    err = one_line_failure(capsys, ["demo", "--output", str(tmp_path / "out")], status=130)
    assert err == "python -m skscale demo: interrupted"


def test_help_imports_neither_torch_nor_the_estimators():
    # --help and usage errors answer at once: the heavy modules load in the sub-command.
    code = (
        "import sys\n"
        "from skscale.__main__ import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('torch', 'sklearn', 'skorch', 'skscale.classifier', 'skscale.demo')\n"
        "print('IMPORTED', sorted(name for name in heavy if name in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "IMPORTED []" in done.stdout, done.stdout


def test_the_choices_written_out_in_the_command_line_are_the_library_s():
    import skscale.__main__ as cli
    from skscale._images import IMAGE_LAYOUTS
    from skscale.datasets import DATASET_SOURCES
    from skscale.scale_estimation import POLARITIES
    from skscale.search_backends import BACKENDS

    assert cli.IMAGE_LAYOUTS == IMAGE_LAYOUTS and cli.POLARITIES == POLARITIES
    assert cli.DATASET_SOURCES == DATASET_SOURCES and cli.BACKENDS == BACKENDS
