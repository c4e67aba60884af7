import re
import subprocess
import sys

import numpy as np
import pytest

from skscale import ToleranceModel, __version__
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
    for option in ("--quick", "--n-jobs", "--output", "--random-state", "--backend", "--scheduler"):
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
        (["demo", "--n-jobs", "0"], "argument --n-jobs: must be a positive integer or -1 (all cores), got '0'"),
        (["demo", "--n-jobs", "two"], "argument --n-jobs: must be a positive integer or -1"),
        (["demo", "--random-state", "-3"], "argument --random-state: must be a non-negative integer, got '-3'"),
        (["demo", "--backend", "spark"], "argument --backend: invalid choice: 'spark'"),
        (["demo", "--scheduler", "tcp://127.0.0.1:8786"], "--scheduler needs --backend dask"),
        (["demo", "--epochs", "3"], "unrecognized arguments: --epochs 3"),
        (["tolerance", "--range", "8", "1"], "--range needs LOW < HIGH, got 8 1"),
        (["tolerance", "--range", "1"], "argument --range: expected 2 arguments"),
        (["tolerance", "--range", "0", "8"], "argument --range: must be a positive number, got '0'"),
        (["tolerance", "--n-scales", "0"], "argument --n-scales: must be a positive integer, got '0'"),
        (["tolerance", "--tau", "nan"], "argument --tau: must be a positive number, got 'nan'"),
        (["tolerance", "--plot", "figure.xyz"], "--plot 'figure.xyz': the file name must end in one of"),
    ],
)
def test_bad_options_are_usage_errors(capsys, argv, message):
    assert message in usage_error(capsys, argv)


def test_output_that_is_a_file_is_a_usage_error(capsys, tmp_path):
    existing = tmp_path / "results.txt"
    existing.write_text("not a folder")
    assert "exists and is not a folder" in usage_error(capsys, ["demo", "--output", str(existing)])


def test_failures_while_running_print_one_line_and_exit_1(capsys, tmp_path):
    empty = tmp_path / "no-mnist-here"
    empty.mkdir()
    argv = ["demo", "--quick", "--source", "idx", "--data-home", str(empty), "--output", str(tmp_path / "out")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("python -m skscale demo: error: MNIST IDX files for subset='all' not found")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_module_entry_point_exits_with_the_usage_status():
    completed = subprocess.run(
        [sys.executable, "-m", "skscale", "tolerance", "--n-scales", "zero"],
        capture_output=True, text=True, timeout=120,
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
    assert isr == pytest.approx(expected.isr_, abs=2e-3)
    internal = re.search(r"^\s+internal scales\s+([\d., ]+)$", out, flags=re.MULTILINE).group(1)
    np.testing.assert_allclose([float(v) for v in internal.split(",")], expected.internal_scales_, atol=2e-3)
    assert f"wrote {figure}" in out
    assert figure.read_bytes().startswith(PNG_SIGNATURE)


def test_tolerance_isr_grows_with_the_range(capsys):
    isrs = []
    for high in ("2.83", "4.76", "8"):
        main(["tolerance", "--range", "1", high])
        isrs.append(float(re.search(r"ISR\s+([\d.]+)", capsys.readouterr().out).group(1)))
    assert isrs == sorted(isrs) and isrs[0] > 1.0


def test_info_reports_versions_device_and_data(capsys, tmp_path):
    assert main(["info", "--data-home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"skscale {__version__} (python ")
    for package in ("torch", "skorch", "scikit-learn", "numpy"):
        assert re.search(rf"^\s+{package}\s+\d", out, flags=re.MULTILINE), package
    assert re.search(r"^\s+torch threads\s+\d+$", out, flags=re.MULTILINE)
    assert re.search(r"^\s+CUDA\s+", out, flags=re.MULTILINE)
    assert f"data home             {tmp_path}" in out
    assert "MNIST IDX files       not found" in out
    assert "bundled digits" in out and "source='auto' uses" in out


def test_info_finds_idx_files(capsys, tmp_path):
    folder = tmp_path / "MNIST" / "raw"
    folder.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (folder / name).write_bytes(b"")
    main(["info", "--data-home", str(tmp_path)])
    out = capsys.readouterr().out
    assert f"MNIST IDX files       found in {folder}" in out
    assert "source='auto' uses    idx" in out


def test_parser_is_reusable_for_documentation():
    parser = build_parser()
    args = parser.parse_args(["demo", "--quick", "--backend", "dask"])
    assert args.quick and args.backend == "dask" and args.n_jobs == -1 and args.output == "skscale-demo"
