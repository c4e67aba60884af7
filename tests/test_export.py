"""ScaleEquivariantClassifier.export: a fitted network recorded as torch.export, TorchScript and ONNX."""

import importlib.util
import logging
import warnings

import numpy as np
import onnxruntime
import pytest
import torch
from sklearn.exceptions import NotFittedError

from skscale import ScaleEquivariantClassifier

FORMATS = ("torch", "torchscript", "onnx")
SUFFIXES = {"torch": "pt2", "torchscript": "pt", "onnx": "onnx"}


def images_and_labels(n_images, side, seed):
    rng = np.random.RandomState(seed)
    X = rng.rand(n_images, side, side).astype(np.float32)
    y = np.where(
        X[:, side // 3 : -side // 3, side // 3 : -side // 3].mean(axis=(1, 2)) > 0.5, "light", "dark"
    )
    return X, y


def fitted(name):
    """A small fitted classifier: the Table-1 defaults, or a narrow one on the FFT path."""
    if name == "table1":
        X, y = images_and_labels(48, 28, seed=0)
        return ScaleEquivariantClassifier(max_epochs=1, random_state=0).fit(X, y), X
    X, y = images_and_labels(32, 20, seed=1)
    clf = ScaleEquivariantClassifier(
        n_filters=4,
        init_sigma_basis=1.0,
        init_isr=4.0,
        max_epochs=1,
        random_state=0,
        module__conv_kwargs={"conv_impl": "fft"},
    )
    return clf.fit(X, y), X


@pytest.fixture(scope="module", params=["table1", "fft"])
def recorded(request, tmp_path_factory):
    """A fitted classifier, its example images and every format's recording (also saved)."""
    clf, X = fitted(request.param)
    folder = tmp_path_factory.mktemp(request.param)
    example = X[:5]
    programs, paths = {}, {}
    for format in FORMATS:
        paths[format] = folder / f"network.{SUFFIXES[format]}"
        programs[format] = clf.export(example, format=format, path=paths[format])
    return clf, example, programs, paths


def network_outputs(clf, images):
    """The logits of ``module_`` in eval mode, as skorch's prediction computes them."""
    return clf.forward(images[:, None]).numpy()


def run(format, program, images):
    tensor = torch.as_tensor(images[:, None])
    with torch.no_grad():
        if format == "torch":
            return program.module()(tensor).numpy()
        if format == "torchscript":
            return program(tensor).numpy()
        return program(tensor)[0].numpy()


def run_saved(format, path, images):
    if format == "onnx":
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(["logits"], {"images": images[:, None]})[0]
    program = torch.export.load(path) if format == "torch" else torch.jit.load(path)
    return run(format, program, images)


@pytest.mark.parametrize("format", FORMATS)
def test_recording_gives_the_network_outputs_and_predictions(recorded, format):
    clf, example, programs, _ = recorded
    logits = run(format, programs[format], example)
    np.testing.assert_allclose(logits, network_outputs(clf, example), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(clf.classes_[logits.argmax(axis=1)], clf.predict(example))


@pytest.mark.parametrize("format", FORMATS)
def test_saved_recording_reloads_with_the_same_outputs(recorded, format):
    clf, example, programs, paths = recorded
    other = example[::-1][:3].copy()  # another batch, of another size
    logits = run_saved(format, paths[format], other)
    np.testing.assert_allclose(logits, network_outputs(clf, other), rtol=1e-4, atol=1e-5)


def test_onnx_reads_and_writes_named_tensors_of_the_example_shape(recorded):
    _, example, programs, paths = recorded
    session = onnxruntime.InferenceSession(str(paths["onnx"]), providers=["CPUExecutionProvider"])
    (images,), (logits,) = session.get_inputs(), session.get_outputs()
    assert (images.name, logits.name) == ("images", "logits")
    assert images.shape == ["batch", 1, *example.shape[1:]]
    # torch's ONNX exporter has no complex spectra: the FFT correlations were recorded directly.
    nodes = {node.op_type for node in programs["onnx"].model_proto.graph.node}
    assert "Conv" in nodes and not nodes & {"DFT", "STFT"}


def test_onnx_records_the_fft_path_directly_and_leaves_the_estimator_alone():
    clf, X = fitted("fft")
    layer = clf.module_.conv
    assert {impl for _, _, impl in layer.correlation_plan((2, 1, 20, 20), backward=False)} == {"fft"}
    before = clf.predict_proba(X)
    clf.module_.train()
    program = clf.export(X[:2], format="onnx")
    assert layer.conv_impl == "fft" and clf.module_.training
    np.testing.assert_array_equal(clf.predict_proba(X), before)
    recorded_logits = run("onnx", program, X[:2])
    np.testing.assert_allclose(recorded_logits, network_outputs(clf, X[:2]), rtol=1e-4, atol=1e-5)

    clf.partial_fit(X, images_and_labels(32, 20, seed=1)[1])  # a later fit changes the estimator only
    np.testing.assert_array_equal(run("onnx", program, X[:2]), recorded_logits)
    assert not np.allclose(network_outputs(clf, X[:2]), recorded_logits)


def test_a_dataset_is_read_like_predict_reads_it():
    clf, X = fitted("fft")
    dataset = torch.utils.data.TensorDataset(torch.as_tensor(X[:3]), torch.zeros(3))
    program = clf.export(dataset, format="torchscript")
    np.testing.assert_allclose(run("torchscript", program, X[:3]), network_outputs(clf, X[:3]), rtol=1e-5)
    with pytest.raises(ValueError, match="empty Dataset"):
        clf.export(torch.utils.data.Subset(dataset, []))


def test_export_refuses_an_unfitted_estimator_an_unknown_format_and_other_images(monkeypatch):
    X, _ = images_and_labels(4, 20, seed=0)
    with pytest.raises(NotFittedError):
        ScaleEquivariantClassifier().export(X)
    clf, X = fitted("fft")
    with pytest.raises(ValueError, match=r"format must be one of .*'onnx'.*, got 'tflite'\."):
        clf.export(X[:1], format="tflite")
    with pytest.raises(ValueError, match=r"expecting 400 features as input"):
        clf.export(X[:1, :10, :10])

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "onnxscript" else find_spec(name)
    )
    with pytest.raises(ImportError, match=r"needs the packages onnxscript: pip install 'skscale\[export\]'"):
        clf.export(X[:1], format="onnx")


@pytest.mark.parametrize("format", FORMATS)
def test_a_single_example_image_records_a_network_for_any_batch_size(format):
    clf, X = fitted("fft")
    program = clf.export(X[:1], format=format)
    for n_images in (1, 2, 7):
        np.testing.assert_allclose(
            run(format, program, X[:n_images]), network_outputs(clf, X[:n_images]), rtol=1e-4, atol=1e-5
        )


def test_onnx_export_is_quiet(capfd, caplog, recwarn):
    # torch's exporter logs "torchvision is not installed" per torchvision operator and
    # warns about LeafSpec; a script shows both on stderr, pytest catches the log records.
    for name in ("onnx", "onnxscript"):
        pytest.importorskip(name)
    clf, X = fitted("fft")
    warnings.simplefilter("always")
    capfd.readouterr()
    with caplog.at_level(logging.DEBUG):
        clf.export(X[:2], format="onnx")
    err = capfd.readouterr().err
    assert "torchvision is not installed" not in err and "LeafSpec" not in err
    assert not [record for record in caplog.records if "torchvision is not installed" in record.getMessage()]
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning) and "LeafSpec" in str(w.message)]
    # the exporter's logger is left as it was (its other messages still reach the user)
    assert not logging.getLogger("torch.onnx._internal.exporter._registration").filters
