"""
Exporting a fitted network: torch.export, TorchScript and ONNX
==============================================================

``clf.export(X)`` records the fitted network in eval mode (where the internal scales
are fixed) so that it runs without skscale: as a :class:`torch.export.ExportedProgram`
(the default), a TorchScript module or an ONNX model. The recording maps float32 images
``(n, channels, height, width)`` to class logits whose argmax indexes ``classes_``, for
any batch size. ONNX needs the ``export`` extra (``pip install "skscale[export]"``); the
example skips that part when onnx or onnxruntime is missing.
"""

# %%
# A small fitted classifier
# -------------------------
import importlib.util
import pickle
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from skscale import ScaleEquivariantClassifier
from skscale.datasets import DatasetSizeWarning, make_mnist_scale

warnings.simplefilter("ignore", DatasetSizeWarning)
data = make_mnist_scale(n_train=300, n_val=10, n_test=100, random_state=0)
clf = ScaleEquivariantClassifier(init_sigma_basis=1.0, max_epochs=2, random_state=0)
clf.fit(data.X_train, data.y_train)
expected = clf.predict(data.X_test)
folder = Path(tempfile.mkdtemp())

# %%
# Pickle saves the whole estimator
# --------------------------------
restored = pickle.loads(pickle.dumps(clf))
print("pickled estimator predicts the same:", (restored.predict(data.X_test) == expected).all())

# %%
# torch.export and TorchScript
# ----------------------------
# ``export`` takes example images in any form ``predict`` accepts. The recording takes
# float32 images with a channel axis.
images = data.X_test.astype(np.float32)[:, None]  # (n, 1, 28, 28)
program = clf.export(data.X_test[:1], format="torch", path=folder / "model.pt2")
logits = program.module()(torch.from_numpy(images))
print("torch.export agrees with predict:", (clf.classes_[logits.argmax(dim=1).numpy()] == expected).all())

traced = clf.export(data.X_test[:1], format="torchscript", path=folder / "model.torchscript")
loaded = torch.jit.load(folder / "model.torchscript")
logits = loaded(torch.from_numpy(images))
print("TorchScript agrees with predict:", (clf.classes_[logits.argmax(dim=1).numpy()] == expected).all())

# %%
# ONNX
# ----
# The ONNX recording correlates directly (torch's ONNX exporter cannot translate the
# FFT path): the same outputs, slower for large kernels.
if all(importlib.util.find_spec(name) for name in ("onnx", "onnxscript", "onnxruntime")):
    import onnxruntime

    clf.export(data.X_test[:1], format="onnx", path=folder / "model.onnx")
    session = onnxruntime.InferenceSession(folder / "model.onnx")
    logits = session.run(["logits"], {"images": images})[0]
    print("ONNX Runtime agrees with predict:", (clf.classes_[logits.argmax(axis=1)] == expected).all())
else:
    print("onnx, onnxscript or onnxruntime is not installed: pip install 'skscale[export]'")
