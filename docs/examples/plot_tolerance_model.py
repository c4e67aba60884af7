"""
The tolerance model and scales estimated from images
====================================================

Which internal scale range (ISR) suits a data set? The Internal Scale Tolerance Model
(:class:`~skscale.ToleranceModel`, Basting et al. 2024, section 3) answers from the
distribution of the objects' scales. When those scales are unknown,
:func:`~skscale.estimate_scales` measures one relative scale per image.
"""

# %%
# From known scales
# -----------------
# Scales log-uniform over 2.25 octaves, as in the paper's experiments.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import spearmanr

from skscale import ScaleEquivariantClassifier, ToleranceModel, estimate_scales
from skscale.datasets import DatasetSizeWarning, make_mnist_scale
from skscale.plotting import plot_tolerance

rng = np.random.default_rng(0)
scales = 2.0 ** rng.uniform(0.0, 2.25, size=10_000)
tolerance = ToleranceModel(n_scales=3).fit(scales)  # tau fixed at the paper's 0.459
print(f"ISR = {tolerance.isr_[0]:.2f}, internal scales = {tolerance.internal_scales_[0].round(2)}")

# The recommended ISR starts a classifier.
clf = ScaleEquivariantClassifier(n_scales=3, init_isr=tolerance.isr_[0])

fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
plot_tolerance(tolerance, ax=ax, X=scales)
plt.show()

# %%
# The ISR grows with the width of the distribution
# ------------------------------------------------
# With one label per distribution and ``tau=None``, the model fits the tolerance of
# the internal scales, shared by all distributions.
X = np.concatenate([2.0 ** rng.uniform(0.0, top, size=5_000) for top in (1.5, 2.25, 3.0)])
y = np.repeat(["[1, 2.83]", "[1, 4.76]", "[1, 8]"], 5_000)
joint = ToleranceModel(n_scales=3, tau=None).fit(X, y)
print(f"tau = {joint.tau_:.3f}", dict(zip(joint.groups_.tolist(), joint.isr_.round(2).tolist())))

# %%
# Scales from the images alone
# ----------------------------
# :func:`~skscale.estimate_scales` measures each digit's radius of gyration; with labels
# it removes the size differences between classes. Only ratios matter.
warnings.simplefilter("ignore", DatasetSizeWarning)
digits = make_mnist_scale(n_train=300, n_val=10, n_test=10, random_state=0)
estimated = estimate_scales(digits.X_train, digits.y_train)
print(f"rank correlation with the true scales: {spearmanr(estimated, digits.scales_train)[0]:.2f}")
from_images = ToleranceModel(n_scales=3).fit(estimated).isr_[0]
from_truth = ToleranceModel(n_scales=3).fit(digits.scales_train).isr_[0]
print(f"ISR from the images: {from_images:.2f}, from the true scales: {from_truth:.2f}")

fig, ax = plt.subplots(figsize=(4.5, 4), layout="constrained")
ax.loglog(digits.scales_train, estimated, ".", alpha=0.6)
ax.set_xlabel("true scale factor")
ax.set_ylabel("estimated relative scale")
ax.set_title("estimate_scales on MNIST-Scale")
plt.show()
