"""One process of tests/test_accelerate.py's distributed run (``torchrun --nproc_per_node=2``).

Each rank trains an AcceleratedClassifier from its own seed (the accelerator must make
the ranks agree), saves its tensors after ``fit`` and after a ``partial_fit`` to
``<out>/rank<k>-<stage>.pt`` (with its own eval-mode outputs on a few images), and its
predictions and the number of processes.
"""

import sys
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator

from skscale.accelerate import AcceleratedClassifier


def tensors(clf, X):
    state = {name: value.detach().clone() for name, value in clf.module_.state_dict().items()}
    state["scales"] = torch.as_tensor(clf.scales_)
    # This rank's own outputs in eval mode (no gathering): the layers' cached basis included.
    module = clf.accelerator.unwrap_model(clf.module_).eval()
    with torch.no_grad():
        state["local_logits"] = module(torch.as_tensor(X[:16, None]))
    return state


def main(out):
    accelerator = Accelerator(cpu=True)  # gloo between CPU processes
    rank = accelerator.process_index
    rng = np.random.RandomState(0)
    X = rng.rand(64, 12, 12).astype("float32")
    y = np.where(X[:, 4:8, 4:8].mean(axis=(1, 2)) > 0.5, "bright", "dark")
    clf = AcceleratedClassifier(
        n_filters=4,
        init_sigma_basis=1.0,
        init_isr=2.0,
        lr=0.05,
        max_epochs=1,
        batch_size=8,
        scale_augmentation=(0.8, 1.25),
        random_state=rank,  # different initial weights on each rank
        accelerator=accelerator,
    )
    clf.fit(X, y)
    torch.save(tensors(clf, X), out / f"rank{rank}-fit.pt")
    clf.partial_fit(X, y)
    torch.save(tensors(clf, X), out / f"rank{rank}-partial_fit.pt")
    torch.save(
        {"predictions": clf.predict(X).tolist(), "n_processes": accelerator.num_processes},
        out / f"rank{rank}-info.pt",
    )
    accelerator.wait_for_everyone()
    accelerator.end_training()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
